"""Super-resolution task (tasks/sr.py), its registry entries, pipeline and study (notebook 10)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from crossflow_mini.configs import config_hash, from_dict, to_dict, with_overrides
from crossflow_mini.core import path as flow
from crossflow_mini.core.baseline import matched_baseline
from crossflow_mini.core.build import build_model
from crossflow_mini.core.crossflow import CrossFlowConfig
from crossflow_mini.core.guidance import GuidanceConfig
from crossflow_mini.core.image_ve import ImageVEConfig
from crossflow_mini.core.params import count_parameters
from crossflow_mini.core.source import IdentitySourceConfig
from crossflow_mini.core.unet import UNetVelocityConfig
from crossflow_mini.datasets.superres import SRDataConfig, make_pairs
from crossflow_mini.eval.sr import psnr_ssim
from crossflow_mini.profiles import get_profile
from crossflow_mini import registry
from crossflow_mini.studies import catalog
from crossflow_mini.studies import sr as study
from crossflow_mini.studies.configs import SRStudyConfig
from crossflow_mini.tasks.common import choose_scale, model_loss
from crossflow_mini.tasks.sr import data as sr_data
from crossflow_mini.tasks.sr import evaluate as sr_eval
from crossflow_mini.tasks.sr import recipe as sr
from crossflow_mini.training import EpochBatches, TrainConfig, train

SR_NAMES = ("sr_crossflow", "sr_baseline", "sr_regression")


def _recipes(profile):
    return {name: registry.recipe(name, profile) for name in SR_NAMES}


# ----------------------------------------------------------------------------------------------------- recipes
@pytest.mark.parametrize("profile_name", ["smoke", "course"])
def test_recipes_build_with_matched_parameters(profile_name):
    """Every method (and every study variant) builds, and all are within 10 % of CrossFlow's parameter count."""
    profile = get_profile(profile_name, device="cpu")
    recipes = _recipes(profile)
    rows = study.study_recipes(recipes, profile.sr_study)
    counts = {row: count_parameters(build_model(r.model)) for row, (_, r) in rows.items()}
    reference = counts[sr.row_name(recipes["sr_crossflow"])]
    for row, n in counts.items():
        assert abs(n / reference - 1) < 0.10, (row, n, reference)
    # the three shipped recipes share everything but the model
    for name in ("sr_baseline", "sr_regression"):
        assert dataclasses.replace(recipes[name], model=recipes["sr_crossflow"].model) == recipes["sr_crossflow"]
    # the baseline's UNet is the closest a channel search finds to CrossFlow's size
    cf = build_model(recipes["sr_crossflow"].model)
    assert matched_baseline(cf, recipes["sr_baseline"].model) == recipes["sr_baseline"].model


def test_recipe_round_trips_through_json():
    """A recipe written to a checkpoint's JSON comes back as the same method (the model field is a union)."""
    for recipe in _recipes(get_profile("course", device="cpu")).values():
        back = from_dict(sr.SRRecipe, to_dict(recipe))
        assert back == recipe and config_hash(back) == config_hash(recipe)
    ve = sr.variant(registry.recipe("sr_crossflow", get_profile("course", device="cpu")), source="ve")
    assert from_dict(sr.SRRecipe, to_dict(ve)) == ve


def test_recipe_checks_shapes_and_conditions():
    unet = UNetVelocityConfig(latent_shape=(3, 32, 32))
    models = sr.model_configs(unet)
    with pytest.raises(ValueError, match="latent_shape"):
        sr.SRRecipe(model=models["crossflow"], data=SRDataConfig(hr_size=64))
    with pytest.raises(ValueError, match="latent_shape"):
        sr.SRRecipe(model=models["crossflow"], data=SRDataConfig(dataset="fashion"))
    with pytest.raises(ValueError, match="cond_channels"):
        sr.SRRecipe(model=dataclasses.replace(models["regression"],
                                              network=dataclasses.replace(unet, cond_channels=1), residual=False))
    with pytest.raises(ValueError, match="sampler"):
        sr.SRRecipe(model=models["crossflow"]).with_overrides({"sampling.sampler": "rk45"})
    with pytest.raises(ValueError, match="source"):
        sr.crossflow_config(unet, "text")


def test_model_configs_and_variants():
    unet = UNetVelocityConfig(latent_shape=(3, 32, 32), cond_channels=3)
    m = sr.model_configs(unet, source="noise", noise_std=0.2, regression_loss="l2")
    assert m["crossflow"].velocity.cond_channels == 0 and m["crossflow"].source == IdentitySourceConfig((3, 32, 32), 0.2)
    assert m["baseline"].velocity.cond_channels == 3 and m["regression"].network.cond_channels == 3
    recipe = sr.SRRecipe(model=m["crossflow"])
    assert sr.row_name(recipe) == "crossflow:noise"
    none, ve = sr.variant(recipe, source="none"), sr.variant(recipe, source="ve")
    assert none.model.source.noise_std == 0 and isinstance(ve.model.source, ImageVEConfig)
    assert ve.model.source.residual and sr.source_of(ve.model) == "ve"
    assert sr.variant(none, source="noise").model.source.noise_std == pytest.approx(0.1)  # the default level
    assert dataclasses.replace(ve, model=recipe.model) == recipe  # nothing else changes
    reg = sr.SRRecipe(model=m["regression"])
    assert sr.row_name(sr.variant(reg, regression_loss="l1")) == "regression:l1"
    with pytest.raises(ValueError):
        sr.variant(reg, source="none")
    rows = study.study_recipes({"sr_regression": reg, "sr_baseline": sr.SRRecipe(model=m["baseline"]),
                                "sr_crossflow": recipe}, SRStudyConfig())
    assert list(rows) == ["regression:l1", "regression:l2", "baseline", "crossflow:none", "crossflow:noise",
                          "crossflow:ve"]
    assert rows["crossflow:ve"][0] == "sr_crossflow" and rows["regression:l1"][0] == "sr_regression"


def test_choose_scale_direction_and_ties():
    sweep = {"w=1": {"psnr": 30.0, "kid": 0.02}, "w=2": {"psnr": 30.0, "kid": 0.01}, "w=3": {"psnr": 29.0,
                                                                                        "kid": 0.01}}
    # the direction of each metric is the task's (CHOICE_METRICS); ties: the scale nearest w = 1, then the smaller
    assert choose_scale(sweep, "psnr", sr_eval.CHOICE_METRICS["psnr"]) == 1.0  # tie: w = 1 (the cheaper one)
    assert choose_scale(sweep, "kid", sr_eval.CHOICE_METRICS["kid"]) == 2.0  # lower is better; tie with w=3 -> 2
    with pytest.raises(ValueError, match="val_fid"):
        sr_eval.SREvalConfig(choose_by="kid")


# ------------------------------------------------------------------------------------------------ the flow
def test_crossflow_source_is_the_upsampled_image_and_loss_replays():
    """z0 is the upsampled image itself (noise-free source); the loss is the FM loss on the path from it."""
    recipe = registry.recipe("sr_crossflow", get_profile("smoke", device="cpu"))
    recipe = sr.variant(recipe, source="none")
    up, hr = sr_data.training_batches(recipe)(0)
    assert torch.equal(sr_data.training_batches(recipe)(0)[0], up)  # a pure function of the step
    model = build_model(recipe.model)
    assert torch.equal(model.encode(up).z0, up)
    t = torch.rand(len(up))
    out = model.loss(up, hr, t=t, uncond=torch.zeros(len(up), dtype=torch.bool))
    zt = (1 - (1 - flow.SIGMA_MIN) * t[:, None, None, None]) * up + t[:, None, None, None] * hr
    v = model.velocity(zt, t, torch.ones(len(up), dtype=torch.long))
    assert torch.allclose(out.total, ((v - (hr - (1 - flow.SIGMA_MIN) * up)) ** 2).mean(), atol=1e-6)
    noisy = build_model(sr.variant(recipe, source="noise").model)
    z0 = noisy.encode(up, torch.Generator().manual_seed(0)).z0
    assert 0.05 < float((z0 - up).std()) < 0.2  # the fixed noise level (0.1)


def test_an_identity_start_returns_the_source_exactly():
    """``zero_out``: the UNet's last convolution starts at zero, so the untrained flow's velocity is 0 everywhere and
    every Euler step leaves z0 - the upsampled image - unchanged (an identity start: PSNR at step 0 = bicubic)."""
    recipe = sr.variant(registry.recipe("sr_crossflow", get_profile("smoke", device="cpu")), source="none")
    up, _ = sr_data.training_batches(recipe)(0)
    torch.manual_seed(0)
    start = build_model(with_overrides(recipe.model, {"velocity.zero_out": True}))
    out = sr_eval.super_resolve(start, up, guidance_scale=2.0, steps=3)
    assert torch.equal(out, up.clamp(-1, 1))
    torch.manual_seed(0)
    plain = build_model(recipe.model)  # the default start moves the image
    assert not torch.allclose(sr_eval.super_resolve(plain, up, guidance_scale=2.0, steps=3), up.clamp(-1, 1))


def _edges(n: int, size: int, seed: int) -> torch.Tensor:
    """Toy HR images: one sharp vertical or horizontal step edge at a random position, random grey levels."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    pos = torch.randint(3, size - 3, (n,), generator=g)
    a, b = torch.rand(n, 2, generator=g).mul(2).sub(1).unbind(1)
    coord = torch.where((torch.rand(n, generator=g) < 0.5)[:, None, None], xx, yy)
    img = torch.where(coord < pos[:, None, None], a[:, None, None], b[:, None, None])
    return img[:, None].expand(n, 3, size, size).contiguous()


def test_tiny_crossflow_beats_bicubic_on_toy_edges():
    """Flowing from the upsampled image, a tiny CrossFlow UNet learns to sharpen step edges: >= 1 dB over bicubic on
    held-out edges after 300 steps (bicubic ~29 dB; measured ~31 dB)."""
    cfg = SRDataConfig(hr_size=16)
    train_set, test_set = make_pairs(_edges(512, 16, 0), cfg), make_pairs(_edges(64, 16, 1), cfg)
    unet = UNetVelocityConfig(latent_shape=(3, 16, 16), block_out_channels=(8, 16), attention=False)
    model_cfg = sr.crossflow_config(unet, "none", guidance=GuidanceConfig(p_uncond=0.0))
    batches = EpochBatches(len(train_set), 32, 0)
    torch.manual_seed(0)
    result = train(build_model(model_cfg), model_loss,
                   lambda s: (train_set.upsampled[batches(s)], train_set.hr[batches(s)]),
                   TrainConfig(steps=300, batch_size=32, lr=5e-3, warmup_steps=10, ema_decay=0.0, ckpt_every=0))
    pred = sr_eval.super_resolve(result.ema, test_set.upsampled, steps=4)
    bicubic = psnr_ssim(test_set.upsampled, test_set.hr)["psnr"]
    assert psnr_ssim(pred, test_set.hr)["psnr"] > bicubic + 1.0


# ------------------------------------------------------------------------------------------- end to end
def test_smoke_checkpoints_train_and_evaluate(tmp_cache):
    profile = get_profile("smoke", device="cpu", overrides={"sr_eval.fid": False})
    eval_cfg = profile.sr_eval
    for name in SR_NAMES:
        recipe = registry.recipe(name, profile)
        _, metrics = registry.train_and_save(name, profile)  # trained into the test's cache, measured
        model = registry.load(name, profile)
        assert model.sampling.guidance_scale == metrics["chosen_scale"]  # sampling.json: the chosen scale
        assert metrics["train_steps"] == recipe.train.steps and metrics["torch_threads"] >= 1
        assert metrics["train_seconds_this_run"] > 0 and metrics["device"] == "cpu"
        assert metrics["chosen_scale"] in (eval_cfg.scales if name != "sr_regression" else (1.0,))
        assert set(metrics["val_sweep"]) == ({f"w={w:g}" for w in eval_cfg.scales} if name != "sr_regression"
                                             else {"w=1"})
        assert np.isfinite(metrics["test"]["psnr"]) and 0 < metrics["test"]["ssim"] <= 1
        assert metrics["n_test"] == eval_cfg.n_test and metrics["photos"] == {"train": 6, "val": 1, "test": 2}
        assert metrics["ms_per_patch"] > 0
    again = sr_eval.evaluate_sr(model, recipe, eval_cfg, "cpu")
    assert again["test"] == metrics["test"]  # seeded: the same numbers twice


@pytest.fixture(scope="module")
def sr_cache(tmp_path_factory):
    """One cache for the study and the pipelines of this module: the pipelines load the smoke checkpoints the
    study trained (training and measuring them again would triple the module's time)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CROSSFLOW_CACHE", str(tmp_path_factory.mktemp("sr_cache")))
    yield
    mp.undo()


def test_study_on_smoke(sr_cache):
    profile = get_profile("smoke", device="cpu")
    metrics = catalog.run_study("sr", profile)
    rows = study.study_recipes(_recipes(profile), profile.sr_study)
    assert list(metrics["rows"]) == list(rows)
    for row, res in metrics["rows"].items():
        for key in ("psnr", "ssim", "fid", "fid_floor", "kid", "kid_floor", "parameters", "train_seconds",
                    "ms_per_patch", "guidance_scale"):
            assert res[key] is not None, (row, key)
        assert res["fid_floor"] == metrics["bicubic"]["fid_floor"]  # one reference for every row
    assert metrics["photos"] == {"train": 6, "val": 1, "test": 2}
    acc = metrics["acceptance"]
    assert acc["crossflow_row"] == sr.row_name(registry.recipe("sr_crossflow", profile))
    assert acc["psnr_gain_over_bicubic_db"] == pytest.approx(
        metrics["rows"][acc["crossflow_row"]]["psnr"] - metrics["bicubic"]["psnr"], abs=1e-3)
    assert metrics["paper_table6"]["CrossFlow"]["psnr"] == 25.6


# ------------------------------------------------------------------------------------------------ pipeline
@pytest.fixture(scope="module")
def smoke_pipes(sr_cache):
    from crossflow_mini.pipelines import SuperResolutionPipeline

    profile = get_profile("smoke", device="cpu")
    return profile, {name: SuperResolutionPipeline.from_pretrained(name, profile) for name in SR_NAMES}


def test_pipeline_matches_the_task_and_tiles(smoke_pipes):
    profile, pipes = smoke_pipes
    data = sr_data.prepare(registry.recipe("sr_crossflow", profile), "test", 4)
    for name, pipe in pipes.items():
        out = pipe(data.lr, output_type="pt", generator=torch.Generator().manual_seed(0))
        assert out.images.shape == data.hr.shape and float(out.images.min()) >= 0 and float(out.images.max()) <= 1
        assert torch.allclose(out.upsampled, data.upsampled)
        ref = sr_eval.super_resolve(pipe.model, data.upsampled, steps=pipe.sampling.steps,
                                    guidance_scale=pipe.sampling.guidance_scale, seed=0)
        assert torch.allclose(out.latents, ref, atol=1e-5), name
        # a 2 x 2 mosaic of LR patches: one upsampling, four tiles, stitched back in place
        lr = data.lr
        mosaic = torch.cat([torch.cat([lr[0], lr[1]], -1), torch.cat([lr[2], lr[3]], -1)], -2)
        big = pipe(mosaic, output_type="latent", generator=torch.Generator().manual_seed(0))
        s = pipe.hr_size
        assert big.images.shape == (1, 3, 2 * s, 2 * s)
        assert torch.equal(big.upsampled, pipe.upsample(pipe.preprocess(mosaic)))  # the whole image upsampled once
        if name == "sr_regression":  # deterministic: each tile is the model's prediction for that tile's source
            flat = pipe(mosaic, output_type="latent", overlap=0)  # tiles side by side, no blending
            corners = [(0, 0), (0, s), (s, 0), (s, s)]
            tiles = torch.stack([flat.upsampled[0, :, y:y + s, x:x + s] for y, x in corners])
            pred = pipe.model.predict(tiles).clamp(-1, 1)
            for k, (y, x) in enumerate(corners):
                assert torch.allclose(flat.latents[0, :, y:y + s, x:x + s], pred[k], atol=1e-5), (y, x)
        assert len(pipe(data.lr[:2]).images) == 2  # PIL by default
        np_in = ((data.lr[0].permute(1, 2, 0).numpy() + 1) / 2).astype(np.float32)
        assert torch.allclose(pipe.preprocess(np_in), data.lr[:1], atol=1e-6)


def test_pipeline_refuses_bad_inputs_with_advice(smoke_pipes):
    _, pipes = smoke_pipes
    pipe = pipes["sr_crossflow"]
    with pytest.raises(ValueError, match="x \\* 2 - 1"):
        pipe(torch.rand(1, 3, 4, 4) * 3)
    with pytest.raises(ValueError, match="at least 4"):
        pipe(torch.zeros(1, 3, 3, 4))
    with pytest.raises(ValueError, match="3"):
        pipe(torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="output_type"):
        pipe(torch.zeros(1, 3, 4, 4), output_type="jpg")
    from crossflow_mini.pipelines import CrossFlowPipeline, SuperResolutionPipeline
    with pytest.raises(ValueError, match="SuperResolutionPipeline does not serve"):
        SuperResolutionPipeline.from_pretrained("t2i_shapes", get_profile("smoke", device="cpu"))
    with pytest.raises(ValueError, match="CrossFlowPipeline does not serve"):
        CrossFlowPipeline.from_pretrained("sr_crossflow", get_profile("smoke", device="cpu"))


def test_pipeline_save_and_load(smoke_pipes, tmp_path):
    from crossflow_mini.pipelines import SuperResolutionPipeline

    profile, pipes = smoke_pipes
    lr = sr_data.prepare(registry.recipe("sr_crossflow", profile), "test", 2).lr
    for name, pipe in pipes.items():
        pipe.model.sampling = dataclasses.replace(pipe.sampling, guidance_scale=2.0 if name != "sr_regression" else 1.0)
        folder = pipe.save_pretrained(tmp_path / name)
        back = SuperResolutionPipeline.from_pretrained(folder)
        # the same checkpoint (its hashed recipe) with the same sampling defaults (sampling.json)
        assert to_dict(back.recipe) == to_dict(pipe.recipe) and back.sampling == pipe.sampling
        a = pipe(lr, output_type="latent", generator=torch.Generator().manual_seed(1)).images
        b = back(lr, output_type="latent", generator=torch.Generator().manual_seed(1)).images
        assert torch.allclose(a, b)

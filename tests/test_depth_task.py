"""The depth task (crossflow_mini.tasks.depth): the recipes build and match in size, the three smoke models train and
are measured end to end, a tiny CrossFlow depth model learns toy scenes far better than chance (a per-pixel mean), the
evaluation wiring is exact on a perfect predictor (DepthWorld and the Motorcycle), averaging and the scale choice,
the depth pipeline (inputs, outputs, save / load), and the study's keys."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from crossflow_mini.core.build import build_model
from crossflow_mini.core.params import count_parameters
from crossflow_mini.core.regression import RegressionConfig
from crossflow_mini import registry
from crossflow_mini.configs import to_dict
from crossflow_mini.core.sampling import SampleResult, SamplingConfig
from crossflow_mini.datasets import stereo
from crossflow_mini.datasets.depthworld import (DEPTH_FAR, DEPTH_NEAR, DepthWorldConfig, depth_to_target,
                                                target_to_depth)
from crossflow_mini.eval.depth import METRIC_NAMES
from crossflow_mini.pipelines import DepthPipeline
from crossflow_mini.profiles import get_profile
from crossflow_mini.studies import catalog
from crossflow_mini.studies import depth as study
from crossflow_mini.tasks.common import METHODS, choose_scale, method_of
from crossflow_mini.tasks.depth import data as depth_data
from crossflow_mini.tasks.depth import evaluate as E
from crossflow_mini.tasks.depth import train as D
from crossflow_mini.tasks.depth.recipe import DepthRecipe, crossflow_depth_config
from crossflow_mini.training import TrainConfig

SMOKE = get_profile("smoke", device="cpu")
COURSE = get_profile("course", device="cpu")
G = lambda seed=0: torch.Generator().manual_seed(seed)  # noqa: E731


def _recipes(profile) -> dict[str, DepthRecipe]:
    return {name: registry.recipe(name, profile) for name in study.CHECKPOINTS.values()}


# ---------------------------------------------------------------------------------------------- recipes
@pytest.mark.parametrize("profile", [SMOKE, COURSE], ids=["smoke", "course"])
def test_recipes_build_and_share_everything_but_the_model(profile):
    recipes = _recipes(profile)
    assert [r.method for r in recipes.values()] == list(METHODS)
    cf = recipes["depth_crossflow"]
    for r in recipes.values():
        assert (r.train, r.data, r.sampling.steps, r.sampling.sampler) == \
            (cf.train, cf.data, cf.sampling.steps, cf.sampling.sampler)
        model = build_model(r.model)
        s = r.data.image_size
        x = torch.zeros(2, 3, s, s)
        loss = model.loss(x, torch.zeros(2, 1, s, s)).total
        assert loss.ndim == 0 and torch.isfinite(loss)


@pytest.mark.parametrize("profile", [SMOKE, COURSE], ids=["smoke", "course"])
def test_baselines_match_crossflows_parameters_within_10_percent(profile):
    recipes = _recipes(profile)
    n_cf = count_parameters(build_model(recipes["depth_crossflow"].model))
    for name in ("depth_baseline", "depth_regression"):
        n = count_parameters(build_model(recipes[name].model))
        assert abs(n / n_cf - 1) < 0.10, (name, n, n_cf)


def test_recipe_checks_say_what_to_fix():
    cf = registry.recipe("depth_crossflow", SMOKE)
    with pytest.raises(ValueError, match="latent_shape"):
        dataclasses.replace(cf, data=dataclasses.replace(cf.data, image_size=32))
    net = dataclasses.replace(registry.recipe("depth_regression", SMOKE).model.network, cond_channels=1)
    with pytest.raises(ValueError, match="cond_channels=3"):
        dataclasses.replace(cf, model=RegressionConfig(network=net))
    with pytest.raises(ValueError, match="n_samples"):
        cf.with_overrides({"sampling.n_samples": 0})
    with pytest.raises(ValueError, match="sampler"):
        cf.with_overrides({"sampling.sampler": "rk45"})
    with pytest.raises(TypeError):
        method_of(TrainConfig())


# ---------------------------------------------------------------------------------- predicting and scoring
class _Oracle(nn.Module):
    """A "model" that returns a fixed target for its batch (the regression interface: no ``flow``)."""

    def __init__(self, target: torch.Tensor):
        super().__init__()
        self.target = target
        self.anchor = nn.Parameter(torch.zeros(()))
        self.sampling = SamplingConfig(steps=1)  # as the regression model's: one prediction

    def generate(self, source: torch.Tensor, **_) -> SampleResult:
        return SampleResult(self.target[:len(source)].clone(), 1, torch.tensor([0.0, 1.0]))


def test_a_perfect_prediction_scores_perfectly_on_depthworld():
    test = depth_data.prepare(registry.recipe("depth_crossflow", SMOKE), "test", 8)
    res = E.evaluate_split(_Oracle(test.target), test, batch_size=8)
    for alignment in E.ALIGNMENTS:
        assert res[alignment]["abs_rel"] == pytest.approx(0.0, abs=1e-5)
        assert res[alignment]["delta1"] == 1.0
    assert res["n_images"] == 8


def test_motorcycle_zero_shot_is_exact_for_the_truth_up_to_scale_and_shift_in_inverse_depth():
    s = 16
    sample = stereo.model_input(s)
    gt = np.where(sample.valid, sample.depth, 1.0)
    # any positive affine map of inverse depth (another camera's disparity) is recovered exactly by the alignment
    inv = 0.37 / gt + 0.05
    oracle = _Oracle(depth_to_target(torch.from_numpy((1.0 / inv).astype(np.float32)))[None, None])
    res = E.evaluate_motorcycle(oracle, s)
    assert res["aligned_inverse"]["abs_rel"] == pytest.approx(0.0, abs=1e-4)
    assert res["aligned_inverse"]["delta1"] == 1.0
    assert res["unaligned"]["abs_rel"] > 0.5  # the scale is another camera's: unaligned numbers mean nothing
    assert res["valid_pixels"] == int(sample.valid.sum())
    lo, hi = res["gt_depth_range_m"]
    assert DEPTH_NEAR < lo < hi < DEPTH_FAR


def test_averaging_is_the_mean_of_the_individual_flows_drawn_in_order():
    torch.manual_seed(0)
    recipe = registry.recipe("depth_crossflow", SMOKE)
    model = build_model(recipe.model).eval()
    with torch.no_grad():
        for p in model.parameters():  # a network that moves: the zero-initialised output layer made non-zero
            p.add_(0.05 * torch.randn(p.shape, generator=G(3)))
    images = depth_data.prepare(recipe, "val", 4).images
    avg = E.predict(model, images, guidance_scale=1.5, steps=2, n_samples=3, seed=7)
    g = G(7)
    runs = [model.generate(images, guidance_scale=1.5, steps=2, generator=g).sample for _ in range(3)]
    torch.testing.assert_close(avg, torch.stack(runs).mean(0))
    assert not torch.allclose(runs[0], runs[1])  # the draws differ, so averaging does something
    one = E.predict(model, images, guidance_scale=1.5, steps=2, n_samples=1, seed=7)
    torch.testing.assert_close(one, runs[0])


def test_regression_ignores_the_flow_settings():
    recipe = registry.recipe("depth_regression", SMOKE)
    model = build_model(recipe.model).eval()
    images = depth_data.prepare(recipe, "val", 4).images
    a = E.predict(model, images, guidance_scale=3.0, steps=5, n_samples=4)
    torch.testing.assert_close(a, model.predict(images))


def test_choose_scale_minimises_unaligned_abs_rel_ties_nearest_one():
    sweep = {"w=0": {"unaligned": {"abs_rel": 0.2}}, "w=1": {"unaligned": {"abs_rel": 0.1}},
             "w=2": {"unaligned": {"abs_rel": 0.1}}, "w=3": {"unaligned": {"abs_rel": 0.3}}}
    def abs_rel(entry):  # the depth task's score: unaligned AbsRel on validation images (evaluate_depth's)
        return entry["unaligned"]["abs_rel"]

    assert choose_scale(sweep, abs_rel, higher_is_better=False) == 1.0
    sweep["w=2"]["unaligned"]["abs_rel"] = 0.05
    assert choose_scale(sweep, abs_rel, higher_is_better=False) == 2.0


# ---------------------------------------------------------------------------------------------- learning
def _two_planes(n: int, seed: int, size: int = 8) -> depth_data.DepthData:
    """Toy scenes: the left and the right half of each image are two fronto-parallel planes at random depths in
    [DEPTH_NEAR, DEPTH_FAR], each coloured by its (log) depth - the depth is in the image, if a model reads it."""
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(n, 2, 1, 1, 1, generator=g) * 2 - 1  # each plane's target (normalised log depth)
    half = (n, 1, size, size // 2)
    target = torch.cat([t[:, 0].expand(half), t[:, 1].expand(half)], dim=3).contiguous()
    images = torch.cat([target, -target, 0.5 * target], dim=1)
    return depth_data.DepthData(None, images, target, target_to_depth(target))


def test_a_tiny_crossflow_learns_toy_scenes_far_better_than_chance():
    """CrossFlow (Image VE + small UNet, Euler) against the per-pixel mean depth of the training set - what a model
    that ignores the image reaches - on held-out toy scenes."""
    recipe = DepthRecipe(model=crossflow_depth_config(8, ve_width=8, channels=(8, 16), attention=False),
                         train=TrainConfig(steps=120, batch_size=32, lr=2e-3, warmup_steps=20, ema_decay=0.9,
                                           ckpt_every=0, log_every=50),
                         data=DepthWorldConfig(image_size=8), sampling=SamplingConfig(steps=4))
    train, test = _two_planes(512, 0), _two_planes(64, 1)
    model = D.fit(recipe, train).ema
    ours = E.evaluate_split(model, test, guidance_scale=1.0, steps=4, alignments=("unaligned",))["unaligned"]
    mean_map = train.target.mean(0, keepdim=True).expand_as(test.target)
    chance = E.score(target_to_depth(mean_map), test.depth, alignments=("unaligned",))["unaligned"]
    assert ours["abs_rel"] < 0.4 * chance["abs_rel"], (ours, chance)
    assert ours["delta1"] > chance["delta1"] + 0.3, (ours, chance)


# ------------------------------------------------------------------------------------- the named models
@pytest.fixture(scope="module")
def smoke_models(tmp_path_factory):
    import os

    old = os.environ.get("CROSSFLOW_CACHE")
    os.environ["CROSSFLOW_CACHE"] = str(tmp_path_factory.mktemp("depth_cache"))
    try:
        yield {name: registry.find(name, SMOKE) for name in study.CHECKPOINTS.values()}
    finally:
        if old is None:
            os.environ.pop("CROSSFLOW_CACHE")
        else:
            os.environ["CROSSFLOW_CACHE"] = old


def test_smoke_models_train_and_are_measured_end_to_end(smoke_models):
    for name, (model, meta) in smoke_models.items():
        m = meta["metrics"]
        assert m["method"] == registry.recipe(name, SMOKE).method
        for key in ("test", "motorcycle"):
            assert set(m[key]) >= set(E.ALIGNMENTS)
            assert set(m[key]["unaligned"]) == set(METRIC_NAMES)
        assert m["train_steps"] == registry.recipe("depth_crossflow", SMOKE).train.steps and m["ms_per_image"] > 0
        assert model.sampling.guidance_scale == m["chosen_scale"]  # the loaded model samples at the chosen scale
        if m["method"] == "regression":
            assert "val_sweep" not in m and m["chosen_scale"] == 1.0
        else:
            assert set(m["val_sweep"]) == {f"w={w:g}" for w in SMOKE.depth_eval.scales}
            assert m["chosen_scale"] in SMOKE.depth_eval.scales
            cfg = SMOKE.depth_eval
            assert set(m["val_samples_sweep"]) == {f"{e} n={n}" for e in cfg.ensembles for n in cfg.sample_counts
                                                    if n > 1 or e == cfg.ensembles[0]}
            assert (m["chosen_n_samples"], m["chosen_ensemble"]) == E.choose_ensemble(m["val_samples_sweep"],
                                                                                       cfg.ensemble_tolerance)
            # the loaded model combines as many flows, the same way, as validation chose
            assert (model.sampling.n_samples, model.sampling.ensemble) == (m["chosen_n_samples"],
                                                                           m["chosen_ensemble"])


def test_the_ensemble_is_the_mean_or_median_of_the_draws():
    draws = torch.tensor([[0.0, 1.0], [1.0, 1.0], [5.0, 1.0]])
    assert torch.equal(E.combine(draws, "mean"), torch.tensor([2.0, 1.0]))
    assert torch.equal(E.combine(draws, "median"), torch.tensor([1.0, 1.0]))
    with pytest.raises(ValueError, match="unknown ensemble"):
        E.combine(draws, "mode")


def test_the_cheapest_ensemble_within_tolerance_of_the_best_is_chosen():
    def r(a):
        return {"unaligned": {"abs_rel": a}}
    sweep = {"mean n=1": r(0.120), "mean n=3": r(0.1005), "median n=3": r(0.1000), "mean n=10": r(0.0990)}
    assert E.choose_ensemble(sweep, 0.002) == (3, "mean")   # 0.1005 <= 0.0990 + 0.002; fewer samples than 10
    assert E.choose_ensemble(sweep, 0.0) == (10, "mean")    # only the best
    assert E.choose_ensemble(sweep, 0.05) == (1, "mean")    # one flow is close enough


def test_the_study_on_smoke_has_every_method_and_number(smoke_models):
    cfg, res = catalog.STUDIES["depth"].run(SMOKE)
    assert set(cfg) == {"eval", *study.CHECKPOINTS.values()}
    assert list(res["methods"]) == list(METHODS)
    assert res["paper_table5"]["KITTI"] == {"abs_rel": 0.053, "delta1": 0.973}
    for method, r in res["methods"].items():
        assert r["checkpoint"] == study.CHECKPOINTS[method]
        assert r["parameters"] > 0 and r["train_seconds"] > 0 and r["ms_per_image"] > 0
        assert set(r["test"]) >= set(E.ALIGNMENTS) and set(r["motorcycle"]) >= set(E.ALIGNMENTS)
        assert (r["guidance_scale"] is None) == (method == "regression")
    ref = res["references"]
    assert set(ref["train_mean_map"]) >= set(E.ALIGNMENTS) and set(ref["motorcycle_constant"]) >= set(E.ALIGNMENTS)
    table = study.readme_table(res)
    assert table.count("\n") == 2 + len(METHODS) + 1 + len(res["paper_table5"]) - 1


# ---------------------------------------------------------------------------------------------- pipeline
@pytest.fixture(scope="module")
def pipes(smoke_models):
    # each model carries its checkpoint's sampling settings (the scale chosen on validation images)
    return {name: DepthPipeline(model, registry.recipe(name, SMOKE), device="cpu")
            for name, (model, meta) in smoke_models.items()}


def test_the_pipeline_is_the_models_averaged_flow(pipes):
    pipe = pipes["depth_crossflow"]
    images = depth_data.prepare(registry.recipe("depth_crossflow", SMOKE), "val", 3).images
    out = pipe(images, num_inference_steps=2, guidance_scale=1.5, num_samples=3, generator=G(5), output_type="pt",
               ensemble="mean")
    g = G(5)
    m = pipe.model
    runs = [m.flow(m.encode(images, g).z0, guidance_scale=1.5, steps=2).sample for _ in range(3)]
    target = (runs[0] + runs[1] + runs[2]) / 3
    median = pipe(images, num_inference_steps=2, guidance_scale=1.5, num_samples=3, generator=G(5),
                  output_type="pt", ensemble="median")
    torch.testing.assert_close(median.latents, torch.stack(runs).median(dim=0).values)
    torch.testing.assert_close(out.latents, target)
    torch.testing.assert_close(out.images, ((target.clamp(-1, 1) + 1) / 2))
    torch.testing.assert_close(out.depth, target_to_depth(target))
    assert out.nfe == 3 * 2  # 3 samples x 2 steps (a guided step counts once, as in the flow's own count)
    assert out.depth.shape == (3, 1, 16, 16)


def test_pipeline_inputs_tensor_pil_numpy_agree_and_other_sizes_are_cut_and_averaged(pipes):
    from PIL import Image

    pipe = pipes["depth_baseline"]
    split = depth_data.prepare(registry.recipe("depth_baseline", SMOKE), "val", 2).split
    u8 = np.array(split.images)
    a = pipe(torch.from_numpy(np.moveaxis(u8, -1, 1).astype(np.float32) / 127.5 - 1), generator=G(1),
             num_inference_steps=2)
    b = pipe([Image.fromarray(x) for x in u8], generator=G(1), num_inference_steps=2)
    c = pipe(u8.astype(np.float32) / 255.0, generator=G(1), num_inference_steps=2)
    np.testing.assert_allclose(a.depth, b.depth, rtol=1e-5)
    np.testing.assert_allclose(a.depth, c.depth, rtol=1e-4)
    assert a.depth.shape == (2, 16, 16) and a.images.shape == (2, 16, 16, 1)
    big = np.repeat(np.repeat(u8, 2, axis=1), 2, axis=2)  # 32 x 32: each pixel a 2 x 2 block
    wide = np.concatenate([big[:, :, :3] // 2, big, big[:, :, -3:] // 2], axis=2)  # 32 x 38: the centre is cut
    d = pipe(wide, generator=G(1), num_inference_steps=2)
    np.testing.assert_allclose(a.depth, d.depth, rtol=1e-5)
    pil = pipe(u8[0], generator=G(1), num_inference_steps=2, output_type="pil")
    assert pil.images[0].size == (16, 16) and pil.depth.shape == (1, 16, 16)


def test_pipeline_regression_and_errors(pipes):
    pipe = pipes["depth_regression"]
    images = depth_data.prepare(registry.recipe("depth_regression", SMOKE), "val", 2).images
    out = pipe(images, output_type="latent")
    torch.testing.assert_close(out.latents, pipe.model.predict(images))
    assert out.nfe == 1 and out.z0 is None
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        pipe(images * 3)
    with pytest.raises(ValueError, match="3, H, W"):
        pipe(images[:, :1])
    with pytest.raises(ValueError, match="num_samples"):
        pipes["depth_crossflow"](images, num_samples=0)
    with pytest.raises(ValueError, match="output_type"):
        pipe(images, output_type="png")
    with pytest.raises(TypeError, match="PIL image"):
        pipe("photo.png")
    with pytest.raises(ValueError, match="smaller"):
        pipe(images[..., :8, :8])


def test_pipeline_save_and_load_round_trip(pipes, tmp_path):
    images = depth_data.prepare(registry.recipe("depth_crossflow", SMOKE), "val", 2).images
    for name, pipe in pipes.items():
        again = DepthPipeline.from_pretrained(pipe.save_pretrained(tmp_path / name))
        # the same checkpoint (its hashed recipe) with the same sampling defaults (sampling.json; a recipe's own
        # unhashed sampling field is not saved with it)
        assert again.sampling == pipe.sampling and to_dict(again.recipe) == to_dict(pipe.recipe)
        torch.testing.assert_close(again(images, generator=G(2)).depth, pipe(images, generator=G(2)).depth)
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        DepthPipeline.from_pretrained(tmp_path / "nothing" / "here")
    with pytest.raises(ValueError, match="DepthPipeline does not serve"):
        DepthPipeline.from_pretrained("t2i_shapes", SMOKE)

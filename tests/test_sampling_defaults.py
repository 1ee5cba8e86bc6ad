"""One default per checkpoint: the sampling settings (guidance weight, steps, solver) live beside the weights
(``sampling.json``), outside the checkpoint's hashed identity; the model, the pipeline and the studies read the same
ones; changing them - in a config or in a call - never invalidates a checkpoint."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
import torch

from crossflow_mini import checkpoints, registry
from crossflow_mini.configs import OverrideError, config_hash, from_dict, to_dict, with_overrides
from crossflow_mini.core.sampling import SamplingConfig
from crossflow_mini.paths import RESULTS_DIR
from crossflow_mini.pipelines import CaptioningPipeline, CrossFlowPipeline, DepthPipeline, SuperResolutionPipeline
from crossflow_mini.profiles import get_profile
from crossflow_mini.tasks.common import choose_scale, is_flow

COURSE = get_profile("course", device="cpu")
PIPELINES = {c.__name__: c for c in (CrossFlowPipeline, DepthPipeline, SuperResolutionPipeline, CaptioningPipeline)}
SHIPPED = sorted(n for n in registry.CHECKPOINTS if (checkpoints.shipped_dir(n) / checkpoints.WEIGHTS_FILE).exists())


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_checkpoint_loads_and_its_model_and_pipeline_share_one_default(name):
    entry = registry.get(name)
    recipe = registry.recipe(name, COURSE)
    model, meta = registry.find(name, COURSE)
    assert meta["directory"] == str(checkpoints.shipped_dir(name))  # the shipped files, not a cache
    if getattr(recipe, "sampling", None) is None or not is_flow(recipe.model):
        return
    stored = checkpoints.read_sampling(checkpoints.shipped_dir(name))
    assert stored is not None and model.sampling == stored == meta["sampling"]
    # the default guidance weight is the one the checkpoint's evaluation chose on validation data
    assert stored.guidance_scale == meta["metrics"]["chosen_scale"]
    assert (stored.steps, stored.sampler) == (recipe.sampling.steps, recipe.sampling.sampler)
    if entry.task.pipeline:
        pipe = PIPELINES[entry.task.pipeline].from_pretrained(name, COURSE)
        assert pipe.sampling == model.sampling
        # and the results file a notebook reads says the same
        # (a field added to SamplingConfig later reads as its default, as sampling.json does)
        in_results = json.loads((RESULTS_DIR / f"{name}.json").read_text())["sampling"]
        assert from_dict(SamplingConfig, in_results) == stored
        assert in_results == {k: v for k, v in dataclasses.asdict(stored).items() if k in in_results}


def test_choose_scale_has_one_tie_rule_and_reproduces_every_stored_choice():
    """Every task chooses its guidance weight with the same function; run on the validation sweeps the shipped
    checkpoints stored, it picks the weight each one stored."""
    assert choose_scale({"w=1": {"a": 0.5}, "w=2": {"a": 0.5}}, "a") == 1.0  # a tie: the cheaper w = 1
    assert choose_scale({"w=0": {"a": 0.5}, "w=1": {"a": 0.5}, "w=2": {"a": 0.5}}, "a") == 1.0
    assert choose_scale({"w=0.5": {"a": 0.5}, "w=1.5": {"a": 0.5}}, "a") == 0.5  # equally near 1: the smaller
    assert choose_scale({"w=1": {"a": 0.5}, "w=2": {"a": 0.4}}, "a", higher_is_better=False) == 2.0
    rules = {"t2i_shapes": ("val_sweep", "all", True), "t2i_shapes_flatten": ("val_sweep", "all", True),
             "t2i_baseline_shapes": ("val_sweep", "all", True),
             "t2i_fashion": ("choose_sweep_on_train_captions", "class_accuracy", True),
             "t2i_baseline_fashion": ("choose_sweep_on_train_captions", "class_accuracy", True),
             "depth_crossflow": ("val_sweep", lambda r: r["unaligned"]["abs_rel"], False),
             "depth_baseline": ("val_sweep", lambda r: r["unaligned"]["abs_rel"], False),
             "sr_crossflow": ("val_sweep", "psnr", True), "sr_baseline": ("val_sweep", "psnr", True),
             "caption_crossflow": ("val_sweep", lambda r: r["scene"]["scene"], True),
             "caption_baseline": ("val_sweep", lambda r: r["scene"]["scene"], True)}
    for name, (key, metric, higher) in rules.items():
        metrics = json.loads((RESULTS_DIR / f"{name}.json").read_text())["metrics"]
        if len(metrics[key]) > 1:
            assert choose_scale(metrics[key], metric, higher) == metrics["chosen_scale"], name


def test_sampling_settings_are_not_part_of_a_checkpoints_identity():
    recipe = registry.recipe("t2i_shapes", COURSE)
    changed = with_overrides(recipe, {"sampling.guidance_scale": 2.0, "sampling.steps": 7, "sampling.sampler": "heun"})
    assert changed.sampling == SamplingConfig(2.0, 7, "heun") and config_hash(changed) == config_hash(recipe)
    assert "sampling" not in to_dict(changed)
    # the shipped checkpoint still loads for the changed settings, and its files keep their bytes
    folder = checkpoints.shipped_dir("t2i_shapes")
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    model, meta = registry.find("t2i_shapes", COURSE, recipe=changed)
    assert meta["directory"] == str(folder)
    pipe = CrossFlowPipeline.from_pretrained("t2i_shapes", COURSE)
    pipe(["a red circle"], guidance_scale=2.5, num_inference_steps=2, sampler="heun", output_type="latent",
         generator=torch.Generator().manual_seed(0))
    assert before == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_the_guidance_weight_is_no_model_setting_any_more():
    """``GuidanceConfig`` holds CFG's training settings only: asking it for a guidance weight is a clear error."""
    with pytest.raises(OverrideError, match="p_uncond, swap"):
        with_overrides(registry.recipe("t2i_shapes", COURSE), {"model.guidance.scale": 2.0})


def test_a_call_overrides_the_defaults_and_the_defaults_are_the_models(tmp_cache):
    """The pipeline's defaults ARE the model's: a call without settings equals a call with the model's, and
    setting the model's sampling moves the pipeline's defaults with it."""
    pipe = CrossFlowPipeline.from_pretrained("t2i_shapes", COURSE)
    s = pipe.model.sampling
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    a = pipe(["a blue square"], generator=g(), output_type="latent").latents
    b = pipe(["a blue square"], guidance_scale=s.guidance_scale, num_inference_steps=s.steps, sampler=s.sampler,
             generator=g(), output_type="latent").latents
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    pipe.model.sampling = dataclasses.replace(s, guidance_scale=3.0, steps=3)
    c = pipe(["a blue square"], generator=g(), output_type="latent")
    d = pipe(["a blue square"], guidance_scale=3.0, num_inference_steps=3, generator=g(), output_type="latent")
    assert c.nfe == 3 and torch.equal(c.latents, d.latents) and not torch.equal(c.latents, a)

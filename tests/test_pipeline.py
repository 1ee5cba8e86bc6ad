"""The text-to-image pipeline: diffusers' calling conventions, its output against the model's own flow (with a
network that moves: non-zero weights), clear errors for bad arguments, and save / load round trips."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import dataclasses

from crossflow_mini import registry
from crossflow_mini.configs import to_dict
from crossflow_mini.nn.autoencoder import AutoencoderConfig, ImageAutoencoder
from crossflow_mini.core.baseline import BaselineModel
from crossflow_mini.core.crossflow import CrossFlowModel
from crossflow_mini.pipelines import CrossFlowPipeline
from crossflow_mini.profiles import get_profile

SMOKE = get_profile("smoke", device="cpu")
G = lambda seed=0: torch.Generator().manual_seed(seed)  # noqa: E731


def _unzero(model: torch.nn.Module, std: float = 0.1) -> torch.nn.Module:
    """Weights as a little training leaves them: the zero-initialised maps non-zero, and the CFG indicator (or the
    baseline's null text) distinct enough that the guidance scale visibly matters."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim > 1 and not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * std)
            if "indicator_tokens" in name or "null_token" in name:
                p.add_(torch.randn(p.shape, generator=g))
    return model


def _with_default_scale(model: torch.nn.Module, recipe, scale: float) -> torch.nn.Module:
    """The model with the recipe's sampling settings and a default guidance scale (what a checkpoint's sampling.json
    gives a loaded model)."""
    model.sampling = dataclasses.replace(recipe.sampling, guidance_scale=scale)
    return model


@pytest.fixture(scope="module")
def pipe():
    torch.manual_seed(0)
    recipe = registry.recipe("t2i_shapes", SMOKE)
    model = _with_default_scale(_unzero(CrossFlowModel(recipe.model)), recipe, 2.0)
    return CrossFlowPipeline(model, ImageAutoencoder(recipe.autoencoder.model), recipe, device="cpu")


@pytest.fixture(scope="module")
def baseline_pipe():
    torch.manual_seed(0)
    recipe = registry.recipe("t2i_baseline_shapes", SMOKE)
    model = _with_default_scale(_unzero(BaselineModel(recipe.model)), recipe, 2.0)
    return CrossFlowPipeline(model, ImageAutoencoder(recipe.autoencoder.model), recipe, device="cpu")


# ----------------------------------------------------------------------------------- the flow behind a call
@pytest.mark.parametrize("which", ["pipe", "baseline_pipe"])
def test_the_call_is_the_models_guided_flow_then_the_decoder(which, request):
    p = request.getfixturevalue(which)
    prompts = ["a red circle on the left", "two blue squares"]
    out = p(prompts, num_inference_steps=3, guidance_scale=2.5, generator=G(4), output_type="pt")
    source = p.tokenize(prompts)
    z0 = p.model.encode(source, G(4)).z0
    flowed = p.model.flow(z0, p.model.condition(source), guidance_scale=2.5, steps=3).sample
    torch.testing.assert_close(out.latents, flowed)
    assert not torch.allclose(out.latents, z0, atol=1e-3)  # the flow moved the latents
    torch.testing.assert_close(out.images, (p.autoencoder.decode(flowed).clamp(-1, 1) + 1) / 2)
    assert out.nfe == 3 and out.images.shape == (2, 3, 32, 32) and 0 <= out.images.min() <= out.images.max() <= 1
    w1 = p(prompts, num_inference_steps=3, guidance_scale=1.0, generator=G(4), output_type="latent").images
    assert not torch.allclose(w1, out.latents, atol=1e-4)  # the guidance scale reaches the flow


def test_output_types_follow_diffusers(pipe):
    pil = pipe(["a red circle"], num_inference_steps=2, generator=G()).images  # diffusers' default: PIL
    assert isinstance(pil, list) and pil[0].size == (32, 32) and pil[0].mode == "RGB"
    arr = pipe(["a red circle"], num_inference_steps=2, generator=G(), output_type="np").images
    assert arr.dtype == np.float32 and arr.shape == (1, 32, 32, 3) and 0 <= arr.min() <= arr.max() <= 1
    assert np.array_equal(np.asarray(pil[0]), (arr[0] * 255).round().astype(np.uint8))
    lat = pipe(["a red circle"], num_inference_steps=2, generator=G(), output_type="latent").images
    assert lat.shape == (1, 4, 8, 8)
    (images,) = pipe(["a red circle"], num_inference_steps=2, generator=G(), output_type="np", return_dict=False)
    assert np.array_equal(images, arr)
    heun = pipe(["a red circle"], num_inference_steps=3, sampler="heun", return_trajectory=True, output_type="pt")
    assert heun.nfe == 6 and heun.trajectory.shape == (4, 1, 4, 8, 8)


def test_same_generator_same_images_and_a_single_string_is_one_prompt(pipe):
    a = pipe("a green cross", num_inference_steps=2, generator=G(3), output_type="pt").images
    b = pipe(["a green cross"], num_inference_steps=2, generator=G(3), output_type="pt").images
    assert a.shape[0] == 1 and torch.equal(a, b)


def test_encode_text_then_flow_equals_the_call(pipe):
    z0 = pipe.encode_text(["a purple diamond at the top"], generator=G(1))
    direct = pipe(["a purple diamond at the top"], num_inference_steps=4, generator=G(1), output_type="pt")
    assert torch.equal(pipe.from_text_latents(z0, num_inference_steps=4, output_type="pt").images, direct.images)
    mu = pipe.encode_text(["a purple diamond at the top"], sample=False)
    assert torch.equal(mu, pipe.encode_text(["a purple diamond at the top"], sample=False))


def test_the_baseline_has_no_text_latent(baseline_pipe):
    with pytest.raises(ValueError, match="only for CrossFlow"):
        baseline_pipe.encode_text(["a red circle"])
    with pytest.raises(ValueError, match="only for CrossFlow"):
        baseline_pipe.from_text_latents(torch.zeros(1, 4, 8, 8))


# -------------------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("prompts", [[], [""], ["   "], ["ok", "\n"]])
def test_unusable_prompts_are_refused(pipe, prompts):
    with pytest.raises(ValueError, match="empty"):
        pipe(prompts)


@pytest.mark.parametrize("prompt,kind", [(None, TypeError), (3, TypeError), (["a red circle", 7], TypeError)])
def test_non_string_prompts_are_refused_clearly(pipe, prompt, kind):
    with pytest.raises(kind, match="string"):
        pipe(prompt)


@pytest.mark.parametrize("kw,kind,match", [
    ({"guidance_scale": float("nan")}, ValueError, "finite"),
    ({"guidance_scale": float("inf")}, ValueError, "finite"),
    ({"guidance_scale": "3"}, TypeError, "number"),
    ({"num_inference_steps": 2.7}, ValueError, "positive integer"),
    ({"num_inference_steps": 0}, ValueError, "positive integer"),
    ({"sampler": "rk4"}, ValueError, "sampler"),
    ({"output_type": "jpeg"}, ValueError, "output_type"),
])
def test_bad_arguments_say_what_to_do(pipe, kw, kind, match):
    with pytest.raises(kind, match=match):
        pipe(["a red circle"], **kw)


def test_whole_float_steps_and_negative_scales_are_accepted(pipe):
    assert pipe(["a red circle"], num_inference_steps=2.0, output_type="latent").nfe == 2
    with pytest.warns(UserWarning, match="away from the condition"):  # allowed, but said
        assert pipe(["a red circle"], num_inference_steps=2, guidance_scale=-1.0, output_type="latent").nfe == 2


def test_text_latents_of_the_wrong_shape_are_refused(pipe):
    with pytest.raises(ValueError, match="shape"):
        pipe.from_text_latents(torch.zeros(1, 4, 4, 4))


def test_long_prompt_is_truncated_with_one_warning_and_no_tokenizer_noise(pipe):
    long = "a large red circle " * 500  # 2,000 words: beyond MiniLM's own 512-token limit
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = pipe([long], num_inference_steps=1, output_type="latent")
    messages = [str(w.message) for w in caught]
    assert out.images.shape[0] == 1
    assert any("truncated" in m for m in messages)
    assert not any("indexing errors" in m or "Token indices sequence length" in m for m in messages), messages


# ------------------------------------------------------------------------------------------ loading
@pytest.mark.parametrize("which", ["pipe", "baseline_pipe"])
def test_save_and_load_round_trip(which, request, tmp_path):
    p = request.getfixturevalue(which)
    p.save_pretrained(tmp_path / "p")
    again = CrossFlowPipeline.from_pretrained(tmp_path / "p", device="cpu")
    # the same checkpoint (its hashed recipe) with the same sampling defaults (sampling.json; a recipe's own
    # unhashed sampling field is not saved with it)
    assert again.sampling == p.sampling and to_dict(again.recipe) == to_dict(p.recipe)
    assert type(again.model) is type(p.model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is truncated or unpickled
        a = p(["a yellow triangle"], num_inference_steps=2, generator=G(5), output_type="pt").images
        b = again(["a yellow triangle"], num_inference_steps=2, generator=G(5), output_type="pt").images
    assert torch.equal(a, b)
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        CrossFlowPipeline.from_pretrained(tmp_path / "nothing")


def test_mismatched_autoencoder_is_refused():
    recipe = registry.recipe("t2i_shapes", SMOKE)
    other = ImageAutoencoder(AutoencoderConfig(latent_channels=8, block_out_channels=(8, 8, 8)))
    with pytest.raises(ValueError, match="latents"):
        CrossFlowPipeline(CrossFlowModel(recipe.model), other, recipe)


@pytest.mark.parametrize("name", ["t2i_shapes", "t2i_baseline_shapes", "t2i_fashion", "t2i_baseline_fashion"])
def test_from_pretrained_serves_every_text_to_image_checkpoint(name, tmp_cache, monkeypatch):
    from crossflow_mini.checkpoints import cached_dir, read_meta

    monkeypatch.setenv("CROSSFLOW_PROFILE", "smoke")  # trains the tiny smoke recipes into the test's cache
    p = CrossFlowPipeline.from_pretrained(name, SMOKE)
    chosen = read_meta(cached_dir(name, registry.recipe(name, SMOKE)))["metrics"]["chosen_scale"]
    assert p.sampling.guidance_scale == chosen
    channels = 1 if "fashion" in name else 3
    assert p([" a photo of a sandal"], num_inference_steps=1, output_type="pt").images.shape == (1, channels, 32, 32)


@pytest.mark.parametrize("name", ["autoencoder_shapes", "judge_shapes", "classifier_fashion"])
def test_other_checkpoints_are_refused_with_a_pointer(name):
    with pytest.raises(ValueError, match=r"CrossFlowPipeline does not serve.*registry\.load"):
        CrossFlowPipeline.from_pretrained(name, SMOKE)
    with pytest.raises(KeyError, match="unknown checkpoint"):
        CrossFlowPipeline.from_pretrained("t2i_nope", SMOKE)


def test_to_output_maps_minus_one_one_to_zero_one():
    from crossflow_mini.pipelines import to_output

    x = torch.tensor([-1.0, 0.0, 1.0]).reshape(1, 3, 1, 1)
    assert to_output(x, "pt").flatten().tolist() == [0.0, 0.5, 1.0]
    assert math.isclose(float(to_output(x, "np")[0, 0, 0, 1]), 0.5)

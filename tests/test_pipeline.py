"""CrossFlowPipeline: prompts -> images, text latents, clear errors, and a save/load round trip."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from crossflow_mini.autoencoder import ImageAutoencoder
from crossflow_mini.profiles import get_profile
from crossflow_mini.core.crossflow import CrossFlowModel
from crossflow_mini.pipelines import CrossFlowPipeline

SMOKE = get_profile("smoke")


@pytest.fixture(scope="module")
def pipe():
    torch.manual_seed(0)
    recipe = SMOKE.t2i_shapes
    return CrossFlowPipeline(CrossFlowModel(recipe.model), ImageAutoencoder(recipe.autoencoder.model), recipe,
                             default_scale=2.0)


def test_call_gives_images_latents_and_nfe(pipe):
    out = pipe(["a red circle on the left", "a small blue square"], num_steps=3,
               generator=torch.Generator().manual_seed(0))
    assert out.images.shape == (2, 3, 32, 32) and out.images.abs().max() <= 1
    assert out.latents.shape == out.z0.shape == (2, 4, 8, 8)
    assert out.nfe == 3
    heun = pipe(["a red circle"], num_steps=3, sampler="heun", return_trajectory=True)
    assert heun.nfe == 6 and heun.trajectory.shape == (4, 1, 4, 8, 8)
    arr = pipe(["a red circle"], num_steps=2, output_type="np").images
    assert arr.dtype == np.uint8 and arr.shape == (1, 32, 32, 3)


def test_same_generator_same_images_and_a_single_string_is_one_prompt(pipe):
    a = pipe("a green cross", num_steps=2, generator=torch.Generator().manual_seed(3)).images
    b = pipe(["a green cross"], num_steps=2, generator=torch.Generator().manual_seed(3)).images
    assert a.shape[0] == 1 and torch.equal(a, b)


def test_encode_text_then_flow_equals_the_call(pipe):
    z0 = pipe.encode_text(["a purple diamond at the top"], generator=torch.Generator().manual_seed(1))
    direct = pipe(["a purple diamond at the top"], num_steps=4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(pipe.from_text_latents(z0, num_steps=4).images, direct.images)
    mu = pipe.encode_text(["a purple diamond at the top"], sample=False)
    assert torch.equal(mu, pipe.encode_text(["a purple diamond at the top"], sample=False))  # the mean is fixed


@pytest.mark.parametrize("prompts", [[], [""], ["   "], ["ok", "\n"]])
def test_unusable_prompts_are_refused(pipe, prompts):
    with pytest.raises(ValueError, match="empty"):
        pipe(prompts)


def test_long_prompt_is_truncated_with_a_warning(pipe):
    long = "a large red circle " * 20
    with pytest.warns(UserWarning, match="truncated"):
        out = pipe([long], num_steps=1)
    assert out.images.shape[0] == 1


def test_bad_arguments_say_what_to_do(pipe):
    with pytest.raises(ValueError, match="shape"):
        pipe.from_text_latents(torch.zeros(1, 4, 4, 4))
    with pytest.raises(ValueError, match="sampler"):
        pipe(["a red circle"], sampler="rk4")
    with pytest.raises(ValueError, match="output_type"):
        pipe(["a red circle"], output_type="pil")


def test_save_and_load_round_trip(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "p")
    again = CrossFlowPipeline.from_pretrained(tmp_path / "p")
    assert again.default_scale == pipe.default_scale and again.recipe == pipe.recipe
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is truncated or unpickled
        a = pipe(["a yellow triangle"], num_steps=2, generator=g()).images
        b = again(["a yellow triangle"], num_steps=2, generator=g()).images
    assert torch.equal(a, b)
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        CrossFlowPipeline.from_pretrained(tmp_path / "nothing")


def test_mismatched_autoencoder_is_refused():
    recipe = SMOKE.t2i_shapes
    other = ImageAutoencoder(get_profile("smoke").autoencoder_shapes.model.__class__(latent_channels=8,
                                                                                     block_out_channels=(8, 8, 8)))
    with pytest.raises(ValueError, match="latents"):
        CrossFlowPipeline(CrossFlowModel(recipe.model), other, recipe)


def test_from_recipe_takes_the_scale_chosen_at_training(tmp_cache, monkeypatch):
    from crossflow_mini.checkpoints import cached_dir, read_meta

    monkeypatch.setenv("CROSSFLOW_PROFILE", "smoke")  # trains the tiny smoke recipe into the test's cache
    pipe = CrossFlowPipeline.from_recipe("t2i_shapes", SMOKE)
    chosen = read_meta(cached_dir("t2i_shapes", SMOKE.t2i_shapes))["metrics"]["chosen_scale"]
    assert pipe.default_scale == chosen and chosen in SMOKE.t2i_eval.scales
    assert pipe(["a red circle"], num_steps=1).images.shape == (1, 3, 32, 32)

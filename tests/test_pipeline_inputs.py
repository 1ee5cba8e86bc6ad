"""What a newcomer types into a pipeline, and what comes back when it is wrong: every pipeline refuses a seed that is
not a ``torch.Generator``, an empty list and non-finite images with a message that says what to do, warns about
guidance weights far outside the tuned range, and the text-to-image pipeline names the prompt words its model was
never trained on."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from crossflow_mini import registry
from crossflow_mini.core.build import build_model
from crossflow_mini.nn.autoencoder import ImageAutoencoder
from crossflow_mini.nn.text_autoencoder import TextAutoencoder
from crossflow_mini.pipelines import CaptioningPipeline, CrossFlowPipeline, DepthPipeline, SuperResolutionPipeline
from crossflow_mini.profiles import get_profile
from crossflow_mini.tasks.captioning.train import build_captioner
from crossflow_mini.tasks.t2i.pipeline import UnknownWordsWarning

SMOKE = get_profile("smoke", device="cpu")


def _untrained(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(registry.recipe(name, SMOKE).model)


@pytest.fixture(scope="module")
def t2i():
    r = registry.recipe("t2i_shapes", SMOKE)
    return CrossFlowPipeline(_untrained("t2i_shapes"), ImageAutoencoder(r.autoencoder.model), r, device="cpu")


@pytest.fixture(scope="module")
def depth():
    return DepthPipeline(_untrained("depth_crossflow"), registry.recipe("depth_crossflow", SMOKE), device="cpu")


@pytest.fixture(scope="module")
def sr():
    return SuperResolutionPipeline(_untrained("sr_crossflow"), registry.recipe("sr_crossflow", SMOKE), device="cpu")


@pytest.fixture(scope="module")
def caption():
    r = registry.recipe("caption_crossflow", SMOKE)
    return CaptioningPipeline(build_captioner(r.model), ImageAutoencoder(r.autoencoder.model),
                              TextAutoencoder(r.text_autoencoder.model), r, device="cpu")


def _inputs(request, which):
    """The pipeline and a valid input for it."""
    pipe = request.getfixturevalue(which)
    if which == "t2i":
        return pipe, ["a red circle"]
    side = {"depth": lambda: pipe.image_size, "sr": lambda: pipe.lr_size,
            "caption": lambda: pipe.recipe.autoencoder.model.image_size}[which]()
    return pipe, torch.zeros(1, 3, side, side)


@pytest.mark.parametrize("which", ["t2i", "depth", "sr", "caption"])
@pytest.mark.parametrize("bad", [0, 1234, "seed", torch.Generator().manual_seed(0).initial_seed()])
def test_a_seed_is_not_a_generator_and_every_pipeline_says_how_to_make_one(request, which, bad):
    pipe, x = _inputs(request, which)
    with pytest.raises(TypeError, match=r"generator must be a torch.Generator.*torch.Generator\(\).manual_seed"):
        pipe(x, generator=bad)
    pipe(x, generator=torch.Generator().manual_seed(0), num_inference_steps=1)  # the right way runs


def test_a_list_of_generators_is_refused_clearly(t2i):
    with pytest.raises(TypeError, match="one torch.Generator"):
        t2i(["a red circle"], generator=[torch.Generator(), torch.Generator()])
    with pytest.raises(TypeError, match="torch.Generator"):
        t2i.encode_text(["a red circle"], generator=0)


@pytest.mark.parametrize("which", ["depth", "sr", "caption"])
def test_an_empty_list_of_images_is_no_images(request, which):
    pipe, _ = _inputs(request, which)
    with pytest.raises(ValueError, match="no images given"):
        pipe([])


@pytest.mark.parametrize("which", ["depth", "sr", "caption"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_images_are_refused_before_any_work(request, which, value):
    pipe, x = _inputs(request, which)
    bad = x.clone()
    bad[0, 0, 0, 0] = value
    with pytest.raises(ValueError, match="non-finite value"):
        pipe(bad)
    with pytest.raises(ValueError, match="non-finite value"):
        pipe(np.full((x.shape[-2], x.shape[-1], 3), value, dtype=np.float32))


def test_an_empty_prompt_list_is_refused(t2i):
    with pytest.raises(ValueError, match="no prompts given"):
        t2i([])


@pytest.mark.parametrize("w", [25.0, -40.0, 1e6])
def test_guidance_far_outside_the_tuned_range_warns(t2i, w):
    with pytest.warns(UserWarning, match="far outside the range models are tuned on"):
        t2i(["a red circle"], guidance_scale=w, num_inference_steps=1, generator=torch.Generator().manual_seed(0))


def test_usual_guidance_runs_quietly(t2i):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t2i(["a large red circle on the left"], guidance_scale=6.0, num_inference_steps=1,
            generator=torch.Generator().manual_seed(0))


def test_prompt_words_the_model_never_saw_are_named_with_the_nearest_known_ones(t2i):
    with pytest.warns(UnknownWordsWarning, match=r"'star' \(nearest known: 'square'") as caught:
        t2i(["a large purple star in the middle"], num_inference_steps=1, generator=torch.Generator().manual_seed(0))
    assert len(caught) == 1 and "46 words it knows" in str(caught[0].message)
    assert t2i.unknown_words(["a Large RED circle, on the left."]) == {}  # case and punctuation do not matter
    assert list(t2i.unknown_words(["a purple starfish", "a red star"])) == ["starfish", "star"]
    assert {"circle", "left", "purple", "middle"} <= t2i.vocabulary and "star" not in t2i.vocabulary


def test_the_rich_vocabulary_knows_its_synonyms():
    from crossflow_mini.tasks.t2i.pipeline import training_vocabulary

    template = training_vocabulary(registry.recipe("t2i_shapes", SMOKE))
    rich = training_vocabulary(registry.recipe("t2i_shapes", SMOKE, {"shapes.vocabulary": "rich"}))
    assert "disc" in rich and "disc" not in template and template < rich
    fashion = training_vocabulary(registry.recipe("t2i_fashion", SMOKE))
    assert {"sneaker", "dress", "photo"} <= fashion and "circle" not in fashion

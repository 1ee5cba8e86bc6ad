"""The exercise checks of notebook 08 on the smoke captioner: right answers (computed here) pass, wrong ones fail."""

from __future__ import annotations

import pytest
import torch

from crossflow_mini.checks import nb08
from crossflow_mini.datasets import shapes as sw
from crossflow_mini.datasets.shapes_text import parse_caption
from crossflow_mini.pipelines import CaptioningPipeline
from crossflow_mini.profiles import get_profile

SMOKE = get_profile("smoke")


@pytest.fixture(scope="module")
def pipe_and_images():
    pipe = CaptioningPipeline.from_pretrained("caption_crossflow", SMOKE)
    images = sw.load_shapes("test", pipe.recipe.shapes).images_tensor()[:4]
    return pipe, images


def test_parse_share():
    assert nb08.parse_share(["a red circle", "a a emerald emerald the the"]) == 0.5
    assert parse_caption("a red circle") is not None


def test_exercise_1(pipe_and_images, capsys):
    pipe, images = pipe_and_images
    right = {}
    for k in (1, 2, 4, 8):
        caps = pipe(images, num_inference_steps=k, generator=torch.Generator().manual_seed(0)).captions
        right[k] = sum(parse_caption(c) is not None for c in caps) / len(caps)
    assert nb08.exercise_1(right, pipe, images)
    assert not nb08.exercise_1({k: v + 0.25 for k, v in right.items()}, pipe, images)
    assert not nb08.exercise_1({1: right[1]}, pipe, images)
    assert "not yet" in capsys.readouterr().out


def test_exercise_3(pipe_and_images, capsys):
    pipe, images = pipe_and_images
    caps = pipe(images[:1].repeat(8, 1, 1, 1), generator=torch.Generator().manual_seed(0)).captions
    right = {"crossflow": len(set(caps)), "direct": 1}
    assert nb08.exercise_3(right, pipe, images[:1])
    assert not nb08.exercise_3({"crossflow": len(set(caps)), "direct": len(set(caps)) + 1}, pipe, images[:1])
    assert not nb08.exercise_3({"crossflow": 9, "direct": 1}, pipe, images[:1])
    assert "not yet" in capsys.readouterr().out

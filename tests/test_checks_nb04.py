"""The checks of notebook 04's exercises: right answers pass, wrong ones fail with "not yet"."""

import numpy as np
import pytest
import torch

from crossflow_mini import registry
from crossflow_mini.checks import nb04
from crossflow_mini.datasets import shapes as sw
from crossflow_mini.pipelines import CrossFlowPipeline
from crossflow_mini.profiles import get_profile
from crossflow_mini.tasks.t2i import evaluate as t2i_eval


@pytest.fixture(scope="module")
def pipe():
    return CrossFlowPipeline.from_pretrained("t2i_shapes", get_profile("smoke"))   # tiny, trained on the fly


def test_exercise_1_decoded_text_latents(pipe, capsys):
    prompts = [f"a large {c} circle in the centre" for c in sw.COLOURS[:3]]
    mu = pipe.model.encode(pipe.tokenize(prompts)).mu
    right = pipe.autoencoder.decode(mu).clamp(-1, 1)
    assert nb04.exercise_1(right, pipe, prompts)
    sampled = pipe.decode(pipe.encode_text(prompts, generator=torch.Generator().manual_seed(0)))
    assert not nb04.exercise_1(sampled, pipe, prompts)                 # a draw, not the mean
    assert not nb04.exercise_1(right.flip(0), pipe, prompts)           # in another order
    assert "not yet" in capsys.readouterr().out


def test_exercise_3_swapped_text_part(capsys):
    g = torch.Generator().manual_seed(0)
    z0, z0_other, z1 = (torch.randn(1, 4, 8, 8, generator=g) for _ in range(3))
    s, t = 1e-5, 0.3
    z_t = (1 - (1 - s) * t) * z0 + t * z1
    right = (1 - (1 - s) * t) * z0_other + t * z1                       # the path from the other text latent
    assert nb04.exercise_3(right, z_t, z0, z0_other, t, s)
    assert not nb04.exercise_3(z_t + t * (z0_other - z0), z_t, z0, z0_other, t, s)   # the weight of z1, not z0
    assert not nb04.exercise_3(z_t + (z0_other - z0), z_t, z0, z0_other, t, s)
    assert "not yet" in capsys.readouterr().out


def test_exercise_4_demo_accuracy(pipe, capsys):
    smoke = get_profile("smoke")
    judge = registry.load("judge_shapes", smoke)
    split = sw.load_shapes("test", smoke.shapes)
    idx = t2i_eval.single_object_groups(split, 8)["in_distribution"]
    images = t2i_eval.generate(pipe.model, pipe.autoencoder, pipe.tokenize([split.captions[i] for i in idx]))
    right = t2i_eval.judge_single_objects(judge, images, split.subset(idx))["all"]
    assert nb04.exercise_4(right, pipe, judge, split, idx)
    assert not nb04.exercise_4(right + 0.5, pipe, judge, split, idx)
    assert not nb04.exercise_4(right + 1 / len(idx) if right < 1 else right - 1 / len(idx), pipe, judge, split, idx)
    assert "not yet" in capsys.readouterr().out


def test_judged_accuracy_uses_the_prompts_given(monkeypatch, pipe):
    seen = {}

    def fake(judge, images, split):
        seen["n"], seen["captions"] = len(images), list(split.captions)
        return {"all": 0.5}

    monkeypatch.setattr(t2i_eval, "judge_single_objects", fake)
    split = sw.load_shapes("test", get_profile("smoke").shapes)
    idx = np.array([3, 5])
    assert nb04.judged_accuracy(pipe, None, split, idx) == 0.5
    assert seen == {"n": 2, "captions": [split.captions[3], split.captions[5]]}

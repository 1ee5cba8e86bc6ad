"""The checks of notebook 05's exercises: right answers pass, wrong ones fail with "not yet"."""

import dataclasses

import pytest
import torch

from crossflow_mini import registry
from crossflow_mini.checks import nb05
from crossflow_mini.core import guidance
from crossflow_mini.pipelines import CrossFlowPipeline
from crossflow_mini.profiles import get_profile
from crossflow_mini.tasks.t2i import data as t2i_data, evaluate as t2i_eval


@pytest.fixture(scope="module")
def setting():
    smoke = get_profile("smoke")   # tiny checkpoints, trained on the fly
    pipe = CrossFlowPipeline.from_pretrained("t2i_shapes", smoke)
    judge = registry.load("judge_shapes", smoke)
    recipe = dataclasses.replace(registry.recipe("t2i_shapes", smoke), shapes=smoke.shapes)
    data = t2i_data.prepare(recipe, "test", pipe.autoencoder)
    idx = t2i_eval.single_object_groups(data.split, 8)["in_distribution"]
    return pipe, judge, data, idx


def test_exercise_1_unconditional_map(setting, capsys):
    pipe, judge, data, idx = setting
    images = t2i_eval.generate(pipe.model, pipe.autoencoder, data.text.batch(torch.from_numpy(idx)), 0.0)
    right = t2i_eval.judge_single_objects(judge, images, data.split.subset(idx))
    assert nb05.exercise_1(right, pipe.model, pipe.autoencoder, judge, data, idx)
    at_one = t2i_eval.judge_prompts(pipe.model, pipe.autoencoder, judge, data, idx, 1.0)
    if (at_one["colour"], at_one["shape"]) != (right["colour"], right["shape"]):
        assert not nb05.exercise_1(at_one, pipe.model, pipe.autoencoder, judge, data, idx)   # w = 1, not 0
    assert not nb05.exercise_1({"colour": right["colour"] + 0.5, "shape": right["shape"]}, pipe.model,
                               pipe.autoencoder, judge, data, idx)
    assert not nb05.exercise_1(0.5, pipe.model, pipe.autoencoder, judge, data, idx)
    assert "not yet" in capsys.readouterr().out


def test_exercise_3_random_swap_is_a_derangement(capsys):
    z1 = torch.randn(64, 4, 2, 2)
    kept = marked = 0
    for s in range(20):   # by hand: mask and swap drawn with generator s
        g = torch.Generator().manual_seed(s)
        mask = guidance.unconditional_mask(len(z1), 0.2, generator=g)
        swapped, indicator = guidance.swap_targets(z1, mask, generator=g, method="random")
        for i in torch.nonzero(indicator == guidance.UNCONDITIONAL).flatten():
            kept += bool(torch.equal(swapped[i], z1[i]))
            marked += 1
    assert marked > 0
    assert nb05.exercise_3(kept / marked, z1, 0.2, 20)
    assert not nb05.exercise_3(1.0, z1, 0.2, 20)      # every sample keeping its own target: no swap at all
    assert not nb05.exercise_3(0.2, z1, 0.2, 20)      # the probability of being unconditional
    assert "not yet" in capsys.readouterr().out


def test_own_target_share_sees_a_non_derangement(monkeypatch):
    z1 = torch.randn(32, 3)
    monkeypatch.setattr(guidance, "swap_targets", lambda z, mask, generator=None, method="roll": (
        z.clone(), torch.where(mask, guidance.UNCONDITIONAL, guidance.CONDITIONAL)))
    assert nb05.own_target_share(z1, 0.5, "random", 4) == 1.0


def test_exercise_1_judges_at_zero(monkeypatch):
    calls = []

    def fake_judge(model, autoencoder, judge, data, idx, scale, *args, **kwargs):
        calls.append(scale)
        return {"colour": 0.75 if scale == 0.0 else 0.5, "shape": 0.25, "n_prompts": 4}

    monkeypatch.setattr(t2i_eval, "judge_prompts", fake_judge)
    assert nb05.exercise_1({"colour": 0.75, "shape": 0.25}, None, None, None, None, None)
    assert calls == [0.0]

"""The exercise checks of notebook 09 on the smoke depth model: right answers (computed here) pass, wrong ones fail."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from crossflow_mini import registry
from crossflow_mini.checks import nb09
from crossflow_mini.core.build import build_model
from crossflow_mini.datasets import depthworld as dw
from crossflow_mini.eval import depth as dm
from crossflow_mini.profiles import get_profile
from crossflow_mini.tasks.depth import data as depth_data

SMOKE = get_profile("smoke")


@pytest.fixture(scope="module")
def model_and_data():
    recipe = registry.recipe("depth_crossflow", SMOKE)
    return registry.load("depth_crossflow", SMOKE), depth_data.prepare(recipe, "test", 4), recipe


def test_exercise_1(model_and_data, capsys):
    model, data, _ = model_and_data
    with torch.no_grad():
        _, logvar = model.source.stats(data.images)
    right = float(logvar.mul(0.5).exp().mean())
    assert nb09.exercise_1(right, model, data.images)
    assert not nb09.exercise_1(float(logvar.exp().mean()) + 1.0, model, data.images)  # the variance, not sigma
    assert "not yet" in capsys.readouterr().out


def _abs_rel_by_hand(model, images, depth, **kw):
    with torch.no_grad():
        z = model.generate(images, generator=torch.Generator().manual_seed(0), **kw).sample
    return dm.depth_metrics(dw.target_to_depth(z), depth)["abs_rel"]


def test_exercise_2(model_and_data, capsys):
    model, data, _ = model_and_data
    assert model.sampling.n_samples == 2  # the smoke recipe averages two samples: the check must do the same
    right = {}
    from crossflow_mini.tasks.depth import evaluate as depth_eval

    for k in (1, 2, 5):
        right[k] = dm.depth_metrics(depth_eval.predict_depth(model, data.images, steps=k, seed=0), data.depth)["abs_rel"]
    assert nb09.exercise_2(right, model, data.images, data.depth)
    one_sample = {k: _abs_rel_by_hand(model, data.images, data.depth, steps=k) for k in (1, 2, 5)}
    assert one_sample != right and not nb09.exercise_2(one_sample, model, data.images, data.depth)
    assert "not yet" in capsys.readouterr().out


def test_exercise_3(model_and_data, capsys):
    model, data, _ = model_and_data
    from crossflow_mini.tasks.depth import evaluate as depth_eval

    right = {w: dm.depth_metrics(depth_eval.predict_depth(model, data.images, guidance_scale=w, seed=0),
                                 data.depth)["abs_rel"] for w in (0.0, 1.0, 2.0, 4.0)}
    assert nb09.exercise_3(right, model, data.images, data.depth)
    assert not nb09.exercise_3({w: right[1.0] for w in right}, model, data.images, data.depth)
    assert "not yet" in capsys.readouterr().out


def test_exercise_4(model_and_data, capsys):
    _, _, recipe = model_and_data
    from crossflow_mini.core.transformer import VelocityTransformerConfig

    s = recipe.data.image_size
    config = dataclasses.replace(recipe.model, velocity=VelocityTransformerConfig(
        latent_shape=(1, s, s), patch_size=4, width=32, depth=1, heads=2))
    right = sum(p.numel() for p in build_model(config).parameters() if p.requires_grad)
    assert nb09.exercise_4(right, config)
    assert not nb09.exercise_4(right - sum(p.numel() for p in build_model(recipe.model).source.parameters()), config)
    assert "not yet" in capsys.readouterr().out

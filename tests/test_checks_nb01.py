"""The checks of notebook 01's exercises: right answers pass, wrong ones fail with "not yet"."""

import dataclasses
import math

import pytest
import torch

from crossflow_mini.checks import nb01
from crossflow_mini.datasets.toy2d import moon_label
from crossflow_mini.nn.mlp import MLPVelocity
from crossflow_mini.tasks import flow2d

CFG = dataclasses.replace(flow2d.Flow2DConfig(), n_points=256, hidden=16, layers=2, euler_steps=5)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MLPVelocity(2, CFG.hidden, CFG.layers)


def _euler(model, z, steps):
    with torch.no_grad():
        for k in range(steps):
            z = z + model(z, torch.full((len(z),), k / steps)) / steps
    return z


def test_exercise_1_crossed_accuracy(model, capsys):
    test = flow2d.make_data("paired", CFG.n_points, seed=1, crossed=True)
    right = float((moon_label(_euler(model, test.x0, CFG.euler_steps)) == test.labels).float().mean())
    assert nb01.exercise_1(right, model, CFG, seed=1)
    other = flow2d.make_data("paired", CFG.n_points, seed=2, crossed=True)   # the training pairs, not held out
    wrong = float((moon_label(_euler(model, other.x0, CFG.euler_steps)) == other.labels).float().mean())
    assert not nb01.exercise_1(wrong, model, CFG, seed=1)
    assert not nb01.exercise_1(1 - right, model, CFG, seed=1)
    assert "not yet" in capsys.readouterr().out


def test_exercise_2_one_step(model, capsys):
    x0 = flow2d.make_data("paired", 64, seed=1).x0
    assert nb01.exercise_2(_euler(model, x0, 1), model, x0)
    assert not nb01.exercise_2(_euler(model, x0, 2), model, x0)
    assert "not yet" in capsys.readouterr().out


def test_exercise_3_end_share(capsys):
    n = torch.distributions.Normal(0.0, 1.0)
    right = 2 * float(n.cdf(torch.tensor(-math.log(9))))   # t < 0.1 or t > 0.9
    assert nb01.exercise_3(right)
    assert not nb01.exercise_3(0.2)                        # the uniform sampler's share
    assert not nb01.exercise_3(1 - right)
    assert "not yet" in capsys.readouterr().out


def test_exercise_4_sigma_min(capsys):
    data = flow2d.make_data("paired", 64)
    assert nb01.exercise_4(data.x1 + 0.2 * data.x0, data.x0, data.x1, 0.2)
    assert not nb01.exercise_4(data.x1, data.x0, data.x1, 0.2)            # sigma_min forgotten
    assert not nb01.exercise_4(0.8 * data.x1 + 0.2 * data.x0, data.x0, data.x1, 0.2)
    assert "not yet" in capsys.readouterr().out

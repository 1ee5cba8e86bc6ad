"""The exercise checks of notebook 10 on the smoke SR model: right answers (computed here) pass, wrong ones fail."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossflow_mini import registry
from crossflow_mini.checks import nb10
from crossflow_mini.core.unet import UNetVelocityConfig
from crossflow_mini.eval import sr as srm
from crossflow_mini.profiles import get_profile
from crossflow_mini.tasks.sr import data as sr_data, evaluate as sr_eval, recipe as sr_recipe

SMOKE = get_profile("smoke")


@pytest.fixture(scope="module")
def val():
    return sr_data.prepare(registry.recipe("sr_crossflow", SMOKE), "val")


def test_exercise_1(val, capsys):
    eps = torch.randn(val.upsampled.shape, generator=torch.Generator().manual_seed(0))
    right = {s: srm.psnr_ssim((val.upsampled + s * eps).clamp(-1, 1), val.hr)["psnr"] for s in nb10.NOISE_LEVELS}
    assert right[0.0] > right[0.4]  # noise costs PSNR
    assert nb10.exercise_1(right, val)
    fresh = {s: srm.psnr_ssim((val.upsampled + s * torch.randn(val.upsampled.shape)).clamp(-1, 1), val.hr)["psnr"]
             for s in nb10.NOISE_LEVELS}  # another draw for every level
    assert not nb10.exercise_1(fresh, val)
    assert "not yet" in capsys.readouterr().out


def test_exercise_2(val, capsys):
    model = registry.load("sr_crossflow", SMOKE)
    few = val.subset(np.arange(4))
    counts = sorted({1, 2, 5, model.sampling.steps})
    right = {k: srm.psnr_ssim(sr_eval.super_resolve(model, few.upsampled, steps=k), few.hr)["psnr"] for k in counts}
    assert nb10.exercise_2(right, model, few, 1.0)
    assert not nb10.exercise_2({k: v + 1.0 for k, v in right.items()}, model, few, 1.0)
    assert not nb10.exercise_2({1: right[1]}, model, few, 1.0)
    assert "not yet" in capsys.readouterr().out


def test_exercise_5(capsys):
    configs = sr_recipe.model_configs(UNetVelocityConfig(latent_shape=(1, 32, 32)))
    from crossflow_mini.core.build import build_model

    right = {m: sum(p.numel() for p in build_model(c).parameters() if p.requires_grad) for m, c in configs.items()}
    assert nb10.exercise_5(right)
    rgb = sr_recipe.model_configs(UNetVelocityConfig(latent_shape=(3, 32, 32)))
    assert not nb10.exercise_5({m: sum(p.numel() for p in build_model(c).parameters()) for m, c in rgb.items()})
    assert "not yet" in capsys.readouterr().out

"""Checks for notebook 10 (super-resolution). Each expected value is recomputed with the library and the same seeds
(see :mod:`crossflow_mini.checks`)."""

from __future__ import annotations

from typing import Any, Mapping

import torch

from ..core.build import build_model
from ..core.params import parameter_report
from ..core.unet import UNetVelocityConfig
from ..eval import sr as srm
from ..tasks.sr import evaluate as sr_eval, recipe as sr_recipe
from . import close, verdict

NOISE_LEVELS = (0.0, 0.05, 0.1, 0.2, 0.4)
GREY_SHAPE = (1, 32, 32)


def _same(answer: Any, expected: Mapping[Any, float], rtol: float = 1e-4) -> bool:
    return isinstance(answer, Mapping) and set(answer) == set(expected) and all(
        close(answer[k], expected[k], rtol=rtol) for k in expected)


def exercise_1(answer: Mapping[float, float], data: Any) -> bool:
    """``answer``: noise level s -> PSNR of the source x_up + s eps (clamped to [-1, 1]) against the truth of
    ``data`` (an SRSplit), eps one draw of a generator seeded with 0 (paper Sec. 5.6, the source of the flow)."""
    eps = torch.randn(data.upsampled.shape, generator=torch.Generator().manual_seed(0))
    expected = {s: srm.psnr_ssim((data.upsampled + s * eps).clamp(-1, 1), data.hr)["psnr"] for s in NOISE_LEVELS}
    return verdict(_same(answer, expected), "PSNR of the noisy source: " + ", ".join(
        f"s = {s:g}: {v:.2f} dB" for s, v in expected.items()),
        "draw eps once (torch.randn(val.upsampled.shape, generator=torch.Generator().manual_seed(0))) and reuse it "
        "for every s; clamp before srm.psnr_ssim")


def exercise_2(answer: Mapping[int, float], model: Any, data: Any, guidance_scale: float) -> bool:
    """``answer``: Euler steps k (1, 2, 5 and the model's own) -> PSNR of the model's output on ``data``."""
    counts = sorted({1, 2, 5, model.sampling.steps})
    expected = {k: srm.psnr_ssim(sr_eval.super_resolve(model, data.upsampled, steps=k, guidance_scale=guidance_scale),
                                 data.hr)["psnr"] for k in counts}
    return verdict(_same(answer, expected, rtol=1e-3), "PSNR per number of steps: " + ", ".join(
        f"{k}: {v:.2f} dB" for k, v in expected.items()),
        f"sr_eval.super_resolve(cf, x, steps=k, guidance_scale=w) for k in {counts}, scored with srm.psnr_ssim")


def exercise_5(answer: Mapping[str, int]) -> bool:
    """``answer``: method -> parameters of the three grey-scale methods of ``sr_recipe.model_configs``."""
    configs = sr_recipe.model_configs(UNetVelocityConfig(latent_shape=GREY_SHAPE))
    expected = {m: parameter_report(build_model(c))["total"] for m, c in configs.items()}
    ok = isinstance(answer, Mapping) and dict(answer) == expected
    return verdict(ok, ", ".join(f"{m} {n:,}" for m, n in expected.items()),
                   "build each config of sr_recipe.model_configs(UNetVelocityConfig(latent_shape=(1, 32, 32))) and "
                   "count it with parameter_report(...)['total']")


__all__ = ["NOISE_LEVELS", "GREY_SHAPE", "exercise_1", "exercise_2", "exercise_5"]

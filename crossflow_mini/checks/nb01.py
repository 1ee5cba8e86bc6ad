"""Checks for the exercises of notebook 01 (flow matching between distributions, paper Sec. 3).

Each check recomputes the expected value from the library at run time (docs/METHOD.md Sec. 1 for the path and the
sampler), so it holds under every profile.
"""

from __future__ import annotations

import math

import torch

from ..core import path
from ..tasks import flow2d
from . import close, verdict


def exercise_1(crossed_accuracy: float, model: torch.nn.Module, cfg: flow2d.Flow2DConfig, seed: int) -> bool:
    """Crossed pairs: the label accuracy of ``model`` on the held-out crossed pairs (``make_data(..., seed,
    crossed=True)``), transported with ``cfg.euler_steps`` Euler steps."""
    test = flow2d.make_data("paired", cfg.n_points, seed=seed, crossed=True)
    with torch.no_grad():
        ends = flow2d.transport(model, test.x0, cfg.euler_steps, return_trajectory=False).sample
    expected = flow2d.label_accuracy(ends, test.labels)
    return verdict(close(crossed_accuracy, expected, rtol=0, atol=1e-6),
                   f"label accuracy on the crossed held-out pairs {expected:.3f}",
                   "score the crossed test pairs (crossed=True) after cfg.euler_steps Euler steps with "
                   "flow2d.label_accuracy")


def exercise_2(one_step: torch.Tensor, model: torch.nn.Module, x0: torch.Tensor) -> bool:
    """Fewer steps: the end points of one Euler step from ``x0`` are ``x0 + v(x0, 0)``."""
    with torch.no_grad():
        expected = x0 + model(x0, torch.zeros(len(x0)))
    return verdict(close(one_step, expected, rtol=1e-4, atol=1e-5),
                   "one Euler step lands at z0 + v(z0, 0)",
                   "transport the held-out blob points with steps=1 (the end points are .sample)")


def exercise_3(end_share: float) -> bool:
    """Time sampler: the share of logit-normal times within 0.1 of either end, P(|n| > logit(0.9)) for
    n ~ N(0, 1)."""
    expected = math.erfc(math.log(9) / math.sqrt(2))
    return verdict(close(end_share, expected, rtol=1e-3, atol=1e-4),
                   f"P(t < 0.1 or t > 0.9) = {expected:.4f} for t = sigmoid(n), against 0.2 for uniform t",
                   "t < 0.1 exactly when n < logit(0.1) = -log 9; use the normal distribution's tails "
                   "(math.erfc), not a sample")


def exercise_4(end: torch.Tensor, x0: torch.Tensor, x1: torch.Tensor, sigma_min: float) -> bool:
    """sigma_min: the path at t = 1 ends at ``x1 + sigma_min * x0``."""
    expected = path.interpolate(x0, x1, torch.ones(len(x0)), sigma_min=sigma_min)
    ok = close(end, expected, rtol=1e-5, atol=1e-6) and close(expected, x1 + sigma_min * x0, atol=1e-5)
    return verdict(ok, f"at t = 1 the path ends at z1 + {sigma_min:g} z0",
                   f"interpolate the pairs at t = 1 with sigma_min={sigma_min:g}")


__all__ = ["exercise_1", "exercise_2", "exercise_3", "exercise_4"]

"""Checks for notebook 09 (monocular depth). Each expected value is recomputed with the shipped model and the same
seed (see :mod:`crossflow_mini.checks`)."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

from ..core.build import build_model
from ..core.params import parameter_report
from ..eval import depth as dm
from ..tasks.depth import evaluate as depth_eval
from . import close, verdict

STEP_COUNTS = (1, 2, 5)
SCALES = (0.0, 1.0, 2.0, 4.0)


def exercise_1(answer: float, model: Any, images: torch.Tensor) -> bool:
    """``answer``: the mean sigma = exp(logvar / 2) of the Image VE on ``images`` (paper Sec. 5.5, the source
    encoder; docs/METHOD.md Sec. 2)."""
    with torch.no_grad():
        _, logvar = model.source.stats(images)
    expected = float(torch.exp(0.5 * logvar).mean())
    return verdict(close(answer, expected, rtol=1e-3), f"mean sigma {expected:.4f}",
                   "sigma = exp(logvar / 2) from model.source.stats(images), averaged over every pixel and image")


def _abs_rel(pred: torch.Tensor, depth: torch.Tensor) -> float:
    return dm.depth_metrics(pred, depth)["abs_rel"]


def _sweep(answer: Any, predict: Callable[[Any], torch.Tensor], keys: tuple, depth: torch.Tensor, what: str,
           hint: str) -> bool:
    """``answer``: key -> AbsRel; right when it holds every key of ``keys`` and each value matches ``predict(key)``."""
    expected = {k: _abs_rel(predict(k), depth) for k in keys}
    ok = isinstance(answer, Mapping) and set(answer) == set(expected) and all(
        close(answer[k], expected[k], rtol=1e-3) for k in expected)
    return verdict(ok, what + ": " + ", ".join(f"{k:g}: {v:.3f}" for k, v in expected.items()), hint)


def exercise_2(answer: Mapping[int, float], model: Any, images: torch.Tensor, depth: torch.Tensor) -> bool:
    """``answer``: Euler steps (1, 2, 5) -> AbsRel of the model's prediction (seed 0) against ``depth``."""
    return _sweep(answer, lambda k: depth_eval.predict_depth(model, images, steps=k, seed=0), STEP_COUNTS, depth,
                  "AbsRel per number of steps",
                  "depth_eval.predict_depth(model, images, steps=k, seed=0), scored with dm.depth_metrics")


def exercise_3(answer: Mapping[float, float], model: Any, images: torch.Tensor, depth: torch.Tensor) -> bool:
    """``answer``: guidance scale (0, 1, 2, 4) -> AbsRel of the model's prediction (seed 0) against ``depth``."""
    return _sweep(answer, lambda w: depth_eval.predict_depth(model, images, guidance_scale=w, seed=0), SCALES, depth,
                  "AbsRel per guidance scale",
                  "depth_eval.predict_depth(model, images, guidance_scale=w, seed=0) for w = 0, 1, 2, 4")


def exercise_4(answer: int, model_config: Any) -> bool:
    """``answer``: the number of parameters of the model built from ``model_config``."""
    expected = parameter_report(build_model(model_config))["total"]
    return verdict(answer == expected, f"{expected:,} parameters",
                   "parameter_report(build_model(config))['total'] counts every trainable parameter")


__all__ = ["STEP_COUNTS", "SCALES", "exercise_1", "exercise_2", "exercise_3", "exercise_4"]

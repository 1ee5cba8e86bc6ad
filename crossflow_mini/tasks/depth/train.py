"""Monocular depth: training a recipe through the shared loop (CrossFlow's joint loss, the baseline's L_FM or the
regression loss, all through ``model.loss``), with EMA weights for prediction."""

from __future__ import annotations

from typing import Any, Callable

from ...training import TrainResult
from .. import common
from ..common import Device
from .data import DepthData, prepare, training_batches
from .recipe import DepthRecipe


def fit(recipe: DepthRecipe, data: DepthData, *, name: str | None = None, resume: bool = True,
        callback: Callable[[int, dict[str, float]], None] | None = None, desc: str | None = None,
        device: Device = None) -> TrainResult:
    """Train the recipe's model on prepared data (checkpointed and resumable when ``name`` is given); use ``.ema``
    of the result for prediction."""
    return common.fit(recipe, training_batches(data, recipe.train), name=name, resume=resume, callback=callback,
                      desc=desc, device=device)


def train(recipe: DepthRecipe, *, name: str | None = None, device: Device = None, **_: Any) -> TrainResult:
    """Prepare the training split and train (resumable under ``name``)."""
    return fit(recipe, prepare(recipe, "train"), name=name, device=device)


__all__ = ["fit", "train"]

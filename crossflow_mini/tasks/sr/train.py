"""Super-resolution: training a recipe through the shared loop (CrossFlow's joint loss, the baseline's L_FM or the
regression L1 / L2, all through ``model.loss``) on fresh augmented crops, with EMA weights for prediction."""

from __future__ import annotations

from typing import Any, Callable

from ...training import TrainResult
from .. import common
from ..common import Device
from .data import training_batches
from .recipe import SRRecipe, row_name


def fit(recipe: SRRecipe, *, name: str | None = None, resume: bool = True,
        callback: Callable[[int, dict[str, float]], None] | None = None, desc: str | None = None,
        device: Device = None) -> TrainResult:
    """Train the recipe's model (resumable under ``data/cache/runs`` when ``name`` is given). Sample with ``.ema``."""
    return common.fit(recipe, training_batches(recipe), name=name, resume=resume, callback=callback,
                      desc=desc or row_name(recipe), device=device)


def train(recipe: SRRecipe, *, name: str | None = None, device: Device = None, **_: Any) -> TrainResult:
    """Train (resumable under ``name``): the registry's entry point."""
    return fit(recipe, name=name, device=device)


__all__ = ["fit", "train"]

"""Monocular depth: the DepthWorld split a recipe trains and is measured on.

The target is DepthWorld's normalised log depth in [-1, 1] (:func:`~crossflow_mini.datasets.depthworld.
depth_to_target`: a fixed target error is one relative depth error at every distance, which is what AbsRel and
delta1 measure); averaging several samples happens in that space (a geometric mean of depths)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ...datasets.depthworld import DepthWorldSplit, load_depthworld
from ...training import EpochBatches, TrainConfig
from .recipe import DepthRecipe


@dataclass
class DepthData:
    """One DepthWorld split ready for the models: images ``(N, 3, S, S)`` in [-1, 1], targets ``(N, 1, S, S)`` in
    [-1, 1] (normalised log depth) and the depth in metres ``(N, 1, S, S)``; ``split`` keeps the scenes."""

    split: DepthWorldSplit
    images: torch.Tensor
    target: torch.Tensor
    depth: torch.Tensor

    def __len__(self) -> int:
        return len(self.images)


def prepare(recipe: DepthRecipe, split: str, max_images: int | None = None) -> DepthData:
    """The recipe's DepthWorld ``split`` (train / val / test) as tensors; the first ``max_images`` if given."""
    data = load_depthworld(split, recipe.data)
    if max_images is not None and max_images < len(data):
        data = data.subset(np.arange(max_images))
    depth = data.depth_tensor()
    return DepthData(data, data.images_tensor(), data.target_tensor(), depth)


def training_batches(data: DepthData, cfg: TrainConfig) -> Callable[[int], tuple[torch.Tensor, torch.Tensor]]:
    """``step -> (images, depth targets)``: a pure function of ``(seed, step)`` (exact resume)."""
    batches = EpochBatches(len(data), cfg.batch_size, cfg.seed)

    def batch_fn(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = batches(step)
        return data.images[idx], data.target[idx]

    return batch_fn


__all__ = ["DepthData", "prepare", "training_batches"]

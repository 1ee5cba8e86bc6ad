"""Super-resolution: the photo patches a recipe trains and is measured on (:mod:`crossflow_mini.datasets.superres`):
32 x 32 RGB patches of the photographs scikit-image and matplotlib ship, split by photograph; the low-resolution image
is the anti-aliased bicubic downsampling, the source its bicubic upsampling."""

from __future__ import annotations

import dataclasses
from typing import Callable

import torch

from ...datasets.superres import SRSplit, load_sr, stream_batch
from .recipe import SRRecipe


def prepare(recipe: SRRecipe, split: str, n: int | None = None) -> SRSplit:
    """The ``val`` or ``test`` pairs of the recipe's data (``n``: evenly thinned to that many patches)."""
    key = {"val": "n_val", "test": "n_test", "train": "n_train"}.get(split)
    if key is None:
        raise ValueError(f"unknown split {split!r}; use 'train', 'val' or 'test'")
    data = recipe.data if n is None else dataclasses.replace(recipe.data, **{key: n})
    return load_sr(split, data)


def training_batches(recipe: SRRecipe) -> Callable[[int], tuple[torch.Tensor, torch.Tensor]]:
    """``step -> (upsampled, hr)``: fresh augmented crops, a pure function of ``(data.seed, step)`` (exact resume)."""
    def batch_fn(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        b = stream_batch(step, recipe.train.batch_size, recipe.data)
        return b.upsampled, b.hr

    return batch_fn


__all__ = ["prepare", "training_batches"]

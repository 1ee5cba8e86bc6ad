"""The ShapesWorld judge (the referee of the text-to-image notebooks): recipe, training and evaluation.

The judge reads shape, colour, size, position and count back from an image (:mod:`crossflow_mini.eval.judge`); it
learns from the ``judge`` split's renders, whose every shape-colour combination appears, with targets from the
renderer's exact masks, and is measured on the test split, which it never sees. The shipped recipe is
:data:`JUDGE_SHAPES`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..datasets.shapes import JUDGE_SPLIT, ShapesDataConfig, load_shapes
from ..eval.judge import JudgeConfig, JudgeNet, judge_accuracy, judge_loss, pixel_targets
from ..training import EpochBatches, TrainConfig, TrainResult
from . import common


@dataclass(frozen=True)
class JudgeRecipe:
    """Everything that determines the judge checkpoint: network, training run and the renders it learns from."""

    model: JudgeConfig = JudgeConfig()
    train: TrainConfig = TrainConfig()
    shapes: ShapesDataConfig = ShapesDataConfig()


#: ``judge_shapes``: a dilated per-pixel network of width 32, 1,500 steps of 64 renders, no EMA.
JUDGE_SHAPES = JudgeRecipe(
    model=JudgeConfig(width=32),
    train=TrainConfig(steps=1500, batch_size=64, lr=2e-3, betas=(0.9, 0.99), weight_decay=0.0, warmup_steps=100,
                      lr_schedule="cosine", ema_decay=0.0, ckpt_every=250),
    shapes=ShapesDataConfig())


def train(recipe: JudgeRecipe, *, name: str | None = "judge_shapes", device: torch.device | str | None = None,
          **_: Any) -> TrainResult:
    """Train on the ``judge`` split's renders (resumable under ``name``); measure with :func:`evaluate_judge`."""
    split = load_shapes(JUDGE_SPLIT, recipe.shapes)
    images = split.images_tensor()
    batches = EpochBatches(len(split), recipe.train.batch_size, recipe.train.seed)

    def batch_fn(step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        idx = batches(step)
        return images[idx], pixel_targets(split, idx.numpy())

    return common.fit(recipe, batch_fn, loss_fn=lambda model, batch: judge_loss(model, *batch), build=JudgeNet,
                      name=name, desc="judge", device=device)


def evaluate_judge(net: JudgeNet, recipe: JudgeRecipe) -> dict[str, Any]:
    """Per-attribute accuracy on held-out renders: the test split, and its held-out combinations apart."""
    test = load_shapes("test", recipe.shapes)
    return {"test": judge_accuracy(net, test),
            "test_heldout_combinations": judge_accuracy(net, test.subset(test.heldout))}


__all__ = ["JudgeRecipe", "JUDGE_SHAPES", "train", "evaluate_judge"]

"""Train and measure the ShapesWorld judge (the referee of the text-to-image notebooks)."""

from __future__ import annotations

from dataclasses import dataclass

import time
from typing import Any

import torch

from ..checkpoints import run_dir
from ..datasets.shapes import JUDGE_SPLIT, load_shapes
from ..eval.judge import JudgeNet, judge_accuracy, judge_loss, pixel_targets
from ..training import EpochBatches, train
from ..utils import get_device
from ..datasets.shapes import ShapesDataConfig
from ..eval.judge import JudgeConfig
from ..training import TrainConfig


@dataclass(frozen=True)
class JudgeRecipe:
    """Everything that determines the judge checkpoint: network, training run and the renders it learns from."""

    model: JudgeConfig = JudgeConfig()
    train: TrainConfig = TrainConfig()
    shapes: ShapesDataConfig = ShapesDataConfig()


def train_judge(recipe: JudgeRecipe, name: str = "judge_shapes",
                device: torch.device | str | None = None) -> tuple[JudgeNet, dict[str, Any]]:
    """Train on the ``judge`` split's renders (all shape-colour combinations; targets from the renderer's exact
    masks); measure on the test split, which it never sees."""
    split = load_shapes(JUDGE_SPLIT, recipe.shapes)
    images = split.images_tensor()
    torch.manual_seed(recipe.train.seed)
    net = JudgeNet(recipe.model)
    batches = EpochBatches(len(split), recipe.train.batch_size, recipe.train.seed)

    def batch_fn(step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        idx = batches(step)
        return images[idx], pixel_targets(split, idx.numpy())

    t0 = time.perf_counter()
    result = train(net, lambda model, batch: judge_loss(model, *batch), batch_fn, recipe.train, desc="judge",
                   run_dir=run_dir(name, recipe), device=get_device(device))
    metrics = evaluate_judge(result.ema, recipe)
    metrics["train_seconds_this_run"] = round(time.perf_counter() - t0, 1)
    return result.ema, metrics


def evaluate_judge(net: JudgeNet, recipe: JudgeRecipe) -> dict[str, Any]:
    """Per-attribute accuracy on held-out renders: the test split, and its held-out combinations apart."""
    test = load_shapes("test", recipe.shapes)
    return {"test": judge_accuracy(net, test),
            "test_heldout_combinations": judge_accuracy(net, test.subset(test.heldout))}

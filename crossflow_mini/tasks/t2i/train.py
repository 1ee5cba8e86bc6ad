"""Text to image: training a recipe - CrossFlow's joint loss (L_FM + L_Enc + lambda KL, one optimiser) or the
baseline's L_FM - through the shared loop, with EMA weights for sampling; and the Fashion-MNIST classifier that
referees the Fashion models."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from ...datasets.fashion import load_fashion
from ...eval.classifier import FashionClassifier, class_accuracy
from ...training import EpochBatches, TrainResult
from .. import common
from ..common import Device
from .data import T2IData, prepare, training_batches
from .recipe import ClassifierRecipe, T2IRecipe


def fit(recipe: T2IRecipe, data: T2IData, *, name: str | None = None, resume: bool = True,
        callback: Callable[[int, dict[str, float]], None] | None = None, desc: str | None = None,
        snapshot_steps: Sequence[int] = (), on_snapshot: Callable[[int, torch.nn.Module], None] | None = None,
        device: Device = None) -> TrainResult:
    """Train the recipe's model on prepared data, checkpointed and resumable when ``name`` is given. Use ``.ema`` of
    the result for sampling; ``on_snapshot(steps, ema)`` sees the EMA model at each of ``snapshot_steps``."""
    return common.fit(recipe, training_batches(data, recipe.train), name=name, resume=resume, callback=callback,
                      desc=desc, device=device, snapshot_steps=snapshot_steps, on_snapshot=on_snapshot)


def train(recipe: T2IRecipe, *, autoencoder: torch.nn.Module, name: str | None = None,
          device: Device = None, **_: Any) -> TrainResult:
    """Prepare the training split with the recipe's autoencoder and train (resumable under ``name``)."""
    return fit(recipe, prepare(recipe, "train", autoencoder), name=name, device=device)


# ------------------------------------------------------------------------------------------------ the classifier
def train_classifier(recipe: ClassifierRecipe, *, name: str | None = "classifier_fashion",
                     device: Device = None, **_: Any) -> TrainResult:
    """Train the Fashion-MNIST classifier on the real training photos (resumable under ``name``)."""
    split = load_fashion("train", recipe.fashion)
    images = split.images_tensor(recipe.model.image_size)
    labels = torch.from_numpy(split.labels.copy())
    batches = EpochBatches(len(split), recipe.train.batch_size, recipe.train.seed)

    def batch_fn(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = batches(step)
        return images[idx], labels[idx]

    return common.fit(recipe, batch_fn, loss_fn=lambda m, batch: m.loss(*batch), build=FashionClassifier,
                      name=name, desc="classifier", device=device)


def evaluate_classifier(net: FashionClassifier, recipe: ClassifierRecipe, **_: Any) -> dict[str, Any]:
    """Accuracy on the real test photos (the classifier never trains on them)."""
    test = load_fashion("test", recipe.fashion)
    acc = class_accuracy(net, test.images_tensor(recipe.model.image_size), test.labels)
    return {"test_accuracy": round(acc, 4), "n_test": len(test)}


__all__ = ["fit", "train", "train_classifier", "evaluate_classifier"]

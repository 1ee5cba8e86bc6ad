"""Fashion-MNIST, the real-data track: the class-accuracy classifier, and judging text-to-image models by it.

A text-to-image model is judged by the share of its generations that a classifier trained on the real training
photos reads as the class the caption names. The guidance scale is chosen on generations for *training*
captions (no test image is touched), then reported on the test captions, beside the classifier's own accuracy on
the real test photos (the ceiling of any class accuracy).
"""

from __future__ import annotations

from dataclasses import dataclass

import time
from typing import TYPE_CHECKING, Any

import torch

from ...checkpoints import run_dir
from ...eval.classifier import FashionClassifier, class_accuracy
from .train import T2IRecipe
from ...datasets.fashion import load_fashion
from ...training import EpochBatches, train
from ...utils import get_device
from ...core.flow_model import FlowModel
from ...core.params import parameter_report
from .train import Device, T2IData, choose_scale, fit_and_time, generate, prepare

if TYPE_CHECKING:
    from ...studies.comparison import ComparisonConfig
from ...datasets.fashion import FashionDataConfig
from ...eval.classifier import ClassifierConfig
from ...training import TrainConfig


@dataclass(frozen=True)
class ClassifierRecipe:
    """Everything that determines the Fashion-MNIST classifier checkpoint."""

    model: ClassifierConfig = ClassifierConfig()
    train: TrainConfig = TrainConfig()
    fashion: FashionDataConfig = FashionDataConfig()


def train_classifier(recipe: ClassifierRecipe, name: str = "classifier_fashion",
                     device: torch.device | str | None = None) -> tuple[FashionClassifier, dict[str, Any]]:
    """Train on the real training photos; measure on the real test photos, which it never sees."""
    split = load_fashion("train", recipe.fashion)
    images = split.images_tensor(recipe.model.image_size)
    labels = torch.from_numpy(split.labels.copy())
    torch.manual_seed(recipe.train.seed)
    net = FashionClassifier(recipe.model)
    batches = EpochBatches(len(split), recipe.train.batch_size, recipe.train.seed)
    t0 = time.perf_counter()
    def batch_fn(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = batches(step)
        return images[idx], labels[idx]

    result = train(net, lambda m, batch: m.loss(*batch), batch_fn, recipe.train, desc="classifier",
                   run_dir=run_dir(name, recipe), device=get_device(device))
    metrics = evaluate_classifier(result.ema, recipe)
    metrics["train_seconds_this_run"] = round(time.perf_counter() - t0, 1)
    return result.ema, metrics


def evaluate_classifier(net: FashionClassifier, recipe: ClassifierRecipe) -> dict[str, Any]:
    """Accuracy on the real test photos (the classifier never trains on them)."""
    test = load_fashion("test", recipe.fashion)
    acc = class_accuracy(net, test.images_tensor(recipe.model.image_size), test.labels)
    return {"test_accuracy": round(acc, 4), "n_test": len(test)}


def class_accuracy_of(model: FlowModel, autoencoder: torch.nn.Module, classifier: FashionClassifier,
                      data: T2IData, n: int, scale: float, steps: int, method: str = "euler", seed: int = 0,
                      batch_size: int = 250, device: Device = None) -> dict[str, Any]:
    """Generate for the first ``n`` captions of ``data`` at one guidance scale; the classifier's accuracy on them."""
    t0 = time.perf_counter()
    idx = torch.arange(min(n, len(data.split)))
    images = generate(model, autoencoder, data.text.batch(idx), scale, steps, method, seed, batch_size, device)
    acc = class_accuracy(classifier, images, data.split.labels[idx.numpy()])
    return {"class_accuracy": round(acc, 4), "n": len(idx), "seconds": round(time.perf_counter() - t0, 1)}


def evaluate_fashion_t2i(model: FlowModel, recipe: T2IRecipe, autoencoder: torch.nn.Module,
                         classifier: FashionClassifier, cfg: ComparisonConfig, device: Device = None) -> dict[str, Any]:
    """Choose w by class accuracy on training captions; report class accuracy on the test captions at the chosen
    w (CFG on) and at w = 1 (CFG off)."""
    kw = dict(steps=recipe.sample_steps, method=recipe.sampler, seed=cfg.seed, batch_size=cfg.batch_size,
              device=device)
    train_data, test = prepare(recipe, "train", autoencoder), prepare(recipe, "test", autoencoder)
    sweep = {f"w={w:g}": class_accuracy_of(model, autoencoder, classifier, train_data, cfg.choose_samples, w, **kw)
             for w in cfg.scales}
    chosen = choose_scale(sweep, "class_accuracy")
    out: dict[str, Any] = {"choose_sweep_on_train_captions": sweep, "chosen_scale": chosen,
                           "sampler": {"method": recipe.sampler, "steps": recipe.sample_steps}}
    out["test_at_chosen_scale"] = class_accuracy_of(model, autoencoder, classifier, test, cfg.class_samples,
                                                    chosen, **kw)
    out["test_cfg_off"] = class_accuracy_of(model, autoencoder, classifier, test, cfg.class_samples, 1.0, **kw)
    return out



def train_fashion_t2i(recipe: T2IRecipe, autoencoder: torch.nn.Module, classifier: FashionClassifier,
                      cfg: ComparisonConfig, name: str, device: Device = None) -> tuple[FlowModel, dict[str, Any]]:
    """Prepare, train (resumable) and measure a Fashion-MNIST text-to-image model; ``(EMA model, metrics)``."""
    result, metrics = fit_and_time(recipe, autoencoder, name, device)
    metrics["parameters"] = parameter_report(result.ema)
    metrics |= evaluate_fashion_t2i(result.ema, recipe, autoencoder, classifier, cfg, device)
    return result.ema, metrics

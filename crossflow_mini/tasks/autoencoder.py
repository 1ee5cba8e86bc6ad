"""Train and evaluate the image autoencoders (ShapesWorld and Fashion-MNIST): one recipe, used by the CLI
(``python -m crossflow_mini train autoencoder_shapes``) and by notebook 02, so both report the same numbers."""

from __future__ import annotations

from dataclasses import dataclass

import time
from typing import Any, Callable

import torch

from ..nn.autoencoder import ImageAutoencoder, reconstruction_psnr
from ..checkpoints import run_dir
from ..datasets.fashion import load_fashion
from ..datasets.shapes import load_shapes
from ..training import EpochBatches, TrainResult, train
from ..utils import get_device
from ..nn.autoencoder import AutoencoderConfig
from ..datasets.fashion import FashionDataConfig
from ..datasets.shapes import ShapesDataConfig
from ..training import TrainConfig


@dataclass(frozen=True)
class AutoencoderRecipe:
    """Everything that determines an autoencoder checkpoint: model, training run and data."""

    dataset: str = "shapes"  # "shapes" | "fashion"
    model: AutoencoderConfig = AutoencoderConfig()
    train: TrainConfig = TrainConfig()
    shapes: ShapesDataConfig = ShapesDataConfig()
    fashion: FashionDataConfig = FashionDataConfig()
    scale_samples: int = 2048  # images used to estimate the latent scale factor

DATASETS = ("shapes", "fashion")


def images(recipe: AutoencoderRecipe, split: str) -> torch.Tensor:
    """The recipe's images of ``split`` as ``(N, C, 32, 32)`` in [-1, 1]."""
    if recipe.dataset == "shapes":
        return load_shapes(split, recipe.shapes).images_tensor()
    if recipe.dataset == "fashion":
        return load_fashion(split, recipe.fashion).images_tensor(recipe.model.image_size)
    raise ValueError(f"unknown autoencoder dataset {recipe.dataset!r}; choose one of {DATASETS}")


def fit(recipe: AutoencoderRecipe, *, name: str | None = None, resume: bool = True,
        callback: Callable[[int, dict[str, float]], None] | None = None, desc: str = "autoencoder",
        device: torch.device | str | None = None) -> TrainResult:
    """Train an :class:`ImageAutoencoder` on the recipe's training images; with ``name`` the run is checkpointed
    (and resumed) under ``data/cache/runs``. Returns the :class:`TrainResult` (use ``.ema``)."""
    x = images(recipe, "train")
    torch.manual_seed(recipe.train.seed)
    model = ImageAutoencoder(recipe.model)
    batches = EpochBatches(len(x), recipe.train.batch_size, recipe.train.seed)
    return train(model, lambda m, batch: m.loss(batch), lambda step: x[batches(step)], recipe.train,
                 run_dir=run_dir(name, recipe) if name else None, resume=resume, callback=callback, desc=desc,
                 device=get_device(device))


def train_autoencoder(recipe: AutoencoderRecipe, name: str = "autoencoder",
                      device: torch.device | str | None = None) -> tuple[ImageAutoencoder, dict[str, Any]]:
    """Train, set the latent scale from data, measure; returns ``(EMA model, metrics)``."""
    t0 = time.perf_counter()
    result = fit(recipe, name=name, device=device)
    seconds = time.perf_counter() - t0
    ae = result.ema
    x = images(recipe, "train")
    ae.fit_latent_scale(x[:recipe.scale_samples].to(ae.latent_scale.device))
    metrics = evaluate_autoencoder(ae, recipe)
    metrics["train_seconds_this_run"] = round(seconds, 1)
    metrics["train_steps"] = recipe.train.steps
    metrics["final_train_mse"] = result.history["mse"][-1] if "mse" in result.history else None
    return ae, metrics


@torch.no_grad()
def evaluate_autoencoder(ae: ImageAutoencoder, recipe: AutoencoderRecipe, limit: int | None = None) -> dict[str, Any]:
    """Reconstruction PSNR on the *test* split (never seen in training); for ShapesWorld also on its held-out
    attribute combinations alone; and the std of scaled test latents (should be near 1)."""
    ae.eval()
    x = images(recipe, "test")
    out: dict[str, Any] = {"dataset": recipe.dataset, "split": "test"}
    if recipe.dataset == "shapes":
        heldout = torch.from_numpy(load_shapes("test", recipe.shapes).heldout.copy())
        if limit is not None:
            x, heldout = x[:limit], heldout[:limit]
        if heldout.any():
            out["psnr_db_heldout_combinations"] = round(reconstruction_psnr(ae, x[heldout]), 3)
    elif limit is not None:
        x = x[:limit]
    out["n_images"] = len(x)
    out["psnr_db"] = round(reconstruction_psnr(ae, x), 3)
    out["latent_scale"] = round(float(ae.latent_scale), 5)
    out["latent_std_test"] = round(float(torch.cat([ae.encode(x[i:i + 256]) for i in range(0, len(x), 256)]).std()), 4)
    out["latent_shape"] = list(ae.latent_shape)
    return out

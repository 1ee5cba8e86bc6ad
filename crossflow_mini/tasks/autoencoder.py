"""The image autoencoders (ShapesWorld and Fashion-MNIST): recipe, training and evaluation, in one file.

The recipes of the two shipped checkpoints, ``autoencoder_shapes`` and ``autoencoder_fashion``, are written out
below (:data:`AUTOENCODER_SHAPES`, :data:`AUTOENCODER_FASHION`). The CLI (``python -m crossflow_mini train
autoencoder_shapes``) and notebook 02 call the same functions, so both report the same numbers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..datasets.fashion import FashionDataConfig, load_fashion
from ..datasets.shapes import ShapesDataConfig, load_shapes
from ..nn.autoencoder import AutoencoderConfig, ImageAutoencoder, reconstruction_psnr
from ..training import EpochBatches, TrainConfig, TrainResult
from . import common


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

# ---------------------------------------------------------------------------------------------- shipped recipes
#: The training run of both shipped autoencoders: 3,000 steps of 32 images, AdamW 2e-3 with a cosine schedule,
#: EMA weights (decay 0.999) for encoding and decoding.
AUTOENCODER_TRAIN = TrainConfig(steps=3000, batch_size=32, lr=2e-3, betas=(0.9, 0.99), weight_decay=0.0,
                                warmup_steps=100, lr_schedule="cosine", ema_decay=0.999, ckpt_every=250)
#: ``autoencoder_shapes``: 3 x 32 x 32 ShapesWorld images <-> 4 x 8 x 8 latents (AutoencoderConfig's defaults).
AUTOENCODER_SHAPES = AutoencoderRecipe(dataset="shapes", model=AutoencoderConfig(in_channels=3),
                                       train=AUTOENCODER_TRAIN, shapes=ShapesDataConfig())
#: ``autoencoder_fashion``: 1 x 32 x 32 (padded 28 x 28) Fashion-MNIST photos <-> 4 x 8 x 8 latents.
AUTOENCODER_FASHION = AutoencoderRecipe(dataset="fashion", model=AutoencoderConfig(in_channels=1),
                                        train=AUTOENCODER_TRAIN, fashion=FashionDataConfig())


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
    batches = EpochBatches(len(x), recipe.train.batch_size, recipe.train.seed)
    return common.fit(recipe, lambda step: x[batches(step)], loss_fn=lambda m, batch: m.loss(batch),
                      build=ImageAutoencoder, name=name, resume=resume, callback=callback, desc=desc, device=device)


def train(recipe: AutoencoderRecipe, *, name: str | None = None, device: torch.device | str | None = None,
          **_: Any) -> TrainResult:
    """Train (resumable under ``name``), then set the EMA model's latent scale from ``scale_samples`` training images
    (unit-variance latents, as the paper's SD-VAE scale factor does)."""
    result = fit(recipe, name=name, device=device)
    x = images(recipe, "train")
    result.ema.fit_latent_scale(x[:recipe.scale_samples].to(result.ema.latent_scale.device))
    return result


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


__all__ = ["AutoencoderRecipe", "DATASETS", "AUTOENCODER_TRAIN", "AUTOENCODER_SHAPES", "AUTOENCODER_FASHION", "images",
           "fit", "train", "evaluate_autoencoder"]

"""Image captioning: training the text autoencoder and the captioners through the shared loop.

The text autoencoder (:func:`fit_text_autoencoder`) trains first, on the training captions (L_rec + lambda KL), and its
latent scale is fitted after; a captioner (:func:`fit`) then trains on (image latent, caption) pairs with the text
autoencoder FROZEN - a flow captioner's targets are its text latents, computed once."""

from __future__ import annotations

from typing import Any, Callable

import torch

from ...core.build import build_model
from ...core.source import TokenBatch
from ...datasets import shapes as sw
from ...nn.autoencoder import ImageAutoencoder
from ...nn.text_autoencoder import TextAutoencoder
from ...training import EpochBatches, TrainResult
from ...utils import get_device
from .. import common
from ..common import Device
from .captioners import AutoregressiveCaptioner, AutoregressiveCaptionerConfig, DirectCaptioner, DirectCaptionerConfig
from .data import CaptionData, caption_targets, caption_tokens, prepare, training_batches
from .recipe import CaptionModelConfig, CaptionRecipe, TextAutoencoderRecipe


def build_captioner(cfg: CaptionModelConfig) -> torch.nn.Module:
    """The captioner a model config describes (randomly initialised)."""
    if isinstance(cfg, DirectCaptionerConfig):
        return DirectCaptioner(cfg)
    if isinstance(cfg, AutoregressiveCaptionerConfig):
        return AutoregressiveCaptioner(cfg)
    return build_model(cfg)


def fit(recipe: CaptionRecipe, data: CaptionData, *, name: str | None = None, resume: bool = True,
        callback: Callable[[int, dict[str, float]], None] | None = None, desc: str | None = None,
        device: Device = None) -> TrainResult:
    """Train the recipe's captioner on prepared data (resumable when ``name`` is given). Use ``.ema`` for captions."""
    if recipe.is_flow and data.text is None:
        raise ValueError("a flow captioner needs the text latents: prepare the data with the text autoencoder")
    return common.fit(recipe, training_batches(recipe, data), build=build_captioner, name=name, resume=resume,
                      callback=callback, desc=desc or recipe.kind, device=device)


def train(recipe: CaptionRecipe, *, autoencoder: ImageAutoencoder, text_autoencoder: TextAutoencoder | None = None,
          name: str | None = None, device: Device = None, **_: Any) -> TrainResult:
    """Prepare the training split (with the frozen text autoencoder's latents for a flow captioner) and train."""
    data = prepare(recipe, "train", autoencoder, text_autoencoder if recipe.is_flow else None)
    return fit(recipe, data, name=name, device=device)


# ---------------------------------------------------------------------------------------- text autoencoder
def text_autoencoder_batches(recipe: TextAutoencoderRecipe, tokens: TokenBatch,
                             targets: torch.Tensor) -> Callable[[int], tuple[TokenBatch, torch.Tensor]]:
    batches = EpochBatches(len(targets), recipe.train.batch_size, recipe.train.seed)

    def batch_fn(step: int) -> tuple[TokenBatch, torch.Tensor]:
        idx = batches(step)
        return tokens[idx], targets[idx]

    return batch_fn


def fit_text_autoencoder(recipe: TextAutoencoderRecipe, *, name: str | None = None, resume: bool = True,
                         callback: Callable[[int, dict[str, float]], None] | None = None,
                         device: Device = None) -> TrainResult:
    """Train the text autoencoder on the training captions (resumable when ``name`` is given); then fit the latent
    scale of the EMA model on ``scale_samples`` training captions."""
    captions = sw.load_shapes("train", recipe.shapes).captions
    tokens, targets = caption_tokens(captions, recipe.text), caption_targets(captions)
    device = get_device(device)
    result = common.fit(recipe, text_autoencoder_batches(recipe, tokens, targets), build=TextAutoencoder, name=name,
                        resume=resume, callback=callback, desc="text autoencoder", device=device)
    result.ema.fit_latent_scale(tokens[:recipe.scale_samples].to(device))
    return result


def train_text_autoencoder(recipe: TextAutoencoderRecipe, *, name: str | None = "text_autoencoder_shapes",
                           device: Device = None, **_: Any) -> TrainResult:
    """The registry's entry point: :func:`fit_text_autoencoder` under ``name``."""
    return fit_text_autoencoder(recipe, name=name, device=device)


__all__ = ["build_captioner", "fit", "train", "text_autoencoder_batches", "fit_text_autoencoder",
           "train_text_autoencoder"]

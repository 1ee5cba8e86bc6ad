"""Image captioning: the data a captioner trains and is measured on - ShapesWorld's images as latents (the image
autoencoder's posterior statistics, cached), their RICH captions as the decoders' word ids and, for the flow
captioners, as text latents of the frozen text autoencoder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from ...core.baseline import BaselineConfig
from ...core.source import TokenBatch
from ...datasets import shapes as sw
from ...latents import LatentSet, encode_images
from ...nn.autoencoder import ImageAutoencoder
from ...nn.text_autoencoder import TextAutoencoder
from ...nn.text_encoder import TextEncoder, TextEncoderConfig
from ...training import EpochBatches
from .captioners import image_token_batch
from .recipe import CaptionRecipe, caption_vocab


@dataclass
class CaptionData:
    """One split ready for captioning: the split, its image latents (posterior statistics), its captions' target
    ids ``(N, DECODER_LEN)`` (words, ``<eos>``, padding) and - for the flow captioners - its captions' text latents
    (the frozen text autoencoder's scaled posterior statistics)."""

    split: sw.ShapesWorldSplit
    images: LatentSet
    targets: torch.Tensor
    text: LatentSet | None = None

    def __len__(self) -> int:
        return len(self.split)


def caption_targets(captions: Sequence[str]) -> torch.Tensor:
    """Decoder targets of captions: word ids without ``<bos>`` ``(N, DECODER_LEN)``."""
    return caption_vocab().encode(list(captions))[:, 1:]


def caption_tokens(captions: Sequence[str], text: TextEncoderConfig) -> TokenBatch:
    """Frozen MiniLM tokens of captions (cached on disk), one row per caption."""
    return TextEncoder(text).encode(list(captions)).batch(slice(None))


@torch.no_grad()
def text_latents(text_ae: TextAutoencoder, tokens: TokenBatch, batch_size: int = 1024) -> LatentSet:
    """The frozen text autoencoder's scaled posterior mean and std of caption tokens, on the CPU."""
    text_ae.eval()
    device = text_ae.latent_scale.device
    means, stds = [], []
    for i in range(0, len(tokens), batch_size):
        mean, std = text_ae.stats(tokens[i:i + batch_size].to(device))
        means.append(mean.cpu())
        stds.append(std.cpu())
    return LatentSet(torch.cat(means), torch.cat(stds))


def prepare(recipe: CaptionRecipe, split: str, autoencoder: ImageAutoencoder,
            text_ae: TextAutoencoder | None = None) -> CaptionData:
    """Images -> latents (cached), captions -> target ids and (flow captioners, with ``text_ae``) text latents."""
    data = sw.load_shapes(split, recipe.shapes)
    images = encode_images(autoencoder, data.images_tensor())
    text = None
    if text_ae is not None:
        text = text_latents(text_ae, caption_tokens(data.captions, recipe.text_autoencoder.text))
    return CaptionData(data, images, caption_targets(data.captions), text)


def flow_source(recipe: CaptionRecipe, image_latents: torch.Tensor) -> torch.Tensor | TokenBatch:
    """What a flow captioner reads: the image latent itself (CrossFlow's Image VE) or its patch tokens (the
    cross-attention baseline)."""
    if isinstance(recipe.model, BaselineConfig):
        return image_token_batch(image_latents, recipe.image_patch)
    return image_latents


def training_batches(recipe: CaptionRecipe, data: CaptionData) -> Callable[[int], tuple[Any, torch.Tensor]]:
    """``step -> (source, target)``, a pure function of ``(seed, step)`` (exact resume). Image latents are posterior
    samples, as are text latents (the paper's training samples from the VAE posterior); the target is the text latent
    (flow captioners) or the caption's word ids (direct and autoregressive)."""
    batches = EpochBatches(len(data), recipe.train.batch_size, recipe.train.seed)

    def batch_fn(step: int) -> tuple[Any, torch.Tensor]:
        idx = batches(step)
        g = torch.Generator().manual_seed(recipe.train.seed * 1_000_003 + step)
        images = data.images.sample(idx, g)
        if recipe.is_flow:
            return flow_source(recipe, images), data.text.sample(idx, g)
        return images, data.targets[idx]

    return batch_fn



@torch.no_grad()
def image_latents(autoencoder: ImageAutoencoder, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Images ``(N, 3, 32, 32)`` in [-1, 1] -> the autoencoder's scaled posterior means, on the CPU (no disk cache:
    for generated or one-off images)."""
    autoencoder.eval()
    device = autoencoder.latent_scale.device
    return torch.cat([autoencoder.encode(images[i:i + batch_size].to(device)).cpu()
                      for i in range(0, len(images), batch_size)])


__all__ = ["CaptionData", "caption_targets", "caption_tokens", "text_latents", "prepare", "flow_source",
           "training_batches", "image_latents"]

"""Text to image: the data a recipe trains and is judged on.

One split (:func:`prepare`) is the split's images encoded to latents by the recipe's autoencoder (posterior
statistics, cached) and its captions encoded to frozen MiniLM tokens (cached); the data set is the autoencoder's,
ShapesWorld or Fashion-MNIST. :func:`training_batches` turns a prepared split into ``step -> batch``, a pure
function of ``(seed, step)`` so that an interrupted run resumes exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ...datasets import fashion as fm
from ...datasets import shapes as sw
from ...latents import LatentSet, encode_images
from ...nn.text_encoder import TextEmbeddings, TextEncoder
from ...training import EpochBatches, TrainConfig
from .recipe import T2IRecipe


@dataclass
class T2IData:
    """One split ready for the flow: the split (ShapesWorld or Fashion-MNIST), its caption tokens and its image
    latents."""

    split: sw.ShapesWorldSplit | fm.FashionSplit
    text: TextEmbeddings
    latents: LatentSet
    #: hard negatives (training split of a Text VE with ``hard_negatives > 0``): latents of the swapped pair scenes
    #: (:func:`~crossflow_mini.datasets.shapes.swapped_pairs`) and, per sample, its row there (-1 = none)
    negatives: LatentSet | None = None
    negative_of: np.ndarray | None = None


def hard_negatives_wanted(recipe: T2IRecipe) -> int:
    """How many hard negatives per sample the recipe's Text VE asks for (0 for the baseline and the paper's)."""
    return getattr(getattr(recipe.model, "source", None), "hard_negatives", 0)


def prepare(recipe: T2IRecipe, split: str, autoencoder: torch.nn.Module) -> T2IData:
    """Captions -> MiniLM tokens (cached) and images -> latents (cached) for one split of the recipe's data set
    (``recipe.autoencoder.dataset``: ShapesWorld train/val/test, Fashion-MNIST train/test)."""
    if recipe.autoencoder.dataset == "fashion":
        data = fm.load_fashion(split, recipe.autoencoder.fashion)
        images = data.images_tensor(recipe.autoencoder.fashion.image_size)
    else:
        data = sw.load_shapes(split, recipe.shapes)
        images = data.images_tensor()
    text = TextEncoder(recipe.text).encode(data.captions)
    latents = encode_images(autoencoder, images)
    if split != "train" or not hard_negatives_wanted(recipe):  # the recipe checked they are ShapesWorld's
        return T2IData(data, text, latents)
    rows, swapped = sw.swapped_pairs(data)
    negative_of = np.full(len(data), -1, dtype=np.int64)
    negative_of[rows] = np.arange(len(rows))
    return T2IData(data, text, latents, encode_images(autoencoder, sw.images_to_tensor(swapped)), negative_of)


def training_batches(data: T2IData, cfg: TrainConfig) -> Callable[[int], tuple[Any, ...]]:
    """``step -> (caption tokens, image latents)``: a pure function of ``(seed, step)`` (exact resume). The latents
    are posterior samples (the paper's training samples from the VAE posterior). Where ``data`` holds hard
    negatives, a third item follows: the swapped scenes of the batch's two-object samples (posterior samples too),
    extra wrong targets for the contrastive loss."""
    batches = EpochBatches(len(data.split), cfg.batch_size, cfg.seed)

    def batch_fn(step: int) -> tuple[Any, ...]:
        idx = batches(step)
        if data.negatives is None or data.negative_of is None:
            return data.text.batch(idx), data.latents.sample(idx)
        tokens, targets = data.text.batch(idx), data.latents.sample(idx)  # draws in this order: targets, negatives
        rows = data.negative_of[np.asarray(idx)]
        return tokens, targets, data.negatives.sample(torch.from_numpy(rows[rows >= 0]))

    return batch_fn


__all__ = ["T2IData", "hard_negatives_wanted", "prepare", "training_batches"]

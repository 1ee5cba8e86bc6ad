"""CrossFlow text-to-image on ShapesWorld: data preparation, joint training, and judging (work in progress).

Data: each ShapesWorld training image's latent (posterior statistics from the shipped autoencoder, cached) and
its caption's MiniLM tokens (cached). Training: :class:`~crossflow_mini.crossflow.CrossFlowModel` through the
shared loop. Evaluation: generate from held-out test captions, decode, and let the judge read the images back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ..checkpoints import run_dir
from ..config import AutoencoderRecipe, ShapesDataConfig, TextEncoderConfig, TrainConfig
from ..crossflow import CrossFlowConfig, CrossFlowModel
from ..datasets import shapes as sw
from ..judge import JudgeNet, read_scenes
from ..latents import LatentSet, encode_images
from ..text_encoder import TextEmbeddings, TextEncoder
from ..training import EpochBatches, TrainResult, train


@dataclass(frozen=True)
class T2IRecipe:
    """Everything that determines a ShapesWorld CrossFlow checkpoint."""

    model: CrossFlowConfig = CrossFlowConfig()
    train: TrainConfig = TrainConfig()
    shapes: ShapesDataConfig = ShapesDataConfig()
    text: TextEncoderConfig = TextEncoderConfig()
    autoencoder: AutoencoderRecipe = AutoencoderRecipe()
    sample_steps: int = 50


@dataclass
class T2IData:
    split: sw.ShapesWorldSplit
    text: TextEmbeddings
    latents: LatentSet


def prepare(recipe: T2IRecipe, split: str, autoencoder: torch.nn.Module) -> T2IData:
    """Captions -> MiniLM tokens (cached) and images -> latents (cached) for one ShapesWorld split."""
    data = sw.load_shapes(split, recipe.shapes)
    text = TextEncoder(recipe.text).encode(data.captions)
    latents = encode_images(autoencoder, data.images_tensor())
    return T2IData(data, text, latents)


def fit(recipe: T2IRecipe, data: T2IData, *, name: str | None = None,
        callback: Callable[[int, dict[str, float]], None] | None = None) -> TrainResult:
    """Joint training (L_FM + L_Enc + lambda L_KL) on prepared data; resumable when ``name`` is given."""
    torch.manual_seed(recipe.train.seed)
    model = CrossFlowModel(recipe.model)
    batches = EpochBatches(len(data.split), recipe.train.batch_size, recipe.train.seed)

    def loss_fn(m: CrossFlowModel, idx: torch.Tensor):
        tokens, mask = data.text.batch(idx)
        out = m.loss(tokens, mask, data.latents.sample(idx))
        return out.total, out.logs

    return train(model, loss_fn, batches, recipe.train, run_dir=run_dir(name, recipe) if name else None,
                 callback=callback, desc="CrossFlow")


@torch.no_grad()
def generate(model: CrossFlowModel, autoencoder: torch.nn.Module, tokens: torch.Tensor, mask: torch.Tensor,
             guidance_scale: float, steps: int, seed: int = 0, batch_size: int = 256) -> torch.Tensor:
    """Images ``(N, 3, 32, 32)`` in [-1, 1] for caption tokens."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(tokens), batch_size):
        z1 = model.generate(tokens[i:i + batch_size], mask[i:i + batch_size], guidance_scale, steps,
                            generator=g).sample
        out.append(autoencoder.decode(z1).clamp(-1, 1))
    return torch.cat(out)


def judge_single_objects(judge: JudgeNet, images: torch.Tensor, split: sw.ShapesWorldSplit) -> dict[str, Any]:
    """For single-object prompts: share of images with exactly one object of the right colour, shape and
    position (each attribute scored alone, and all together)."""
    scenes = read_scenes(judge, images)
    hits = {"one_object": 0, "colour": 0, "shape": 0, "position": 0, "all": 0}
    for i, read in enumerate(scenes):
        ok1 = len(read) == 1
        hits["one_object"] += ok1
        if not read:
            continue
        o = max(read, key=lambda r: r.area)  # the most prominent object
        c = o.colour == split.colours[i, 0]
        s = o.shape == split.shapes[i, 0]
        p = int(sw.position_of(np.array([o.centre]))[0]) == split.positions[i]
        hits["colour"] += c
        hits["shape"] += s
        hits["position"] += p
        hits["all"] += ok1 and c and s and p
    n = max(1, len(scenes))
    return {k: v / n for k, v in hits.items()} | {"n_prompts": len(scenes)}


def evaluate_single(model: CrossFlowModel, autoencoder: torch.nn.Module, judge: JudgeNet, recipe: T2IRecipe,
                    scales: tuple[float, ...], limit: int | None = None) -> dict[str, Any]:
    """Judge generations for the test split's single-object prompts, in-distribution and held-out apart."""
    test = prepare(recipe, "test", autoencoder)
    out: dict[str, Any] = {}
    single = test.split.kinds == sw.SCENE_KINDS.index("single")
    for label, which in (("in_distribution", single & ~test.split.heldout), ("heldout", single & test.split.heldout)):
        idx = np.flatnonzero(which)[:limit]
        sub = test.split.subset(idx)
        tokens, mask = test.text.batch(torch.from_numpy(idx))
        out[label] = {}
        for w in scales:
            t0 = time.perf_counter()
            images = generate(model, autoencoder, tokens, mask, w, recipe.sample_steps)
            res = judge_single_objects(judge, images, sub)
            res["seconds"] = round(time.perf_counter() - t0, 1)
            out[label][f"w={w:g}"] = res
    return out

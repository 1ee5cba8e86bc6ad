"""Text to image on your own image-caption pairs, with real pretrained parts from disk - the path to the paper's
setting (``paper`` profile: 256 px, SD-VAE latents 4 x 32 x 32, CLIP tokens 77 x 768, a DiT-B-sized velocity
transformer; docs/SCALING_UP.md).

Everything comes from local folders, nothing is downloaded: the frozen text encoder (any transformers model
folder: the CLIP ViT-L/14 text tower of the paper, T5, or the MiniLM default; :mod:`crossflow_mini.nn.text_encoder`),
the image autoencoder (any diffusers ``AutoencoderKL`` folder with its ``scaling_factor``, e.g. SD-VAE;
:func:`crossflow_mini.nn.autoencoder.load_pretrained_vae`) and the pairs (an image folder with ``metadata.jsonl``
or webdataset shards; :mod:`crossflow_mini.datasets.captioned`). The three folders are named by environment
variables (:func:`~crossflow_mini.tasks.t2i.recipe.local_parts`), which the registry puts into the recipe
(:func:`~crossflow_mini.tasks.t2i.recipe.with_local_parts`), together with the text model's token width and length,
so the Text VE is built for the encoder that is really there. The recipes are in
:mod:`crossflow_mini.tasks.t2i.recipe` (``T2I_FOLDER``, ``T2I_FOLDER_PAPER``).

Data (:func:`prepare`): caption tokens (cached) and scaled posterior statistics of the images (cached, encoded in
batches on the given device); training (:func:`fit`): the shared loop - so ``accelerate launch`` spreads it over
GPUs - with CrossFlow's joint loss. Measured (:func:`evaluate_folder_t2i`): the flow-matching loss on held-out
pairs (the ``validation`` or ``test`` split where the folder has one), at fixed draws.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import torch

from ...core.flow_model import FlowModel
from ...core.params import parameter_report
from ...datasets.captioned import CaptionedImages, has_split, load_captioned
from ...latents import LatentSet
from ...nn.text_encoder import TextEmbeddings, TextEncoder
from ...paths import cache_dir
from ...training import TrainResult
from ...utils import get_device, load_cache_entry, progress, save_tensors
from .. import common
from ..common import Device
from .data import T2IData, training_batches
from .recipe import VAE_ENV, FolderT2IRecipe


# ------------------------------------------------------------------------------------------------ data
def load_vae(recipe: FolderT2IRecipe, device: Device = None):
    """The recipe's pretrained autoencoder (frozen), on ``device``, checked against the flow model's latent shape."""
    from ...nn.autoencoder import load_pretrained_vae

    if recipe.vae.path is None:
        raise FileNotFoundError(f"no autoencoder folder is set: point {VAE_ENV} at a local diffusers AutoencoderKL "
                                f"folder (e.g. SD-VAE; docs/SCALING_UP.md)")
    ae = load_pretrained_vae(recipe.vae.path, scaling_factor=recipe.vae.scaling_factor,
                             image_size=recipe.data.image_size)
    if tuple(ae.latent_shape) != tuple(recipe.model.velocity.latent_shape):
        raise ValueError(f"the autoencoder in {recipe.vae.path} makes latents of shape {tuple(ae.latent_shape)} from "
                         f"{recipe.data.image_size} px images but the flow model expects "
                         f"{tuple(recipe.model.velocity.latent_shape)}: change the recipe's latent shape")
    return ae.to(get_device(device))


def _latents_key(ae: torch.nn.Module, pairs: CaptionedImages) -> str:
    h = hashlib.sha256()
    for k, v in sorted(ae.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().float().cpu().contiguous().numpy().tobytes())
    h.update(str(pairs.image_size).encode())
    for where, member in pairs.items:
        stat = os.stat(where)
        h.update(f"{where}|{member}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


@torch.no_grad()
def encode_pairs(ae: torch.nn.Module, pairs: CaptionedImages, batch_size: int = 64) -> LatentSet:
    """Scaled posterior mean and std of every image of ``pairs`` (read and encoded in batches on the autoencoder's
    device), cached on disk by the autoencoder's weights and the image files."""
    path = cache_dir() / "latents" / f"folder-{_latents_key(ae, pairs)}.safetensors"
    cached = load_cache_entry(path, ("mean", "std"))
    if cached is not None and len(cached["mean"]) == len(pairs):
        return LatentSet(cached["mean"], cached["std"])
    device = ae.latent_scale.device
    means, stds = [], []
    for images in progress(pairs.batches(batch_size), desc="latents", total=-(-len(pairs) // batch_size),
                           leave=False):
        post = ae.posterior(images.to(device))
        means.append((post.mean * ae.latent_scale).float().cpu())
        stds.append((post.std * ae.latent_scale).float().cpu())
    out = LatentSet(torch.cat(means), torch.cat(stds))
    save_tensors(path, {"mean": out.mean, "std": out.std})
    return out


def prepare(recipe: FolderT2IRecipe, split: str = "train", autoencoder: torch.nn.Module | None = None,
            device: Device = None) -> T2IData:
    """Caption tokens (cached) and image latents (cached) of one split of the folder."""
    pairs = load_captioned(recipe.data, split)
    text: TextEmbeddings = TextEncoder(recipe.text).encode(pairs.captions)
    ae = autoencoder if autoencoder is not None else load_vae(recipe, device)
    return T2IData(pairs, text, encode_pairs(ae, pairs))  # type: ignore[arg-type]


def held_out_split(recipe: FolderT2IRecipe) -> str | None:
    """The split the validation loss is measured on: ``validation``, else ``test``, else none."""
    return next((s for s in ("validation", "test") if has_split(recipe.data, s)), None)


# ------------------------------------------------------------------------------------------------ training
def fit(recipe: FolderT2IRecipe, data: T2IData, *, name: str | None = None, device: Device = None) -> TrainResult:
    """Train the recipe's CrossFlow model (joint loss) on prepared data; resumable when ``name`` is given."""
    return common.fit(recipe, training_batches(data, recipe.train), name=name, desc="CrossFlow (folder)",
                      device=device)


def train(recipe: FolderT2IRecipe, *, name: str | None = "t2i_folder", device: Device = None,
          **_: Any) -> TrainResult:
    """Prepare the folder's training pairs and train (resumable under ``name``)."""
    return fit(recipe, prepare(recipe, "train", device=device), name=name, device=device)


@torch.no_grad()
def validation_loss(model: FlowModel, data: T2IData, n: int, device: Device = None, seed: int = 0,
                    batch_size: int = 64) -> dict[str, float]:
    """Mean loss terms of the first ``n`` pairs of ``data`` at fixed draws (a CPU generator seeded by ``seed``)."""
    device = get_device(device)
    model.to(device).eval()
    g = torch.Generator().manual_seed(seed)
    totals: dict[str, float] = {}
    count = min(n, len(data.text))
    for i in range(0, count, batch_size):
        idx = torch.arange(i, min(count, i + batch_size))
        target = data.latents.mean[idx]
        t = torch.rand(len(idx), generator=g)
        uncond = torch.zeros(len(idx), dtype=torch.bool)  # the conditional flow
        out = model.loss(data.text.batch(idx).to(device), target.to(device), t=t.to(device), uncond=uncond)
        for k, v in out.logs.items():
            totals[k] = totals.get(k, 0.0) + v * len(idx)
    return {k: round(v / max(1, count), 5) for k, v in totals.items()} | {"n_pairs": count}


def evaluate_folder_t2i(model: FlowModel, recipe: FolderT2IRecipe, device: Device = None, **_: Any) -> dict[str, Any]:
    """Parameters, the number of training pairs, and the loss terms on held-out pairs (where the folder has a
    validation or test split)."""
    out: dict[str, Any] = {"parameters": parameter_report(model),
                           "sampler": {"method": recipe.sampling.sampler, "steps": recipe.sampling.steps},
                           "n_train_pairs": len(load_captioned(recipe.data, "train"))}
    split = held_out_split(recipe)
    if split is None:
        out["held_out"] = "none: the folder has no validation/ or test/ split"
        return out
    out["held_out"] = {"split": split, **validation_loss(model, prepare(recipe, split, device=device),
                                                         recipe.eval_pairs, device)}
    return out


__all__ = ["load_vae", "encode_pairs", "prepare", "held_out_split", "fit", "train", "validation_loss",
           "evaluate_folder_t2i"]

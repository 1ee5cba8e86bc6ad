"""Text to image on your own image-caption pairs, with real pretrained parts from disk - the path to the paper's
setting (``paper`` profile: 256 px, SD-VAE latents 4 x 32 x 32, CLIP tokens 77 x 768, a DiT-B-sized velocity
transformer; docs/SCALING_UP.md).

Everything comes from local folders, nothing is downloaded: the frozen text encoder (any transformers model
folder: the CLIP ViT-L/14 text tower of the paper, T5, or the MiniLM default; :mod:`crossflow_mini.text_encoder`),
the image autoencoder (any diffusers ``AutoencoderKL`` folder with its ``scaling_factor``, e.g. SD-VAE;
:func:`crossflow_mini.autoencoder.load_pretrained_vae`) and the pairs (an image folder with ``metadata.jsonl`` or
webdataset shards; :mod:`crossflow_mini.datasets.captioned`). The three folders are named by environment
variables (:func:`local_parts`), which the profiles put into the recipe (:func:`with_local_parts`), together
with the text model's token width and length, so the Text VE is built for the encoder that is really there.

Data (:func:`prepare`): caption tokens (cached) and scaled posterior statistics of the images (cached, encoded in
batches on the given device); training (:func:`fit`): the shared loop - so ``accelerate launch`` spreads it over
GPUs - with CrossFlow's joint loss. Measured (:func:`evaluate_folder_t2i`): the flow-matching loss on held-out
pairs (the ``validation`` or ``test`` split where the folder has one), at fixed draws.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from dataclasses import dataclass
from typing import Any

import torch

from ...checkpoints import run_dir
from ...core.build import build_model
from ...core.crossflow import CrossFlowConfig
from ...core.flow_model import FlowModel
from ...core.params import parameter_report
from ...core.source import TowerConfig
from ...core.text_ve import TextVEConfig
from ...core.transformer import VelocityTransformerConfig
from ...datasets.captioned import CaptionedImages, CaptionedImagesConfig, has_split, load_captioned
from ...latents import LatentSet
from ...paths import cache_dir
from ...nn.text_encoder import TextEmbeddings, TextEncoder, TextEncoderConfig, text_model_info, text_ve_for
from ...training import TrainConfig, TrainResult, train
from ...utils import get_device, load_cache_entry, progress, save_tensors
from .train import T2IData, flow_loss, training_batches

Device = torch.device | str | None

#: Environment variables naming the local parts (docs/SCALING_UP.md).
TEXT_MODEL_ENV = "CROSSFLOW_TEXT_MODEL"
VAE_ENV = "CROSSFLOW_VAE"
IMAGES_ENV = "CROSSFLOW_IMAGE_FOLDER"


@dataclass(frozen=True)
class PretrainedVAEConfig:
    """A local diffusers ``AutoencoderKL`` folder (``None`` until set: ``CROSSFLOW_VAE``) and the factor its latents
    are scaled by (``None``: the folder's ``scaling_factor``)."""

    path: str | None = None
    scaling_factor: float | None = None


@dataclass(frozen=True)
class FolderT2IRecipe:
    """Everything that determines a CrossFlow checkpoint trained on an image-caption folder: model, training run,
    data, text encoder and autoencoder (their folders are part of the recipe, so of its hash)."""

    model: CrossFlowConfig = CrossFlowConfig()
    train: TrainConfig = TrainConfig()
    data: CaptionedImagesConfig = CaptionedImagesConfig()
    text: TextEncoderConfig = TextEncoderConfig()
    vae: PretrainedVAEConfig = PretrainedVAEConfig()
    sample_steps: int = 50  # the public code's Euler steps (CROSSFLOW_NOTES Sec. 5)
    sampler: str = "euler"
    eval_pairs: int = 256  # held-out pairs the validation loss is measured on

    def __post_init__(self) -> None:
        source = self.model.source
        if isinstance(source, TextVEConfig) and self.text.max_tokens != source.max_tokens:
            raise ValueError(f"the text encoder keeps {self.text.max_tokens} tokens but the Text VE expects "
                             f"{source.max_tokens}: set both max_tokens to the same value (with_local_parts does)")
        factor = self.data.image_size // self.model.velocity.latent_shape[1]
        if factor * self.model.velocity.latent_shape[1] != self.data.image_size:
            raise ValueError(f"images of {self.data.image_size} px cannot give latents of side "
                             f"{self.model.velocity.latent_shape[1]}")


@dataclass(frozen=True)
class LocalParts:
    """The folders a user pointed the environment at (``None`` where unset)."""

    text_model: str | None
    vae: str | None
    images: str | None


def local_parts() -> LocalParts:
    """``CROSSFLOW_TEXT_MODEL``, ``CROSSFLOW_VAE`` and ``CROSSFLOW_IMAGE_FOLDER`` (empty = unset)."""
    return LocalParts(*(os.environ.get(k, "").strip() or None for k in (TEXT_MODEL_ENV, VAE_ENV, IMAGES_ENV)))


def with_local_parts(recipe: FolderT2IRecipe, parts: LocalParts | None = None) -> FolderT2IRecipe:
    """``recipe`` with the user's folders in it, and its Text VE built for the text model found there: the token
    width, the token scale (T5 x 10) and the token length (at most the recipe's ``max_tokens``) come from the
    model's config. Unset folders leave the recipe's values (CLIP-sized tokens in the ``paper`` profile)."""
    parts = local_parts() if parts is None else parts
    text, source = recipe.text, recipe.model.source
    if parts.text_model is not None:
        info = text_model_info(parts.text_model)
        source = text_ve_for(info, source, max_tokens=source.max_tokens)
        text = dataclasses.replace(text, model_path=parts.text_model, max_tokens=source.max_tokens)
    vae = recipe.vae if parts.vae is None else dataclasses.replace(recipe.vae, path=parts.vae)
    data = recipe.data if parts.images is None else dataclasses.replace(recipe.data, path=parts.images)
    return dataclasses.replace(recipe, model=dataclasses.replace(recipe.model, source=source), text=text, vae=vae,
                               data=data)


def paper_recipe(train_cfg: TrainConfig) -> FolderT2IRecipe:
    """The paper-scale recipe (``paper`` profile): 256 px images, SD-VAE latents 4 x 32 x 32, CLIP ViT-L/14 tokens
    77 x 768, and a DiT-B/2 velocity transformer (width 768, depth 12, 12 heads, 2 x 2 patches: 256 tokens; sincos
    positions and the indicator as a label embedding, as in the DiT backbone of the public code). The Text VE
    follows the public code's shape (CROSSFLOW_NOTES Sec. 2): transformer layers at the token width, three halving
    reduction layers (768 -> 96), flatten, one linear map to (mu, logvar); its depth (4) is ours, and so is the
    contrastive tower (three convs, 64-128-256 channels)."""
    latent = (4, 32, 32)
    source = TextVEConfig(token_dim=768, width=768, depth=4, heads=12, max_tokens=77, latent_shape=latent,
                          reduction_layers=3, kl_form="code",
                          tower=TowerConfig(in_shape=latent, channels=(64, 128, 256)))
    velocity = VelocityTransformerConfig(latent_shape=latent, patch_size=2, width=768, depth=12, heads=12,
                                         time_dim=256, pos_embed="sincos", indicator="embedding")
    return FolderT2IRecipe(model=CrossFlowConfig(source=source, velocity=velocity), train=train_cfg,
                           data=CaptionedImagesConfig(image_size=256), text=TextEncoderConfig(max_tokens=77),
                           vae=PretrainedVAEConfig())


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
    torch.manual_seed(recipe.train.seed)
    model = build_model(recipe.model)
    return train(model, flow_loss, training_batches(data, recipe.train), recipe.train,
                 run_dir=run_dir(name, recipe) if name else None, desc="CrossFlow (folder)",
                 device=get_device(device))


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


def evaluate_folder_t2i(model: FlowModel, recipe: FolderT2IRecipe, device: Device = None) -> dict[str, Any]:
    """Parameters and the loss terms on held-out pairs (where the folder has a validation or test split)."""
    out: dict[str, Any] = {"parameters": parameter_report(model),
                           "sampler": {"method": recipe.sampler, "steps": recipe.sample_steps}}
    split = held_out_split(recipe)
    if split is None:
        out["held_out"] = "none: the folder has no validation/ or test/ split"
        return out
    out["held_out"] = {"split": split, **validation_loss(model, prepare(recipe, split, device=device),
                                                         recipe.eval_pairs, device)}
    return out


def train_folder_t2i(recipe: FolderT2IRecipe, name: str = "t2i_folder",
                     device: Device = None) -> tuple[FlowModel, dict[str, Any]]:
    """Prepare, train (resumable) and measure; returns ``(EMA model, metrics)``. A helper process of a launched
    multi-process run trains its share and measures nothing."""
    from ... import distributed

    data = prepare(recipe, "train", device=device)
    t0 = time.perf_counter()
    result = fit(recipe, data, name=name, device=device)
    seconds = time.perf_counter() - t0
    if not distributed.is_main_process():
        return result.model, {}
    metrics: dict[str, Any] = {
        "train_seconds_this_run": round(seconds, 1), "train_steps": recipe.train.steps,
        "resumed_from_step": result.resumed_from, "n_train_pairs": len(data.text),
        "train_seconds_all_parts": None if result.seconds is None else round(result.seconds, 1),
        "final_losses": {k: round(v[-1], 5) for k, v in result.history.items() if v and k != "step"},
        "device": str(get_device(device)), "torch_threads": torch.get_num_threads(),
    }
    if result.resumed_from == 0 and seconds > 0:
        metrics["train_samples_per_second"] = round(recipe.train.steps * recipe.train.batch_size / seconds, 1)
    metrics |= evaluate_folder_t2i(result.ema, recipe, device)
    return result.ema, metrics


__all__ = ["TEXT_MODEL_ENV", "VAE_ENV", "IMAGES_ENV", "PretrainedVAEConfig", "FolderT2IRecipe", "LocalParts",
           "local_parts", "with_local_parts", "paper_recipe", "load_vae", "encode_pairs", "prepare", "fit",
           "validation_loss", "evaluate_folder_t2i", "train_folder_t2i"]

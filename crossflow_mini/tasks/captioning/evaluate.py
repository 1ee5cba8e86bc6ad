"""Image captioning: captioning images and measuring the captions (paper Table 4).

BLEU-4, ROUGE-L and CIDEr-D against the scene's paraphrases, and scene accuracy - the caption parsed back with the
grammar and compared with the image's true attributes - per scene kind, held-out (shape, colour) combinations apart,
with the parse rate. The guidance scale of a flow captioner is chosen on VALIDATION images (scene exact match) and
reported on TEST images. The text autoencoder is measured by its test reconstruction."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ...core.flow_model import FlowModel
from ...core.params import count_parameters, parameter_report, sampling_parameters
from ...datasets import shapes as sw
from ...datasets.shapes_text import normalise
from ...eval.captions import caption_metrics, scene_scores
from ...nn.autoencoder import ImageAutoencoder
from ...nn.text_autoencoder import TextAutoencoder
from ...utils import get_device
from ..common import Device, choose_scale, scale_key
from .data import CaptionData, caption_tokens, flow_source, prepare
from .recipe import CaptionRecipe, TextAutoencoderRecipe, caption_vocab


@dataclass(frozen=True)
class CaptionEvalConfig:
    """How captioners are measured: the guidance ``scales`` swept on the first ``choose_images`` validation images
    (scene exact match picks one), then the test images (``max_images`` of them; None = all) at that scale and at
    w = 1. ``n_examples`` captions are kept in the results."""

    scales: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0)
    choose_images: int = 500
    max_images: int | None = None
    batch_size: int = 500
    seed: int = 0
    n_examples: int = 12


@torch.no_grad()
def caption_ids(model: torch.nn.Module, recipe: CaptionRecipe, image_latents: torch.Tensor,
                text_ae: TextAutoencoder | None = None, *, guidance_scale: float | None = None,
                steps: int | None = None, generator: torch.Generator | None = None,
                batch_size: int = 500, device: Device = None) -> torch.Tensor:
    """Word ids ``(N, DECODER_LEN)`` (on the CPU) for image latents ``(N, 4, 8, 8)``: a flow captioner flows from
    the image (CrossFlow: z0 from the Image VE drawn with ``generator``; the baseline: noise) to a text latent and the
    frozen decoder reads it; the direct and autoregressive captioners decode directly."""
    device = get_device(device)
    model.to(device).eval()
    out = []
    for i in range(0, len(image_latents), batch_size):
        x = image_latents[i:i + batch_size].to(device)
        if isinstance(model, FlowModel):
            if text_ae is None:
                raise ValueError("a flow captioner needs the text autoencoder to decode its text latents")
            z = model.generate(flow_source(recipe, x), guidance_scale=guidance_scale,
                               steps=steps or recipe.sampling.steps, method=recipe.sampling.sampler,
                               generator=generator).sample
            ids = text_ae.to(device).decode(z)
        else:
            ids = model.caption_ids(x)
        out.append(ids.cpu())
    return torch.cat(out)


def captions_of(model: torch.nn.Module, recipe: CaptionRecipe, image_latents: torch.Tensor,
                text_ae: TextAutoencoder | None = None, **kw) -> list[str]:
    """Caption strings for image latents (see :func:`caption_ids`)."""
    return caption_vocab().decode(caption_ids(model, recipe, image_latents, text_ae, **kw))


def _rounded(d: dict[str, float]) -> dict[str, float]:
    return {k: (round(v, 4) if isinstance(v, float) and v == v else v) for k, v in d.items()}


def score_captions(captions: Sequence[str], split: sw.ShapesWorldSplit, idx: np.ndarray) -> dict[str, Any]:
    """Caption metrics (x 100, against the scene's paraphrases) and scene accuracy of captions of the images
    ``idx`` of ``split``: overall, per scene kind, and in-distribution / held-out combinations apart."""
    idx = np.asarray(idx)
    refs = [split.paraphrases(int(i)) for i in idx]
    attrs = [split.attributes(int(i)) for i in idx]
    out: dict[str, Any] = {"n_images": len(idx), "metrics": _rounded(caption_metrics(list(captions), refs)),
                           "scene": _rounded(scene_scores(list(captions), attrs))}
    kinds = split.kinds[idx]
    heldout = split.heldout[idx]
    groups: dict[str, np.ndarray] = {kind: kinds == k for k, kind in enumerate(sw.SCENE_KINDS)}
    groups |= {"in_distribution": ~heldout, "heldout_combinations": heldout}
    for kind in sw.SCENE_KINDS:
        groups[f"{kind}_heldout_combinations"] = (kinds == sw.SCENE_KINDS.index(kind)) & heldout
    out["groups"] = {}
    for group, mask in groups.items():
        if mask.any():
            sel = np.flatnonzero(mask)
            out["groups"][group] = _rounded(scene_scores([captions[j] for j in sel], [attrs[j] for j in sel]))
    return out


def caption_split(model: torch.nn.Module, recipe: CaptionRecipe, data: CaptionData, idx: np.ndarray,
                  text_ae: TextAutoencoder | None, scale: float | None, eval_cfg: CaptionEvalConfig,
                  device: Device = None) -> dict[str, Any]:
    """Caption the images ``idx`` of prepared data (posterior-mean latents) at one guidance scale and score them."""
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(eval_cfg.seed)
    caps = captions_of(model, recipe, data.images.mean[torch.from_numpy(np.asarray(idx))], text_ae,
                       guidance_scale=scale, generator=g, batch_size=eval_cfg.batch_size, device=device)
    seconds = time.perf_counter() - t0
    res = score_captions(caps, data.split, idx)
    res["ms_per_image"] = round(1000 * seconds / max(1, len(idx)), 3)
    res["examples"] = [{"index": int(i), "caption": c, "truth": data.split.captions[int(i)]}
                       for i, c in zip(idx[:eval_cfg.n_examples], caps)]
    return res


def captioner_parameters(model: torch.nn.Module, text_ae: TextAutoencoder | None) -> dict[str, Any]:
    """Parameters a captioner samples with (a flow captioner's frozen text decoder counted) and its report."""
    rep = parameter_report(model)
    decoder = count_parameters(text_ae.decoder) if text_ae is not None else 0
    rep["text_decoder"] = decoder
    rep["captioning"] = sampling_parameters(model) + decoder
    return rep


def evaluate_captioner(model: torch.nn.Module, recipe: CaptionRecipe, autoencoder: ImageAutoencoder,
                       text_ae: TextAutoencoder | None, eval_cfg: CaptionEvalConfig,
                       device: Device = None) -> dict[str, Any]:
    """The numbers of ``data/results/<captioner>.json``: a guidance sweep on validation images (flow captioners;
    picks the scale by scene exact match), then the test images at the chosen scale and at w = 1 (CFG off)."""
    model.eval()
    val = prepare(recipe, "val", autoencoder)
    test = prepare(recipe, "test", autoencoder)
    out: dict[str, Any] = {"kind": recipe.kind, "parameters": captioner_parameters(model, text_ae)}
    val_idx = np.arange(min(eval_cfg.choose_images, len(val)))
    test_idx = np.arange(len(test) if eval_cfg.max_images is None else min(eval_cfg.max_images, len(test)))
    kw = dict(text_ae=text_ae, eval_cfg=eval_cfg, device=device)
    if isinstance(model, FlowModel):
        out["sampler"] = {"method": recipe.sampling.sampler, "steps": recipe.sampling.steps}
        out["val_sweep"] = {scale_key(w): caption_split(model, recipe, val, val_idx, scale=w, **kw)
                            for w in eval_cfg.scales}
        for res in out["val_sweep"].values():
            res.pop("examples")
        chosen = choose_scale(out["val_sweep"], lambda r: r["scene"]["scene"])
        out["chosen_scale"] = chosen
        out["test"] = caption_split(model, recipe, test, test_idx, scale=chosen, **kw)
        out["test_cfg_off"] = caption_split(model, recipe, test, test_idx, scale=1.0, **kw)
    else:
        out["test"] = caption_split(model, recipe, test, test_idx, scale=None, **kw)
    return out


@torch.no_grad()
def evaluate_text_autoencoder(model: TextAutoencoder, recipe: TextAutoencoderRecipe, split: str = "test",
                              limit: int | None = None, batch_size: int = 1024) -> dict[str, Any]:
    """Reconstruction on ``split`` (default the test split, never seen in training): exact caption (normalised
    text) and scene accuracy of the parsed reconstruction, from the posterior mean and from one sample; captions
    with test-only wording (words the decoder never saw) apart."""
    model.eval()
    data = sw.load_shapes(split, recipe.shapes)
    n = len(data) if limit is None else min(limit, len(data))
    tokens = caption_tokens(data.captions[:n], recipe.text)
    vocab = caption_vocab()
    device = model.latent_scale.device
    g = torch.Generator().manual_seed(0)
    truth = [normalise(c) for c in data.captions[:n]]
    attrs = [data.attributes(i) for i in range(n)]
    novel = np.asarray(data.test_only_wording[:n], dtype=bool)
    out: dict[str, Any] = {"split": split, "n_captions": n, "latent_scale": round(float(model.latent_scale), 5),
                           "latent_shape": list(model.latent_shape), "parameters": parameter_report(model)}
    for how in ("mean", "sample"):
        decoded: list[str] = []
        for i in range(0, n, batch_size):
            z = model.latents(tokens[i:i + batch_size].to(device), sample=how == "sample", generator=g)
            decoded += vocab.decode(model.decode(z).cpu())
        exact = np.array([a == b for a, b in zip(decoded, truth)])
        res = {"exact_caption": round(float(exact.mean()), 4),
               "scene": _rounded(scene_scores(decoded, attrs))}
        if novel.any():
            res["test_only_wording"] = {
                "n": int(novel.sum()), "exact_caption": round(float(exact[novel].mean()), 4),
                "scene": round(scene_scores([d for d, k in zip(decoded, novel) if k],
                                            [a for a, k in zip(attrs, novel) if k])["scene"], 4)}
            res["train_wording_exact_caption"] = round(float(exact[~novel].mean()), 4)
        out[f"from_{how}"] = res
    out["examples"] = [{"caption": data.captions[i], "decoded": d} for i, d in enumerate(decoded[:8])]
    return out



def evaluate(model: torch.nn.Module, recipe: CaptionRecipe, *, sizes: CaptionEvalConfig, autoencoder: ImageAutoencoder,
             text_autoencoder: TextAutoencoder | None = None, device: Device = None, **_: Any) -> dict[str, Any]:
    """The measurements of a captioner checkpoint (:func:`evaluate_captioner`), as the registry calls them."""
    return evaluate_captioner(model, recipe, autoencoder, text_autoencoder if recipe.is_flow else None, sizes,
                              device)


def evaluate_text_autoencoder_checkpoint(model: TextAutoencoder, recipe: TextAutoencoderRecipe,
                                         **_: Any) -> dict[str, Any]:
    """The measurements of the text autoencoder checkpoint (:func:`evaluate_text_autoencoder`)."""
    return evaluate_text_autoencoder(model, recipe)


__all__ = ["CaptionEvalConfig", "caption_ids", "captions_of", "score_captions", "caption_split",
           "captioner_parameters", "evaluate_captioner", "evaluate_text_autoencoder", "evaluate",
           "evaluate_text_autoencoder_checkpoint"]

"""The training schedule of the CrossFlow captioner, measured once (``reproduce captioning_schedule``).

The shipped captioner trains in two stages (:mod:`~crossflow_mini.tasks.captioning.train`): the text autoencoder first,
then CrossFlow image -> text with the text autoencoder FROZEN, its latents fixed targets. For text-to-image the paper
trains the source encoder jointly with the flow (Table 3e: joint beats two-stage); for captioning it does not say
whether the TARGET side (Text VE and decoder) keeps training. The alternative measured here:

* ``frozen`` - the shipped schedule: Image VE + velocity trained on the frozen text autoencoder's latents;
* ``joint`` - the same start (the shipped text autoencoder) and the same steps, but every part in one optimiser:
  L = L_FM + L_Enc + lambda KL_image  +  L_rec + lambda KL_text, the FM loss reaching the Text VE through its
  latents (the targets move while the flow learns them), the decoder kept readable by L_rec.

Both runs are scored on validation images (scene exact match and parse rate, at w = 1 and at the study's
``ScheduleConfig.scale``, 4 - the stored study's weight; the shipped captioner's own weight, chosen on validation
images, is 2), each decoded by its own text decoder.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .. import registry
from ..checkpoints import run_dir
from ..core.crossflow import CrossFlowModel
from ..core.source import TokenBatch
from ..nn.text_autoencoder import TextAutoencoder
from ..nn.text_decoder import reconstruction_loss
from ..profiles import Profile
from ..tasks.captioning.data import caption_targets, caption_tokens, prepare, training_batches
from ..tasks.captioning.evaluate import CaptionEvalConfig, caption_split
from ..tasks.captioning.recipe import CaptionRecipe
from ..tasks.captioning.train import build_captioner
from ..training import EpochBatches, train
from ..utils import get_device
from .configs import ScheduleConfig

SCHEDULES = ("frozen", "joint")


class JointCaptioner(nn.Module):
    """CrossFlow image -> text and the text autoencoder in one module, trained by one loss (the ``joint``
    schedule). The text latents are scaled by the text autoencoder's (fixed) latent scale."""

    def __init__(self, flow: CrossFlowModel, text: TextAutoencoder):
        super().__init__()
        self.flow, self.text = flow, text

    def loss(self, images: torch.Tensor, tokens: TokenBatch, targets: torch.Tensor) -> tuple[torch.Tensor, dict]:
        out = self.text.encoder(tokens)
        rec = reconstruction_loss(self.text.decoder(out.z0), targets, self.text.cfg.decoder.pad_id)
        text_kl = self.text.encoder.losses(out, tokens, None)["total"]
        flow = self.flow.loss(images, out.z0 * self.text.latent_scale)  # the FM gradient reaches the Text VE
        logs = {**flow.logs, "rec": float(rec.detach()), "text_kl": float(text_kl.detach())}
        return flow.total + rec + text_kl, logs


def run_schedules(recipe: CaptionRecipe, text_ae: TextAutoencoder, autoencoder: torch.nn.Module,
                  cfg: ScheduleConfig, eval_cfg: CaptionEvalConfig, name: str | None = "captioning_schedule",
                  device: Any = None) -> dict[str, Any]:
    """Train both schedules for ``cfg.steps`` steps from the same start and score them on validation images."""
    device = get_device(device)
    run = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, steps=cfg.steps))
    data = prepare(run, "train", autoencoder, text_ae)
    val = prepare(run, "val", autoencoder)
    idx = np.arange(min(cfg.val_images, len(val)))
    out: dict[str, Any] = {"steps": cfg.steps, "batch_size": run.train.batch_size}
    for schedule in SCHEDULES:
        torch.manual_seed(run.train.seed)
        flow = build_captioner(run.model)
        t0 = time.perf_counter()
        if schedule == "frozen":
            batches = _frozen_batches(run, data)
            model: nn.Module = flow
            loss_fn: Callable = lambda m, b: (lambda o: (o.total, o.logs))(m.loss(*b))
        else:
            text = copy.deepcopy(text_ae).train().requires_grad_(True)
            model = JointCaptioner(flow, text)
            batches = _joint_batches(run, data)
            loss_fn = lambda m, b: m.loss(*b)
        res = train(model, loss_fn, batches, run.train, run_dir=run_dir(f"{name}_{schedule}", run) if name else None,
                    desc=f"schedule {schedule}", device=device)
        seconds = time.perf_counter() - t0
        ema = res.ema
        flow_ema, text_ema = (ema, text_ae) if schedule == "frozen" else (ema.flow, ema.text)
        scores = {}
        for w in dict.fromkeys((1.0, cfg.scale)):
            r = caption_split(flow_ema, run, val, idx, text_ema.eval(), w, eval_cfg, device)
            scores[f"w={w:g}"] = {"scene": r["scene"]["scene"], "parsed": r["scene"]["parsed"],
                                  "groups": {k: r["groups"][k]["scene"] for k in ("single", "pair", "count")
                                             if k in r["groups"]}, "metrics": r["metrics"]}
        out[schedule] = {"val": scores, "train_seconds": round(seconds, 1),
                         "final_losses": {k: round(v[-1], 5) for k, v in res.history.items() if v and k != "step"}}
    return out


def _frozen_batches(recipe: CaptionRecipe, data) -> Callable[[int], tuple[torch.Tensor, torch.Tensor]]:
    return training_batches(recipe, data)


def _joint_batches(recipe: CaptionRecipe, data) -> Callable[[int], tuple[torch.Tensor, TokenBatch, torch.Tensor]]:
    """``step -> (image latents, caption tokens, target ids)``: the frozen schedule's images, in the same order."""
    tokens = caption_tokens(data.split.captions, recipe.text_autoencoder.text)
    tokens = TokenBatch(tokens.tokens.half(), tokens.mask)  # half the memory; cast back per batch
    targets = caption_targets(data.split.captions)
    batches = EpochBatches(len(data), recipe.train.batch_size, recipe.train.seed)

    def batch_fn(step: int):
        idx = batches(step)
        g = torch.Generator().manual_seed(recipe.train.seed * 1_000_003 + step)
        t = tokens[idx]
        return data.images.sample(idx, g), TokenBatch(t.tokens.float(), t.mask), targets[idx]

    return batch_fn


def config(profile: Profile) -> dict[str, Any]:
    """What the study measures for a profile (stored beside its numbers)."""
    return {"schedule": profile.caption_schedule, "eval": profile.caption_eval,
            "caption_crossflow": registry.recipe("caption_crossflow", profile)}


def run(profile: Profile) -> tuple[Any, dict[str, Any]]:
    """The study for a profile: ``(config, metrics)`` of ``data/results/captioning_schedule.json``."""
    cfg = config(profile)
    recipe = cfg["caption_crossflow"]
    return cfg, run_schedules(recipe, registry.load("text_autoencoder_shapes", profile, recipe=recipe.text_autoencoder),
                              registry.load("autoencoder_shapes", profile, recipe=recipe.autoencoder),
                              profile.caption_schedule, profile.caption_eval, device=profile.device)


__all__ = ["SCHEDULES", "JointCaptioner", "run_schedules", "config", "run"]

"""Super-resolution: predicting and measuring (paper Table 6).

Metrics (:mod:`crossflow_mini.eval.sr`): PSNR and SSIM per patch, FID and KID across halves of the test patches with
their real-vs-real floor. The guidance scale of each flow model is **chosen on the validation photograph** and
reported on the test photographs (:func:`evaluate_sr`)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from ...core.baseline import BaselineConfig
from ...core.crossflow import CrossFlowConfig
from ...core.params import parameter_report
from ...datasets.superres import SRSplit, photo_counts
from ...eval.sr import SRFIDReference, psnr_ssim, sr_metrics
from ...utils import get_device
from ..common import Device, choose_scale, method_of, scale_key
from .data import prepare
from .recipe import SRRecipe, row_name, source_of

#: Metrics a validation sweep can choose the guidance scale by, and whether larger is better.
CHOICE_METRICS = {"psnr": True, "ssim": True, "kid": False, "fid": False}


@dataclass(frozen=True)
class SREvalConfig:
    """How a super-resolution model is measured (:func:`evaluate_sr`).

    ``scales``: guidance scales tried on the validation photograph; the one with the best ``choose_by`` metric
    (ties: the smaller w, which is cheaper) is used on the test photographs. ``n_val`` / ``n_test``: evenly thinned
    patch counts (``None``: all 124 / 417 at 32 pixels). ``fid``: FID and KID on the test patches (about 0.12 s a
    patch on 2 CPU cores, once for the real patches and once per scored model). ``timing_batch``: patches in the
    batch that measures ms/patch."""

    scales: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0)
    choose_by: str = "psnr"
    n_val: int | None = None
    n_test: int | None = None
    fid: bool = True
    val_fid: bool = False  # FID / KID on the validation patches too (needed when choose_by is "fid" or "kid")
    batch_size: int = 128
    seed: int = 0
    timing_batch: int = 64

    def __post_init__(self) -> None:
        if self.choose_by not in CHOICE_METRICS:
            raise ValueError(f"choose_by must be one of {sorted(CHOICE_METRICS)}, got {self.choose_by!r}")
        if self.choose_by in ("fid", "kid") and not self.val_fid:
            raise ValueError(f"choosing the guidance scale by {self.choose_by} needs val_fid=True")
        if not self.scales:
            raise ValueError("give at least one guidance scale")


# ------------------------------------------------------------------------------------------------ sampling
@torch.no_grad()
def super_resolve(model: torch.nn.Module, upsampled: torch.Tensor, *, guidance_scale: float = 1.0,
                  steps: int = 10, method: str = "euler", seed: int = 0, batch_size: int = 128,
                  device: Device = None) -> torch.Tensor:
    """HR images ``(N, C, H, W)`` in [-1, 1], on the CPU, from upsampled LR images in [-1, 1]: CrossFlow flows from
    them (its source encoder's z0), the baseline from noise reading them as a condition, regression predicts in one
    pass. Random draws (the source noise of CrossFlow's ``noise`` / ``ve`` sources, the baseline's noise) come from a
    CPU generator seeded with ``seed``: the same numbers on any device."""
    device = get_device(device)
    model.to(device)
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(upsampled), batch_size):
        x = upsampled[i:i + batch_size].to(device)
        res = model.generate(x, guidance_scale=guidance_scale, steps=steps, method=method, generator=g)
        out.append(res.sample.clamp(-1, 1).cpu())
    return torch.cat(out)


def sample_recipe(model: torch.nn.Module, recipe: SRRecipe, upsampled: torch.Tensor, guidance_scale: float = 1.0,
                  seed: int = 0, batch_size: int = 128, device: Device = None) -> torch.Tensor:
    """:func:`super_resolve` with the recipe's solver and steps."""
    return super_resolve(model, upsampled, guidance_scale=guidance_scale, steps=recipe.sampling.steps,
                         method=recipe.sampling.sampler, seed=seed, batch_size=batch_size, device=device)


def ms_per_patch(model: torch.nn.Module, recipe: SRRecipe, upsampled: torch.Tensor, guidance_scale: float,
                 device: Device = None) -> float:
    """Wall-clock milliseconds per patch for one batch (upsampled image -> HR prediction), best of 2."""
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        sample_recipe(model, recipe, upsampled, guidance_scale, batch_size=len(upsampled), device=device)
        best = min(best, time.perf_counter() - t0)
    return round(1000 * best / len(upsampled), 2)


# ---------------------------------------------------------------------------------------------- evaluation
def guided(recipe: SRRecipe) -> bool:
    """Whether the model has a guidance scale to choose (the flow models trained with an unconditional share)."""
    m = recipe.model
    if isinstance(m, CrossFlowConfig):
        return m.guidance.p_uncond > 0
    return isinstance(m, BaselineConfig) and m.p_uncond > 0


def score(pred: torch.Tensor, data: SRSplit, reference: SRFIDReference | None = None,
          fid: bool = True) -> dict[str, Any]:
    """:func:`~crossflow_mini.eval.sr.sr_metrics` of predictions for ``data`` (FID / KID against ``reference``)."""
    if not fid:
        return psnr_ssim(pred, data.hr)
    return sr_metrics(pred, data.hr, reference=reference)


def rounded(d: dict[str, Any], digits: int = 4) -> dict[str, Any]:
    return {k: round(v, digits) if isinstance(v, float) else v for k, v in d.items()}


def evaluate_sr(model: torch.nn.Module, recipe: SRRecipe, eval_cfg: SREvalConfig, device: Device = None, *,
                test_reference: SRFIDReference | None = None,
                val_reference: SRFIDReference | None = None) -> dict[str, Any]:
    """The numbers of a checkpoint's results (``data/results/sr_crossflow.json`` ...): a guidance sweep on the
    validation photograph (which picks w), the test photographs at that w (PSNR, SSIM, FID, KID with floors) and at
    w = 1 (CFG off), bicubic on the same test patches, ms/patch and the parameters. Pass the references to share the
    real Inception features."""
    model.eval()
    val = prepare(recipe, "val", eval_cfg.n_val)
    test = prepare(recipe, "test", eval_cfg.n_test)
    kw = dict(seed=eval_cfg.seed, batch_size=eval_cfg.batch_size, device=device)
    scales = eval_cfg.scales if guided(recipe) else (1.0,)
    if eval_cfg.fid and test_reference is None:
        test_reference = SRFIDReference(test.hr, eval_cfg.seed)
    if eval_cfg.val_fid and val_reference is None:
        val_reference = SRFIDReference(val.hr, eval_cfg.seed)
    out: dict[str, Any] = {"row": row_name(recipe), "method": method_of(recipe.model),
                           "source": source_of(recipe.model),
                           "sampler": {"method": recipe.sampling.sampler, "steps": recipe.sampling.steps},
                           "parameters": parameter_report(model), "photos": photo_counts(),
                           "n_val": len(val), "n_test": len(test)}
    sweep = {}
    for w in scales:
        pred = sample_recipe(model, recipe, val.upsampled, w, **kw)
        sweep[scale_key(w)] = rounded(score(pred, val, val_reference, eval_cfg.val_fid))
    out["val_sweep"] = sweep
    out["chosen_scale"] = chosen = choose_scale(sweep, eval_cfg.choose_by, CHOICE_METRICS[eval_cfg.choose_by]) \
        if len(scales) > 1 else scales[0]
    out["chosen_by"] = f"validation {eval_cfg.choose_by}"
    out["test"] = rounded(score(sample_recipe(model, recipe, test.upsampled, chosen, **kw), test, test_reference,
                                 eval_cfg.fid))
    if chosen != 1.0:
        out["test_cfg_off"] = rounded(score(sample_recipe(model, recipe, test.upsampled, 1.0, **kw), test,
                                             test_reference, eval_cfg.fid))
    out["bicubic_test"] = rounded(score(test.upsampled, test, test_reference, eval_cfg.fid))
    out["ms_per_patch"] = ms_per_patch(model, recipe, test.upsampled[:eval_cfg.timing_batch], chosen, device)
    out["device"] = str(get_device(device))
    return out


def evaluate(model: torch.nn.Module, recipe: SRRecipe, *, sizes: SREvalConfig, device: Device = None,
             **_: Any) -> dict[str, Any]:
    """The measurements of a super-resolution checkpoint (:func:`evaluate_sr`), as the registry calls them."""
    return evaluate_sr(model, recipe, sizes, device)


__all__ = ["CHOICE_METRICS", "SREvalConfig", "rounded", "super_resolve", "sample_recipe", "ms_per_patch", "guided", "score",
           "evaluate_sr", "evaluate"]

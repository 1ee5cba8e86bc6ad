"""Monocular depth: predicting and measuring (paper Table 5).

Metrics (:mod:`crossflow_mini.eval.depth`, written once and tested in closed form): AbsRel, SqRel, RMSE, log-RMSE,
delta < 1.25^k, per image then averaged over images - as predicted (metric depth, the paper's KITTI / NYUv2 setting),
and after a per-image least-squares scale and shift in depth and in inverse depth. The guidance scale is *chosen* on
the validation split (lowest unaligned AbsRel) and *reported* on the test split. Zero-shot: the real Middlebury
Motorcycle (:mod:`crossflow_mini.datasets.stereo`), aligned in inverse depth as Marigold and the paper's Table 9 do.

Every function takes a ``device`` (default: :func:`crossflow_mini.utils.get_device`); models and batches go there,
predictions come back on the CPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ...core.params import parameter_report, sampling_parameters
from ...core.sampling import ENSEMBLES
from ...datasets import stereo
from ...datasets.depthworld import target_to_depth
from ...eval.depth import PAPER_TABLE5, depth_metrics
from ...utils import get_device
from ..common import Device, choose_scale, is_flow, scale_key
from .data import DepthData, prepare
from .recipe import DepthRecipe

#: How a prediction is compared with the truth: as predicted, and after a least-squares scale and shift in depth or
#: in inverse depth (``crossflow_mini.eval.depth``'s ``align`` argument).
ALIGNMENTS: dict[str, str | None] = {"unaligned": None, "aligned_depth": "depth", "aligned_inverse": "inverse"}
ROUND = 5  # decimals kept in the results files


@dataclass(frozen=True)
class DepthEvalConfig:
    """How depth models are measured. ``scales``: the guidance sweep on the validation split (flow models; the
    lowest unaligned AbsRel wins); ``val_images`` / ``test_images`` cap the splits (None: all); ``sample_counts``:
    the ensemble sweep on validation images at the chosen scale (k flows combined by each of ``ensembles``; the
    cheapest within ``ensemble_tolerance`` of the best validation AbsRel is used on the test split, and its cost
    per image is the sweep's ``seconds`` / ``n_images``); ``step_counts``: the Euler-steps sweep there;
    ``timing_images``: the batch timed for ms/image."""

    scales: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0)
    val_images: int | None = 500
    test_images: int | None = None
    sample_counts: tuple[int, ...] = (1, 3, 5, 10)
    ensembles: tuple[str, ...] = ENSEMBLES
    ensemble_tolerance: float = 0.002
    step_counts: tuple[int, ...] = (1, 2, 5, 10, 20)
    batch_size: int = 250
    timing_images: int = 64
    seed: int = 0


# -------------------------------------------------------------------------------------------------- predicting
@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor, *, guidance_scale: float | None = None,
            steps: int | None = None, method: str | None = None, n_samples: int | None = None,
            ensemble: str | None = None, seed: int = 0, batch_size: int = 250, device: Device = None) -> torch.Tensor:
    """Depth targets ``(N, 1, S, S)`` (normalised log depth, on the CPU) for images ``(N, 3, S, S)`` in [-1, 1].

    Flow models: the per-pixel mean or median (``ensemble``) of ``n_samples`` guided flows - Marigold's test-time
    ensemble - with z0 drawn with one CPU generator seeded by ``seed``, so the same numbers on any device;
    ``guidance_scale``, ``steps``, ``method``, ``n_samples`` and ``ensemble`` default to the model's
    :attr:`~crossflow_mini.core.flow_model.FlowModel.sampling`. The regression model predicts once (they do not
    apply)."""
    device = get_device(device)
    model.to(device)
    n_samples = model.sampling.n_samples if n_samples is None else n_samples
    ensemble = model.sampling.ensemble if ensemble is None else ensemble
    if ensemble not in ENSEMBLES:
        raise ValueError(f"unknown ensemble {ensemble!r}; choose one of {ENSEMBLES}")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if not hasattr(model, "flow"):  # the regression model: deterministic, one evaluation
        n_samples = 1
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(device)
        draws = torch.stack([model.generate(x, guidance_scale=guidance_scale, steps=steps, method=method,
                                            generator=g).sample for _ in range(n_samples)])
        out.append(combine(draws, ensemble).cpu())
    return torch.cat(out)


def combine(draws: torch.Tensor, ensemble: str = "mean") -> torch.Tensor:
    """One prediction from ``(k, ...)`` draws: their per-pixel mean or median (in normalised log depth, so a
    geometric mean / median of depths). The median of an even count is the lower middle value (torch's)."""
    if ensemble == "mean":
        return draws.mean(0)
    if ensemble == "median":
        return draws.median(0).values
    raise ValueError(f"unknown ensemble {ensemble!r}; choose one of {ENSEMBLES}")


def predict_depth(model: torch.nn.Module, images: torch.Tensor, **kw: Any) -> torch.Tensor:
    """:func:`predict` mapped to metres (``target_to_depth``: clipped to DepthWorld's [0.5, 20] m)."""
    return target_to_depth(predict(model, images, **kw))


def score(pred_depth: Any, gt_depth: Any, mask: Any = None,
          alignments: Sequence[str] = tuple(ALIGNMENTS)) -> dict[str, dict[str, float]]:
    """``{alignment: {metric: value}}`` for predicted vs true depth (metres), rounded for the results files."""
    return {a: {k: round(v, ROUND) for k, v in depth_metrics(pred_depth, gt_depth, mask, ALIGNMENTS[a]).items()}
            for a in alignments}


def predict_kwargs(recipe: DepthRecipe, eval_cfg: DepthEvalConfig, device: Device, **over: Any) -> dict[str, Any]:
    s = recipe.sampling
    kw = dict(steps=s.steps, method=s.sampler, n_samples=s.n_samples, ensemble=s.ensemble, seed=eval_cfg.seed,
              batch_size=eval_cfg.batch_size, device=device)
    return kw | over


def evaluate_split(model: torch.nn.Module, data: DepthData, *, alignments: Sequence[str] = tuple(ALIGNMENTS),
                   **kw: Any) -> dict[str, Any]:
    """The metrics of one prediction run over a prepared split (``kw`` go to :func:`predict`)."""
    t0 = time.perf_counter()
    pred = predict_depth(model, data.images, **kw)
    res: dict[str, Any] = score(pred, data.depth, alignments=alignments)
    res["n_images"] = len(data)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    return res


def evaluate_motorcycle(model: torch.nn.Module, image_size: int, **kw: Any) -> dict[str, Any]:
    """Zero-shot on the real Middlebury Motorcycle at the model's input size (centre square, area-averaged;
    :func:`crossflow_mini.datasets.stereo.model_input`). The headline is ``aligned_inverse`` (least squares in
    inverse depth, the Marigold / Table 9 protocol); unaligned numbers are meaningless here (another camera, another
    scale) and are kept only to show that."""
    sample = stereo.model_input(image_size)
    pred = predict_depth(model, sample.image_tensor(), **kw)
    res: dict[str, Any] = score(pred, sample.depth_tensor(), sample.valid_tensor())
    res["valid_pixels"] = int(sample.valid.sum())
    res["gt_depth_range_m"] = [round(float(np.nanmin(sample.depth)), 3), round(float(np.nanmax(sample.depth)), 3)]
    return res


def references(recipe: DepthRecipe, test: DepthData) -> dict[str, Any]:
    """What a model that ignores the image scores - the floor every method must clear:

    * ``train_mean_map``: the per-pixel mean target of the training split (a fixed depth map: ground below, far
      above), on ``test``, as predicted and aligned;
    * ``motorcycle_constant``: a constant depth on the Motorcycle, aligned in inverse depth (the alignment then
      fits the mean inverse depth: any affine-invariant score must beat this to mean anything)."""
    mean_map = prepare(recipe, "train").target.mean(0, keepdim=True).expand_as(test.target)
    sample = stereo.model_input(recipe.data.image_size)
    constant = np.ones(sample.valid.shape, dtype=np.float32)
    return {"train_mean_map": score(target_to_depth(mean_map), test.depth) | {"n_images": len(test)},
            "motorcycle_constant": score(constant, sample.depth, sample.valid)}


def ms_per_image(model: torch.nn.Module, images: torch.Tensor, **kw: Any) -> float:
    """Wall milliseconds per image of :func:`predict` on ``images`` (one warm-up call first)."""
    predict(model, images[:2], **kw)
    t0 = time.perf_counter()
    predict(model, images, **kw)
    return round(1000 * (time.perf_counter() - t0) / len(images), 2)


def evaluate_depth(model: torch.nn.Module, recipe: DepthRecipe, eval_cfg: DepthEvalConfig = DepthEvalConfig(),
                   device: Device = None) -> dict[str, Any]:
    """The numbers of a depth checkpoint: a guidance sweep on validation images (which picks w; flow models),
    averaging and Euler-steps sweeps there, the test split at the chosen w (as predicted and aligned), w = 1 on the
    test split for comparison, the Motorcycle zero-shot, parameters and ms/image."""
    model.eval()
    val = prepare(recipe, "val", eval_cfg.val_images)
    test = prepare(recipe, "test", eval_cfg.test_images)
    flow = is_flow(recipe.model)
    out: dict[str, Any] = {
        "method": recipe.method, "parameters": parameter_report(model), "sampling_parameters":
            sampling_parameters(model),
        "sampler": {"method": recipe.sampling.sampler, "steps": recipe.sampling.steps,
                    "n_samples": recipe.sampling.n_samples} if flow else None,
    }
    chosen = 1.0
    if flow:
        out["val_sweep"] = {scale_key(w): evaluate_split(model, val, alignments=("unaligned",),
                                                         **predict_kwargs(recipe, eval_cfg, device, guidance_scale=w))
                            for w in eval_cfg.scales}
        chosen = choose_scale(out["val_sweep"], lambda r: r["unaligned"]["abs_rel"], higher_is_better=False)
        out["val_samples_sweep"] = {
            f"{e} n={n}": evaluate_split(model, val, alignments=("unaligned",),
                                         **predict_kwargs(recipe, eval_cfg, device, guidance_scale=chosen,
                                                          n_samples=n, ensemble=e))
            for e in eval_cfg.ensembles for n in eval_cfg.sample_counts if n > 1 or e == eval_cfg.ensembles[0]}
        n_chosen, e_chosen = choose_ensemble(out["val_samples_sweep"], eval_cfg.ensemble_tolerance)
        out["chosen_n_samples"], out["chosen_ensemble"] = n_chosen, e_chosen
        out["val_steps_sweep"] = {
            f"steps={s}": evaluate_split(model, val, alignments=("unaligned",),
                                         **predict_kwargs(recipe, eval_cfg, device, guidance_scale=chosen, steps=s))
            for s in eval_cfg.step_counts}
    out["chosen_scale"] = chosen
    kw = predict_kwargs(recipe, eval_cfg, device, guidance_scale=chosen)
    if flow:
        kw |= {"n_samples": out["chosen_n_samples"], "ensemble": out["chosen_ensemble"]}
        out["sampler"] |= {"n_samples": out["chosen_n_samples"], "ensemble": out["chosen_ensemble"]}
    out["test"] = evaluate_split(model, test, **kw)
    if flow and chosen != 1.0:
        out["test_cfg_off"] = evaluate_split(model, test, **(kw | {"guidance_scale": 1.0}))
    if flow and out["chosen_n_samples"] != 1:
        out["test_one_sample"] = evaluate_split(model, test, **(kw | {"n_samples": 1}))
    out["motorcycle"] = evaluate_motorcycle(model, recipe.data.image_size, **kw)
    out["ms_per_image"] = ms_per_image(model, test.images[:eval_cfg.timing_images], **kw)
    out["paper_table5"] = PAPER_TABLE5
    return out


def choose_ensemble(sweep: dict[str, Any], tolerance: float) -> tuple[int, str]:
    """The cheapest ensemble whose validation AbsRel (as predicted) is within ``tolerance`` of the best one of the
    sweep: fewest samples first, then the mean before the median. Returns ``(n_samples, ensemble)``."""
    rows = []
    for key, res in sweep.items():
        ensemble, n = key.split(" n=")
        rows.append((int(n), ENSEMBLES.index(ensemble), ensemble, res["unaligned"]["abs_rel"]))
    best = min(r[3] for r in rows)
    n, _, ensemble, _ = min(r for r in rows if r[3] <= best + tolerance)
    return n, ensemble


def evaluate(model: torch.nn.Module, recipe: DepthRecipe, *, sizes: DepthEvalConfig, device: Device = None,
             **_: Any) -> dict[str, Any]:
    """The measurements of a depth checkpoint (:func:`evaluate_depth`), as the registry calls them."""
    return evaluate_depth(model, recipe, sizes, device)


__all__ = ["ALIGNMENTS", "DepthEvalConfig", "predict", "predict_depth", "score", "evaluate_split",
           "evaluate_motorcycle", "references", "combine", "choose_ensemble", "predict_kwargs", "ms_per_image", "evaluate_depth", "evaluate"]

"""The depth study (``python -m crossflow_mini reproduce depth``, mini paper Table 5): the three shipped depth
models on the DepthWorld test split, as predicted and aligned, and zero-shot on the Middlebury Motorcycle; with
parameters, training time, ms/image, a floor that ignores the image, and the paper's Table 5 beside them."""

from __future__ import annotations

from typing import Any, Callable

import torch

from .. import registry
from ..core.params import parameter_report, sampling_parameters
from ..eval.depth import METRIC_NAMES, PAPER_TABLE5
from ..profiles import Profile
from ..tasks.common import Device, is_flow
from ..tasks.depth.data import prepare
from ..tasks.depth.evaluate import (ALIGNMENTS, DepthEvalConfig, predict_kwargs, evaluate_motorcycle, evaluate_split,
                                    ms_per_image, references)
from ..tasks.depth.recipe import DepthRecipe

#: The checkpoint names of the study, by method.
CHECKPOINTS: dict[str, str] = {"crossflow": "depth_crossflow", "baseline": "depth_baseline",
                               "regression": "depth_regression"}


def run_study(find: Callable[[str], tuple[torch.nn.Module, dict[str, Any]]], recipes: dict[str, DepthRecipe],
              eval_cfg: DepthEvalConfig, device: Device = None) -> dict[str, Any]:
    """``data/results/depth.json``: every depth checkpoint (``find(name) -> (model, meta)``) on the DepthWorld test
    split, as predicted and aligned, at the guidance scale chosen on validation images when it was trained, and
    zero-shot on the Motorcycle; with parameters, training time, ms/image and the paper's Table 5 beside them."""
    out: dict[str, Any] = {"paper_table5": PAPER_TABLE5, "metrics": list(METRIC_NAMES),
                           "alignments": {k: v for k, v in ALIGNMENTS.items()}, "methods": {}}
    first = next(iter(recipes.values()))
    test = prepare(first, "test", eval_cfg.test_images)
    out["references"] = references(first, test)
    for method, name in CHECKPOINTS.items():
        if name not in recipes:
            continue
        recipe = recipes[name]
        model, meta = find(name)
        m = meta.get("metrics", {})
        flow = is_flow(recipe.model)
        scale = model.sampling.guidance_scale if flow else 1.0  # the checkpoint's default, chosen on validation
        kw = predict_kwargs(recipe, eval_cfg, device, guidance_scale=scale)
        out["methods"][method] = {
            "checkpoint": name, "parameters": parameter_report(model)["total"],
            "sampling_parameters": sampling_parameters(model),
            "train_seconds": m.get("train_seconds_all_parts") or m.get("train_seconds_this_run"),
            "train_steps": recipe.train.steps, "batch_size": recipe.train.batch_size,
            "seconds_per_step": m.get("seconds_per_step"), "torch_threads": m.get("torch_threads"),
            "guidance_scale": scale if flow else None,
            "sampler": {"method": recipe.sampling.sampler, "steps": recipe.sampling.steps,
                        "n_samples": recipe.sampling.n_samples} if flow else None,
            "test": evaluate_split(model, test, **kw),
            "motorcycle": evaluate_motorcycle(model, recipe.data.image_size, **kw),
            "ms_per_image": ms_per_image(model, test.images[:eval_cfg.timing_images], **kw),
        }
    return out


def readme_table(results: dict[str, Any]) -> str:
    """The README's depth table from ``data/results/depth.json``'s metrics (nothing typed by hand)."""
    rows = ["| method | params | train | DepthWorld AbsRel | delta1 | AbsRel, aligned (depth) | delta1, aligned | "
            "Motorcycle AbsRel, aligned (inverse) | delta1 | ms/image |", "|---|---|---|---|---|---|---|---|---|---|"]
    for method, r in results["methods"].items():
        t, mc = r["test"], r["motorcycle"]["aligned_inverse"]
        train_s = r.get("train_seconds")
        rows.append(f"| {method} | {r['parameters'] / 1e6:.2f}M | {r['train_steps']} steps"
                    f"{'' if train_s is None else f', {train_s / 60:.0f} min'} | {t['unaligned']['abs_rel']:.3f} | "
                    f"{t['unaligned']['delta1']:.3f} | {t['aligned_depth']['abs_rel']:.3f} | "
                    f"{t['aligned_depth']['delta1']:.3f} | {mc['abs_rel']:.3f} | {mc['delta1']:.3f} | "
                    f"{r['ms_per_image']:.1f} |")
    ref = results.get("references")
    if ref:
        t, mc = ref["train_mean_map"], ref["motorcycle_constant"]["aligned_inverse"]
        rows.append(f"| reference: mean depth map / constant (ignores the image) | - | - | "
                    f"{t['unaligned']['abs_rel']:.3f} | {t['unaligned']['delta1']:.3f} | "
                    f"{t['aligned_depth']['abs_rel']:.3f} | {t['aligned_depth']['delta1']:.3f} | "
                    f"{mc['abs_rel']:.3f} | {mc['delta1']:.3f} | - |")
    for ds, p in results["paper_table5"].items():
        rows.append(f"| paper CrossFlow, {ds} (Table 5, reference) | - | - | {p['abs_rel']:.3f} | {p['delta1']:.3f} "
                    f"| - | - | - | - | - |")
    return "\n".join(rows)


def config(profile: Profile) -> dict[str, Any]:
    """What the study measures for a profile (stored beside its numbers): its sizes and the three recipes."""
    return {"eval": profile.depth_eval, **{name: registry.recipe(name, profile) for name in CHECKPOINTS.values()}}


def run(profile: Profile) -> tuple[Any, dict[str, Any]]:
    """The study for a profile: ``(config, metrics)`` of ``data/results/depth.json``."""
    cfg = config(profile)
    recipes = {name: cfg[name] for name in CHECKPOINTS.values()}
    return cfg, run_study(lambda name: registry.find(name, profile), recipes, profile.depth_eval, profile.device)


__all__ = ["CHECKPOINTS", "run_study", "readme_table", "config", "run"]

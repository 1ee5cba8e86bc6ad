"""The super-resolution study (``python -m crossflow_mini reproduce sr``, mini paper Table 6): bicubic, regression
(L1, L2), standard flow matching and CrossFlow from three sources (none / fixed noise / VE) on the held-out
photographs - PSNR, SSIM, FID and KID with floors - every row at the guidance scale its own validation sweep chose,
scored against one FID reference; the paper's Table 6 quoted beside."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from .. import registry
from ..core.crossflow import CrossFlowConfig
from ..core.params import count_parameters, sampling_parameters
from ..core.regression import RegressionConfig
from ..datasets.superres import photo_counts
from ..eval.sr import PAPER_TABLE6, PAPER_TABLE6_SETTING, SRFIDReference
from ..profiles import Profile
from ..tasks.common import Device, train_seconds
from ..tasks.sr.data import prepare
from ..tasks.sr.evaluate import SREvalConfig, rounded, guided, ms_per_patch, sample_recipe, score
from ..tasks.sr.recipe import SOURCES, SRRecipe, row_name, variant

def study_recipes(recipes: dict[str, SRRecipe], cfg: SRStudyConfig) -> dict[str, tuple[str, SRRecipe]]:
    """Every row of the study: ``row -> (checkpoint name, recipe)``. ``recipes`` maps the shipped checkpoint names
    (``sr_regression``, ``sr_baseline``, ``sr_crossflow``) to their recipes; the variants reuse a shipped name
    (they are cached under it, keyed by their own recipe hash)."""
    rows: dict[str, tuple[str, SRRecipe]] = {}
    for name, recipe in recipes.items():
        rows[row_name(recipe)] = (name, recipe)
        if isinstance(recipe.model, RegressionConfig):
            for loss in cfg.regression_losses:
                r = variant(recipe, regression_loss=loss)
                rows.setdefault(row_name(r), (name, r))
        if isinstance(recipe.model, CrossFlowConfig):
            for source in cfg.sources:
                r = variant(recipe, source=source)
                rows.setdefault(row_name(r), (name, r))
    order = ["regression:l1", "regression:l2", "baseline", *(f"crossflow:{s}" for s in SOURCES)]
    return {k: rows[k] for k in sorted(rows, key=lambda k: order.index(k) if k in order else len(order))}


def run_sr_study(recipes: dict[str, SRRecipe], cfg: SRStudyConfig, eval_cfg: SREvalConfig,
                 find: Callable[[str, SRRecipe], tuple[torch.nn.Module, dict[str, Any]]],
                 device: Device = None) -> dict[str, Any]:
    """The numbers of ``data/results/sr.json``: every row of :func:`study_recipes` (found, or trained where the
    profile allows, by ``find(name, recipe)``) scored on the same test patches against one FID reference, at the
    guidance scale its own validation sweep chose; bicubic beside them; the paper's Table 6 quoted beside."""
    rows = study_recipes(recipes, cfg)
    first = next(iter(recipes.values()))
    test = prepare(first, "test", eval_cfg.n_test)
    reference = SRFIDReference(test.hr, eval_cfg.seed) if eval_cfg.fid else None
    kw = dict(seed=eval_cfg.seed, batch_size=eval_cfg.batch_size, device=device)
    out: dict[str, Any] = {"photos": photo_counts(), "n_test_patches": len(test),
                           "hr_size": first.data.hr_size, "scale": first.data.scale,
                           "bicubic": rounded(score(test.upsampled, test, reference, eval_cfg.fid)), "rows": {}}
    for row, (name, recipe) in rows.items():
        model, meta = find(name, recipe)
        trained = meta.get("metrics", {})
        w = model.sampling.guidance_scale if guided(recipe) else 1.0  # the checkpoint's default, chosen on validation
        pred = sample_recipe(model, recipe, test.upsampled, w, **kw)
        res = rounded(score(pred, test, reference, eval_cfg.fid))
        res |= {"checkpoint": name, "guidance_scale": w, "val_sweep": trained.get("val_sweep"),
                "parameters": count_parameters(model), "parameters_for_sampling": sampling_parameters(model),
                "train_steps": recipe.train.steps, "batch_size": recipe.train.batch_size,
                "train_seconds": train_seconds(trained), "train_device": trained.get("device"),
                "train_threads": trained.get("torch_threads"),
                "sampler": {"method": recipe.sampling.sampler, "steps": recipe.sampling.steps},
                "ms_per_patch": ms_per_patch(model, recipe, test.upsampled[:eval_cfg.timing_batch], w, device)}
        if w != 1.0:
            res["cfg_off"] = rounded(score(sample_recipe(model, recipe, test.upsampled, 1.0, **kw), test,
                                            reference, eval_cfg.fid))
        out["rows"][row] = res
    out["paper_table6"] = {"setting": PAPER_TABLE6_SETTING, **PAPER_TABLE6}
    out["acceptance"] = acceptance(out, row_name(recipes["sr_crossflow"]) if "sr_crossflow" in recipes else None)
    return out


def acceptance(results: dict[str, Any], crossflow_row: str | None) -> dict[str, Any]:
    """CrossFlow against its references, computed from the study's numbers: its PSNR gain over bicubic, its FID
    against regression's, and CrossFlow against standard flow matching on both (the paper: +0.9 dB and a better
    FID)."""
    rows = results["rows"]
    if crossflow_row not in rows:
        return {}
    cf = rows[crossflow_row]
    out: dict[str, Any] = {"crossflow_row": crossflow_row,
                           "psnr_gain_over_bicubic_db": round(cf["psnr"] - results["bicubic"]["psnr"], 3)}
    if "baseline" in rows:
        out["psnr_minus_flow_matching_db"] = round(cf["psnr"] - rows["baseline"]["psnr"], 3)
    if "fid" in cf:
        for reg in ("regression:l1", "regression:l2"):
            if reg in rows:
                out[f"fid_minus_{reg.replace(':', '_')}"] = round(cf["fid"] - rows[reg]["fid"], 3)
        if "baseline" in rows:
            out["fid_minus_flow_matching"] = round(cf["fid"] - rows["baseline"]["fid"], 3)
    return out


def readme_table(results: dict[str, Any]) -> str:
    """The README's super-resolution table from ``data/results/sr.json``'s metrics (nothing typed by hand)."""
    b = results["bicubic"]
    rows = [f"| method | params | train | PSNR (dB) | SSIM | FID (floor {b.get('fid_floor', float('nan')):.1f}) | "
            f"KID | ms/patch | w |", "|---|---|---|---|---|---|---|---|---|"]
    rows.append(f"| bicubic (the source) | - | - | {b['psnr']:.2f} | {b['ssim']:.3f} | {b.get('fid', float('nan')):.1f} "
                f"| {b.get('kid', float('nan')):.4f} | - | - |")
    for row, r in results["rows"].items():
        secs = r.get("train_seconds")
        train_s = f"{r['train_steps']} steps" + ("" if secs is None else f", {secs / 60:.0f} min")
        rows.append(f"| {row} | {r['parameters'] / 1e6:.2f}M | {train_s} | {r['psnr']:.2f} | {r['ssim']:.3f} | "
                    f"{r.get('fid', float('nan')):.1f} | {r.get('kid', float('nan')):.4f} | {r['ms_per_patch']:.1f} | "
                    f"{r['guidance_scale']:g} |")
    for method, p in PAPER_TABLE6.items():
        rows.append(f"| paper {method} (Table 6, ImageNet 64 -> 256, reference) | - | - | {p['psnr']:.1f} | "
                    f"{p['ssim']:.3f} | {p['fid']:.1f} | - | - | - |")
    return "\n".join(rows)


#: The shipped checkpoints of the study, in table order.
CHECKPOINTS = ("sr_regression", "sr_baseline", "sr_crossflow")


def config(profile: Profile) -> dict[str, Any]:
    """What the study measures for a profile (stored beside its numbers): its sizes and the three shipped recipes."""
    return {"study": profile.sr_study, "eval": profile.sr_eval,
            **{name: registry.recipe(name, profile) for name in CHECKPOINTS}}


def run(profile: Profile) -> tuple[Any, dict[str, Any]]:
    """The study for a profile: ``(config, metrics)`` of ``data/results/sr.json``."""
    cfg = config(profile)
    recipes = {name: cfg[name] for name in CHECKPOINTS}
    return cfg, run_sr_study(recipes, profile.sr_study, profile.sr_eval,
                             lambda name, recipe: registry.find(name, profile, recipe=recipe), profile.device)


__all__ = ["SRStudyConfig", "CHECKPOINTS", "study_recipes", "run_sr_study", "acceptance", "readme_table", "config", "run"]

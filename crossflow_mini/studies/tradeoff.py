"""Composition against arithmetic, measured as a curve (notebook 07; docs/METHOD.md Sec. 8): how far the Text VE's
source may be pulled towards the image before latent arithmetic stops working.

The paper's Text VE (a flatten head, noise around its mean, no pull towards the image) keeps a text-like latent
space, where adding and subtracting prompt latents moves the picture (paper Table 8). Pulling the source's mean
towards the image latent (``align_weight``, ours) and lowering its noise (the KL weight) make the flow's start
already look like the picture - prompts compose better (mini-GenEval), but the latent space becomes image-like and
arithmetic on it stops meaning "add this object". Every row here is the shipped CrossFlow design (patch-query Text
VE) with one (alignment weight, KL weight) pair, trained on the rich caption vocabulary with the same budget; the
paper's head and the cross-attention baseline at that budget are the reference rows. Each row is scored on the
VALIDATION prompts and on the TEST prompts (mini-GenEval at every guidance scale of ``scales``; Table-8 arithmetic
on a validation and a test set of cases, at the scale that row chose on validation prompts).

The default that ships is chosen by :func:`choose` - a rule fixed before any test number was seen: the row that
maximises the smaller of (its validation mini-GenEval / the baseline's) and (its validation arithmetic / the paper
head's), i.e. the row that keeps the most of both properties relative to the method that is best at each.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import torch

from .. import registry
from ..configs import config_hash, to_dict, with_overrides
from ..paths import cache_dir
from ..core.params import count_parameters
from ..eval.geneval import mini_geneval
from ..profiles import Profile, get_profile
from ..tasks.common import Device, choose_scale
from ..tasks.t2i.arithmetic import ArithmeticConfig, run_arithmetic
from ..tasks.t2i.data import prepare
from ..tasks.t2i.evaluate import generate
from ..tasks.t2i.pipeline import CrossFlowPipeline
from ..tasks.t2i.recipe import T2IRecipe
from ..tasks.t2i.train import fit
from ..utils import atomic_write_text
from .configs import TradeoffConfig

#: The rows that are not points of the grid (the references of the rule in :func:`choose`).
PAPER_HEAD, BASELINE = "paper_head", "baseline"


def row_label(align: float, kl: float) -> str:
    return f"align={align:g},kl={kl:g}"


def parse_label(label: str) -> tuple[float, float]:
    """``(align_weight, kl_weight)`` of a grid row's label (the inverse of :func:`row_label`)."""
    try:
        parts = dict(part.split("=") for part in label.split(","))
        return float(parts["align"]), float(parts["kl"])
    except (KeyError, ValueError) as err:
        raise ValueError(f"{label!r} is not a grid row's label (like {row_label(0.3, 1e-3)!r})") from err


def pairs(cfg: TradeoffConfig) -> list[tuple[float, float]]:
    """The ``(align_weight, kl_weight)`` of every grid row: the full grid, then the extra pairs not in it."""
    grid = [(a, k) for k in cfg.kl_weights for a in cfg.align_weights]
    return grid + [p for p in cfg.extra_pairs if p not in grid]


def study_recipes(crossflow: T2IRecipe, baseline: T2IRecipe, cfg: TradeoffConfig) -> dict[str, T2IRecipe]:
    """Every run, keyed by label: the grid (patch-query Text VE, :func:`pairs`), the paper's
    head (flatten, no alignment, the KL of the paper-head reference model) and the baseline - all with the study's
    data and budget."""
    common = {"shapes.vocabulary": cfg.vocabulary, "train": cfg.train}
    runs = {row_label(a, k): with_overrides(crossflow, {**common, "model.source.head": "patch_queries",
                                                        "model.source.align_weight": a,
                                                        "model.source.kl_weight": k})
            for a, k in pairs(cfg)}
    runs[PAPER_HEAD] = with_overrides(crossflow, {**common, "model.source.head": "flatten",
                                                  "model.source.align_weight": 0.0,
                                                  "model.source.kl_weight": None})
    runs[BASELINE] = with_overrides(baseline, common)
    return runs


def _geneval(model: torch.nn.Module, recipe: T2IRecipe, autoencoder: torch.nn.Module, judge: Any, data: Any,
             cfg: TradeoffConfig, device: Device) -> dict[str, Any]:
    out = {}
    for w in cfg.scales:
        def gen(idx: np.ndarray) -> torch.Tensor:
            return generate(model, autoencoder, data.text.batch(torch.from_numpy(np.asarray(idx))), w,
                            recipe.sampling.steps, recipe.sampling.sampler, cfg.seed, device=device)

        out[f"w={w:g}"] = mini_geneval(gen, judge, data.split, cfg.geneval_per_kind)
    return out


def _arithmetic(model: torch.nn.Module, recipe: T2IRecipe, autoencoder: torch.nn.Module, judge: Any, w: float,
                cfg: TradeoffConfig, seed: int) -> dict[str, Any]:
    pipe = CrossFlowPipeline(model, autoencoder, recipe)
    arith = ArithmeticConfig(cases_per_kind=cfg.arithmetic_cases, sweep_cases=0, control_cases=0,
                             interpolation_pairs=0, guidance_scale=w, seed=seed)
    res = run_arithmetic(pipe, judge, arith)
    return {"table8": res["table8"]["arithmetic"]["all"], "trivial": res["table8"]["trivial_answer"]["all"]}


def _row_path(label: str, recipe: T2IRecipe, cfg: TradeoffConfig):
    # the grid's lists say which rows exist, not how one is measured: a row's numbers stay valid when the grid grows
    measured = {k: v for k, v in to_dict(cfg).items() if k not in ("align_weights", "kl_weights", "extra_pairs")}
    key = config_hash({"recipe": to_dict(recipe), "eval": measured})
    return cache_dir() / "tradeoff" / f"{label.replace('=', '').replace(',', '_')}-{key}.json"


def run_row(label: str, recipe: T2IRecipe, cfg: TradeoffConfig, autoencoder: torch.nn.Module, judge: Any,
            data: dict[Any, tuple[Any, Any, Any]], device: Device = None) -> dict[str, Any]:
    """Train one run (resumable under ``data/cache/runs``) and score it; cached under ``data/cache/tradeoff`` by the
    run's recipe and the study's settings, so rows can run as separate processes."""
    path = _row_path(label, recipe, cfg)
    if path.exists():
        return json.loads(path.read_text())
    if recipe.shapes not in data:
        data[recipe.shapes] = tuple(prepare(recipe, s, autoencoder) for s in ("train", "val", "test"))
    train, val, test = data[recipe.shapes]
    t0 = time.perf_counter()
    result = fit(recipe, train, name=f"t2i_tradeoff_{label}", desc=label, device=device)
    model = result.ema.eval()
    row: dict[str, Any] = {"parameters": count_parameters(model),
                           "train_seconds": round(result.seconds or time.perf_counter() - t0, 1),
                           "final_losses": {k: round(v[-1], 5) for k, v in result.history.items()
                                            if v and k != "step"},
                           "geneval_val": _geneval(model, recipe, autoencoder, judge, val, cfg, device),
                           "geneval_test": _geneval(model, recipe, autoencoder, judge, test, cfg, device)}
    w = choose_scale(row["geneval_val"], lambda entry: entry["all"]["overall"])  # the project's one tie rule
    row["chosen_scale"] = w
    if label != BASELINE:
        row["arithmetic_val"] = _arithmetic(model, recipe, autoencoder, judge, w, cfg, cfg.val_seed)
        row["arithmetic_test"] = _arithmetic(model, recipe, autoencoder, judge, w, cfg, cfg.test_seed)
    atomic_write_text(path, json.dumps(row, indent=1, sort_keys=True))
    return row


def run_tradeoff(crossflow: T2IRecipe, baseline: T2IRecipe, cfg: TradeoffConfig, autoencoder: torch.nn.Module,
                 judge: Any, device: Device = None, only: list[str] | None = None) -> dict[str, Any]:
    """Every run (each from its cache where it was run before; ``only``: these rows alone): the numbers of
    ``data/results/t2i_tradeoff.json``."""
    out: dict[str, Any] = {"train_steps": cfg.train.steps, "vocabulary": cfg.vocabulary, "scales": list(cfg.scales),
                           "rows": {}}
    data: dict[Any, tuple[Any, Any, Any]] = {}
    for label, recipe in study_recipes(crossflow, baseline, cfg).items():
        if only is None or label in only:
            out["rows"][label] = run_row(label, recipe, cfg, autoencoder, judge, data, device)
    if only is None:
        out["choice"] = choose(out["rows"])
    return out


def summary(row: dict[str, Any], split: str) -> dict[str, float | None]:
    """One row's two numbers on ``split`` (``val`` / ``test``): mini-GenEval overall at its chosen scale and Table-8
    arithmetic overall (None for the baseline)."""
    g = row[f"geneval_{split}"][f"w={row['chosen_scale']:g}"]["all"]["overall"]
    a = row.get(f"arithmetic_{split}")
    return {"geneval": g, "arithmetic": None if a is None else a["table8"]["overall"]}


def choose(rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The rule (fixed before any test number was seen): among the grid rows, the one that maximises
    min(geneval_val / baseline geneval_val, arithmetic_val / paper-head arithmetic_val)."""
    ref_g = summary(rows[BASELINE], "val")["geneval"]
    ref_a = summary(rows[PAPER_HEAD], "val")["arithmetic"]
    scores = {}
    for label, row in rows.items():
        if label in (BASELINE, PAPER_HEAD):
            continue
        s = summary(row, "val")
        scores[label] = round(min(s["geneval"] / max(ref_g, 1e-9), s["arithmetic"] / max(ref_a, 1e-9)), 4)
    best = max(scores, key=lambda k: scores[k])
    return {"rule": "max over grid rows of min(geneval_val / baseline geneval_val, arithmetic_val / paper-head "
                    "arithmetic_val)", "scores": scores, "chosen": best}


def readme_table(results: dict[str, Any]) -> str:
    """The RESULTS table of ``data/results/t2i_tradeoff.json``'s metrics (nothing typed by hand)."""
    rows = ["| run | mini-GenEval, val | mini-GenEval, test | test: train wording / test-only wording | "
            "arithmetic, val | arithmetic, test | w | train |", "|---|---|---|---|---|---|---|---|"]
    chosen = results.get("choice", {}).get("chosen")
    for label, r in results["rows"].items():
        v, t = summary(r, "val"), summary(r, "test")
        g = r["geneval_test"][f"w={r['chosen_scale']:g}"]
        wording = (f"{g['train_wording']['overall']:.3f} / {g['test_only_wording']['overall']:.3f}"
                   if "test_only_wording" in g else "-")

        def num(x: float | None) -> str:
            return "-" if x is None else f"{x:.3f}"

        name = f"**{label}** (chosen)" if label == chosen else label
        rows.append(f"| {name} | {num(v['geneval'])} | {num(t['geneval'])} | {wording} | {num(v['arithmetic'])} | "
                    f"{num(t['arithmetic'])} | {r['chosen_scale']:g} | {r['train_seconds'] / 60:.1f} min |")
    if "choice" in results:
        rows += ["", "Rule, fixed before the test numbers were read: " + results["choice"]["rule"] + "; scores: "
                 + ", ".join(f"{k} {v:.2f}" for k, v in results["choice"]["scores"].items()) + "."]
    return "\n".join(rows)


def config(profile: Profile) -> dict[str, Any]:
    """What the study measures for a profile: its sizes and the two base recipes."""
    return {"tradeoff": profile.t2i_tradeoff, "crossflow_base": registry.recipe("t2i_shapes", profile),
            "baseline_base": registry.recipe("t2i_baseline_shapes", profile)}


def run(profile: Profile) -> tuple[Any, dict[str, Any]]:
    """The study for a profile: ``(config, metrics)`` of ``data/results/t2i_tradeoff.json``."""
    cfg = config(profile)
    return cfg, run_tradeoff(cfg["crossflow_base"], cfg["baseline_base"], profile.t2i_tradeoff,
                             registry.load("autoencoder_shapes", profile), registry.load("judge_shapes", profile),
                             profile.device)


def main(argv: list[str] | None = None) -> None:
    """Run rows of the study as their own process (each caches its numbers; ``reproduce t2i_tradeoff`` collects)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("rows", nargs="*", help="row labels (default: all)")
    args = p.parse_args(argv)
    profile = get_profile()
    cfg = config(profile)
    known = list(study_recipes(cfg["crossflow_base"], cfg["baseline_base"], profile.t2i_tradeoff))
    unknown = [r for r in args.rows if r not in known]
    if unknown:
        p.error(f"{', '.join(unknown)}: not a row of the {profile.name} profile's study; its rows are "
                f"{', '.join(known)} (add a pair to TradeoffConfig.extra_pairs for another)")
    res = run_tradeoff(cfg["crossflow_base"], cfg["baseline_base"], profile.t2i_tradeoff,
                       registry.load("autoencoder_shapes", profile), registry.load("judge_shapes", profile),
                       profile.device, only=args.rows or None)
    for label, row in res["rows"].items():
        print(label, summary(row, "val"), summary(row, "test"))


if __name__ == "__main__":
    main()

__all__ = ["readme_table", "pairs", "parse_label", "run_row", "main", "PAPER_HEAD", "BASELINE", "row_label", "study_recipes", "run_tradeoff", "summary", "choose", "config",
           "run"]

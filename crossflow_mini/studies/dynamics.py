"""Training dynamics of the pixel-space flows (super-resolution, depth): the validation score against training steps,
for the EMA weights and the raw weights, for each lever of the training recipe - so a student sees *when* a flow
gets better or worse, not one number at the end (notebooks 09 and 10; docs/METHOD.md Sec. 7).

Why this study exists: a CrossFlow super-resolution flow starts at its own source, the bicubic upsampling, and must
never end below it - yet a run can. The levers measured, each a row of dot-path overrides of a shipped recipe
(``DynamicsConfig.rows``; the same training batches and evaluation for all):

* the start: a zero-initialised output layer (``model.velocity.zero_out``) makes the untrained network predict
  v = 0, so at step 0 the flow returns its source exactly (an *identity start*);
* the learning rate and its warm-up (``train.lr``, ``train.warmup_steps``); the EMA decay (``train.ema_decay``:
  both the EMA and the raw weights are scored at every snapshot);
* the unconditional share of CFG (``model.guidance.p_uncond``; guidance w = 1 is chosen anyway, so the share only
  costs conditional training signal);
* where on the path t is sampled (``model.time_sampler``: uniform or the public code's logit-normal);
* the number of Euler steps at the end (``final_steps``): one Euler step from a deterministic source is the
  network's estimate of the mean target (what regression predicts: best PSNR, blurry); more steps follow the flow
  to a sharper sample (worse PSNR, better FID) - the paper's Table 6 trade-off, read along one axis.

A row is trained once (resumable under ``data/cache/runs``) and its curve is cached under ``data/cache/dynamics``
by the row's recipe and the evaluation settings, so rows can run as separate processes
(``python -m crossflow_mini.studies.dynamics sr ROW``) and ``reproduce sr_dynamics`` collects them.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Callable

import torch

from .. import registry
from ..configs import config_hash, to_dict, with_overrides
from ..core.build import build_model
from ..datasets.photos import photo_refs
from ..paths import cache_dir
from ..profiles import Profile, get_profile
from ..tasks import common
from ..tasks.common import Device, is_flow
from ..utils import atomic_write_text, seed_everything
from .configs import DEPTH_DYNAMICS, SR_DYNAMICS, DynamicsConfig


# ------------------------------------------------------------------------------------------------ the two tasks
def _sr_task(recipe: Any, n: int | None) -> tuple[Callable[[int], Any], Callable[[torch.nn.Module, int], dict[str, float]]]:
    from ..eval.sr import psnr_ssim
    from ..tasks.sr.data import prepare, training_batches
    from ..tasks.sr.evaluate import super_resolve

    val = prepare(recipe, "val", n)

    def score(model: torch.nn.Module, steps: int) -> dict[str, float]:
        if is_flow(model):
            pred = super_resolve(model, val.upsampled, guidance_scale=1.0, steps=steps, method=recipe.sampling.sampler)
        else:
            pred = super_resolve(model, val.upsampled)
        return {k: round(v, 4) for k, v in psnr_ssim(pred, val.hr).items() if k != "n_images"}

    return training_batches(recipe), score


def _depth_task(recipe: Any, n: int) -> tuple[Callable[[int], Any], Callable[[torch.nn.Module, int], dict[str, float]]]:
    from ..tasks.depth.data import prepare, training_batches
    from ..tasks.depth.evaluate import predict_depth, score as depth_score

    train, val = prepare(recipe, "train"), prepare(recipe, "val", n)

    def score(model: torch.nn.Module, steps: int) -> dict[str, float]:
        kw = dict(guidance_scale=1.0, steps=steps, method=recipe.sampling.sampler, n_samples=1) if is_flow(model) \
            else {}
        res = depth_score(predict_depth(model, val.images, **kw), val.depth, alignments=("unaligned", "aligned_depth"))
        return {f"{k}_{a}": v for a, metrics in (("predicted", res["unaligned"]), ("aligned", res["aligned_depth"]))
                for k, v in metrics.items() if k in ("delta1", "abs_rel")}

    return training_batches(train, recipe.train), score


TASKS = {"sr": _sr_task, "depth": _depth_task}
#: The score a curve is drawn with, and whether larger is better.
HEADLINE = {"sr": ("psnr", True), "depth": ("abs_rel_predicted", False)}


# ------------------------------------------------------------------------------------------------------ one row
def row_recipe(row: tuple[str, str, tuple[tuple[str, Any], ...]], profile: Profile) -> Any:
    """The recipe of one row: the profile's recipe of the row's checkpoint with the row's overrides."""
    _, name, overrides = row
    return with_overrides(registry.recipe(name, profile), dict(overrides))


def _curve_path(label: str, recipe: Any, cfg: DynamicsConfig):
    # the photographs scored are part of the key: a curve measured on other validation photos is another curve
    held_out = list(photo_refs("val")) if cfg.task == "sr" else None
    key = config_hash({"recipe": to_dict(recipe), "snapshots": list(cfg.snapshots), "val_items": cfg.val_items,
                       "final_steps": list(cfg.final_steps), "seed": cfg.seed, "task": cfg.task,
                       "val_photos": held_out})
    return cache_dir() / "dynamics" / f"{cfg.task}-{label}-{key}.json"


def run_row(label: str, cfg: DynamicsConfig, profile: Profile, device: Device = None) -> dict[str, Any]:
    """Train one row (resumable) and score it at every snapshot (EMA and raw weights) and, at the end, with every
    count of Euler steps: ``{"curve": {step: {"ema": {...}, "raw": {...}}}, "final_steps": {...}, ...}``. Cached;
    a resumed run keeps the snapshots already scored."""
    row = next((r for r in cfg.rows if r[0] == label), None)
    if row is None:
        raise KeyError(f"unknown row {label!r}; rows: {', '.join(r[0] for r in cfg.rows)}")
    recipe = row_recipe(row, profile)
    path = _curve_path(label, recipe, cfg)
    done: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if "final_steps" in done:
        return done
    seed_everything(cfg.seed)
    batch_fn, score = TASKS[cfg.task](recipe, cfg.val_items)
    steps = recipe.sampling.steps
    curve: dict[str, Any] = done.get("curve", {})
    built: dict[str, torch.nn.Module] = {}

    def build(model_cfg: Any) -> torch.nn.Module:
        built["model"] = build_model(model_cfg)
        return built["model"]

    def save() -> None:
        out = {"label": label, "checkpoint": row[1], "overrides": dict(row[2]), "curve": curve}
        atomic_write_text(path, json.dumps(out, indent=1, sort_keys=True))

    if "0" not in curve:
        torch.manual_seed(recipe.train.seed)
        untrained = build_model(recipe.model).eval()
        s0 = score(untrained, steps)
        curve["0"] = {"ema": s0, "raw": s0}
        save()

    def on_snapshot(step: int, ema: torch.nn.Module) -> None:
        raw = built["model"]
        was = raw.training
        raw.eval()
        curve[str(step)] = {"ema": score(ema.eval(), steps), "raw": score(raw, steps)}
        raw.train(was)
        ema.train(False)
        save()

    t0 = time.perf_counter()
    result = common.fit(recipe, batch_fn, build=build, name=f"dynamics_{cfg.task}_{label}", desc=label,
                        device=device, snapshot_steps=[s for s in cfg.snapshots if s > 0],
                        on_snapshot=on_snapshot)
    model = result.ema.eval()
    final = {f"steps={k}": score(model, k) for k in cfg.final_steps} if is_flow(model) else {}
    out = {"label": label, "checkpoint": row[1], "overrides": dict(row[2]), "curve": curve, "final_steps": final,
           "train_steps": recipe.train.steps, "train_seconds": round(time.perf_counter() - t0, 1),
           "euler_steps": steps}
    atomic_write_text(path, json.dumps(out, indent=1, sort_keys=True))
    return out


def run_dynamics(cfg: DynamicsConfig, profile: Profile, device: Device = None) -> dict[str, Any]:
    """Every row (each from its cache where it was run before): the numbers of ``data/results/<task>_dynamics.json``.
    ``reference``: the score of the source itself (SR: bicubic) where the task has one."""
    out: dict[str, Any] = {"task": cfg.task, "headline": HEADLINE[cfg.task][0], "val_items": cfg.val_items,
                           "rows": {}}
    for label, _, _ in cfg.rows:
        out["rows"][label] = run_row(label, cfg, profile, device)
    if cfg.task == "sr":
        from ..eval.sr import psnr_ssim
        from ..tasks.sr.data import prepare

        val = prepare(registry.recipe("sr_crossflow", profile), "val", cfg.val_items)
        out["bicubic"] = {k: round(v, 4) for k, v in psnr_ssim(val.upsampled, val.hr).items() if k != "n_images"}
    return out


def readme_table(results: dict[str, Any]) -> str:
    """The RESULTS table of a dynamics study's metrics: per row its lever, the validation score at step 0, its lowest
    and its last snapshot (EMA and raw weights), and the finished model by Euler steps."""
    key = results["headline"]
    steps = sorted({k for r in results["rows"].values() for k in r.get("final_steps", {})},
                   key=lambda k: int(k.split("=")[1]))
    rows = [f"| row | lever | step 0 | lowest (EMA) | end, EMA / raw | " + " | ".join(
        s.replace("steps=", "") + (" Euler step" if s == "steps=1" else " Euler steps") for s in steps) + " |", "|---|---|---|---|---|" + "---|" * len(steps)]
    if "bicubic" in results:
        rows.append(f"| bicubic (the source) | - | {results['bicubic'][key]:.2f} | - | - | "
                    + " | ".join("-" for _ in steps) + " |")
    for label, r in results["rows"].items():
        curve = r["curve"]
        last = curve[max(curve, key=int)]
        lever = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in r.get("overrides", {}).items()) or "shipped recipe"
        lowest = min(p["ema"][key] for p in curve.values())
        rows.append(f"| {label} | {lever} | {curve['0']['ema'][key]:.2f} | {lowest:.2f} | {last['ema'][key]:.2f} / "
                    f"{last['raw'][key]:.2f} | " + " | ".join(
                        f"{r['final_steps'][s][key]:.2f}" if s in r.get("final_steps", {}) else "-" for s in steps)
                    + " |")
    return "\n".join(rows)


def config(profile: Profile, task: str) -> dict[str, Any]:
    """What the study measures for a profile: its rows and their recipes."""
    cfg = getattr(profile, f"{task}_dynamics")
    return {"dynamics": cfg, "recipes": {label: row_recipe((label, name, over), profile)
                                         for label, name, over in cfg.rows}}


def run(profile: Profile, task: str) -> tuple[Any, dict[str, Any]]:
    """The study for a profile: ``(config, metrics)`` of ``data/results/<task>_dynamics.json``."""
    return config(profile, task), run_dynamics(getattr(profile, f"{task}_dynamics"), profile, profile.device)


def main(argv: list[str] | None = None) -> None:
    """Run rows of a dynamics study as their own process (each caches its curve; ``reproduce`` collects them)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("task", choices=sorted(TASKS))
    p.add_argument("rows", nargs="*", help="row labels (default: all)")
    args = p.parse_args(argv)
    profile = get_profile()
    cfg = getattr(profile, f"{args.task}_dynamics")
    for label in args.rows or [r[0] for r in cfg.rows]:
        res = run_row(label, cfg, profile, profile.device)
        last = res["curve"][max(res["curve"], key=int)]
        print(label, "final", last, res.get("final_steps"))


if __name__ == "__main__":
    main()

__all__ = ["readme_table", "DynamicsConfig", "SR_DYNAMICS", "DEPTH_DYNAMICS", "TASKS", "HEADLINE", "row_recipe", "run_row", "run_dynamics", "config", "run"]

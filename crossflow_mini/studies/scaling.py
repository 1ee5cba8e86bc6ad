"""The scaling study (``python -m crossflow_mini reproduce t2i_scaling``, mini paper Fig. 3): both methods at several
sizes, each judged after several training lengths by mini-GenEval on ShapesWorld test prompts. The paper: over five
sizes from 70M to 1B parameters CrossFlow is worse than the baseline at small sizes and better at large ones; over
training steps it starts slower and ends better."""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .. import registry
from .. import checkpoints
from ..core.baseline import matched_baseline
from ..core.crossflow import CrossFlowModel
from ..core.flow_model import FlowModel
from ..core.params import count_parameters, sampling_parameters
from ..core.transformer import VelocityTransformerConfig
from ..eval.geneval import mini_geneval
from ..eval.judge import JudgeNet
from ..profiles import Profile
from ..tasks.common import Device
from ..tasks.t2i.data import T2IData, prepare
from ..tasks.t2i.evaluate import generate
from ..tasks.t2i.recipe import T2I_TRAIN, T2IRecipe
from ..tasks.t2i.train import fit
from ..training import TrainConfig
from ..utils import atomic_write_text
from .comparison import PAPER


def scaling_recipes(base: T2IRecipe, base_baseline: T2IRecipe, cfg: ScalingConfig) -> dict[str, T2IRecipe]:
    """The runs of the scaling study, keyed ``"<method>:<width>x<depth>"``: CrossFlow with Text VE and velocity
    model of the given width (velocity of the given depth), and the parameter-matched baseline beside each."""
    runs: dict[str, T2IRecipe] = {}
    for width, depth in cfg.sizes:
        ve = dataclasses.replace(base.model.source, width=width)
        velocity: VelocityTransformerConfig = dataclasses.replace(base.model.velocity, width=width, depth=depth)
        model = dataclasses.replace(base.model, source=ve, velocity=velocity)
        runs[f"crossflow:{width}x{depth}"] = dataclasses.replace(base, model=model, train=cfg.train)
        template = dataclasses.replace(base_baseline.model, velocity=dataclasses.replace(
            base_baseline.model.velocity, width=width, depth=depth, heads=velocity.heads))
        matched = matched_baseline(CrossFlowModel(model), template)
        runs[f"baseline:{width}x{depth}"] = dataclasses.replace(base_baseline, model=matched, train=cfg.train)
    return runs


def scaling_point(model: FlowModel, recipe: T2IRecipe, autoencoder: torch.nn.Module, judge: JudgeNet,
                  test: T2IData, cfg: ScalingConfig, seed: int = 0, device: Device = None) -> dict[str, Any]:
    """mini-GenEval of one (method, size, length) point at every scale of ``cfg.scales``."""
    out: dict[str, Any] = {}
    for w in cfg.scales:
        def gen(idx: np.ndarray) -> torch.Tensor:
            return generate(model, autoencoder, test.text.batch(torch.from_numpy(np.asarray(idx))), w,
                            recipe.sampling.steps, recipe.sampling.sampler, seed, device=device)

        out[f"w={w:g}"] = mini_geneval(gen, judge, test.split, cfg.geneval_per_kind)["all"]
    return out


@dataclass
class LivePoint:
    """One run of the study trained and judged live (notebook 06): its scores at each scale, its training curve."""

    label: str
    point: dict[str, Any]
    history: dict[str, list[float]]
    parameters: int
    seconds: float | None


def live_point(label: str, recipe: T2IRecipe, data_recipe: T2IRecipe, cfg: ScalingConfig, profile: Profile,
               seed: int = 0) -> LivePoint:
    """Train ``recipe`` on ``data_recipe``'s training split (cached latents and tokens) and judge its EMA weights
    with :func:`scaling_point` on the test split: one job of :func:`crossflow_mini.parallel.side_by_side`. The
    shipped autoencoder and judge are loaded here, from their checksummed files, by the process that runs the job."""
    autoencoder, judge = registry.load("autoencoder_shapes", profile), registry.load("judge_shapes", profile)
    train_data, test = prepare(data_recipe, "train", autoencoder), prepare(data_recipe, "test", autoencoder)
    result = fit(recipe, train_data, desc=label, device=profile.device)
    point = scaling_point(result.ema, recipe, autoencoder, judge, test, cfg, seed, profile.device)
    return LivePoint(label, point, result.history, count_parameters(result.ema), result.seconds)


def run_scaling_run(label: str, recipe: T2IRecipe, train_data: T2IData, test: T2IData, autoencoder: torch.nn.Module,
                    judge: JudgeNet, cfg: ScalingConfig, name: str | None = None,
                    device: Device = None) -> dict[str, Any]:
    """Train one (method, size) run to ``max(cfg.steps)``, judging its EMA weights at every length in
    ``cfg.steps``. With ``name`` the run is resumable and each judged point is kept beside its training state."""
    points: dict[str, Any] = {}
    store = checkpoints.run_dir(name, recipe) / "scaling_points.json" if name else None
    if store is not None and store.exists():
        points = json.loads(store.read_text())

    def on_snapshot(step: int, ema: torch.nn.Module) -> None:
        points[str(step)] = scaling_point(ema, recipe, autoencoder, judge, test, cfg, device=device)
        if store is not None:
            atomic_write_text(store, json.dumps(points, indent=1))

    t0 = time.perf_counter()
    result = fit(recipe, train_data, name=name, desc=label, snapshot_steps=cfg.steps, on_snapshot=on_snapshot,
                 device=device)
    missing = [s for s in cfg.steps if str(s) not in points]
    if missing:  # a finished run found again without its points (e.g. the points file was deleted)
        raise RuntimeError(f"run {label} has no judged points for steps {missing}; delete "
                           f"{checkpoints.run_dir(name, recipe)} and rerun the study")
    model = result.ema
    return {"parameters": count_parameters(model), "parameters_for_sampling": sampling_parameters(model),
            "width": recipe.model.velocity.width, "depth": recipe.model.velocity.depth,
            "train_seconds": None if result.seconds is None else round(result.seconds, 1),
            "wall_seconds_this_run": round(time.perf_counter() - t0, 1),
            "points": {s: points[str(s)] for s in cfg.steps}}


def run_scaling(cfg: ScalingConfig, base: T2IRecipe, base_baseline: T2IRecipe, autoencoder: torch.nn.Module,
                judge: JudgeNet, device: Device = None) -> dict[str, Any]:
    """The numbers of ``data/results/t2i_scaling.json``: every (method, size) run and its judged points."""
    train_data, test = prepare(base, "train", autoencoder), prepare(base, "test", autoencoder)
    out: dict[str, Any] = {"steps": list(cfg.steps), "sizes": [list(s) for s in cfg.sizes],
                           "scales": list(cfg.scales), "split": "test", "paper": PAPER["fig3_scaling"], "runs": {}}
    for label, recipe in scaling_recipes(base, base_baseline, cfg).items():
        out["runs"][label] = run_scaling_run(label, recipe, train_data, test, autoencoder, judge, cfg,
                                             name=f"t2i_scaling_{label.replace(':', '_')}", device=device)
    return out


def config(profile: Profile) -> dict[str, Any]:
    """What the study measures for a profile (stored beside its numbers): its sizes and the two base recipes."""
    return {"scaling": profile.t2i_scaling, "crossflow_base": registry.recipe("t2i_shapes", profile),
            "baseline_base": registry.recipe("t2i_baseline_shapes", profile)}


def run(profile: Profile) -> tuple[Any, dict[str, Any]]:
    """The study for a profile: ``(config, metrics)`` of ``data/results/t2i_scaling.json``."""
    cfg = config(profile)
    base, baseline = cfg["crossflow_base"], cfg["baseline_base"]
    return cfg, run_scaling(profile.t2i_scaling, base, baseline, registry.load("autoencoder_shapes", profile),
                            registry.load("judge_shapes", profile), profile.device)


__all__ = ["LivePoint", "live_point", "ScalingConfig", "scaling_recipes", "scaling_point", "run_scaling_run", "run_scaling", "config", "run"]

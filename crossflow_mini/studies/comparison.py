"""CrossFlow against standard flow matching, in miniature: the side-by-side comparison (paper Table 1, Table 2 /
Table 7's GenEval categories) and the scaling study (paper Fig. 3).

* :func:`run_comparison` - the shipped models of both methods (equal parameters, steps, optimiser, sampler and
  NFE) on ShapesWorld (mini-GenEval per category, Inception FID with its real-vs-real floor, ms per image) and
  on Fashion-MNIST (class accuracy, FID with floor, ms per image). Each model samples at its own guidance scale,
  chosen when it was trained (ShapesWorld: on the validation prompts; Fashion-MNIST: on training captions), and
  at w = 1 (no guidance) beside it. On ShapesWorld the shipped CrossFlow has the patch-query Text VE (the best
  row of the variants study); CrossFlow with the paper's own head (flatten + linear) is measured beside it as a
  reference row (:data:`REFERENCE_METHODS`), outside the winner.
* :func:`run_scaling` - both methods at several sizes, each judged after several training lengths, by
  mini-GenEval on ShapesWorld test prompts.

The paper's own numbers are quoted beside ours (:data:`PAPER`), never mixed with them: a billion-parameter model
on LAION-scale data and a two-million-parameter model on ShapesWorld are different experiments.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from .. import checkpoints
from ..core.baseline import matched_baseline
from ..core.crossflow import CrossFlowModel
from ..core.flow_model import FlowModel
from ..core.params import count_parameters, parameter_report, sampling_parameters
from ..core.transformer import VelocityTransformerConfig
from ..datasets import shapes as sw
from ..eval.fid import FIDReference
from ..eval.geneval import PAPER_GENEVAL, mini_geneval
from ..eval.judge import JudgeNet
from ..training import TrainConfig
from ..utils import atomic_write_text
from ..tasks.t2i.fashion import class_accuracy_of
from ..tasks.t2i.train import Device, T2IData, T2IRecipe, fit, generate, prepare

if TYPE_CHECKING:
    from ..profiles import Profile


@dataclass(frozen=True)
class ComparisonConfig:
    """CrossFlow against the standard flow-matching baseline at equal size and steps (mini paper Tables 1, 2, 7).

    ShapesWorld: mini-GenEval on the first ``geneval_per_kind`` test prompts of each scene kind, at each model's
    guidance scale chosen on the validation prompts. Fashion-MNIST: the scale is chosen by the class accuracy of
    ``choose_samples`` generations (no test image is involved), then class accuracy on ``class_samples``
    generations for the test captions. FID: ``fid_samples`` generations against as many real test images, beside
    the FID of two disjoint real sets of that size (the floor). ``timing_batch``: batch of the ms/image figure."""

    geneval_per_kind: int | None = 500
    fid_samples: int = 500
    choose_samples: int = 500
    class_samples: int = 2000
    scales: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
    timing_batch: int = 250
    batch_size: int = 250
    seed: int = 0


@dataclass(frozen=True)
class ScalingConfig:
    """The mini paper Fig. 3: both methods at several sizes, each judged after several training lengths.

    ``sizes`` are (width, depth) of CrossFlow's velocity transformer; its Text VE has the same width. Each
    baseline gets the same depth and the width whose parameter count is closest to CrossFlow's (Text VE and
    image tower included). One run per (method, size) trains for ``max(steps)`` steps; its EMA weights are
    judged when each length in ``steps`` is reached (the learning rate is constant after warm-up, so the point at
    step s is what a run of s steps gives). Score: mini-GenEval overall on ``geneval_per_kind`` test prompts per
    scene kind, at every guidance scale in ``scales`` (all are stored; none is chosen on the test prompts)."""

    sizes: tuple[tuple[int, int], ...] = ((64, 2), (96, 3), (128, 4))
    steps: tuple[int, ...] = (500, 1000, 2000)
    train: TrainConfig = TrainConfig()
    geneval_per_kind: int | None = 200
    scales: tuple[float, ...] = (1.0, 3.0)

METHODS = ("crossflow", "baseline")
#: The recipe behind each (data set, method) of the comparison.
CHECKPOINTS = {("shapes", "crossflow"): "t2i_shapes", ("shapes", "baseline"): "t2i_baseline_shapes",
               ("fashion", "crossflow"): "t2i_fashion", ("fashion", "baseline"): "t2i_baseline_fashion",
               ("shapes", "crossflow_flatten"): "t2i_shapes_flatten"}
#: Reference rows, measured like the others but outside the winner: CrossFlow with the paper's Text VE head
#: (flatten + linear), which the shipped ShapesWorld model replaces with patch queries (tasks/variants.py).
REFERENCE_METHODS = ("crossflow_flatten",)
#: The paper's numbers (CROSSFLOW_NOTES Sec. 8), quoted beside ours.
PAPER: dict[str, Any] = {
    "table1_same_recipe_300k_steps": {
        "baseline": {"parameters": "1.04B", "fid_30k": 10.79, "clip_score": 0.29},
        "crossflow": {"parameters": "0.95B", "fid_30k": 10.13, "clip_score": 0.29}},
    "table2_crossflow_geneval": PAPER_GENEVAL,
    "fig3_scaling": "over 5 sizes from 70M to 1B parameters CrossFlow is worse than the baseline at small sizes "
                    "and better at large ones; over training steps it starts slower and ends better",
}

Loader = Callable[[str, Any], tuple[torch.nn.Module, dict[str, Any]]]


@torch.no_grad()
def ms_per_image(model: FlowModel, autoencoder: torch.nn.Module, data: T2IData, scale: float, steps: int,
                 method: str, batch: int, device: Device = None) -> float:
    """Wall-clock milliseconds per image (text latent or noise -> ODE -> decoded image) for one batch, best of 2."""
    source = data.text.batch(torch.arange(min(batch, len(data.split))))
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        generate(model, autoencoder, source, scale, steps, method, seed=0, batch_size=batch, device=device)
        best = min(best, time.perf_counter() - t0)
    return round(1000 * best / len(source), 2)


def _model_summary(model: FlowModel, meta: dict[str, Any], recipe: T2IRecipe) -> dict[str, Any]:
    trained = meta.get("metrics", {})
    seconds = trained.get("train_seconds_all_parts")
    if seconds is None and not trained.get("resumed_from_step"):  # one part: its time is the whole run's
        seconds = trained.get("train_seconds_this_run")
    return {"parameters": count_parameters(model), "parameters_for_sampling": sampling_parameters(model),
            "by_module": parameter_report(model)["by_module"], "train_steps": recipe.train.steps,
            "batch_size": recipe.train.batch_size,
            "train_seconds": seconds,  # None: a resumed run whose earlier parts were not timed
            "sampler": {"method": recipe.sampler, "steps": recipe.sample_steps}}


def compare_shapes(models: dict[str, tuple[FlowModel, dict[str, Any], T2IRecipe]], autoencoder: torch.nn.Module,
                   judge: JudgeNet, cfg: ComparisonConfig, device: Device = None) -> dict[str, Any]:
    """mini-GenEval (CFG on and off), FID with floor and ms/image of each method on ShapesWorld test prompts."""
    any_recipe = next(iter(models.values()))[2]
    test_split = sw.load_shapes("test", any_recipe.shapes)
    n = min(cfg.fid_samples, len(test_split) // 2)
    real = test_split.images_tensor()
    fid_ref = FIDReference(real[:n], real[n:2 * n], cfg.batch_size)
    out: dict[str, Any] = {"fid_reference": f"the first {n} real test images; floor: the next {n}"}
    for method, (model, meta, recipe) in models.items():
        data = prepare(recipe, "test", autoencoder)
        w = float(meta["metrics"]["chosen_scale"])
        kw = dict(steps=recipe.sample_steps, method=recipe.sampler, seed=cfg.seed, batch_size=cfg.batch_size,
                  device=device)

        def gen(idx: np.ndarray, scale: float) -> torch.Tensor:
            return generate(model, autoencoder, data.text.batch(torch.from_numpy(np.asarray(idx))), scale, **kw)

        res = _model_summary(model, meta, recipe) | {"guidance_scale": w}
        res["geneval"] = mini_geneval(lambda ix: gen(ix, w), judge, data.split, cfg.geneval_per_kind)
        res["geneval_cfg_off"] = mini_geneval(lambda ix: gen(ix, 1.0), judge, data.split, cfg.geneval_per_kind)
        res["fid"] = fid_ref.score(gen(np.arange(n), w))
        res["ms_per_image"] = ms_per_image(model, autoencoder, data, w, recipe.sample_steps, recipe.sampler,
                                           cfg.timing_batch, device)
        res["ms_per_image_cfg_off"] = ms_per_image(model, autoencoder, data, 1.0, recipe.sample_steps,
                                                   recipe.sampler, cfg.timing_batch, device)
        out[method] = res
    return out


def compare_fashion(models: dict[str, tuple[FlowModel, dict[str, Any], T2IRecipe]], autoencoder: torch.nn.Module,
                    classifier: torch.nn.Module, classifier_accuracy: float, cfg: ComparisonConfig,
                    device: Device = None) -> dict[str, Any]:
    """Class accuracy (CFG on and off), FID with floor and ms/image of each method on Fashion-MNIST test captions."""
    out: dict[str, Any] = {"classifier_accuracy_on_real_test_images": classifier_accuracy}
    fid_ref = None
    for method, (model, meta, recipe) in models.items():
        data = prepare(recipe, "test", autoencoder)
        if fid_ref is None:
            n = min(cfg.fid_samples, len(data.split) // 2)
            real = data.split.images_tensor(recipe.autoencoder.fashion.image_size)
            fid_ref = FIDReference(real[:n], real[n:2 * n], cfg.batch_size)
            out["fid_reference"] = f"the first {n} real test images; floor: the next {n}"
        w = float(meta["metrics"]["chosen_scale"])
        kw = dict(steps=recipe.sample_steps, method=recipe.sampler, seed=cfg.seed, batch_size=cfg.batch_size,
                  device=device)
        res = _model_summary(model, meta, recipe) | {"guidance_scale": w}
        res["class_accuracy"] = class_accuracy_of(model, autoencoder, classifier, data, cfg.class_samples, w, **kw)
        res["class_accuracy_cfg_off"] = class_accuracy_of(model, autoencoder, classifier, data, cfg.class_samples,
                                                          1.0, **kw)
        res["fid"] = fid_ref.score(generate(model, autoencoder, data.text.batch(torch.arange(fid_ref.n)), w, **kw))
        res["ms_per_image"] = ms_per_image(model, autoencoder, data, w, recipe.sample_steps, recipe.sampler,
                                           cfg.timing_batch, device)
        out[method] = res
    return out


def winner(scores: dict[str, float], higher_is_better: bool = True) -> str:
    """``"crossflow"``, ``"baseline"`` or ``"tie"`` (equal to the reported precision)."""
    a, b = scores["crossflow"], scores["baseline"]
    if a == b:
        return "tie"
    return "crossflow" if (a > b) == higher_is_better else "baseline"


def run_comparison(profile: Profile, load: Loader, referees: dict[str, Any], device: Device = None) -> dict[str, Any]:
    """The side-by-side numbers of ``data/results/t2i_comparison.json``. ``load(name, cfg) -> (model, meta)`` finds
    (or trains) each checkpoint; ``referees`` holds the autoencoders, the judge and the classifier."""
    cfg = profile.t2i_compare
    recipes = {key: getattr(profile, name) for key, name in CHECKPOINTS.items()}
    out: dict[str, Any] = {"paper": PAPER}
    for dataset in ("shapes", "fashion"):
        models = {}
        for method in (*METHODS, *(m for m in REFERENCE_METHODS if (dataset, m) in CHECKPOINTS)):
            model, meta = load(CHECKPOINTS[dataset, method], recipes[dataset, method])
            models[method] = (model, meta, recipes[dataset, method])
        if dataset == "shapes":
            out[dataset] = compare_shapes(models, referees["autoencoder_shapes"], referees["judge"], cfg, device)
            out[dataset]["winner"] = {
                "geneval_overall": winner({m: out[dataset][m]["geneval"]["all"]["overall"] for m in METHODS}),
                "fid": winner({m: out[dataset][m]["fid"]["fid"] for m in METHODS}, higher_is_better=False)}
        else:
            out[dataset] = compare_fashion(models, referees["autoencoder_fashion"], referees["classifier"],
                                           referees["classifier_accuracy"], cfg, device)
            out[dataset]["winner"] = {
                "class_accuracy": winner({m: out[dataset][m]["class_accuracy"]["class_accuracy"] for m in METHODS}),
                "fid": winner({m: out[dataset][m]["fid"]["fid"] for m in METHODS}, higher_is_better=False)}
    return out


# --------------------------------------------------------------------------------------------- scaling study
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
                            recipe.sample_steps, recipe.sampler, seed, device=device)

        out[f"w={w:g}"] = mini_geneval(gen, judge, test.split, cfg.geneval_per_kind)["all"]
    return out


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


def run_scaling(profile: Profile, autoencoder: torch.nn.Module, judge: JudgeNet, device: Device = None) -> dict[str, Any]:
    """The numbers of ``data/results/t2i_scaling.json``: every (method, size) run and its judged points."""
    cfg = profile.t2i_scaling
    base = profile.t2i_shapes
    train_data, test = prepare(base, "train", autoencoder), prepare(base, "test", autoencoder)
    out: dict[str, Any] = {"steps": list(cfg.steps), "sizes": [list(s) for s in cfg.sizes],
                           "scales": list(cfg.scales), "split": "test", "paper": PAPER["fig3_scaling"], "runs": {}}
    for label, recipe in scaling_recipes(base, profile.t2i_baseline_shapes, cfg).items():
        out["runs"][label] = run_scaling_run(label, recipe, train_data, test, autoencoder, judge, cfg,
                                             name=f"t2i_scaling_{label.replace(':', '_')}", device=device)
    return out


__all__ = ["METHODS", "CHECKPOINTS", "REFERENCE_METHODS", "PAPER", "ms_per_image", "compare_shapes",
           "compare_fashion", "winner", "run_comparison", "scaling_recipes", "scaling_point", "run_scaling_run",
           "run_scaling"]

"""CrossFlow against standard flow matching, in miniature: the side-by-side comparison (paper Table 1, Table 2 /
Table 7's GenEval categories; ``python -m crossflow_mini reproduce t2i_comparison``). The scaling study (paper
Fig. 3) is :mod:`crossflow_mini.studies.scaling`.

* :func:`run_comparison` - the shipped models of both methods (equal parameters, steps, optimiser, sampler and
  NFE) on ShapesWorld (mini-GenEval per category, Inception FID with its real-vs-real floor, ms per image) and
  on Fashion-MNIST (class accuracy, FID with floor, ms per image). Each model samples at its own guidance scale,
  chosen when it was trained (ShapesWorld: on the validation prompts; Fashion-MNIST: on training captions), and
  at w = 1 (no guidance) beside it. On ShapesWorld the shipped CrossFlow has the patch-query Text VE (the best
  row of the variants study); CrossFlow with the paper's own head (flatten + linear) is measured beside it as a
  reference row (:data:`REFERENCE_METHODS`), outside the winner.
The paper's own numbers are quoted beside ours (:data:`PAPER`), never mixed with them: a billion-parameter model
on LAION-scale data and a two-million-parameter model on ShapesWorld are different experiments.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from .. import registry
from ..core.flow_model import FlowModel
from ..core.params import count_parameters, parameter_report, sampling_parameters
from ..datasets import shapes as sw
from ..eval.fid import FIDReference
from ..eval.geneval import PAPER_GENEVAL, mini_geneval
from ..eval.judge import JudgeNet
from ..tasks.common import Device, train_seconds
from ..tasks.t2i.data import T2IData, prepare
from ..tasks.t2i.evaluate import class_accuracy_of, generate
from ..tasks.t2i.recipe import T2IRecipe

from ..profiles import Profile


METHODS = ("crossflow", "baseline")
#: The recipe behind each (data set, method) of the comparison.
CHECKPOINTS = {("shapes", "crossflow"): "t2i_shapes", ("shapes", "baseline"): "t2i_baseline_shapes",
               ("fashion", "crossflow"): "t2i_fashion", ("fashion", "baseline"): "t2i_baseline_fashion",
               ("shapes", "crossflow_flatten"): "t2i_shapes_flatten"}
#: Reference rows, measured like the others but outside the winner: CrossFlow with the paper's Text VE head
#: (flatten + linear), which the shipped ShapesWorld model replaces with patch queries (studies/variants.py).
REFERENCE_METHODS = ("crossflow_flatten",)
#: The paper's numbers (docs/METHOD.md Sec. 8), quoted beside ours.
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
    return {"parameters": count_parameters(model), "parameters_for_sampling": sampling_parameters(model),
            "by_module": parameter_report(model)["by_module"], "train_steps": recipe.train.steps,
            "batch_size": recipe.train.batch_size,
            # None: a resumed run whose earlier parts were not timed
            "train_seconds": train_seconds(meta.get("metrics", {})),
            "sampler": {"method": recipe.sampling.sampler, "steps": recipe.sampling.steps}}


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
        w = model.sampling.guidance_scale  # the checkpoint's default, chosen on validation prompts
        steps, sampler = recipe.sampling.steps, recipe.sampling.sampler
        kw = dict(steps=steps, method=sampler, seed=cfg.seed, batch_size=cfg.batch_size, device=device)

        def gen(idx: np.ndarray, scale: float) -> torch.Tensor:
            return generate(model, autoencoder, data.text.batch(torch.from_numpy(np.asarray(idx))), scale, **kw)

        res = _model_summary(model, meta, recipe) | {"guidance_scale": w}
        res["geneval"] = mini_geneval(lambda ix: gen(ix, w), judge, data.split, cfg.geneval_per_kind)
        res["geneval_cfg_off"] = mini_geneval(lambda ix: gen(ix, 1.0), judge, data.split, cfg.geneval_per_kind)
        res["fid"] = fid_ref.score(gen(np.arange(n), w))
        res["ms_per_image"] = ms_per_image(model, autoencoder, data, w, steps, sampler, cfg.timing_batch, device)
        res["ms_per_image_cfg_off"] = ms_per_image(model, autoencoder, data, 1.0, steps, sampler, cfg.timing_batch,
                                                   device)
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
        w = model.sampling.guidance_scale  # the checkpoint's default, chosen on training captions
        steps, sampler = recipe.sampling.steps, recipe.sampling.sampler
        kw = dict(steps=steps, method=sampler, seed=cfg.seed, batch_size=cfg.batch_size, device=device)
        res = _model_summary(model, meta, recipe) | {"guidance_scale": w}
        res["class_accuracy"] = class_accuracy_of(model, autoencoder, classifier, data, cfg.class_samples, w, **kw)
        res["class_accuracy_cfg_off"] = class_accuracy_of(model, autoencoder, classifier, data, cfg.class_samples,
                                                          1.0, **kw)
        res["fid"] = fid_ref.score(generate(model, autoencoder, data.text.batch(torch.arange(fid_ref.n)), w, **kw))
        res["ms_per_image"] = ms_per_image(model, autoencoder, data, w, steps, sampler, cfg.timing_batch, device)
        out[method] = res
    return out


def winner(scores: dict[str, float], higher_is_better: bool = True) -> str:
    """``"crossflow"``, ``"baseline"`` or ``"tie"`` (equal to the reported precision)."""
    a, b = scores["crossflow"], scores["baseline"]
    if a == b:
        return "tie"
    return "crossflow" if (a > b) == higher_is_better else "baseline"


def run_comparison(profile: Profile, recipes: dict[tuple[str, str], T2IRecipe], load: Loader,
                   referees: dict[str, Any], device: Device = None) -> dict[str, Any]:
    """The side-by-side numbers of ``data/results/t2i_comparison.json``. ``recipes`` maps each (data set, method) of
    :data:`CHECKPOINTS` to its recipe; ``load(name, recipe) -> (model, meta)`` finds (or trains) each checkpoint;
    ``referees`` holds the autoencoders, the judge and the classifier."""
    cfg = profile.t2i_compare
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


def config(profile: Profile) -> dict[str, Any]:
    """What the study measures for a profile (stored beside its numbers): its sizes and every model's recipe."""
    return {"compare": profile.t2i_compare, **{name: registry.recipe(name, profile) for name in CHECKPOINTS.values()}}


def run(profile: Profile) -> tuple[Any, dict[str, Any]]:
    """The study for a profile: ``(config, metrics)`` of ``data/results/t2i_comparison.json``."""
    classifier, meta = registry.find("classifier_fashion", profile)
    cfg = config(profile)
    recipes = {key: cfg[name] for key, name in CHECKPOINTS.items()}
    referees = {"autoencoder_shapes": registry.load("autoencoder_shapes", profile),
                "autoencoder_fashion": registry.load("autoencoder_fashion", profile),
                "judge": registry.load("judge_shapes", profile), "classifier": classifier,
                "classifier_accuracy": meta["metrics"]["test_accuracy"]}
    return cfg, run_comparison(profile, recipes, lambda name, recipe: registry.find(name, profile, recipe=recipe),
                               referees, profile.device)


__all__ = ["ComparisonConfig", "METHODS", "CHECKPOINTS", "REFERENCE_METHODS", "PAPER", "ms_per_image",
           "compare_shapes", "compare_fashion", "winner", "run_comparison", "config", "run"]

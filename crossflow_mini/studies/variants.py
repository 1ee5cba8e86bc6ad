"""What it takes for CrossFlow to compose: the design variants of the Text VE side by side (a table like the
paper's Table 3, for the compositional prompts of mini-GenEval).

At the project's scale the paper's CrossFlow loses to the cross-attention baseline on exactly the prompts that need
composition: two objects, their relation, which colour goes with which shape. Each row below changes one thing about
how the text becomes the flow's source and trains it with the same budget; the baseline at the same size and budget
is the reference row. Every run is judged on the TEST prompts of mini-GenEval at fixed guidance scales, with the
held-out (shape, colour) combinations and the test-only wording apart, and on the VALIDATION prompts the same way
(``geneval_val``): the shipped design (``t2i_shapes``) was chosen among the rows by their validation score, never by
the test one.

Rows (``VariantsConfig.variants``; each a set of overrides of the base recipe's Text VE and velocity network, and
optionally of its data set):

* ``paper``: the paper's Text VE - the public code's flatten + linear head, the paper's KL (mu^2, lambda 1e-4);
* ``code_kl``: the same head with the public code's KL ((0.3 mu)^6, lambda 1e-2);
* ``patch_queries``: a spatially structured source - one learned query per latent patch attends to the caption
  tokens and gives that patch's mu / logvar;
* ``patch_queries_align``: the same, with the source's mean pulled towards the image latent (``align_weight``);
* ``patch_queries_align_low_noise``: the same with a ten times smaller KL weight, so the source's noise (the spread
  of z0 around mu) may shrink - the paper's Table 3a removes the noise altogether (a plain encoder) and loses
  badly; this only lowers it, and the sample spread shows what that costs in diversity;
* ``patch_queries_align_strong``: the alignment weighted four times more;
* ``patch_queries_align_hard_negatives``: the contrastive loss also sees, for every two-object caption, the same
  scene with the binding swapped (colours exchanged, or places where the colours match) as a wrong target;
* ``patch_queries_align_rich``: the best design trained and judged on the rich caption vocabulary (synonyms and
  sentence forms, some kept for test captions only), beside ``baseline_rich``.

Baseline rows (``VariantsConfig.baselines``): the cross-attention baseline at the same budget, on the template
captions (``baseline``) and on the rich ones (``baseline_rich``). Each run also reports the spread of its samples
(:func:`sample_spread`): accuracy bought by collapsing every prompt onto one image would show there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .. import registry
from ..configs import with_overrides
from ..core.params import count_parameters, sampling_parameters
from ..datasets.shapes import SCENE_KINDS
from ..eval.geneval import mini_geneval
from ..eval.judge import JudgeNet
from ..profiles import Profile
from ..tasks.common import Device
from ..tasks.t2i.data import T2IData, hard_negatives_wanted, prepare
from ..tasks.t2i.evaluate import generate
from ..tasks.t2i.recipe import T2IRecipe
from ..tasks.t2i.train import fit
from .configs import BASELINE_VARIANTS, DEFAULT_VARIANTS, VariantsConfig

#: Where each part of a row's overrides lives in a recipe.
_PARTS = {"source": "model.source", "velocity": "model.velocity", "shapes": "shapes"}


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple) and all(isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) for x in value):
        return {k: _thaw(v) for k, v in value}
    return value


def variant_recipes(base: T2IRecipe, baseline: T2IRecipe, cfg: VariantsConfig) -> dict[str, T2IRecipe]:
    """The runs of the study, keyed by label: each variant's CrossFlow recipe (the base recipe with its overrides and
    the study's training budget), then each baseline row (the baseline recipe, only its data set overridden)."""
    runs: dict[str, T2IRecipe] = {}
    for rows, start, allowed in ((cfg.variants, base, set(_PARTS)), (cfg.baselines, baseline, {"shapes"})):
        for label, overrides in rows:
            over = _thaw(overrides)
            if set(over) - allowed:
                raise ValueError(f"row {label!r}: only {sorted(allowed)} may be overridden, got {sorted(over)}")
            dots = {f"{_PARTS[part]}.{k}": v for part, values in over.items() for k, v in values.items()}
            runs[label] = with_overrides(start, {**dots, "train": cfg.train})
    return runs


@torch.no_grad()
def sample_spread(model: torch.nn.Module, recipe: T2IRecipe, autoencoder: torch.nn.Module, test: T2IData,
                  guidance_scale: float, prompts: int, seeds: int, device: Device = None) -> float:
    """How different the images of one prompt are: the per-pixel standard deviation over ``seeds`` draws (images in
    [-1, 1]), averaged over pixels and over the first ``prompts`` single-object test prompts. 0 means every draw of a
    prompt gives the same image - the collapse the paper's Table 3a warns of when the source's noise is removed."""
    idx = np.flatnonzero(test.split.kinds == SCENE_KINDS.index("single"))[:prompts]
    if len(idx) == 0 or seeds < 2:
        raise ValueError("sample_spread needs single-object prompts and at least 2 seeds")
    tokens = test.text.batch(torch.from_numpy(idx))
    draws = torch.stack([generate(model, autoencoder, tokens, guidance_scale, recipe.sampling.steps, recipe.sampling.sampler,
                                  seed, device=device) for seed in range(seeds)])
    return round(float(draws.std(dim=0).mean()), 4)


def judge_run(model: torch.nn.Module, recipe: T2IRecipe, autoencoder: torch.nn.Module, judge: JudgeNet,
              data: T2IData, cfg: VariantsConfig, device: Device = None, seed: int = 0) -> dict[str, Any]:
    """mini-GenEval of one trained run on the prompts of ``data`` (the test split for the table, the validation
    split for the choice) at every scale of ``cfg.scales``."""
    out: dict[str, Any] = {}
    for w in cfg.scales:
        def gen(idx: np.ndarray) -> torch.Tensor:
            return generate(model, autoencoder, data.text.batch(torch.from_numpy(np.asarray(idx))), w,
                            recipe.sampling.steps, recipe.sampling.sampler, seed, device=device)

        out[f"w={w:g}"] = mini_geneval(gen, judge, data.split, cfg.geneval_per_kind)
    return out


def run_variants(base: T2IRecipe, baseline: T2IRecipe, cfg: VariantsConfig, autoencoder: torch.nn.Module,
                 judge: JudgeNet, device: Device = None) -> dict[str, Any]:
    """Train every run (resumable under ``data/cache/runs``) and judge it; the numbers of
    ``data/results/t2i_variants.json``. Runs on the rich vocabulary are judged on the rich test captions, with the
    test-only wording apart (``mini_geneval``'s groups)."""
    data: dict[Any, tuple[T2IData, T2IData, T2IData]] = {}  # (train, val, test) per data set
    out: dict[str, Any] = {"split": "test", "choose_split": "val", "train_steps": cfg.train.steps,
                           "scales": list(cfg.scales), "runs": {}}
    overrides = dict(cfg.variants) | dict(cfg.baselines)
    for label, recipe in variant_recipes(base, baseline, cfg).items():
        key = (recipe.shapes, hard_negatives_wanted(recipe))  # text encoder and autoencoder: the base recipe's
        if key not in data:
            data[key] = tuple(prepare(recipe, split, autoencoder) for split in ("train", "val", "test"))
        train_data, val, test = data[key]
        t0 = time.perf_counter()
        result = fit(recipe, train_data, name=f"t2i_variant_{label}", desc=label, device=device)
        seconds = result.seconds if result.seconds is not None else time.perf_counter() - t0
        model = result.ema
        out["runs"][label] = {
            "overrides": _thaw(overrides.get(label, {})), "vocabulary": recipe.shapes.vocabulary,
            "parameters": count_parameters(model), "parameters_for_sampling": sampling_parameters(model),
            "train_seconds": round(seconds, 1),
            "final_fm_loss": round(result.history["fm"][-1], 5) if result.history.get("fm") else None,
            "geneval": judge_run(model, recipe, autoencoder, judge, test, cfg, device),
            "geneval_val": {w: res["all"] for w, res in judge_run(model, recipe, autoencoder, judge, val, cfg,
                                                                  device).items()},
            "sample_spread": {f"w={w:g}": sample_spread(model, recipe, autoencoder, test, w, cfg.spread_prompts,
                                                        cfg.spread_seeds, device) for w in cfg.scales}}
    return out


def config(profile: Profile) -> dict[str, Any]:
    """What the study measures for a profile (stored beside its numbers): its rows and the two base recipes."""
    return {"variants": profile.t2i_variants, "crossflow_base": registry.recipe("t2i_shapes_flatten", profile),
            "baseline_base": registry.recipe("t2i_baseline_shapes", profile)}


def run(profile: Profile) -> tuple[Any, dict[str, Any]]:
    """The study for a profile: ``(config, metrics)`` of ``data/results/t2i_variants.json``. Every row is the
    paper's design (``t2i_shapes_flatten``) with its overrides."""
    cfg = config(profile)
    base, baseline = cfg["crossflow_base"], cfg["baseline_base"]
    return cfg, run_variants(base, baseline, profile.t2i_variants, registry.load("autoencoder_shapes", profile),
                             registry.load("judge_shapes", profile), profile.device)


__all__ = ["DEFAULT_VARIANTS", "BASELINE_VARIANTS", "VariantsConfig", "variant_recipes", "sample_spread", "judge_run",
           "run_variants", "config", "run"]

"""What it takes for CrossFlow to compose: the design variants of the Text VE side by side (a table like the
paper's Table 3, for the compositional prompts of mini-GenEval).

At the project's scale the paper's CrossFlow loses to the cross-attention baseline on exactly the prompts that need
composition: two objects, their relation, which colour goes with which shape. Each row below changes one thing about
how the text becomes the flow's source and trains it with the same budget; the baseline at the same size and budget
is the reference row. Every run is judged on the TEST prompts of mini-GenEval at fixed guidance scales (nothing is
chosen on them: the table compares designs, the shipped model's scale is chosen on validation prompts), with the
held-out (shape, colour) combinations and the test-only wording apart.

Rows (``VariantsConfig.variants``; each a set of overrides of the base recipe's Text VE and velocity network):

* ``paper``: the paper's Text VE - the public code's flatten + linear head, the paper's KL (mu^2, lambda 1e-4);
* ``code_kl``: the same head with the public code's KL ((0.3 mu)^6, lambda 1e-2);
* ``patch_queries``: a spatially structured source - one learned query per latent patch attends to the caption
  tokens and gives that patch's mu / logvar;
* ``patch_queries_align``: the same, with the source's mean pulled towards the image latent (``align_weight``);
* further rows vary the noise level of z0 (the KL weight) and the capacity.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.params import count_parameters, sampling_parameters
from ..eval.geneval import mini_geneval
from ..eval.judge import JudgeNet
from ..training import TrainConfig
from .t2i import Device, T2IData, T2IRecipe, fit, generate, prepare

#: Each variant: a label -> overrides {"source": {...}, "velocity": {...}} of the base CrossFlow recipe.
DEFAULT_VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {"source": {"head": "flatten", "kl_form": "paper"}},
    "code_kl": {"source": {"head": "flatten", "kl_form": "code"}},
    "patch_queries": {"source": {"head": "patch_queries", "kl_form": "code"}},
    "patch_queries_align": {"source": {"head": "patch_queries", "kl_form": "code", "align_weight": 1.0}},
}


@dataclass(frozen=True)
class VariantsConfig:
    """The variants study: ``variants`` (label -> overrides, as a tuple of (label, overrides-as-JSON-ready dict)
    pairs so the config stays hashable), one training budget for all, the guidance scales and prompts judged."""

    variants: tuple[tuple[str, Any], ...] = tuple((k, v) for k, v in DEFAULT_VARIANTS.items())
    train: TrainConfig = TrainConfig(steps=2000, batch_size=128, lr=1e-3, warmup_steps=200, ema_decay=0.995,
                                     ckpt_every=500, log_every=25)
    scales: tuple[float, ...] = (1.0, 3.0)
    geneval_per_kind: int | None = 200
    with_baseline: bool = True



def _thaw(value: Any) -> Any:
    if isinstance(value, tuple) and all(isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) for x in value):
        return {k: _thaw(v) for k, v in value}
    return value


def variant_recipes(base: T2IRecipe, baseline: T2IRecipe, cfg: VariantsConfig) -> dict[str, T2IRecipe]:
    """The runs of the study, keyed by label: each variant's CrossFlow recipe (the base recipe with its overrides and
    the study's training budget) and, with ``with_baseline``, the baseline recipe at the same budget."""
    runs: dict[str, T2IRecipe] = {}
    for label, overrides in cfg.variants:
        over = _thaw(overrides)
        model = dataclasses.replace(
            base.model,
            source=dataclasses.replace(base.model.source, **over.get("source", {})),
            velocity=dataclasses.replace(base.model.velocity, **over.get("velocity", {})))
        runs[label] = dataclasses.replace(base, model=model, train=cfg.train)
    if cfg.with_baseline:
        runs["baseline"] = dataclasses.replace(baseline, train=cfg.train)
    return runs


def judge_run(model: torch.nn.Module, recipe: T2IRecipe, autoencoder: torch.nn.Module, judge: JudgeNet,
              test: T2IData, cfg: VariantsConfig, device: Device = None, seed: int = 0) -> dict[str, Any]:
    """mini-GenEval of one trained run on the test prompts at every scale of ``cfg.scales``."""
    out: dict[str, Any] = {}
    for w in cfg.scales:
        def gen(idx: np.ndarray) -> torch.Tensor:
            return generate(model, autoencoder, test.text.batch(torch.from_numpy(np.asarray(idx))), w,
                            recipe.sample_steps, recipe.sampler, seed, device=device)

        out[f"w={w:g}"] = mini_geneval(gen, judge, test.split, cfg.geneval_per_kind)
    return out


def run_variants(base: T2IRecipe, baseline: T2IRecipe, cfg: VariantsConfig, autoencoder: torch.nn.Module,
                 judge: JudgeNet, device: Device = None) -> dict[str, Any]:
    """Train every run (resumable under ``data/cache/runs``) and judge it; the numbers of
    ``data/results/t2i_variants.json``."""
    train_data, test = prepare(base, "train", autoencoder), prepare(base, "test", autoencoder)
    out: dict[str, Any] = {"split": "test", "train_steps": cfg.train.steps, "scales": list(cfg.scales), "runs": {}}
    for label, recipe in variant_recipes(base, baseline, cfg).items():
        t0 = time.perf_counter()
        result = fit(recipe, train_data, name=f"t2i_variant_{label}", desc=label, device=device)
        seconds = result.seconds if result.seconds is not None else time.perf_counter() - t0
        model = result.ema
        out["runs"][label] = {
            "overrides": _thaw(dict(cfg.variants).get(label, {})), "parameters": count_parameters(model),
            "parameters_for_sampling": sampling_parameters(model), "train_seconds": round(seconds, 1),
            "final_fm_loss": round(result.history["fm"][-1], 5) if result.history.get("fm") else None,
            "geneval": judge_run(model, recipe, autoencoder, judge, test, cfg, device)}
    return out


__all__ = ["DEFAULT_VARIANTS", "VariantsConfig", "variant_recipes", "judge_run", "run_variants"]

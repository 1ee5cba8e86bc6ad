"""The mini paper Table 3a/3b: how the text becomes z0, and which loss trains the Text VE.

Paper Table 3a (70M model, FID-10K, no CFG): plain encoder 66.65, encoder + noise 59.91, variational encoder 40.78;
Table 3b: text-text reconstruction 40.78, text-text contrastive 34.67, image-text contrastive 33.41. Here every run
shares the shipped model sizes and one short training run, and is judged on validation prompts (an ablation
compares design choices, so it never looks at the test set).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import torch

from .. import registry
from ..eval.judge import JudgeNet
from ..profiles import Profile
from ..tasks.common import Device
from ..tasks.t2i.data import prepare
from ..tasks.t2i.evaluate import judge_prompts, single_object_groups
from ..tasks.t2i.recipe import T2IRecipe
from ..tasks.t2i.train import fit
from .configs import T2IAblationConfig


def ablation_recipes(base: T2IRecipe, cfg: T2IAblationConfig) -> dict[str, T2IRecipe]:
    """The runs of the mini Table 3a (``variant=...``) and 3b (``enc_loss=...``), keyed by a readable label.
    Every run shares the shipped sizes and ``cfg.train``; the VE with ``cfg.variant_loss`` is in both tables
    (labelled ``3a:ve``)."""
    runs: dict[str, T2IRecipe] = {}

    def with_ve(**kw) -> T2IRecipe:
        model = dataclasses.replace(base.model, source=dataclasses.replace(base.model.source, **kw))
        return dataclasses.replace(base, model=model, train=cfg.train)

    for v in cfg.variants:
        runs[f"3a:{v}"] = with_ve(variant=v, enc_loss=cfg.variant_loss)
    for e in cfg.enc_losses:
        key = "3a:ve" if e == cfg.variant_loss and "ve" in cfg.variants else f"3b:{e}"
        runs.setdefault(key, with_ve(variant="ve", enc_loss=e))
    return runs


def run_ablation(base: T2IRecipe, cfg: T2IAblationConfig, autoencoder: torch.nn.Module, judge: JudgeNet,
                 seed: int = 0, device: Device = None) -> dict[str, Any]:
    """Train every ablation run (each resumable under ``data/cache/runs``) and judge it on the validation
    prompts at ``cfg.scale`` (an ablation compares design choices, so it must not look at the test set)."""
    train_data = prepare(base, "train", autoencoder)
    val = prepare(base, "val", autoencoder)
    idx = single_object_groups(val.split, cfg.max_prompts)["in_distribution"]
    out: dict[str, Any] = {"split": "val", "guidance_scale": cfg.scale, "train_steps": cfg.train.steps, "runs": {}}
    for label, recipe in ablation_recipes(base, cfg).items():
        t0 = time.perf_counter()
        result = fit(recipe, train_data, name=f"t2i_ablation_{label.replace(':', '_')}", desc=label, device=device)
        res = judge_prompts(result.ema, autoencoder, judge, val, idx, cfg.scale, recipe.sampling.steps,
                            recipe.sampling.sampler, seed, device=device)
        res["train_seconds_this_run"] = round(time.perf_counter() - t0 - res["seconds"], 1)
        res["final_fm_loss"] = round(result.history["fm"][-1], 5) if result.history.get("fm") else None
        res["text_ve"] = {"variant": recipe.model.source.variant, "enc_loss": recipe.model.source.enc_loss}
        out["runs"][label] = res
    return out


def config(profile: Profile) -> Any:
    """What the study measures for a profile (stored beside its numbers)."""
    return profile.t2i_ablation


def run(profile: Profile) -> tuple[Any, dict[str, Any]]:
    """The study for a profile: ``(config, metrics)`` of ``data/results/t2i_ablation.json``. Every run is the
    paper's Text VE design (``t2i_shapes_flatten``): its Table 3a/3b are about its own head."""
    base = registry.recipe("t2i_shapes_flatten", profile)
    return config(profile), run_ablation(base, profile.t2i_ablation, registry.load("autoencoder_shapes", profile),
                                         registry.load("judge_shapes", profile), device=profile.device)


__all__ = ["ablation_recipes", "run_ablation", "config", "run"]

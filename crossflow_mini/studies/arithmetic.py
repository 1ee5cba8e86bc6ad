"""The arithmetic study (``python -m crossflow_mini reproduce arithmetic``, mini paper Table 8 and Fig. 5-6): latent
addition, subtraction and attribute edits with the shipped ``t2i_shapes`` model, judged (held-out combinations apart),
beside the trivial answer; the strength sweep; lerp / slerp interpolation read along the path - then the Table 8 rows
again on the paper-head reference model ``t2i_shapes_flatten`` (the same cases and controls), so the two Text VE heads
can be compared. The machinery is :mod:`crossflow_mini.tasks.t2i.arithmetic`."""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import registry
from ..configs import config_hash
from ..pipelines import CrossFlowPipeline
from ..profiles import Profile
from ..tasks.t2i.arithmetic import run_arithmetic


def config(profile: Profile) -> dict[str, Any]:
    """What the study measures for a profile (stored beside its numbers): the study's sizes and both models' recipes;
    the reference run has no strength sweep and no interpolation."""
    reference = dataclasses.replace(profile.arithmetic, sweep_cases=0, interpolation_pairs=0)
    return {"arithmetic": profile.arithmetic, "t2i_shapes": registry.recipe("t2i_shapes", profile),
            "reference": {"arithmetic": reference,
                          "t2i_shapes_flatten": registry.recipe("t2i_shapes_flatten", profile)}}


def run(profile: Profile) -> tuple[Any, dict[str, Any]]:
    """The study for a profile: ``(config, metrics)`` of ``data/results/arithmetic.json``."""
    cfg = config(profile)
    reference = cfg["reference"]["arithmetic"]
    judge = registry.load("judge_shapes", profile)
    out = run_arithmetic(CrossFlowPipeline.from_pretrained("t2i_shapes", profile), judge, profile.arithmetic)
    ref_pipe = CrossFlowPipeline.from_pretrained("t2i_shapes_flatten", profile)
    ref = run_arithmetic(ref_pipe, judge, reference)
    out["reference"] = {"checkpoint": "t2i_shapes_flatten", "recipe_hash": config_hash(ref_pipe.recipe),
                        **{k: ref[k] for k in ("sampler", "kinds", "trivial", "controls", "table8", "seconds")}}
    return cfg, out


__all__ = ["config", "run"]

"""Checks for notebook 07 (latent interpolation and arithmetic). Expected values come from the stored arithmetic
study or are recomputed with the library (see :mod:`crossflow_mini.checks`)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .. import report
from ..tasks.t2i import arithmetic as ar
from ..tasks.t2i import arithmetic_cases as ac
from . import close, verdict

#: The three ways of scaling a combined latent and their rows in the stored Table 8 (paper Table 8; the public
#: code's standardisation is ``unit``).
STANDARDISATION_ROWS = {"unit": "arithmetic", "operands": "control_operand_scale",
                        "none": "control_no_standardisation"}


def _success(stored: report.Result, *where: str, kind: str) -> float:
    return stored.at(*where, kind, "all", "success")


def exercise_1(answer: Sequence[str]) -> bool:
    """``answer``: the kinds (in ``ac.KINDS`` order) whose stored success rises with Text VE draws instead of
    means."""
    stored = report.load("arithmetic")
    expected = [k for k in ac.KINDS if _success(stored, "controls", "draws", kind=k) > _success(stored, "kinds", kind=k)]
    ok = list(answer) == expected if isinstance(answer, (list, tuple)) else False
    return verdict(ok, f"kinds that gain with draws: {expected or 'none'}",
                   "compare stored.at('controls', 'draws', kind, 'all', 'success') with stored.at('kinds', kind, "
                   "'all', 'success') for each kind of ac.KINDS, in that order")


def exercise_2(answer: str) -> bool:
    """``answer``: the standardisation (``unit`` / ``operands`` / ``none``) with the best stored overall success."""
    stored = report.load("arithmetic")
    overall = {v: stored.at("table8", row, "all", "overall") for v, row in STANDARDISATION_ROWS.items()}
    expected = max(overall, key=overall.get)
    return verdict(answer == expected, f"the best overall is {expected!r}",
                   "read the 'overall' of the Table 8 rows arithmetic, control_operand_scale and "
                   "control_no_standardisation")


def exercise_3(answer: Mapping[str, float], pipe: Any, judge: Any, latents: ar.TextLatents,
               cfg: ar.ArithmeticConfig) -> bool:
    """``answer``: kind -> success of the arithmetic at w = 1 on the first ``cfg.control_cases`` of
    ``cfg.cases_per_kind`` cases (recomputed here, same seed)."""
    import dataclasses

    cfg_w1 = dataclasses.replace(cfg, guidance_scale=1.0)
    expected = {}
    for kind in ac.KINDS:
        cases = ac.make_cases(kind, cfg.cases_per_kind, cfg.seed)[:cfg.control_cases]
        run = ar.run_cases(pipe, judge, cases, latents, cfg_w1)
        expected[kind] = ar.summarise(run.cases, run.scores)["all"]["success"]
    ok = isinstance(answer, Mapping) and set(answer) == set(expected) and all(
        close(answer[k], expected[k], atol=1e-6) for k in expected)
    return verdict(ok, "success per kind at w = 1", "run ar.run_cases with dataclasses.replace(cfg, "
                   "guidance_scale=1.0) on ac.make_cases(kind, cfg.cases_per_kind, cfg.seed)[:cfg.control_cases] and "
                   "summarise with ar.summarise(...)['all']['success']")


def exercise_4(mine: ac.ArithmeticCase) -> bool:
    """``mine``: large red circle - large red square + small blue square, on the left: its target must be the small
    blue circle on the left and its trivial answer that scene's caption."""
    from ..datasets.shapes_text import parse_caption

    try:
        a, a2, b2 = (parse_caption(p) for p in mine.prompts)
        first, third = a["objects"][0], b2["objects"][0]
    except (TypeError, ValueError, KeyError, IndexError, AttributeError):
        return verdict(False, "the case", "use the three prompts of the exercise with coefficients +1, -1, +1")
    target = ac.single({"shape": first["shape"], "colour": third["colour"], "size": third["size"]}, a["position"])
    ok = (list(mine.coefficients) == [1.0, -1.0, 1.0] and mine.target == target
          and mine.trivial == ac.caption(target))
    return verdict(ok, f"the case asks for {ac.caption(target)!r}",
                   "the first operand's shape and place, the colour and size of the last operand; build the target "
                   "with ac.single(...) and its caption with ac.caption(target)")


def exercise_5(answer: str) -> bool:
    """``answer``: the attribute (colour / shape / position) with the smallest stored mean switch t along lerp."""
    stored = report.load("arithmetic")
    switch = {a: stored.at("interpolation", "lerp", a, "mean_switch_t") for a in ("colour", "shape", "position")}
    expected = min(switch, key=switch.get)
    return verdict(answer == expected, f"{expected} switches first (t = {switch[expected]:.2f})",
                   "read stored.at('interpolation', 'lerp', attribute, 'mean_switch_t') for the three attributes")


__all__ = ["STANDARDISATION_ROWS", "exercise_1", "exercise_2", "exercise_3", "exercise_4", "exercise_5"]

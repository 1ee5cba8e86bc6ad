"""The exercise checks of notebook 07: right answers (computed here from the stored file) pass, wrong ones fail."""

from __future__ import annotations

import json

from crossflow_mini.checks import nb07
from crossflow_mini.results import results_path
from crossflow_mini.tasks.t2i import arithmetic_cases as ac

STORED = json.loads(results_path("arithmetic").read_text())["metrics"]


def _success(group: dict, kind: str) -> float:
    return group[kind]["all"]["success"]


def test_exercise_1(capsys):
    right = [k for k in ac.KINDS if _success(STORED["controls"]["draws"], k) > _success(STORED["kinds"], k)]
    assert nb07.exercise_1(right)
    wrong = [k for k in ac.KINDS if k not in right]
    assert not nb07.exercise_1(wrong) and not nb07.exercise_1(list(reversed(ac.KINDS)))
    assert "not yet" in capsys.readouterr().out


def test_exercise_2(capsys):
    rows = {"unit": "arithmetic", "operands": "control_operand_scale", "none": "control_no_standardisation"}
    overall = {v: STORED["table8"][r]["all"]["overall"] for v, r in rows.items()}
    right = max(overall, key=overall.get)
    assert nb07.exercise_2(right)
    assert not nb07.exercise_2(min(overall, key=overall.get))
    assert "not yet" in capsys.readouterr().out


def test_exercise_4(capsys):
    target = ac.single({"shape": "circle", "colour": "blue", "size": "small"}, "left")
    terms = ((1.0, "a large red circle on the left"), (-1.0, "a large red square on the left"),
             (1.0, "a small blue square on the left"))
    assert nb07.exercise_4(ac.ArithmeticCase("mine", terms, target, "a small blue circle on the left", heldout=False))
    wrong_target = ac.single({"shape": "square", "colour": "blue", "size": "small"}, "left")
    assert not nb07.exercise_4(ac.ArithmeticCase("mine", terms, wrong_target, ac.caption(wrong_target), False))
    signs = ((1.0, terms[0][1]), (1.0, terms[1][1]), (1.0, terms[2][1]))
    assert not nb07.exercise_4(ac.ArithmeticCase("mine", signs, target, ac.caption(target), False))
    assert "not yet" in capsys.readouterr().out


def test_exercise_5(capsys):
    lerp = STORED["interpolation"]["lerp"]
    t = {a: lerp[a]["mean_switch_t"] for a in ("colour", "shape", "position")}
    assert nb07.exercise_5(min(t, key=t.get))
    assert not nb07.exercise_5(max(t, key=t.get))
    assert "not yet" in capsys.readouterr().out


def test_exercise_3(capsys):
    import dataclasses

    from crossflow_mini import registry
    from crossflow_mini.pipelines import CrossFlowPipeline
    from crossflow_mini.profiles import get_profile
    from crossflow_mini.tasks.t2i import arithmetic as ar

    smoke = get_profile("smoke")
    pipe = CrossFlowPipeline.from_pretrained("t2i_shapes", smoke)
    judge = registry.load("judge_shapes", smoke)
    cfg = smoke.arithmetic_notebook
    latents = ar.TextLatents(pipe, cfg.batch_size)
    right = {}
    for kind in ac.KINDS:  # w = 1 by hand: the same cases, scored one by one
        cases = ac.make_cases(kind, cfg.cases_per_kind, cfg.seed)[:cfg.control_cases]
        run = ar.run_cases(pipe, judge, cases, latents, dataclasses.replace(cfg, guidance_scale=1.0))
        right[kind] = sum(s["success"] for s in run.scores) / len(run.scores)
    assert nb07.exercise_3(right, pipe, judge, latents, cfg)
    assert not nb07.exercise_3({k: v + 0.5 for k, v in right.items()}, pipe, judge, latents, cfg)
    assert not nb07.exercise_3({}, pipe, judge, latents, cfg)
    assert "not yet" in capsys.readouterr().out

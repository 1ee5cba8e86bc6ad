"""The composition-versus-arithmetic study: its grid of runs, and the rule that picks the shipped default - fixed
before any test number is read, and reading validation numbers only."""

from __future__ import annotations

import pytest

from crossflow_mini import registry
from crossflow_mini.profiles import get_profile
from crossflow_mini.studies import tradeoff
from crossflow_mini.studies.configs import TradeoffConfig


def _row(g_val: float, a_val: float | None, g_test: float = 0.0, a_test: float | None = 0.0) -> dict:
    def geneval(x):
        return {"w=1": {"all": {"overall": x}}}

    row = {"chosen_scale": 1.0, "geneval_val": geneval(g_val), "geneval_test": geneval(g_test)}
    if a_val is not None:
        row["arithmetic_val"] = {"table8": {"overall": a_val}}
        row["arithmetic_test"] = {"table8": {"overall": a_test}}
    return row


def test_the_rule_keeps_the_most_of_both_properties_on_validation():
    rows = {tradeoff.BASELINE: _row(0.8, None), tradeoff.PAPER_HEAD: _row(0.4, 0.5),
            "align=1,kl=0.001": _row(0.8, 0.1),     # composes like the baseline, no arithmetic: min(1.0, 0.2) = 0.2
            "align=0.1,kl=0.001": _row(0.6, 0.4),   # min(0.75, 0.8) = 0.75: the best balance
            "align=0,kl=0.001": _row(0.3, 0.6)}     # min(0.375, 1.2) = 0.375
    choice = tradeoff.choose(rows)
    assert choice["chosen"] == "align=0.1,kl=0.001"
    assert choice["scores"] == {"align=1,kl=0.001": 0.2, "align=0.1,kl=0.001": 0.75, "align=0,kl=0.001": 0.375}


def test_the_rule_never_reads_test_numbers():
    rows = {tradeoff.BASELINE: _row(0.8, None), tradeoff.PAPER_HEAD: _row(0.4, 0.5),
            "a": _row(0.6, 0.4, g_test=0.0, a_test=0.0), "b": _row(0.5, 0.3, g_test=1.0, a_test=1.0)}
    assert tradeoff.choose(rows)["chosen"] == "a"


def test_the_grid_has_every_pair_and_the_two_references():
    profile = get_profile("smoke", device="cpu")
    cfg = TradeoffConfig(align_weights=(0.0, 0.3), kl_weights=(1e-3, 1e-2), extra_pairs=((0.3, 1e-2), (1.0, 0.1)))
    runs = tradeoff.study_recipes(registry.recipe("t2i_shapes", profile),
                                  registry.recipe("t2i_baseline_shapes", profile), cfg)
    assert set(runs) == {"align=0,kl=0.001", "align=0.3,kl=0.001", "align=0,kl=0.01", "align=0.3,kl=0.01",
                         "align=1,kl=0.1", tradeoff.PAPER_HEAD, tradeoff.BASELINE}  # an extra pair in the grid: once
    for label, r in runs.items():
        assert r.shapes.vocabulary == cfg.vocabulary and r.train == cfg.train  # one data set, one budget
    src = runs["align=0.3,kl=0.01"].model.source
    assert (src.head, src.align_weight, src.kl_weight) == ("patch_queries", 0.3, 1e-2)
    head = runs[tradeoff.PAPER_HEAD].model.source
    assert (head.head, head.align_weight) == ("flatten", 0.0)


@pytest.mark.parametrize("split", ["val", "test"])
def test_a_rows_summary_reads_its_chosen_scale(split):
    row = _row(0.5, 0.2, g_test=0.4, a_test=0.1)
    row["geneval_val"]["w=2"] = row["geneval_test"]["w=2"] = {"all": {"overall": 0.9}}
    assert tradeoff.summary(row, split)["geneval"] == (0.5 if split == "val" else 0.4)
    row["chosen_scale"] = 2.0
    assert tradeoff.summary(row, split) == {"geneval": 0.9, "arithmetic": 0.2 if split == "val" else 0.1}


def test_row_labels_parse_back():
    from crossflow_mini.studies.tradeoff import parse_label, row_label
    for align, kl in ((0.0, 1e-3), (0.3, 1e-2), (1.0, 0.1)):
        assert parse_label(row_label(align, kl)) == (align, kl)
    with pytest.raises(ValueError, match="grid row"):
        parse_label("paper_head")


def test_an_unknown_row_is_refused_with_the_rows_there_are(capsys, monkeypatch):
    monkeypatch.setenv("CROSSFLOW_PROFILE", "smoke")
    with pytest.raises(SystemExit):
        tradeoff.main(["align=0.5,kl=0.001"])
    err = capsys.readouterr().err
    assert "not a row" in err and "align=0,kl=0.001" in err and "paper_head" in err

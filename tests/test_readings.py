"""Every number a reading quotes comes from a stored result or from what its notebook prints (tools/check_readings.py
states the rule and its exemptions): the markdown of each notebook, and the readings of README.md and
docs/RESULTS.md. A stored number that changes under a reading turns this red."""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import check_readings as cr  # noqa: E402
import update_readme  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# Numbers the notebooks quote today that no stored result or output of theirs gives. Each is listed here, with why,
# so that it shows in every test run (as a warning) until the notebook is fixed; a listed number that is no longer a
# problem fails the test, so the list cannot go stale either.
KNOWN = {
    "08_image_captioning.ipynb": {
        "46,000": "'about 46,000 different captions': not printed by the notebook nor stored",
    },
}


@pytest.fixture(scope="module")
def profile() -> cr.Values:
    return cr.profile_values()


def _problems(report: cr.Report) -> list[str]:
    return report.problems


def _quoted(problem: str) -> str:
    return problem.split(": '", 1)[1].split("'", 1)[0]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem[:2] for p in NOTEBOOKS])
def test_a_notebooks_readings_quote_its_own_numbers(path, profile):
    report = cr.Report()
    pars, refs = cr.notebook_readings(path)
    cr.check_paragraphs(pars, refs, profile, report)
    found = {_quoted(p): p for p in report.problems}
    known = KNOWN.get(path.name, {})
    for number, why in known.items():
        if number in found:
            warnings.warn(f"{path.name}: {number} - {why}", UserWarning)
    new = [p for q, p in found.items() if q not in known]
    fixed = [q for q in known if q not in found]
    assert not new, "numbers that match no stored result and no output of the notebook:\n" + "\n".join(new)
    assert not fixed, f"no longer a problem, remove from KNOWN: {fixed}"


def test_the_readings_of_readme_and_results():
    report = cr.check(cr.DOCS)
    assert not report.problems, "\n".join(report.problems)
    assert report.checked > 100  # the readings are really read


def test_a_changed_stored_number_turns_its_reading_red(tmp_path, monkeypatch):
    """Change one stored number (in a copy of data/results) that docs/RESULTS.md quotes: the reading is reported."""
    results = tmp_path / "results"
    shutil.copytree(cr.RESULTS, results)
    path = results / "t2i_comparison.json"
    data = json.loads(path.read_text())
    overall = data["metrics"]["shapes"]["crossflow"]["geneval"]["all"]
    quoted = f"{overall['overall']:.3f}"
    prose = cr.GENERATED.sub("", (ROOT / "docs" / "RESULTS.md").read_text())
    assert quoted in prose, "the reading this test relies on quotes CrossFlow's mini-GenEval overall"
    monkeypatch.setattr(cr, "RESULTS", results)
    monkeypatch.setattr(update_readme, "RESULTS", results)
    assert not cr.check([ROOT / "docs" / "RESULTS.md"]).problems
    overall["overall"] += 0.05
    path.write_text(json.dumps(data))
    problems = cr.check([ROOT / "docs" / "RESULTS.md"]).problems
    assert any(f"'{quoted}'" in p for p in problems), problems


# --- the rule itself, on a small notebook ---------------------------------------------------------------------
def _check(markdown: str, printed: str = "", stored: dict | None = None, tmp_path: Path | None = None,
           monkeypatch=None) -> list[str]:
    if stored is not None:
        (tmp_path / "toy.json").write_text(json.dumps(stored))
        monkeypatch.setattr(cr, "RESULTS", tmp_path)
    cells = [new_code_cell("report.load('toy')" if stored is not None else "x = 1",
                           outputs=[new_output("stream", name="stdout", text=printed)]),
             new_markdown_cell(markdown)]
    path = (tmp_path or Path("/nonexistent")) / "nb.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    pars, refs = cr.notebook_readings(path)
    report = cr.Report()
    cr.check_paragraphs(pars, refs, cr.Values(), report)
    return [_quoted(p) for p in report.problems]


def test_numbers_match_within_their_printed_rounding(tmp_path, monkeypatch):
    stored = {"acc": 0.6917, "share": 0.1234, "params": 2238571, "seconds": 1921.7, "train_s": 1649.1}
    ok = ("CrossFlow reaches 0.692, 0.69 and 12.3 % (12 %); it has 2.24M parameters and trained for 1,922 s, "
          "the other one for 27.5 min.")
    assert _check(ok, stored=stored, tmp_path=tmp_path, monkeypatch=monkeypatch) == []
    wrong = "CrossFlow reaches 0.700, 12.5 % and 2.30M parameters."
    assert _check(wrong, stored=stored, tmp_path=tmp_path, monkeypatch=monkeypatch) == ["0.700", "12.5 %", "2.30M"]


def test_printed_numbers_count_with_their_own_rounding(tmp_path):
    assert _check("The loss ends at 0.38 and the accuracy at 71 %.", printed="loss 0.3812, accuracy 71.2%\n",
                  tmp_path=tmp_path) == []
    assert _check("The loss ends at 0.40.", printed="loss 0.3812\n", tmp_path=tmp_path) == ["0.40"]


def test_what_is_not_a_result_is_exempt(tmp_path):
    text = ("Paper Table 3a and Fig. 5-6 (Sec. 4.1; notebooks 04-06; Exercise 12), CVPR 2025, torch 2.13.0, "
            "arXiv 2412.15213: a 32 x 32 image, 8 -> 32 px, `steps=1234`, $\\lambda = 10^{-4}$, "
            "[a link](https://example.org/77.5), at least 0.95, delta1 >= 0.97, 3 seeds, 200 MB.")
    assert _check(text, tmp_path=tmp_path) == []


def test_the_papers_numbers_are_exempt_only_in_a_sentence_about_the_paper(tmp_path):
    assert _check("The paper reports FID 10.13 on COCO.", tmp_path=tmp_path) == []
    assert _check("Ours reaches 10.13; the paper reports more.", tmp_path=tmp_path) == ["10.13"]


def test_a_difference_of_two_quoted_numbers_is_accepted(tmp_path):
    printed = "crossflow 0.6917 baseline 0.8889\n"
    assert _check("CrossFlow 0.692 against 0.889: about 0.20 behind.", printed=printed, tmp_path=tmp_path) == []
    assert _check("CrossFlow 0.692 against 0.889: about 0.25 behind.", printed=printed, tmp_path=tmp_path) == ["0.25"]

"""`make student` (tools/make_student.py): the student version of every notebook has no solution left and keeps
every check; the autograder version keeps both; a check run on a cleared solution goes red."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import make_student  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob(make_student.NOTEBOOK_GLOB))
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
STUB = "raise NotImplementedError()"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    make_student.make(NOTEBOOKS, out)
    return out


def _nbgrader(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _region(source: str, begin: str, end: str) -> tuple[list[str], list[str]]:
    """(lines inside begin/end regions, lines outside), stripped, without blanks and comments."""
    inside, outside, within = [], [], False
    for line in source.splitlines():
        if begin in line:
            within = True
        elif end in line:
            within = False
        elif line.strip() and not line.strip().startswith("#"):
            (inside if within else outside).append(line.strip())
    return inside, outside


def _cells(path: Path) -> dict:
    return {c.get("id"): c for c in nbformat.read(path, as_version=4).cells}


def test_every_notebook_is_built(built):
    assert NOTEBOOKS
    for path in NOTEBOOKS:
        assert (built / make_student.STUDENT_DIR / path.name).exists()
        assert (built / make_student.AUTOGRADER_DIR / path.name).exists()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_student_version_has_no_solution(built, path):
    source = nbformat.read(path, as_version=4)
    student = _cells(built / make_student.STUDENT_DIR / path.name)
    assert len(student) == len(source.cells)   # no cell dropped or added
    for cell in student.values():
        assert not any(m in cell.source for m in MARKERS), cell.source
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    for cell in source.cells:
        meta = _nbgrader(cell)
        if not meta.get("solution"):
            continue
        mine = student[cell.get("id")].source
        if cell.cell_type == "markdown":
            assert mine == "YOUR ANSWER HERE", f"{meta['grade_id']}: the model answer is still there"
            continue
        inside, outside = _region(cell.source, "BEGIN SOLUTION", "END SOLUTION")
        assert inside, f"{meta['grade_id']}: a solution cell without a solution region"
        left = [line for line in inside if line not in outside and line in mine]
        assert not left, f"{meta['grade_id']}: solution code left in the student version: {left}"
        assert STUB in mine


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_every_check_is_kept_and_locked(built, path):
    source = nbformat.read(path, as_version=4)
    student = _cells(built / make_student.STUDENT_DIR / path.name)
    autograder = _cells(built / make_student.AUTOGRADER_DIR / path.name)
    checks = [c for c in source.cells if _nbgrader(c).get("grade") and not _nbgrader(c).get("solution")]
    ids = [_nbgrader(c)["grade_id"] for c in source.cells if _nbgrader(c)]
    assert len(ids) == len(set(ids)), "grade ids must be unique"
    for cell in checks:
        hidden, visible = _region(cell.source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
        mine, graded = student[cell.get("id")], autograder[cell.get("id")]
        assert _nbgrader(mine).get("grade") and _nbgrader(mine).get("locked")
        assert all(line in mine.source for line in visible)
        assert not any(line in mine.source for line in hidden if line not in visible)
        assert graded.source == cell.source   # the autograder keeps the hidden tests
    for cell in source.cells:   # ... and the solutions
        if _nbgrader(cell).get("solution"):
            assert autograder[cell.get("id")].source == cell.source


def test_a_check_on_a_cleared_solution_goes_red(built):
    """Notebook 01, exercise 3: the student's cell raises, and the check fails on a missing or wrong answer."""
    cells = list(_cells(built / make_student.STUDENT_DIR / "01_flow_matching_between_distributions.ipynb").values())
    solution = next(c for c in cells if _nbgrader(c).get("grade_id") == "nb01-ex3-solution")
    check = next(c for c in cells if _nbgrader(c).get("grade_id") == "nb01-ex3-check")
    from crossflow_mini.checks import nb01
    with pytest.raises(NotImplementedError):
        exec(solution.source, {})
    with pytest.raises(NameError):   # nothing answered: the check cell cannot pass
        exec(check.source, {"nb01": nb01})
    with pytest.raises(AssertionError):
        exec(check.source, {"nb01": nb01, "end_share": 0.2})
    exec(check.source, {"nb01": nb01, "end_share": math.erfc(math.log(9) / math.sqrt(2))})   # the right answer


def test_make_student_command_line(tmp_path):
    path = NOTEBOOKS[0]
    assert make_student.main([str(path), "--out", str(tmp_path)]) == 0
    assert (tmp_path / make_student.STUDENT_DIR / path.name).exists()


def test_cleaning_an_executed_notebook_keeps_the_exercise_marks(tmp_path):
    """`make notebooks` cleans what a run leaves behind; nbgrader's cell metadata is content and must stay."""
    from clean_notebooks import clean

    nb = nbformat.v4.new_notebook()
    mark = {"grade": False, "solution": True, "locked": False, "schema_version": 3, "grade_id": "x-ex1-solution"}
    cell = nbformat.v4.new_code_cell("### BEGIN SOLUTION\nanswer = 1\n### END SOLUTION")
    cell.metadata = {"nbgrader": mark, "execution": {"iopub.status.busy": "2026-01-01T00:00:00Z"}, "tags": ["a"]}
    nb.cells.append(cell)
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    clean(str(path))
    kept = nbformat.read(path, as_version=4).cells[0].metadata
    assert kept == {"nbgrader": mark, "tags": ["a"]}

"""The course website and the generated documents: docs/COURSE.md, README.md and docs/RESULTS.md say what the
notebooks and the stored results give (`make readme`), the student and teacher editions show what each reader should
see, and `make book` builds both editions offline with no Sphinx warning."""

from __future__ import annotations

import html as html_lib
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import build_book  # noqa: E402
import syllabus  # noqa: E402
import update_readme  # noqa: E402

SOLUTION = {"grade": False, "solution": True, "locked": False, "schema_version": 3, "grade_id": "nb99-ex1-solution"}
CHECK = {"grade": True, "solution": False, "locked": True, "points": 1, "schema_version": 3,
         "grade_id": "nb99-ex1-check"}
ANSWER = {"grade": False, "solution": True, "locked": False, "schema_version": 3, "grade_id": "nb99-ex1-answer"}


def exercise_notebook() -> nbformat.NotebookNode:
    """A notebook in the course's exercise format: one exercise as cells, and an older-style list after it."""
    solution = new_code_cell("### BEGIN SOLUTION\nanswer = secret_value()\n### END SOLUTION",
                             metadata={"nbgrader": SOLUTION},
                             outputs=[new_output("stream", name="stdout", text="the secret is 42\n")])
    check = new_code_cell("assert nb99.exercise_1(answer)\n### BEGIN HIDDEN TESTS\nassert hidden_check(answer)\n"
                          "### END HIDDEN TESTS", metadata={"nbgrader": CHECK},
                          outputs=[new_output("stream", name="stdout", text="correct: 42\n")])
    written = new_markdown_cell("**Model answer.** Because the flow keeps the marginals.",
                                metadata={"nbgrader": ANSWER})
    return new_notebook(cells=[
        new_markdown_cell("# 99 · A test notebook\n\nSome prose " + "word " * 300),
        new_code_cell("x = 1\ny = 2", outputs=[new_output("stream", name="stdout", text="shown\n")]),
        new_markdown_cell("### Exercise 1: Train it longer\nTrain the demo again with twice the steps."),
        solution, check, written,
        new_markdown_cell("## Exercises\n1. **A sweep.** Try w = 1, 2, 4 and\n   compare.\n"
                          "2. **Look.** Describe the picture."),
    ], metadata={"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}})


def test_exercises_are_read_in_both_forms_with_their_minutes():
    nb = exercise_notebook()
    ex = syllabus.exercises(nb)
    assert [(e.number, e.title, e.checked) for e in ex] == [(1, "Train it longer", True), (2, "Look", False)]
    # the cell form wins over a list item with the same number; list items keep their continuation lines
    assert ex[0].minutes == syllabus.EXERCISE_BASE_MIN + syllabus.EXERCISE_TRAIN_MIN
    assert ex[1].minutes == syllabus.EXERCISE_BASE_MIN
    nb.cells[-1].source = nb.cells[-1].source.replace("1. **A sweep.**", "3. **A sweep.**")
    sweep = syllabus.exercises(nb)[-1]
    assert sweep.title == "A sweep" and "compare" in sweep.text
    assert sweep.minutes == syllabus.EXERCISE_BASE_MIN + syllabus.EXERCISE_SWEEP_MIN


def test_reading_time_leaves_the_exercises_out():
    nb = exercise_notebook()
    base = syllabus.read_minutes(nb)
    nb.cells[2].source += " word" * 3000  # a long exercise does not make the notebook longer to read
    assert syllabus.read_minutes(nb) == base
    nb.cells[0].source += " word" * 3000
    assert syllabus.read_minutes(nb) > base


def test_student_edition_shows_no_solution_and_no_hidden_test():
    student = build_book.student_notebook(exercise_notebook())
    text = "\n".join(c.source for c in student.cells)
    assert "secret_value" not in text and "hidden_check" not in text and "flow keeps the marginals" not in text
    assert "raise NotImplementedError()" in text and "YOUR ANSWER HERE" in text
    solution, check = student.cells[3], student.cells[4]
    assert solution.outputs == [] and check.outputs == []  # "the secret is 42" would give it away
    assert student.cells[1].outputs  # the lesson's own outputs stay


def test_teacher_edition_folds_every_solution_without_nbgrader_markers():
    teacher = build_book.teacher_notebook(exercise_notebook())
    solution, check, written = teacher.cells[3], teacher.cells[4], teacher.cells[5]
    assert "hide-cell" in solution.metadata["tags"] and "secret_value" in solution.source
    assert solution.outputs  # the teacher sees what the solution prints
    assert "hidden_check" in check.source
    assert not any(build_book.SOLUTION_MARKERS.match(line) for c in teacher.cells for line in c.source.split("\n"))
    assert written.source.startswith(":::{admonition} Model answer\n:class: dropdown")
    assert "flow keeps the marginals" in written.source


def test_links_become_pages_or_text():
    pages = build_book.page_map()
    text = ("[syllabus](docs/COURSE.md), [nb](notebooks/01_flow_matching_between_distributions.ipynb#exercises), "
            "[code](crossflow_mini/core/path.py), [web](https://arxiv.org/abs/2412.15213)")
    out = build_book.rewrite_links(text, "README.md", pages)
    assert "[syllabus](index.md)" in out
    assert "[nb](notebooks/01_flow_matching_between_distributions.ipynb#exercises)" in out
    assert "code" in out and "path.py" not in out
    assert "[web](https://arxiv.org/abs/2412.15213)" in out
    assert build_book.rewrite_links("[m](METHOD.md)", "docs/RESULTS.md", pages) == "[m](method.md)"


def test_course_md_is_up_to_date():
    text = syllabus.COURSE.read_text(encoding="utf-8")
    assert syllabus.render(text) == text, "docs/COURSE.md is out of date: run `make readme`"


def test_readme_and_results_tables_are_up_to_date():
    for path in update_readme.TABLES:
        assert update_readme.render(path) == path.read_text(encoding="utf-8"), \
            f"{path.name} is out of date: run `make readme`"


def test_every_notebook_is_on_the_course_map():
    text = syllabus.COURSE.read_text(encoding="utf-8")
    for nb in syllabus.notebooks():
        assert f"(../notebooks/{nb.stem}.ipynb)" in text and f"<!-- begin:nb{nb.number} -->" in text


@pytest.mark.slow
def test_both_editions_build_offline_without_warnings(tmp_path):
    """`make book` and `make book TEACHER=1` (Sphinx with -W: any warning fails the build)."""
    # lines only a solution holds: not found anywhere else in the notebooks or the pages (the student must not see
    # them; the teacher must)
    solution_lines, elsewhere = set(), [p.read_text(encoding="utf-8") for p in build_book.PAGES_SOURCES]
    for nb in build_book.notebooks():
        for c in nbformat.read(nb, as_version=4).cells:
            regions = re.findall(r"BEGIN SOLUTION[^\n]*\n(.*?)\n[^\n]*END SOLUTION", c.source, re.S)
            if build_book.is_solution(c) and c.cell_type == "code" and regions:  # nbgrader hides these lines only
                solution_lines |= {line.strip() for region in regions for line in region.split("\n")}
                elsewhere.append(re.sub(r"BEGIN SOLUTION.*?END SOLUTION", "", c.source, flags=re.S))
            else:
                elsewhere.append(c.source)
    def squeeze(text: str) -> str:  # compared without white space: markdown and HTML break lines elsewhere
        return re.sub(r"\s+", "", text)

    others = squeeze("\n".join(elsewhere))
    solution_lines = {squeeze(line) for line in solution_lines if len(line) > 20 and squeeze(line) not in others}
    t0 = time.perf_counter()
    editions = ("student", "teacher")
    outs = {e: tmp_path / e / "html" for e in editions}  # each edition apart: myst-nb writes beside its output
    with ThreadPoolExecutor(2) as pool:  # the two builds at once (each one Sphinx process)
        status = dict(zip(editions, pool.map(lambda e: build_book.build(outs[e], tmp_path / e / "src", e == "teacher"),
                                             editions)))
    for edition, out in outs.items():
        assert status[edition] == 0, f"the {edition} edition did not build without warnings"
        pages = {p.relative_to(out).as_posix(): p.read_text(encoding="utf-8") for p in out.rglob("*.html")}
        assert {"index.html", "method.html", "results.html"} <= set(pages)
        assert all(f"notebooks/{nb.stem}.html" in pages for nb in build_book.notebooks())
        html = "\n".join(pages.values())
        assert "BEGIN SOLUTION" not in html and "BEGIN HIDDEN TESTS" not in html
        # offline: no script or style sheet from the network; MathJax from the site itself
        assert not re.search(r'<(script|link)[^>]+(src|href)="(https?:)?//', html)
        assert (out / "_static" / "_mathjax" / "MathJax.js").exists()
        if solution_lines:  # once the notebooks have solutions: hidden from students, folded for teachers
            plain = squeeze(html_lib.unescape(re.sub(r"<[^>]+>", "", html)))
            shown = [line for line in solution_lines if line in plain]
            if edition == "student":
                assert not shown, f"solution lines in the student edition: {shown[:3]}"
            else:
                assert len(shown) == len(solution_lines), "solution lines missing from the teacher edition"
    assert time.perf_counter() - t0 < 120, "the website should build in well under two minutes"

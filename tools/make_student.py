"""Make the student and autograder versions of the course notebooks from the one source in notebooks/.

    python tools/make_student.py                      # every notebooks/NN_*.ipynb (what `make student` runs)
    python tools/make_student.py notebooks/01_*.ipynb --out build

Each exercise in a notebook is written in nbgrader's format (docs: nbgrader's "Creating assignments"): a solution
cell (metadata ``nbgrader.solution``) whose code sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION``, or a
markdown solution cell holding the model answer, then a locked check cell (``nbgrader.grade``) that may carry extra
checks between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``. This script uses nbgrader's preprocessors as a
library (no nbgrader database, no course directory) and writes

* ``build/student/NN_*.ipynb`` - what a student gets: solutions replaced by ``raise NotImplementedError()`` (code)
  or "YOUR ANSWER HERE" (markdown), hidden tests and marking schemes removed, outputs cleared, check cells locked;
* ``build/autograder/NN_*.ipynb`` - the source with its solutions and hidden tests, outputs cleared, cells locked
  and checksummed: what nbgrader's ``autograde`` compares a submission with.

The steps follow nbgrader's own ``generate_assignment`` (less its database step ``SaveCells``). A written answer
(a markdown solution cell) is graded by hand in nbgrader, which requires it to be a grade cell too: one marked
``solution`` only gets ``grade`` and :data:`WRITTEN_ANSWER_POINTS` here, in both versions (the source is not changed).
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import nbformat
from nbformat import NotebookNode

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
STUDENT_DIR = "student"
AUTOGRADER_DIR = "autograder"
WRITTEN_ANSWER_POINTS = 1


def _written_answers_graded(nb: NotebookNode) -> NotebookNode:
    """Mark every markdown solution cell as a (manually graded) grade cell, as nbgrader's format requires."""
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader")
        if cell.cell_type == "markdown" and meta and meta.get("solution") and not meta.get("grade"):
            meta["grade"] = True
            meta.setdefault("points", WRITTEN_ANSWER_POINTS)
    return nb


def _run(nb: NotebookNode, steps: list) -> NotebookNode:
    resources: dict = {}
    for step in steps:
        nb, resources = step.preprocess(nb, resources)
    return nb


def student_version(nb: NotebookNode) -> NotebookNode:
    """The notebook a student works in: nbgrader's release steps (lock, clear solutions and outputs, checksums,
    clear hidden tests and marking schemes)."""
    from nbgrader.preprocessors import (CheckCellMetadata, ClearHiddenTests, ClearMarkScheme, ClearOutput,
                                        ClearSolutions, ComputeChecksums, LockCells)
    return _run(_written_answers_graded(copy.deepcopy(nb)), [LockCells(), ClearSolutions(), ClearOutput(), CheckCellMetadata(),
                                    ComputeChecksums(), ClearHiddenTests(), ClearMarkScheme(), ComputeChecksums(),
                                    CheckCellMetadata()])


def autograder_version(nb: NotebookNode) -> NotebookNode:
    """The source as nbgrader's autograde needs it: solutions and hidden tests kept, outputs cleared, locked cells
    marked and every graded cell checksummed."""
    from nbgrader.preprocessors import CheckCellMetadata, ClearOutput, ComputeChecksums, LockCells
    return _run(_written_answers_graded(copy.deepcopy(nb)),
                [LockCells(), ClearOutput(), CheckCellMetadata(), ComputeChecksums()])


def make(paths: list[Path], out: Path) -> list[Path]:
    """Write the student and autograder versions of ``paths`` under ``out``; returns the files written."""
    written = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        for folder, version in ((STUDENT_DIR, student_version), (AUTOGRADER_DIR, autograder_version)):
            target = out / folder / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(version(nb), target)
            written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: every notebooks/NN_*.ipynb")
    ap.add_argument("--out", type=Path, default=ROOT / "build", help="default: build/")
    args = ap.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob(NOTEBOOK_GLOB))
    written = make(paths, args.out)
    for folder in (STUDENT_DIR, AUTOGRADER_DIR):
        print(f"{folder}: {sum(p.parent.name == folder for p in written)} notebooks in {args.out / folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

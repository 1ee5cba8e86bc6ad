"""Build the course website from the committed, executed notebooks (no notebook is re-executed).

    python tools/build_book.py                  # student edition -> build/book/ (what `make book` runs)
    python tools/build_book.py --teacher        # teacher edition -> build/book-teacher/ (`make book TEACHER=1`)
    python tools/build_book.py --out DIR --stage DIR   # elsewhere (the test builds into a temporary folder)

The pages are staged into one folder, then Sphinx with myst-nb (what Jupyter Book 1 uses) turns them into HTML,
warnings as errors:

* ``index``: the syllabus, docs/COURSE.md;  ``readme``, ``method``, ``results``, ``measurements``,
  ``scaling_up``: README.md and docs/*.md;  ``notebooks/NN_*``: the notebooks with their stored outputs.
* Exercise cells follow nbgrader's format (metadata ``nbgrader.solution`` / ``nbgrader.grade``). The student
  edition shows a notebook as the student receives it: nbgrader's own ``ClearSolutions`` and ``ClearHiddenTests``
  replace every solution by its stub (``# YOUR CODE HERE`` / "YOUR ANSWER HERE", the latter in a "Your answer"
  box) and drop hidden tests, and the solution and check cells lose their outputs (they would give the answer
  away). The teacher edition keeps every
  solution behind a "Show the solution" toggle, without nbgrader's marker lines.
* Links between these files become links between pages; a link to any other file of the repository (code, data)
  becomes its plain text, since the website does not carry those files.
* MathJax comes from the PyPI package ``jupyter-server-mathjax`` and the theme from ``sphinx-book-theme``: the
  site needs no network, neither to build nor to read.
"""

from __future__ import annotations

import argparse
import copy
import os
import posixpath
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = ROOT / "docs" / "book"

# repository path -> page path inside the website (the staged source folder)
PAGES = {
    "docs/COURSE.md": "index.md",
    "README.md": "readme.md",
    "docs/METHOD.md": "method.md",
    "docs/RESULTS.md": "results.md",
    "docs/MEASUREMENTS.md": "measurements.md",
    "docs/SCALING_UP.md": "scaling_up.md",
}
PAGES_SOURCES = tuple(ROOT / source for source in PAGES)
REFERENCE_PAGES = ("readme", "method", "results", "measurements", "scaling_up")
SOLUTION_MARKERS = re.compile(r"^\s*#+\s*(BEGIN|END) (SOLUTION|HIDDEN TESTS)\s*$")
LINK = re.compile(r"(!?)\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(([^()\s]+)\)")


def notebooks() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def page_map() -> dict[str, str]:
    """Every repository file that becomes a page, with its page path."""
    pages = dict(PAGES)
    for nb in notebooks():
        rel = nb.relative_to(ROOT).as_posix()
        pages[rel] = rel
    return pages


def rewrite_links(text: str, source: str, pages: dict[str, str]) -> str:
    """Markdown links of the file ``source`` (a repository path): to a page -> relative to its page; to another
    repository file -> its text only; web links and anchors stay."""
    here = posixpath.dirname(source)
    page_here = posixpath.dirname(pages[source])

    def sub(m: re.Match) -> str:
        bang, label, target = m.groups()
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            return m.group(0)
        path, _, anchor = target.partition("#")
        resolved = posixpath.normpath(posixpath.join(here, path))
        if resolved in pages:
            new = posixpath.relpath(pages[resolved], page_here or ".")
            return f"{bang}[{label}]({new}{'#' + anchor if anchor else ''})"
        if bang:  # an image the website does not carry
            raise SystemExit(f"{source}: image {target} is not part of the website")
        return label
    return LINK.sub(sub, text)


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_solution(cell) -> bool:
    return bool(_nbgrader(cell).get("solution"))


def is_check(cell) -> bool:
    return bool(_nbgrader(cell).get("grade")) and not is_solution(cell)


def strip_markers(source: str) -> str:
    """A solution or check cell's source without nbgrader's BEGIN/END lines (the teacher reads the code)."""
    return "\n".join(line for line in source.split("\n") if not SOLUTION_MARKERS.match(line))


def student_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook as a student receives it (nbgrader's own preprocessors), with the outputs of solution and check
    cells removed."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    nb = copy.deepcopy(nb)
    nb, _ = ClearSolutions().preprocess(nb, {})
    nb, _ = ClearHiddenTests().preprocess(nb, {})
    for cell in nb.cells:
        if cell.cell_type == "code" and (is_solution(cell) or is_check(cell)):
            cell.outputs, cell.execution_count = [], None
        elif cell.cell_type == "markdown" and is_solution(cell):  # the stub, in a box where the answer goes
            cell.source = f":::{{admonition}} Your answer\n{cell.source.strip()}\n:::"
    return nb


def teacher_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Every solution kept, folded behind a toggle: a code solution with myst-nb's ``hide-cell`` tag, a written one
    in a dropdown admonition; nbgrader's marker lines removed."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if is_solution(cell) or is_check(cell):
            cell.source = strip_markers(cell.source)
        if not is_solution(cell):
            continue
        if cell.cell_type == "code":
            meta = cell.setdefault("metadata", {})
            meta["tags"] = sorted(set(meta.get("tags", [])) | {"hide-cell"})
            meta["mystnb"] = {**meta.get("mystnb", {}), "code_prompt_show": "Show the solution",
                              "code_prompt_hide": "Hide the solution"}
        else:
            fence = ":" * max(3, 1 + max((len(f) for f in re.findall(r"^:{3,}", cell.source, re.M)), default=0))
            cell.source = f"{fence}{{admonition}} Model answer\n:class: dropdown\n\n{cell.source.strip()}\n{fence}"
    return nb


def stage(dest: Path, teacher: bool) -> None:
    """Write every page, the configuration and MathJax into ``dest`` (emptied first)."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(CONF_DIR, dest, ignore=shutil.ignore_patterns("__pycache__"))
    pages = page_map()
    for source, page in pages.items():
        target = dest / page
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.endswith(".ipynb"):
            nb = nbformat.read(ROOT / source, as_version=4)
            nb = teacher_notebook(nb) if teacher else student_notebook(nb)
            for cell in nb.cells:
                if cell.cell_type == "markdown":
                    cell.source = rewrite_links(cell.source, source, pages)
            nbformat.write(nb, target)
        else:
            text = rewrite_links((ROOT / source).read_text(encoding="utf-8"), source, pages)
            if page == "index.md":
                text += toctree()
            target.write_text(text, encoding="utf-8")
    copy_mathjax(dest / "_static" / "_mathjax")


def toctree() -> str:
    names = "\n".join(f"notebooks/{nb.stem}" for nb in notebooks())
    refs = "\n".join(REFERENCE_PAGES)
    return (f"\n\n```{{toctree}}\n:hidden:\n:caption: Notebooks\n\n{names}\n```\n\n"
            f"```{{toctree}}\n:hidden:\n:caption: Reference\n\n{refs}\n```\n")


def copy_mathjax(dest: Path) -> None:
    """MathJax 2 from the installed jupyter-server-mathjax: the loader, the combined TeX + HTML-CSS configuration,
    the extensions it loads and the STIX web fonts (the accessibility extensions are left out)."""
    import jupyter_server_mathjax

    src = Path(jupyter_server_mathjax.__file__).parent / "static"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src / "MathJax.js", dest / "MathJax.js")
    for part in ("config", "jax", "fonts/HTML-CSS/STIX-Web"):
        shutil.copytree(src / part, dest / part)
    shutil.copytree(src / "extensions", dest / "extensions", ignore=shutil.ignore_patterns("a11y"))


def build(out: Path, stage_dir: Path, teacher: bool, jobs: str = "1") -> int:
    stage(stage_dir, teacher)
    env = {**os.environ, "CROSSFLOW_BOOK_EDITION": "teacher" if teacher else "student"}
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q", "-j", jobs,
           "-d", str(stage_dir.parent / f"{stage_dir.name}-doctrees"), str(stage_dir), str(out)]
    return subprocess.call(cmd, env=env)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", action="store_true", help="the teacher edition, with the solutions")
    ap.add_argument("--out", type=Path, default=None, help="default: build/book or build/book-teacher")
    ap.add_argument("--stage", type=Path, default=None, help="where the pages are staged (default: beside --out)")
    ap.add_argument("-j", "--jobs", default="1", help="Sphinx's parallel jobs (default 1)")
    args = ap.parse_args()
    out = args.out or ROOT / "build" / ("book-teacher" if args.teacher else "book")
    stage_dir = args.stage or out.parent / f".{out.name}-src"
    status = build(out.resolve(), stage_dir.resolve(), args.teacher, args.jobs)
    if status == 0:
        print(f"{'teacher' if args.teacher else 'student'} edition: {out / 'index.html'}")
    return status


if __name__ == "__main__":
    sys.exit(main())

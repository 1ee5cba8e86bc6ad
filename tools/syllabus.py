"""Fill the tables of the syllabus (docs/COURSE.md) from the notebooks and the stored run times (nothing typed by
hand):

    python tools/syllabus.py            # rewrite the generated blocks of docs/COURSE.md (`make readme`)
    python tools/syllabus.py --check    # exit 1 if docs/COURSE.md is not what the notebooks and times give

* the notebooks' titles, their exercises (``### Exercise N: title`` cells, or the numbered items of an older
  "## Exercises" list) and whether an exercise has a check cell (nbgrader metadata ``grade: true``);
* the time to read a notebook: its prose at 150 words a minute and its code at 15 lines a minute (a careful first
  read of technical text; the exercises and their solutions are not counted - they have minutes of their own),
  rounded up to 5 minutes;
* the minutes of an exercise: 10 to read it, run a few lines and answer; +10 where it trains a model or reruns a
  section of the notebook; +5 where it compares several settings or values (a sweep);
* the run times measured by ``tools/run_notebooks.py`` in data/results/notebook_times.json (course profile, 2 CPU
  cores): ``course_fresh_clone`` (a student's first run, caches empty) and ``course`` (a rerun);
* the suggested plans (which notebooks and exercises fit each session), computed from those minutes.

Each generated block sits between ``<!-- begin:NAME -->`` and ``<!-- end:NAME -->`` in docs/COURSE.md; everything
else in that file is written by hand. tools/update_readme.py takes the course map for the README from here.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
COURSE = ROOT / "docs" / "COURSE.md"
TIMES = ROOT / "data" / "results" / "notebook_times.json"

# The part of the paper each notebook rebuilds (the notebooks' own opening cells and docs/METHOD.md name them).
PAPER = {
    "00": "-",
    "01": "Sec. 3",
    "02": "Sec. 4",
    "03": "Sec. 4.1, Table 3a/3b",
    "04": "Sec. 4, Fig. 2",
    "05": "Sec. 4.2, Table 3c",
    "06": "Table 1, 2, 7, Fig. 3",
    "07": "Sec. 5.3, Fig. 5-6, Table 8",
    "08": "Sec. 5.4, Table 4",
    "09": "Sec. 5.5, Table 5",
    "10": "Sec. 5.6, Table 6",
}
PROSE_WORDS_PER_MIN = 150
CODE_LINES_PER_MIN = 15
READ_STEP_MIN = 5  # reading times are rounded up to 5 minutes: an estimate, and steady under small edits
EXERCISE_BASE_MIN, EXERCISE_TRAIN_MIN, EXERCISE_SWEEP_MIN = 10, 10, 5
LAB_MIN = 90

# Suggested plans: sessions of LAB_MIN minutes, each a list of notebooks (by number).
MODULE = [("Week 1", ["00", "01"]), ("Week 2", ["02", "03"]), ("Week 3", ["04", "05"]), ("Week 4", ["06"]),
          ("Week 5", ["07", "08"]), ("Week 6", ["09", "10"])]
WORKSHOP = [("Day 1, session 1", ["00", "01"]), ("Day 1, session 2", ["02", "03"]), ("Day 1, session 3", ["04"]),
            ("Day 1, session 4", ["05"]), ("Day 2, session 1", ["06"]), ("Day 2, session 2", ["07"]),
            ("Day 2, session 3", ["08"]), ("Day 2, session 4", ["09", "10"])]

EXERCISE_HEAD = re.compile(r"^#{2,4}\s*Exercise\s+(\d+)\s*[:.]\s*(.+?)\s*$", re.M)
LIST_ITEM = re.compile(r"^(\d+)\.\s+\*\*(.+?)\*\*\s*(.*)$")
# "train"/"fit" as a verb (not the data split `train`), or rerunning a section of the notebook
TRAINS = re.compile(r"\b(re)?trains?\b(?!`)|\bfit\b|\.fit\(|\btrain_\w+\(|\brerun (section|the demo)", re.I)
SWEEP = re.compile(r"\b(sweep|sweeps)\b|\d+(\.\d+)?\s*,\s*\d+(\.\d+)?\s*,\s*(and\s+)?\d+", re.I)


@dataclass
class Exercise:
    number: int
    title: str
    text: str
    solution: str = ""
    checked: bool = False

    @property
    def minutes(self) -> int:
        both = self.title + "\n" + self.text + "\n" + self.solution
        return (EXERCISE_BASE_MIN + EXERCISE_TRAIN_MIN * bool(TRAINS.search(both))
                + EXERCISE_SWEEP_MIN * bool(SWEEP.search(self.text)))


@dataclass
class Notebook:
    stem: str
    title: str
    read_min: int
    exercises: list[Exercise] = field(default_factory=list)
    run_fresh_s: float | None = None
    run_warm_s: float | None = None
    run_fresh_range: tuple[float, float] | None = None  # (fastest, slowest) of the recorded fresh-clone runs

    @property
    def number(self) -> str:
        return self.stem[:2]

    @property
    def paper(self) -> str:
        return PAPER.get(self.number, "-")

    @property
    def exercise_min(self) -> int:
        return sum(e.minutes for e in self.exercises)

    @property
    def run_min(self) -> float:
        """Minutes of computing a lab waits for: the first run's time where measured (the worst case)."""
        s = self.run_fresh_s if self.run_fresh_s is not None else self.run_warm_s
        return (s or 0.0) / 60


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _plain(title: str) -> str:
    return title.strip().strip("*").rstrip(".").strip()


def exercises(nb: nbformat.NotebookNode) -> list[Exercise]:
    """The notebook's exercises, in order: each ``### Exercise N: title`` cell with the solution and check cells
    after it, then the items of an "## Exercises" list (the older form) not already found as cells."""
    found: dict[int, Exercise] = {}
    cells = nb.cells
    for i, cell in enumerate(cells):
        if cell.cell_type != "markdown" or _nbgrader(cell).get("solution"):
            continue
        head = EXERCISE_HEAD.search(cell.source)
        if head:
            ex = Exercise(int(head.group(1)), _plain(head.group(2)), cell.source[head.end():].strip())
            for nxt in cells[i + 1:]:
                meta = _nbgrader(nxt)
                if not meta:
                    break
                if meta.get("solution"):
                    ex.solution += nxt.source + "\n"
                if meta.get("grade") and not meta.get("solution"):
                    ex.checked = True
            found.setdefault(ex.number, ex)
            continue
        if re.search(r"^##\s*Exercises\s*$", cell.source, re.M):
            body = cell.source[re.search(r"^##\s*Exercises\s*$", cell.source, re.M).end():]
            current: Exercise | None = None
            for line in body.splitlines():
                item = LIST_ITEM.match(line)
                if item:
                    current = Exercise(int(item.group(1)), _plain(item.group(2)), item.group(3))
                    found.setdefault(current.number, current)
                elif current is not None and line.strip():
                    current.text += " " + line.strip()
    return [found[k] for k in sorted(found)]


def read_minutes(nb: nbformat.NotebookNode) -> int:
    """Minutes to read the notebook once with care: prose and code, the exercises and their cells left out."""
    words = lines = 0
    in_exercises = False
    for cell in nb.cells:
        src = cell.source
        if cell.cell_type == "markdown" and (EXERCISE_HEAD.search(src) or re.search(r"^##\s*Exercises", src, re.M)):
            in_exercises = True  # exercises come last (or are skipped where they sit): counted in their minutes
            continue
        if _nbgrader(cell):
            continue
        if in_exercises and cell.cell_type == "markdown" and re.match(r"^##\s", src):
            in_exercises = False
        if in_exercises:
            continue
        if cell.cell_type == "markdown":
            words += len(re.findall(r"\S+", src))
        elif cell.cell_type == "code":
            lines += sum(1 for line in src.splitlines() if line.strip() and not line.strip().startswith("#"))
    minutes = words / PROSE_WORDS_PER_MIN + lines / CODE_LINES_PER_MIN
    return READ_STEP_MIN * max(1, math.ceil(minutes / READ_STEP_MIN))


def load_times() -> dict:
    return json.loads(TIMES.read_text()) if TIMES.exists() else {}


def fresh_runs(times: dict) -> list[dict[str, float]]:
    """The recorded first runs on fresh clones (each ``{notebook: seconds}``), oldest first."""
    return [r["seconds"] for r in times.get("runs", {}).get("course_fresh_clone", [])]


def fresh_range(times: dict, stem: str | None = None) -> tuple[float, float] | None:
    """(fastest, slowest) first run of one notebook (``stem``) or of the whole course, over the recorded fresh-clone
    runs that include it; None when fewer than two runs were recorded."""
    runs = fresh_runs(times)
    vals = [r[stem] for r in runs if stem in r] if stem else [sum(r.values()) for r in runs]
    return (min(vals), max(vals)) if len(vals) >= 2 else None


def notebooks(times: dict | None = None) -> list[Notebook]:
    times = load_times() if times is None else times
    out = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        first = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
        head = re.match(r"#\s*\d+\s*[·:.-]?\s*(.+)", first.splitlines()[0] if first else "")
        out.append(Notebook(path.stem, head.group(1).strip() if head else path.stem, read_minutes(nb),
                            exercises(nb), times.get("course_fresh_clone", {}).get(path.stem),
                            times.get("course", {}).get(path.stem), fresh_range(times, path.stem)))
    return out


def _seconds(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.1f} min"


def _span(r: tuple[float, float] | None, fallback: float | None) -> str:
    """A range of run times, "41-55 s" (or the one figure where fewer than two runs were recorded)."""
    if r is None:
        return _seconds(fallback)
    lo, hi = r
    if hi < 90:
        return f"{lo:.0f}-{hi:.0f} s"
    return f"{lo / 60:.1f}-{hi / 60:.1f} min" if lo >= 90 else f"{lo:.0f} s-{hi / 60:.1f} min"


def _link(nb: Notebook, prefix: str) -> str:
    return f"[{nb.stem}]({prefix}notebooks/{nb.stem}.ipynb)"


def course_map(prefix: str = "../") -> str:
    """Notebook -> what it rebuilds -> minutes (run, read, exercises). ``prefix``: the path from the file that shows
    the table to the repository root."""
    nbs = notebooks()
    rows = ["| notebook | paper | run: first / again | read | exercises |", "|---|---|---|---|---|"]
    for nb in nbs:
        rows.append(f"| {_link(nb, prefix)} | {nb.paper} | {_span(nb.run_fresh_range, nb.run_fresh_s)} / "
                    f"{_seconds(nb.run_warm_s)} "
                    f"| {nb.read_min} min | {len(nb.exercises)}, {nb.exercise_min} min |")
    fresh = sum(nb.run_fresh_s or 0 for nb in nbs)
    warm = sum(nb.run_warm_s or 0 for nb in nbs)
    times = load_times()
    total = fresh_range(times)
    fresh_txt = (f"{total[0] / 60:.1f}-{total[1] / 60:.1f} min" if total else f"{fresh / 60:.1f} min")
    rows.append(f"| **all eleven** | | {fresh_txt} / {warm / 60:.1f} min | "
                f"{sum(nb.read_min for nb in nbs) / 60:.1f} h | {sum(len(nb.exercises) for nb in nbs)}, "
                f"{sum(nb.exercise_min for nb in nbs) / 60:.1f} h |")
    n_fresh = len(fresh_runs(times))
    rows += ["", f"Run: the notebook executed with the course profile on {times.get('machine', '2 CPU cores')}, "
             "kernel start included - the first time on a fresh clone (the caches of data/cache/ are filled then; "
             + (f"the fastest and slowest of {n_fresh} such runs" if n_fresh >= 2 else "one run") +
             ") and again (the second figure may come from an earlier recording). What moves these times: the first "
             "run also fills data/cache/ (caption encodings, image latents, rendered data sets; the second run reads "
             "them); another program busy on the same cores slows every notebook; machines sold as the same kind "
             "differ by up to 2x; more cores help little at these model sizes, except in notebook 06, whose two live runs "
             "train side by side, one per core. Read: a careful first read of the "
             "prose and the code. Exercises: how many, and their estimated minutes."]
    return "\n".join(rows)


def notebook_block(nb: Notebook) -> str:
    rebuilds = nb.paper if nb.paper != "-" else "no part of the paper (set-up and data)"
    lines = [f"Rebuilds: {rebuilds}. Run: {_span(nb.run_fresh_range, nb.run_fresh_s)} the first time, {_seconds(nb.run_warm_s)} "
             f"again. Read: about {nb.read_min} min. Exercises: {nb.exercise_min} min in all.", "",
             "| exercise | minutes | checked |", "|---|---|---|"]
    for ex in nb.exercises:
        lines.append(f"| {ex.number}. {ex.title} | {ex.minutes} | {'yes' if ex.checked else '-'} |")
    return "\n".join(lines)


def plan_table(plan: list[tuple[str, list[str]]]) -> str:
    """Each session: its notebooks, what they take (run + read), the exercises that fit the rest of the session in
    order, and the ones left for later."""
    by_number = {nb.number: nb for nb in notebooks()}
    rows = ["| session | notebooks | run + read | exercises in the session | after the session |",
            "|---|---|---|---|---|"]
    for name, numbers in plan:
        nbs = [by_number[n] for n in numbers if n in by_number]
        base = sum(nb.run_min + nb.read_min for nb in nbs)
        left = LAB_MIN - base
        inside, later = [], []
        # round robin: each notebook's first exercise, then each one's second, ... while the session lasts
        order = [(k, nb) for k in range(max((len(nb.exercises) for nb in nbs), default=0)) for nb in nbs
                 if k < len(nb.exercises)]
        for k, nb in order:
            ex = nb.exercises[k]
            label = f"{nb.number}.{ex.number}"
            if ex.minutes <= left:
                inside.append(label)
                left -= ex.minutes
            else:
                later.append(label)
        inside.sort(key=lambda s: tuple(map(int, s.split("."))))
        later.sort(key=lambda s: tuple(map(int, s.split("."))))
        used = LAB_MIN - left
        rows.append(f"| {name} | {', '.join(numbers)} | {math.ceil(base)} min | "
                    f"{', '.join(inside) or '-'} ({math.ceil(used)} of {LAB_MIN} min) | {', '.join(later) or '-'} |")
    return "\n".join(rows)


def blocks() -> dict[str, str]:
    out = {"map": course_map("../"), "module": plan_table(MODULE), "workshop": plan_table(WORKSHOP)}
    for nb in notebooks():
        out[f"nb{nb.number}"] = notebook_block(nb)
    return out


def fill(text: str, name: str, body: str, where: str = "docs/COURSE.md") -> str:
    pattern = re.compile(rf"(<!-- begin:{name} -->\n)(?:.*?\n)?(<!-- end:{name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{where} has no <!-- begin:{name} --> ... <!-- end:{name} --> markers")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def render(text: str) -> str:
    for name, body in blocks().items():
        text = fill(text, name, body)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if docs/COURSE.md is out of date")
    args = ap.parse_args(argv)
    text = COURSE.read_text(encoding="utf-8")
    new = render(text)
    if args.check:
        if new != text:
            print("docs/COURSE.md is out of date: run `make readme` (python tools/syllabus.py)")
            return 1
        print("docs/COURSE.md is up to date")
        return 0
    COURSE.write_text(new, encoding="utf-8")
    print("docs/COURSE.md tables updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())

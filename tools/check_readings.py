"""Check every number a reading quotes against the numbers it can come from (tests/test_readings.py runs this):

    python tools/check_readings.py            # every problem, then the exemptions it applied, by document
    python tools/check_readings.py notebooks/06_crossflow_vs_standard_flow_matching.ipynb docs/RESULTS.md

A *reading* is hand-written text that interprets results: every markdown cell of a notebook, and the prose of
README.md and docs/RESULTS.md (not their code blocks, and not the tables between ``<!-- begin:NAME -->`` markers,
which tools/update_readme.py writes from the stored results).

**Where a number may come from.** A number quoted in a notebook must match
  (1) a number the notebook itself prints (its stored outputs: text, tables, markdown it displays), or
  (2) a number in a stored result the notebook names (``data/results/NAME.json`` whose NAME appears as a word in the
      notebook, e.g. ``report.load("sr")``, ``registry.load("t2i_shapes")``), or
  (3) a number written in the notebook's code or in a code span of the same paragraph ("17 points
      (`np.linspace(0, 1, 17)`)"), or a size of the course profile (``crossflow_mini.profiles``).
A number in README.md or docs/RESULTS.md must match a number in a generated table of the same ``##`` section or in a
stored result that section names. *Match* means: equal within the rounding the quote is printed with ("0.692"
matches 0.6917, "12.3 %" matches 0.1234 and 12.34, "2.24M" matches 2,238,571, "1,922 s" matches 1921.7; a number
printed in an output carries its own rounding too). A number that matches none of these is still accepted when a word
beside it says it compares ("behind", "times", "within", "+", ...) and it is the difference, the ratio or the relative
change (in %) of two numbers that other quotes of the same paragraph match ("0.692 against 0.889: about 0.20
behind").

**Exemptions** (numbers that are not results), each counted and listed by ``--exemptions``:
  * anything inside code (`` `...` ``, fenced blocks), math (``$...$``, ``$$...$$``) or a link's address;
  * references: Sec. / Section / Table / Fig. / Figure / Eq. / notebook / Exercise / step N (lists such as
    "Table 1, 2, 7" and "notebooks 04-06" included), arXiv numbers, years (1900-2099), versions ("torch 2.13.0");
  * sizes written as dimensions ("32 x 32", "4 x 8 x 8", "64 -> 256"), and small counts: integers below 10;
  * bounds and thresholds: a number after <, >, <=, >=, "at most", "at least", "up to", "above", "below";
  * the paper's numbers: a sentence (or ;-separated clause) that names the paper or what it measured on - "paper"
    (but not "the paper's head", our reference model),
    "public code", GenEval (not mini-GenEval), COCO, KITTI, NYUv2, ImageNet, SCD-Net, SR3, Marigold, SD-VAE,
    CLIP, T5, Llama, DiT, SD / Stable Diffusion - is the paper's to quote; its numbers are exempt when no stored
    number matches them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import nbformat

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "data" / "results"
DOCS = (ROOT / "README.md", ROOT / "docs" / "RESULTS.md")

# --- what a number looks like ---------------------------------------------------------------------------------
NUMBER = re.compile(r"(?<![\w.\-+/])([+\-−]?)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?:[eE]([+\-−]?\d+))?"
                    r"(?:\s?(%|per ?cent)|([KMB])(?![\w]))?(?![\w.]*\d)")
OUT_NUMBER = re.compile(r"(?<![\w.])([+\-]?)(\d+(?:,\d{3})*)(\.\d+)?(?:[eE]([+\-]?\d+))?(%|[KMB](?![A-Za-z]))?")

# --- exemptions, in the order they are applied (each blanks its span before numbers are read) -----------------
REF_WORDS = (r"Sec\.|Sections?|sections?|Tables?|tables?|Figs?\.|Figures?|figures?|Eqs?\.|Equations?|notebooks?|"
             r"Notebooks?|Exercises?|exercises?|steps? (?=\d+ of)|Weeks?|Days?|sessions?|Parts?|parts?|"
             r"Chapters?|rows?|columns?|cells?|items?")
EXEMPT = [
    ("code", re.compile(r"```.*?```|`[^`]*`", re.S)),
    ("math", re.compile(r"\$\$.*?\$\$|\$[^$]+\$|\\\(.*?\\\)|\\\[.*?\\\]", re.S)),
    ("link address", re.compile(r"(?<=\])\([^)\s]*\)|https?://\S+")),
    ("html", re.compile(r"<[^>]+>")),
    ("reference", re.compile(rf"\b(?:{REF_WORDS})\s*\d+[a-z]?(?:\s*(?:,|and|or|-|–|/|to)\s*\d+[a-z]?\b)*")),
    ("reference", re.compile(r"\barXiv:?\s*\d+\.\d+|\b[A-Z]{2,}\s?20\d\d\b")),
    ("version", re.compile(r"\b(?:torch|Python|python|version|v)\s*\d+(?:\.\d+)+\+?|\b\d+\.\d+\.\d+\b")),
    ("year", re.compile(r"(?<![\d.,])(?:19|20)\d\d(?![\d.,]\d|\s?%)")),
    ("dimension", re.compile(r"(?<![\d.])\d+\s*(?:x|×|\\times)\s*\d+(?:\s*(?:x|×|\\times)\s*\d+)*(?:\s*px)?"
                             r"|(?<![\d.])\d+\s*(?:->|→|\\to)\s*\d+(?![\d.])(?:\s*px)?")),
    ("size", re.compile(r"\d+(?:\.\d+)?\s*(?:[KMGT]i?B|bytes)\b")),
    ("bound", re.compile(r"(?:<=|>=|≤|≥|(?<![-=])<(?![-=])|(?<![-=])>|\bat most|\bat least|\bup to|\babove|\bbelow|\bunder|\bover)\s*"
                         r"[+\-]?\d[\d,.]*\s*%?")),
]
PAPER = re.compile(r"\bpaper(?:'s|s)?(?![\w'])(?!-head|\s+head|\s+Text VE\s+head)|\bSD'?s?\b|\bStable Diffusion\b|\bpublic code\b|(?<!mini-)\bGenEval\b|\bCOCO\b|\bKITTI\b|\bNYUv2\b|\bImageNet\b|"
                   r"\bSCD-Net\b|\bSR3\b|\bMarigold\b|\bSD-VAE\b|\bCLIP\b|\bT5\b|\bLlama|\bDiT\b|\bLipman\b",
                   re.I)
SMALL_INT = 10
# words that say a number is derived from others ("0.20 behind", "2.5 times longer", "within 0.01", "+0.04")
DERIVED_WORDS = re.compile(r"\b(behind|ahead|gap|times|more|less|fewer|faster|slower|larger|smaller|higher|lower|"
                           r"longer|shorter|within|lead|leads|lifts?|drops?|gains?|loses?|difference|apart|by)\b|[+±]")


@dataclass
class Quote:
    """A number as a reading writes it: its value and the interval its rounding allows."""
    text: str
    lo: float
    hi: float
    percent: bool
    integer: bool
    where: str
    sentence: str
    seconds_per_unit: float = 0.0  # 60 for "min", 3600 for "h": the stored number may be in seconds
    derived_word: bool = False  # a word beside it says it compares two numbers
    names: frozenset = frozenset()  # the stored results its paragraph names

    def intervals(self) -> list[tuple[float, float]]:
        """The values it may stand for: as written, for a percentage also as a share, for minutes or hours also in
        seconds."""
        out = [(self.lo, self.hi)]
        if self.percent:
            out.append((self.lo / 100, self.hi / 100))
        if self.seconds_per_unit:
            out.append((self.lo * self.seconds_per_unit, self.hi * self.seconds_per_unit))
        return out


@dataclass
class Values:
    """A sorted set of reference values, each an interval (a stored number is exact; a printed one is rounded)."""
    items: list[tuple[float, float]] = field(default_factory=list)
    _sorted: bool = False

    def add(self, lo: float, hi: float | None = None) -> None:
        if math.isfinite(lo):
            self.items.append((lo, lo if hi is None else hi))
            self._sorted = False

    def extend(self, other: "Values") -> None:
        self.items.extend(other.items)
        self._sorted = False

    def hits(self, lo: float, hi: float) -> list[float]:
        """Reference values (midpoints) whose interval overlaps [lo, hi]."""
        if not self._sorted:
            self.items.sort()
            self._width = max((b - a for a, b in self.items), default=0.0)
            self._los = [a for a, _ in self.items]
            self._sorted = True
        start = bisect_left(self._los, lo - self._width - 1e-12)
        out = []
        for a, b in self.items[start:]:
            if a > hi + 1e-12:
                break
            if a == b:  # an exact value: inside [lo, hi]
                if lo - 1e-12 <= a <= hi + 1e-12:
                    out.append(a)
            elif a < hi - 1e-12 and b > lo + 1e-12:  # two roundings: they must overlap, not merely touch
                out.append((a + b) / 2)
        return out


def _rounding(digits: str | None, exponent: str | None, scale: float) -> float:
    decimals = len(digits) - 1 if digits else 0
    exp = int(exponent.replace("−", "-")) if exponent else 0
    return 0.5 * 10 ** (exp - decimals) * scale


def _scale(suffix: str | None) -> float:
    return {"K": 1e3, "M": 1e6, "B": 1e9}.get(suffix or "", 1.0)


def parse_number(m: re.Match) -> tuple[float, float, float, bool, bool]:
    """(value, lo, hi, percent, integer) of a NUMBER / OUT_NUMBER match."""
    sign, whole, frac, exp = m.group(1), m.group(2), m.group(3), m.group(4)
    suffix = m.group(5) if m.re is OUT_NUMBER else (m.group(6) or m.group(5))
    percent = bool(suffix) and (suffix == "%" or suffix.startswith("per"))
    scale = 1.0 if percent else _scale(suffix)
    value = float(whole.replace(",", "") + (frac or "")) * (10 ** int(exp.replace("−", "-")) if exp else 1) * scale
    if sign in ("-", "−"):
        value = -value
    half = _rounding(frac, exp, scale)
    return value, value - half, value + half, percent, not frac and not exp and scale == 1.0


# --- the numbers a reading may come from ------------------------------------------------------------------------
def _walk(node: Any, out: Values) -> None:
    if isinstance(node, bool) or node is None:
        return
    if isinstance(node, (int, float)):
        out.add(float(node))
    elif isinstance(node, dict):
        for v in node.values():
            _walk(v, out)
    elif isinstance(node, (list, tuple)):
        for v in node:
            _walk(v, out)
    elif isinstance(node, str):
        text_numbers(node, out)


def text_numbers(text: str, out: Values) -> Values:
    """Every number printed in ``text``, with the interval its printed rounding allows (a percentage also as a
    share; an integer as exact)."""
    for m in OUT_NUMBER.finditer(text):
        value, lo, hi, percent, integer = parse_number(m)
        if integer:  # a printed integer is a count (or already rounded): exact, or "1" would stand for 0.5-1.5
            lo = hi = value
        out.add(lo, hi)
        if percent:
            out.add(lo / 100, hi / 100)
    return out


def result_names() -> list[str]:
    return sorted(p.stem for p in RESULTS.glob("*.json"))


def stored(names: Iterable[str]) -> Values:
    out = Values()
    for name in names:
        path = RESULTS / f"{name}.json"
        if path.exists():
            _walk(json.loads(path.read_text()), out)
    return out


def named_results(text: str) -> set[str]:
    """The stored results whose name appears in ``text`` as a word (``t2i_shapes`` is not ``t2i_shapes_flatten``)."""
    return {n for n in result_names() if re.search(rf"(?<![\w]){re.escape(n)}(?![\w])", text)}


def profile_values() -> Values:
    """Every number of the course profile (its sizes and step counts)."""
    sys.path.insert(0, str(ROOT))
    from crossflow_mini.profiles import get_profile

    out, seen = Values(), set()

    def walk(node: Any) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        if dataclasses.is_dataclass(node) and not isinstance(node, type):
            for f in dataclasses.fields(node):
                walk(getattr(node, f.name, None))
        elif isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, (list, tuple)):
            for v in node:
                walk(v)
        elif isinstance(node, (int, float)) and not isinstance(node, bool):
            out.add(float(node))
    walk(get_profile("course", device="cpu"))
    return out


def output_text(cell) -> str:
    parts = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            parts.append(o.get("text", ""))
        elif o.get("output_type") in ("display_data", "execute_result"):
            data = o.get("data", {})
            for mime in ("text/markdown", "text/html", "text/plain", "text/latex"):
                if mime in data:
                    parts.append(data[mime] if isinstance(data[mime], str) else "".join(data[mime]))
    return "\n".join(parts)


# --- readings ---------------------------------------------------------------------------------------------------
@dataclass
class Paragraph:
    where: str
    text: str


def blank(text: str, span: tuple[int, int]) -> str:
    a, b = span
    return text[:a] + " " * (b - a) + text[b:]


def sentences(text: str) -> list[tuple[int, int]]:
    """Spans of sentences and ;-separated clauses."""
    spans, start = [], 0
    for m in re.finditer(r"(?<=[.!?])\s+(?=[A-Z*(\"'])|;\s+|\n\s*\n|\n\s*[-*]\s|\n\s*\d+\.\s", text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return spans


def quotes(par: Paragraph, exemptions: dict[str, list[str]]) -> list[Quote]:
    """The numbers of a paragraph a reading stands behind, after the exemptions."""
    text = par.text
    for kind, pattern in EXEMPT:
        for m in list(pattern.finditer(text)):
            found = [n.group(0) for n in NUMBER.finditer(m.group(0))] if kind not in ("code", "math", "html") \
                else []
            for n in found:
                exemptions.setdefault(kind, []).append(f"{par.where}: {m.group(0).strip()[:60]}")
            text = blank(text, m.span())
    spans = sentences(par.text)
    out = []
    for m in NUMBER.finditer(text):
        value, lo, hi, percent, integer = parse_number(m)
        if integer and abs(value) < SMALL_INT and not percent:
            continue
        s = next(((a, b) for a, b in spans if a <= m.start() < b), (0, len(text)))
        unit = re.match(r"\s*-?(min|minutes?|h|hours?)\b", text[m.end():])
        per = 0.0 if not unit else 60.0 if unit.group(1).startswith("min") else 3600.0
        near = text[max(0, m.start() - 30):m.end() + 30]
        out.append(Quote(m.group(0).strip(), lo, hi, percent, integer, par.where, par.text[s[0]:s[1]].strip(),
                         per, bool(DERIVED_WORDS.search(near)), frozenset(named_results(par.text))))
    return out


def notebook_readings(path: Path) -> tuple[list[Paragraph], Values]:
    """A notebook's paragraphs of markdown and the numbers they may come from."""
    nb = nbformat.read(path, as_version=4)
    refs, code, all_text = Values(), [], []
    pars = []
    for i, cell in enumerate(nb.cells):
        all_text.append(cell.source)
        if cell.cell_type == "markdown":
            for j, block in enumerate(re.split(r"\n\s*\n", cell.source)):
                if block.strip():
                    pars.append(Paragraph(f"{path.name} cell {i}", block))
        elif cell.cell_type == "code":
            code.append(cell.source)
            text_numbers(output_text(cell), refs)
    text_numbers("\n".join(code), refs)
    refs.extend(stored(named_results("\n".join(all_text))))
    return pars, refs


GENERATED = re.compile(r"<!-- begin:(\w+) -->\n(.*?)<!-- end:\1 -->", re.S)


def doc_readings(path: Path) -> list[tuple[list[Paragraph], Values]]:
    """Per ``##`` section of a document: its hand-written paragraphs and the numbers they may come from - the
    section's tables as tools/update_readme.py makes them *now* from data/results (not as the file shows them), so
    a stored number that changes under a reading shows up here before anyone runs `make readme`. In README.md only
    the sections that hold a generated table are readings (the others are set-up and usage)."""
    sys.path.insert(0, str(ROOT / "tools"))
    import update_readme

    text = update_readme.render(path) if path in update_readme.TABLES else path.read_text(encoding="utf-8")
    out = []
    for section in re.split(r"(?m)^(?=## )", text):
        tables = list(GENERATED.finditer(section))
        if path.name == "README.md" and not tables:
            continue
        refs = Values()
        for m in tables:
            text_numbers(m.group(2), refs)
        prose = GENERATED.sub(lambda m: "\n" * m.group(0).count("\n"), section)
        prose = re.sub(r"```.*?```", lambda m: "\n" * m.group(0).count("\n"), prose, flags=re.S)
        title = section.splitlines()[0].lstrip("# ").strip() if section.strip() else ""
        pars = [Paragraph(f"{path.relative_to(ROOT)} '{title}'", block)
                for block in re.split(r"\n\s*\n", prose)
                if block.strip() and not block.lstrip().startswith(("|", "#"))]
        out.append((pars, refs))
    return out


# --- the check --------------------------------------------------------------------------------------------------
@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    exemptions: dict[str, list[str]] = field(default_factory=dict)
    checked: int = 0
    derived: list[str] = field(default_factory=list)


def _derived(q: Quote, others: list[list[float]]) -> bool:
    values = [v for hits in others for v in hits[:6]]
    for i, a in enumerate(values):
        for b in values[i + 1:]:
            cands = [abs(a - b)]
            if a and b:
                cands += [a / b, b / a, abs(a / b - 1) * 100, abs(b / a - 1) * 100]
            for c in cands:
                if any(lo - 1e-12 <= c <= hi + 1e-12 for lo, hi in q.intervals()):
                    return True
    return False


def check_paragraphs(pars: list[Paragraph], refs: Values, extra: Values, report: Report,
                     tiers_named: bool = False) -> None:
    """Each quote of each paragraph against ``refs`` and ``extra`` (and, with ``tiers_named``, the stored results
    the paragraph itself names)."""
    for par in pars:
        qs = quotes(par, report.exemptions)
        hits = []
        named = stored(qs[0].names) if qs and tiers_named else Values()
        for span in re.findall(r"`[^`]*`", par.text):  # a setting the paragraph also writes as code
            text_numbers(span, named)
        for q in qs:
            found = [v for lo, hi in q.intervals() for v in refs.hits(lo, hi) + extra.hits(lo, hi) + named.hits(lo, hi)]
            hits.append(found)
        for k, (q, found) in enumerate(zip(qs, hits)):
            report.checked += 1
            if found:
                continue
            if q.derived_word and _derived(q, [h for j, h in enumerate(hits) if j != k and h]):
                report.derived.append(f"{q.where}: {q.text}")
                continue
            if PAPER.search(q.sentence):
                report.exemptions.setdefault("the paper's", []).append(f"{q.where}: {q.text}")
                continue
            report.problems.append(f"{q.where}: {q.text!r} matches no stored or printed number - "
                                   f"\"{_short(q.sentence)}\"")


def _short(s: str, n: int = 160) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[:n - 3] + "..."


def check(paths: Iterable[Path]) -> Report:
    report = Report()
    profile = profile_values()
    for path in paths:
        if path.suffix == ".ipynb":
            pars, refs = notebook_readings(path)
            check_paragraphs(pars, refs, profile, report)
        else:
            for pars, refs in doc_readings(path):
                check_paragraphs(pars, refs, Values(), report, tiers_named=True)
    return report


def default_paths() -> list[Path]:
    return [*sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")), *DOCS]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path)
    ap.add_argument("--exemptions", action="store_true", help="list every exempted number")
    args = ap.parse_args(argv)
    paths = [p.resolve() for p in args.paths] or default_paths()
    report = check(paths)
    for p in report.problems:
        print("NOT FOUND", p)
    print(f"{report.checked} numbers checked, {len(report.problems)} not found, {len(report.derived)} accepted as "
          f"derived; exempt: " + ", ".join(f"{k} {len(v)}" for k, v in sorted(report.exemptions.items())))
    if args.exemptions:
        for kind, items in sorted(report.exemptions.items()):
            print(f"\n[{kind}]")
            print("\n".join(f"  {i}" for i in items))
        print("\n[derived]")
        print("\n".join(f"  {i}" for i in report.derived))
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""The package's shape: imports point one way (no cycles), every reference stays inside the repository, and only
the registry turns a checkpoint name into a folder."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

import crossflow_mini

PACKAGE = Path(crossflow_mini.__file__).parent
ROOT = PACKAGE.parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _packages_of(module: str) -> list[str]:
    """The packages whose ``__init__`` runs when ``module`` is imported (``a.b.c`` -> ``a``, ``a.b``)."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """``module -> the project modules it imports``, from every import statement in the file (at the top or inside a
    function: a lazy import that closes a cycle is still a cycle), relative imports resolved, and each imported
    module's parent packages added (their ``__init__`` runs first)."""
    files = {_module_name(p): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        is_pkg = path.name == "__init__.py"
        here = module if is_pkg else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                names = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in files else stem for a in node.names]
            else:
                continue
            for name in names:
                if name in files:
                    targets.add(name)
                    targets.update(p for p in _packages_of(name) if p in files)
        targets.discard(module)
        graph[module] = targets - set(_packages_of(module))  # a module's own packages are already running
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_package_has_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles (each group imports itself through the others):\n" + "\n".join(
        " <-> ".join(c) for c in found)


def test_the_cycle_finder_finds_a_cycle(tmp_path):
    """The check above can fail: two modules that import each other (one of them lazily) are a cycle."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .a import x\n")
    (pkg / "c.py").write_text("from .a import b\n")
    global ROOT
    old = ROOT
    ROOT = tmp_path
    try:
        assert cycles(import_graph(pkg)) == [["pkg.a", "pkg.b"]]
    finally:
        ROOT = old


def test_layers_point_downwards():
    """The method (core) imports nothing of the project's but itself and the config helpers; tasks never import the
    registry's users (studies, the CLI, the course helpers) - the layers of the README's "Where things are"."""
    graph = import_graph()
    foundation = {"crossflow_mini", "crossflow_mini.configs"}
    for module, targets in graph.items():
        if module.startswith("crossflow_mini.core"):
            above = [t for t in targets if not t.startswith("crossflow_mini.core") and t not in foundation]
            assert not above, f"{module} (the method) imports {above}"
        if module.startswith("crossflow_mini.tasks"):
            above = [t for t in targets if t.startswith(("crossflow_mini.studies.", "crossflow_mini.cli",
                                                         "crossflow_mini.course"))
                     and t != "crossflow_mini.studies"]
            assert not above, f"{module} (a task) imports {above}"


# ------------------------------------------------------------------------------------------- references
#: What no file of the project may point at: documents and folders outside the repository.
OUTSIDE = ("CROSSFLOW_NOTES", "../shared", "/work/", "shared/DESIGN", "DESIGN.md")
TEXT_SUFFIXES = {".py", ".md", ".ipynb", ".toml", ".yml", ".yaml", ".cfg", ".txt", ".json", ""}


def _tracked_text_files() -> list[Path]:
    try:
        names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = [ROOT / n for n in names.splitlines()]
    return [f for f in files if f.is_file() and f.suffix in TEXT_SUFFIXES and "checkpoints" not in f.parts
            and f.stat().st_size < 5_000_000]


def test_no_file_refers_to_anything_outside_the_repository():
    hits = []
    for path in _tracked_text_files():
        if path == Path(__file__):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        hits += [f"{path.relative_to(ROOT)}: {pattern}" for pattern in OUTSIDE if pattern in text]
    assert not hits, "references to files outside the repository:\n" + "\n".join(hits)


def test_method_references_point_at_sections_that_exist():
    """Every "docs/METHOD.md Sec. N" in the code names a section the notes have."""
    import re

    notes = (ROOT / "docs" / "METHOD.md").read_text(encoding="utf-8")
    sections = {int(m) for m in re.findall(r"^## (\d+)\.", notes, flags=re.M)}
    cited: set[int] = set()
    for path in PACKAGE.rglob("*.py"):
        for a, b in re.findall(r"docs/METHOD\.md,?\s+Secs?\.\s*(\d+)(?:\s*-\s*(\d+))?", path.read_text()):
            cited.update(range(int(a), int(b or a) + 1))
    assert cited and cited <= sections, f"sections cited but missing from docs/METHOD.md: {sorted(cited - sections)}"


# ------------------------------------------------------------------------------------------- names
def test_only_the_registry_maps_a_checkpoint_name_to_a_folder():
    """The shipped folder of a name (``checkpoints.shipped_dir`` / ``CHECKPOINT_DIR``) is looked up by the
    registry and by the checkpoint module that defines it - nowhere else (pipelines load folders)."""
    allowed = {"crossflow_mini.registry", "crossflow_mini.checkpoints", "crossflow_mini.paths", "crossflow_mini.cli"}
    users = []
    for path in PACKAGE.rglob("*.py"):
        module = _module_name(path)
        text = path.read_text(encoding="utf-8")
        if module not in allowed and ("shipped_dir(" in text or "CHECKPOINT_DIR" in text):
            users.append(module)
    assert not users, f"these modules resolve checkpoint names to folders themselves: {users}"

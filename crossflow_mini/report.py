"""Stored results for the notebooks: load one, pick what a cell shows, show it as a table or a small figure.

Every measured number of the course lives in ``data/results/<name>.json`` (:mod:`crossflow_mini.results`), one file
per checkpoint and per study, nested several levels deep. A notebook cell should say *what* it shows, not walk the
nesting, so this module gives it one call per question:

    from crossflow_mini import report
    sr = report.load("sr")                                   # a study or a checkpoint (the stored result)
    sr.at("rows", "crossflow:none", "psnr")                  # one number, by its path
    report.table(sr.at("rows"), {"PSNR": "psnr", "FID": "fid"})          # rows x columns -> a DataFrame
    report.sweep(sr.at("rows", "crossflow:none", "val_sweep"), "psnr")   # {"w=1": ..., "w=2": ...} -> a Series
    report.plot_loss(report.loss_history("sr_crossflow"))    # the training curve, where one is stored

A *path* is a sequence of keys (a mapping's keys; an ``int`` also finds the key ``"3"``, the way JSON stores
numbers as keys; a list's positions); in :func:`table` a single key may stand for a path of one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import pandas as pd

from . import checkpoints, registry
from .configs import config_hash
from .profiles import Profile, get_profile
from .studies.catalog import results_for

Path_ = str | int | Sequence[str | int]
_MISSING = object()


def lookup(tree: Any, *path: str | int, default: Any = _MISSING) -> Any:
    """``tree[path[0]][path[1]]...``: a mapping is indexed by key (an ``int`` finds ``"3"`` too), a list by
    position. A missing key returns ``default`` when one is given, else raises ``KeyError`` naming the keys there."""
    node = tree
    for depth, key in enumerate(path):
        if isinstance(node, Mapping):
            if key in node:
                node = node[key]
                continue
            if not isinstance(key, bool) and isinstance(key, (int, float)) and str(key) in node:
                node = node[str(key)]
                continue
            where = list(node)
        elif isinstance(node, (list, tuple)) and isinstance(key, int) and -len(node) <= key < len(node):
            node = node[key]
            continue
        else:
            where = f"a {type(node).__name__}, not a mapping"
        if default is not _MISSING:
            return default
        raise KeyError(f"no {key!r} at {'/'.join(map(str, path[:depth])) or 'the top'}; there: {where}")
    return node


@dataclass(frozen=True)
class Result:
    """One stored result: the measured ``metrics``, the ``config`` they belong to, the ``command`` that made them
    and the ``profile`` it ran under. :meth:`at` reads one value by its path."""

    name: str
    metrics: Mapping[str, Any]
    config: Mapping[str, Any] = field(default_factory=dict)
    command: str = ""
    profile: str = ""

    @classmethod
    def from_dict(cls, blob: Mapping[str, Any], name: str | None = None) -> "Result":
        """A result from a results file's contents, or a checkpoint's ``config.json`` meta (``registry.find``)."""
        return cls(name=name or blob.get("name", ""), metrics=blob.get("metrics", {}), config=blob.get("config", {}),
                   command=blob.get("command", ""), profile=blob.get("profile", ""))

    def at(self, *path: str | int, default: Any = _MISSING) -> Any:
        """The value at ``path`` inside the metrics (see :func:`lookup`)."""
        return lookup(self.metrics, *path, default=default)

    def same_config(self, config: Any) -> bool:
        """Whether the stored numbers were measured with ``config`` (a config object or its dict), by hash."""
        return config_hash(self.config) == config_hash(config)


def load(name: str, profile: Profile | None = None) -> Result:
    """The stored result of study or checkpoint ``name`` (``data/results/<name>.json``; under the ``smoke`` profile,
    before a result exists, measured at smoke size - :func:`crossflow_mini.studies.catalog.results_for`)."""
    return Result.from_dict(results_for(name, profile or get_profile()), name)


def _path(p: Path_) -> tuple[str | int, ...]:
    return (p,) if isinstance(p, (str, int)) else tuple(p)


def _rows(rows: Mapping[str, Any] | Sequence[Mapping[str, Any]], index: str | None) -> list[tuple[str, Any]]:
    if isinstance(rows, Mapping):
        return [(str(k), v) for k, v in rows.items()]
    if index is None:
        raise ValueError("a list of rows needs `index`: the key in each row that names it")
    return [(str(lookup(r, index)), r) for r in rows]


def table(rows: Mapping[str, Any] | Sequence[Mapping[str, Any]], columns: Mapping[str, Path_ | Callable[[Any], Any]],
          *, index: str | None = None, index_name: str | None = None) -> pd.DataFrame:
    """A DataFrame with one row per entry of ``rows`` (a mapping name -> row, or a list of rows whose key ``index``
    names each) and one column per entry of ``columns`` (label -> path inside a row, or a function of the row). A
    row without the path gets NaN there (e.g. the paper's rows, which have fewer numbers)."""
    data = {}
    for label, row in _rows(rows, index):
        data[label] = {c: (get(row) if callable(get) else lookup(row, *_path(get), default=float("nan")))
                       for c, get in columns.items()}
    frame = pd.DataFrame.from_dict(data, orient="index", columns=list(columns))
    frame.index.name = index_name
    return frame


def select(rows: Mapping[str, Any], *names: str, prefix: str | None = None,
           where: Callable[[Any], bool] | None = None) -> dict[str, Any]:
    """The entries of ``rows`` that are named in ``names`` (in that order), start with ``prefix``, and pass
    ``where`` - each filter only where given. A name that is not there raises ``KeyError``."""
    keys: Iterable[str] = names or rows.keys()
    out = {k: lookup(rows, k) for k in keys}
    return {k: v for k, v in out.items()
            if (prefix is None or k.startswith(prefix)) and (where is None or where(v))}


_SWEEP_KEY = re.compile(r"^[^=]*=\s*([-+0-9.eE]+)$")


def sweep(points: Mapping[str, Any], *path: str | int) -> pd.Series:
    """A sweep stored as ``{"w=1": {...}, "w=1.5": {...}}`` (or ``steps=5``, ...) as a Series: the number after
    ``=`` as the index (sorted), the value at ``path`` inside each point as the values. The index is named by the
    text before ``=``."""
    xs, ys, names = [], [], set()
    for key, point in points.items():
        m = _SWEEP_KEY.match(str(key))
        if m is None:
            raise ValueError(f"{key!r} is not a sweep key like 'w=1.5'")
        names.add(str(key).split("=")[0].strip())
        xs.append(float(m.group(1)))
        ys.append(lookup(point, *path))
    series = pd.Series(ys, index=pd.Index(xs, name=names.pop() if len(names) == 1 else None)).sort_index()
    return series


def plot_sweep(curves: Mapping[str, pd.Series], ax: Any = None, *, xlabel: str | None = None, ylabel: str = "",
               chosen: Mapping[str, float] | None = None, logx: bool = False) -> Any:
    """One line per labelled :func:`sweep`; ``chosen``: label -> the x a model settled on, drawn as a ring."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 2.2))
    for label, s in curves.items():
        (line,) = ax.plot(s.index, s.values, "o-", ms=3, label=label)
        if chosen and label in chosen and chosen[label] in s.index:
            ax.plot([chosen[label]], [s[chosen[label]]], "o", ms=9, mfc="none", color=line.get_color())
    ax.set_xlabel(xlabel or next(iter(curves.values())).index.name or "", fontsize=7)
    ax.set_ylabel(ylabel, fontsize=7)
    if logx:
        ax.set_xscale("log")
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=6)
    return ax


def plot_points(frame: pd.DataFrame, x: str, y: str, ax: Any = None, *, labels: bool = True) -> Any:
    """Each row of ``frame`` as a point at (``x``, ``y``), labelled with its index: where the rows sit on two
    metrics at once (e.g. PSNR against FID)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 2.4))
    ax.scatter(frame[x], frame[y], s=14)
    if labels:
        for name, row in frame.iterrows():
            ax.annotate(str(name), (row[x], row[y]), fontsize=5, xytext=(3, 2), textcoords="offset points")
    ax.set_xlabel(x, fontsize=7)
    ax.set_ylabel(y, fontsize=7)
    ax.tick_params(labelsize=6)
    return ax


# ------------------------------------------------------------------------------------------- training curves
#: The key under a checkpoint's stored metrics that holds its loss history ({"step": [...], "loss": [...], ...}).
HISTORY_KEY = "loss_history"


def history_frame(history: Mapping[str, Sequence[float]]) -> pd.DataFrame:
    """A training history (``TrainResult.history``: ``{"step": [...], "loss": [...], ...}``) as a DataFrame indexed
    by step, one column per logged quantity."""
    frame = pd.DataFrame({k: list(v) for k, v in history.items() if k != "step"}, index=list(history["step"]))
    frame.index.name = "step"
    return frame


def loss_history(name: str, profile: Profile | None = None) -> pd.DataFrame | None:
    """The loss history of checkpoint ``name`` for the profile: the one its stored metrics carry
    (:data:`HISTORY_KEY`), else the one in the resumable training state of a run trained on this machine for the
    profile's recipe (``data/cache/runs``), else None (a checkpoint shipped without one)."""
    profile = profile or get_profile()
    stored = load(name, profile).at(HISTORY_KEY, default=None)
    if stored:
        return history_frame(stored)
    state = checkpoints.run_dir(name, registry.recipe(name, profile)) / "train_state.safetensors"
    if not state.exists():
        return None
    from safetensors import safe_open

    with safe_open(str(state), framework="pt") as fh:  # the metadata alone: no tensor is read
        meta = json.loads((fh.metadata() or {}).get("state", "{}"))
    return history_frame(meta["history"]) if meta.get("history", {}).get("step") else None


def plot_loss(history: pd.DataFrame | Mapping[str, Sequence[float]] | None, keys: Sequence[str] = ("loss",),
              ax: Any = None, *, title: str = "", smooth: int = 1, logy: bool = True) -> Any:
    """Loss against step for ``keys`` of a history (a :func:`history_frame`, or the dict a training run returns);
    ``smooth`` > 1 draws a running mean over that many logged points. A missing history (None) draws nothing and
    says so in the title."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 2.0))
    if history is None:
        ax.set_title(f"{title}: no loss history stored" if title else "no loss history stored", fontsize=7)
        ax.axis("off")
        return ax
    frame = history if isinstance(history, pd.DataFrame) else history_frame(history)
    for k in keys:
        ax.plot(frame.index, frame[k].rolling(smooth, min_periods=1).mean(), lw=0.9, label=k)
    ax.set_xlabel("step", fontsize=7)
    if logy and (frame[list(keys)] > 0).all().all():
        ax.set_yscale("log")
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=6)
    if len(keys) > 1:
        ax.legend(fontsize=6)
    return ax


__all__ = ["lookup", "Result", "load", "table", "select", "sweep", "plot_sweep", "plot_points", "HISTORY_KEY",
           "history_frame", "loss_history", "plot_loss"]

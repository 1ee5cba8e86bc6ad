"""The notebooks' results API (crossflow_mini.report): lookups by path, tables, selections, sweeps, training curves,
and the rule it exists for - no notebook cell of 06-10 walks a result more than two subscripts deep."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import matplotlib
import nbformat
import pandas as pd
import pytest
import torch

matplotlib.use("Agg")

from crossflow_mini import checkpoints, registry, report, training  # noqa: E402
from crossflow_mini.profiles import get_profile  # noqa: E402
from crossflow_mini.results import results_path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TREE = {"runs": {"a:1": {"points": {"500": {"w=1": {"overall": 0.25}}}}},
        "rows": [{"method": "x", "psnr": 1.0}, {"method": "y", "psnr": 2.0, "fid": 9.0}]}


def test_lookup_walks_mappings_lists_and_json_number_keys():
    assert report.lookup(TREE, "runs", "a:1", "points", 500, "w=1", "overall") == 0.25  # int finds "500"
    assert report.lookup(TREE, "rows", 1, "fid") == 9.0
    assert report.lookup(TREE) is TREE
    assert report.lookup(TREE, "runs", "b:2", default=None) is None
    with pytest.raises(KeyError, match=r"no 'b:2' at runs; there: \['a:1'\]"):
        report.lookup(TREE, "runs", "b:2")
    with pytest.raises(KeyError):
        report.lookup(TREE, "rows", 5)


def test_a_stored_result_reads_the_same_numbers_as_the_file():
    raw = json.loads(results_path("sr").read_text())
    sr = report.load("sr", get_profile("course"))
    row = next(iter(raw["metrics"]["rows"]))
    assert sr.at("rows", row, "psnr") == raw["metrics"]["rows"][row]["psnr"]
    assert sr.command == raw["command"] and sr.name == "sr" and sr.profile == raw["profile"]
    assert sr.same_config(raw["config"]) and not sr.same_config({"other": 1})


def test_table_has_one_row_per_entry_and_nan_where_a_row_lacks_a_column():
    frame = report.table(TREE["rows"], {"PSNR": "psnr", "FID": ("fid",), "2 PSNR": lambda r: 2 * r["psnr"]},
                         index="method", index_name="method")
    assert list(frame.index) == ["x", "y"] and list(frame.columns) == ["PSNR", "FID", "2 PSNR"]
    assert frame.loc["y", "FID"] == 9.0 and math.isnan(frame.loc["x", "FID"])
    assert frame.loc["y", "2 PSNR"] == 4.0 and frame.index.name == "method"
    by_name = report.table({"p": {"a": {"b": 3}}}, {"B": ("a", "b")})
    assert by_name.loc["p", "B"] == 3
    with pytest.raises(ValueError, match="index"):
        report.table(TREE["rows"], {"PSNR": "psnr"})


def test_select_keeps_order_prefix_and_predicate():
    rows = {"regression:l1": {"v": 1}, "crossflow:none": {"v": 2}, "crossflow:ve": {"v": 3}}
    assert list(report.select(rows, prefix="crossflow:")) == ["crossflow:none", "crossflow:ve"]
    assert list(report.select(rows, "crossflow:ve", "regression:l1")) == ["crossflow:ve", "regression:l1"]
    assert list(report.select(rows, where=lambda r: r["v"] > 1)) == ["crossflow:none", "crossflow:ve"]
    with pytest.raises(KeyError):
        report.select(rows, "baseline")


def test_sweep_sorts_by_the_number_after_the_equals_sign():
    points = {"w=3": {"m": {"s": 0.3}}, "w=1": {"m": {"s": 0.1}}, "w=1.5": {"m": {"s": 0.15}}}
    s = report.sweep(points, "m", "s")
    assert list(s.index) == [1.0, 1.5, 3.0] and list(s.values) == [0.1, 0.15, 0.3] and s.index.name == "w"
    with pytest.raises(ValueError, match="sweep key"):
        report.sweep({"best": {}})


def test_plots_draw_what_they_are_given():
    frame = pd.DataFrame({"PSNR": [27.0, 29.0], "FID": [200.0, 180.0]}, index=["a", "b"])
    ax = report.plot_points(frame, "PSNR", "FID")
    assert ax.collections[0].get_offsets().tolist() == [[27.0, 200.0], [29.0, 180.0]]
    assert [t.get_text() for t in ax.texts] == ["a", "b"]
    ax = report.plot_sweep({"m": pd.Series([0.1, 0.3], index=pd.Index([1.0, 2.0], name="w"))}, chosen={"m": 2.0})
    assert list(ax.lines[0].get_xdata()) == [1.0, 2.0] and list(ax.lines[1].get_xdata()) == [2.0]
    assert ax.get_xlabel() == "w"
    ax = report.plot_loss({"step": [0, 10, 20], "loss": [1.0, 0.5, 0.25]}, smooth=2)
    assert list(ax.lines[0].get_ydata()) == [1.0, 0.75, 0.375] and ax.get_yscale() == "log"
    assert report.plot_loss(None, title="m").get_title() == "m: no loss history stored"


def test_loss_history_from_the_stored_metrics(monkeypatch):
    blob = {"name": "m", "metrics": {report.HISTORY_KEY: {"step": [0, 5], "loss": [2.0, 1.0], "fm": [1.5, 0.5]}}}
    monkeypatch.setattr(report, "results_for", lambda name, profile: blob)
    frame = report.loss_history("sr_crossflow", get_profile("smoke"))
    assert list(frame.index) == [0, 5] and list(frame["fm"]) == [1.5, 0.5] and frame.index.name == "step"


def test_loss_history_from_a_training_state_on_this_machine(tmp_cache):
    profile = get_profile("smoke")
    assert report.loss_history("sr_crossflow", profile) is None  # nothing stored, nothing trained here
    model = torch.nn.Linear(2, 2)
    history = {"step": [0, 1, 2], "loss": [3.0, 2.0, 1.0]}
    state = checkpoints.run_dir("sr_crossflow", registry.recipe("sr_crossflow", profile)) / "train_state.safetensors"
    state.parent.mkdir(parents=True)
    training._save_state(state, 3, model, None, torch.optim.SGD(model.parameters(), lr=0.1), history,
                         training.TrainConfig(steps=3))
    frame = report.loss_history("sr_crossflow", profile)
    assert list(frame.index) == [0, 1, 2] and list(frame["loss"]) == [3.0, 2.0, 1.0]


def _subscript_depth(node: ast.AST) -> int:
    depth = 0
    while isinstance(node, ast.Subscript):
        depth, node = depth + 1, node.value
    return depth


def deepest_lookups(source: str) -> int:
    """The longest chain ``x[a][b]...`` in a cell (magics and shell lines left out)."""
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    return max((_subscript_depth(n) for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Subscript)), default=0)


def test_the_depth_counter_counts_chains():
    assert deepest_lookups("a['x']['y']['z']") == 3 and deepest_lookups("r.at('x', 'y', 'z')[0]") == 1


#: The notebooks written on this API (each joins when its result cells are).
ON_THE_API: tuple[str, ...] = ("06", "07")


@pytest.mark.parametrize("number", ON_THE_API)
def test_no_notebook_cell_chains_more_than_two_lookups(number):
    (path,) = (ROOT / "notebooks").glob(f"{number}_*.ipynb")
    nb = nbformat.read(path, as_version=4)
    deep = {i: d for i, c in enumerate(nb.cells) if c.cell_type == "code" and (d := deepest_lookups(c.source)) > 2}
    assert not deep, f"{path.name}: cells with chained lookups deeper than two (cell: depth): {deep}"

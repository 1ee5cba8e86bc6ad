"""Strip what a notebook run leaves behind that is not content: cell metadata other than tags, widget state,
interpreter versions. Outputs stay (they are the committed course run), consecutive chunks of printed text are
joined, and execution counts are renumbered 1..N over the code cells - nbval refuses a cell that has outputs but
no execution count - so that a rerun that changes nothing changes no bytes."""

from __future__ import annotations

import sys

import nbformat

KEEP_CELL_METADATA = ("tags", "nbgrader")  # nbgrader: the exercise cells (make student)


def merge_streams(outputs: list) -> list:
    """Join consecutive stream outputs of the same stream: how a kernel splits printed text into chunks depends on
    timing, so unmerged chunks would change the file on every rerun."""
    merged: list = []
    for out in outputs:
        if (out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                and merged[-1].get("name") == out.get("name")):
            merged[-1]["text"] += out["text"]
        else:
            merged.append(out)
    return merged


def clean(path: str) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    count = 0
    for cell in nb.cells:
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in KEEP_CELL_METADATA}
        if cell.cell_type == "code":
            count += 1
            cell.execution_count = count
            cell.outputs = merge_streams(cell.outputs)
            for out in cell.outputs:
                if "execution_count" in out:
                    out["execution_count"] = count
                if isinstance(out.get("metadata"), dict):
                    out["metadata"].clear()
                if "data" in out:
                    out["data"].pop("application/vnd.jupyter.widget-view+json", None)
    nbformat.write(nb, path)


if __name__ == "__main__":
    for p in sys.argv[1:]:
        clean(p)
        print(f"cleaned {p}")

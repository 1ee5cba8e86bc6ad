"""Strip what a notebook run leaves behind that is not content: execution counts, cell metadata other than
tags, widget state, and interpreter versions. Outputs stay (they are the committed course run)."""

from __future__ import annotations

import sys

import nbformat

KEEP_CELL_METADATA = ("tags",)


def clean(path: str) -> None:
    nb = nbformat.read(path, as_version=4)
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}}
    for cell in nb.cells:
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in KEEP_CELL_METADATA}
        if cell.cell_type == "code":
            cell.execution_count = None
            for out in cell.outputs:
                if "execution_count" in out:
                    out["execution_count"] = None
                out.get("metadata", {}).clear() if isinstance(out.get("metadata"), dict) else None
                if "data" in out:
                    out["data"].pop("application/vnd.jupyter.widget-view+json", None)
    nbformat.write(nb, path)


if __name__ == "__main__":
    for p in sys.argv[1:]:
        clean(p)
        print(f"cleaned {p}")

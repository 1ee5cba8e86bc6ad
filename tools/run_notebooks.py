"""Execute the course notebooks in order under one profile and record each one's wall time.

    python tools/run_notebooks.py --profile course --inplace   # what `make notebooks` runs: outputs saved
    python tools/run_notebooks.py --profile smoke              # timing only, notebooks left untouched

Times go to data/results/notebook_times.json (one entry per profile), which the README table is made from.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from clean_notebooks import clean  # noqa: E402

TIMES = ROOT / "data" / "results" / "notebook_times.json"
TIMEOUT_S = 900


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="course", choices=("smoke", "course", "full"))
    ap.add_argument("--inplace", action="store_true", help="save the executed notebooks (cleaned)")
    ap.add_argument("notebooks", nargs="*", help="default: every notebooks/NN_*.ipynb in order")
    args = ap.parse_args()
    os.environ["CROSSFLOW_PROFILE"] = args.profile
    os.environ.setdefault("CROSSFLOW_PROGRESS", "0")
    paths = [Path(p) for p in args.notebooks] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    times = json.loads(TIMES.read_text()) if TIMES.exists() else {}
    entry = times.setdefault(args.profile, {})
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        t0 = time.perf_counter()
        NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
        seconds = time.perf_counter() - t0
        entry[path.stem] = round(seconds, 1)
        print(f"{path.name}: {seconds:.1f} s", flush=True)
        if args.inplace:
            nbformat.write(nb, path)
            clean(str(path))
    times["machine"] = f"{platform.machine()}, {os.cpu_count()} CPU cores"
    TIMES.parent.mkdir(parents=True, exist_ok=True)
    TIMES.write_text(json.dumps(times, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

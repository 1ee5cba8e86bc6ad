"""Record the wall time of one whole command (``make test``) beside the notebook times, so the README quotes the
range of measured runs rather than one figure.

    python tools/record_time.py make_test 912     # what `make test RECORD=1` calls after a green run

The run is appended to ``runs[NAME]`` of data/results/notebook_times.json (the last few are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crossflow_mini.utils import atomic_write_text  # noqa: E402

TIMES = ROOT / "data" / "results" / "notebook_times.json"
MAX_RUNS = 6


def append_run(times: dict, name: str, seconds: Any) -> list[dict]:
    """Add one run of ``name`` (a total, or ``{notebook: seconds}``) to ``times["runs"]``, keep the last
    ``MAX_RUNS`` and stamp the machine; the one place a recorded run is made (also ``tools/run_notebooks.py``)."""
    runs = times.setdefault("runs", {}).setdefault(name, [])
    runs.append({"date": time.strftime("%Y-%m-%d"),
                 "seconds": seconds if isinstance(seconds, dict) else round(float(seconds), 1)})
    del runs[:-MAX_RUNS]
    times["machine"] = f"{platform.machine()}, {os.cpu_count()} CPU cores"
    return runs


def record(name: str, seconds: float, path: Path = TIMES) -> list[dict]:
    """Append one run of ``name`` to ``path`` and return its recorded runs (oldest first)."""
    times = json.loads(path.read_text()) if path.exists() else {}
    runs = append_run(times, name, seconds)
    atomic_write_text(path, json.dumps(times, indent=2, sort_keys=True) + "\n")
    return runs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", help="what was timed, e.g. make_test")
    ap.add_argument("seconds", type=float)
    args = ap.parse_args()
    if args.seconds <= 0:
        raise SystemExit(f"seconds must be positive; got {args.seconds}")
    runs = record(args.name, args.seconds)
    print(f"recorded {args.name}: {args.seconds:.0f} s ({len(runs)} run(s) on record) in {TIMES.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

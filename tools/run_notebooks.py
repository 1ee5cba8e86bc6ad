"""Execute the course notebooks in order under one profile and report each one's wall time.

    python tools/run_notebooks.py --profile course                 # what `make course` runs: executed copies go to
                                                                   # build/notebooks/, the tracked notebooks stay as
                                                                   # they are
    python tools/run_notebooks.py --profile course --inplace --record   # what `make notebooks` runs (maintainers):
                                                                   # outputs saved into notebooks/, times recorded
    python tools/run_notebooks.py --profile smoke                  # timing only
    python tools/run_notebooks.py --profile course --record-as course_fresh_clone   # on a fresh clone, cold: the
                                                                   # run is added to the recorded runs (the tables
                                                                   # quote the range of them)

A notebook whose metadata lists ``crossflow_mini.checkpoints`` is skipped under the course profile while one of
them is not shipped in data/checkpoints/ (the message names the command that trains it); the smoke profile trains
them on the fly and runs every notebook.

Times are printed, and written to data/cache/notebook_times.json; with ``--record`` to
data/results/notebook_times.json, which the README table is made from. The kernel talks to this process over local
IPC sockets, not TCP (no "running over TCP without encryption" warning, nothing listening on a port).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from clean_notebooks import clean  # noqa: E402
from record_time import append_run  # noqa: E402
from crossflow_mini.utils import atomic_write_text  # noqa: E402

RECORDED_TIMES = ROOT / "data" / "results" / "notebook_times.json"
LOCAL_TIMES = ROOT / "data" / "cache" / "notebook_times.json"
EXECUTED_DIR = ROOT / "build" / "notebooks"
TIMEOUT_S = 900


def execute(path: Path, out: Path) -> float:
    """Run one notebook (cwd: its own folder, so relative paths work as in JupyterLab); save it to ``out``."""
    nb = nbformat.read(path, as_version=4)
    # IPC socket files are named by `ip`; an absolute path keeps kernel (cwd: the notebook's folder) and client
    # (cwd: here) on the same files
    sockets = Path(tempfile.mkdtemp(prefix="crossflow-kernel-")) / "kernel"
    km = KernelManager(kernel_name="python3", transport="ipc", ip=str(sockets))
    t0 = time.perf_counter()
    try:
        NotebookClient(nb, km=km, timeout=TIMEOUT_S, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:  # the client does not own a kernel manager it was given: stop the kernel here
        if km.has_kernel:
            km.shutdown_kernel(now=True)
        shutil.rmtree(sockets.parent, ignore_errors=True)
    seconds = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    clean(str(out))
    return seconds


def missing_checkpoints(path: Path) -> list[str]:
    """The checkpoints a notebook names in its metadata that are not shipped in data/checkpoints/."""
    nb = nbformat.read(path, as_version=4)
    names = nb.metadata.get("crossflow_mini", {}).get("checkpoints", [])
    return [n for n in names if not (ROOT / "data" / "checkpoints" / n / "model.safetensors").exists()]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="course", choices=("smoke", "course", "full"))
    ap.add_argument("--inplace", action="store_true", help="save the executed notebooks into notebooks/ (cleaned)")
    ap.add_argument("--record", action="store_true", help="write the times to data/results (the README's table)")
    ap.add_argument("--record-as", default=None, help="the name the times are recorded under (default: the "
                    "profile); e.g. course_fresh_clone for a first run on a fresh clone")
    ap.add_argument("notebooks", nargs="*", help="default: every notebooks/NN_*.ipynb in order")
    args = ap.parse_args()
    os.environ["CROSSFLOW_PROFILE"] = args.profile
    os.environ.setdefault("CROSSFLOW_PROGRESS", "0")
    paths = [Path(p).resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    times_file = RECORDED_TIMES if args.record or args.record_as else LOCAL_TIMES
    times = json.loads(times_file.read_text()) if times_file.exists() else {}
    entry = times.setdefault(args.record_as or args.profile, {})
    ran: dict[str, float] = {}
    for path in paths:
        out = path if args.inplace else EXECUTED_DIR / args.profile / path.name
        missing = missing_checkpoints(path) if args.profile != "smoke" else []
        if missing:
            print(f"{path.name}: skipped - its checkpoints are not shipped yet ({', '.join(missing)}); train them "
                  f"with `CROSSFLOW_PROFILE=full python -m crossflow_mini train NAME`, or run it with "
                  f"CROSSFLOW_PROFILE=smoke", flush=True)
            continue
        seconds = execute(path, out)
        entry[path.stem] = ran[path.stem] = round(seconds, 1)
        print(f"{path.name}: {seconds:.1f} s -> {out.relative_to(ROOT)}", flush=True)
    if args.record_as and ran:
        # every recorded run is kept (the last few), so the tables quote a range, not one quiet figure
        append_run(times, args.record_as, ran)
    times["machine"] = f"{platform.machine()}, {os.cpu_count()} CPU cores"
    atomic_write_text(times_file, json.dumps(times, indent=2, sort_keys=True) + "\n")
    print(f"times: {times_file.relative_to(ROOT)}")
    print(summary(ran, args.profile))
    return 0


def summary(ran: dict[str, float], profile: str) -> str:
    """The per-notebook times of this run and their total, as a table a teacher can plan with."""
    width = max((len(n) for n in ran), default=10)
    lines = [f"\n{'notebook':{width}s}  {profile + ' run':>12s}", f"{'-' * width}  {'-' * 12}"]
    lines += [f"{name:{width}s}  {seconds:10.1f} s" for name, seconds in ran.items()]
    total = sum(ran.values())
    lines += [f"{'-' * width}  {'-' * 12}", f"{'total':{width}s}  {total:10.1f} s  ({total / 60:.1f} min, kernel start-up "
              f"included; {os.cpu_count()} CPU cores)"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

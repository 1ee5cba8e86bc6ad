"""The stored results: ``data/results/<name>.json``, one file per checkpoint and per study, each written by the
project's own command (which the file names) with the config it measured and the machine it ran on.

:func:`load_results` reads one (with a clear error naming the command that makes it when it is missing);
:func:`write_results` writes one atomically. The studies' runner (:mod:`crossflow_mini.studies`) and the registry
(:mod:`crossflow_mini.registry`) are the only writers.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import torch

from . import distributed
from .configs import config_hash, to_dict
from .paths import RESULTS_DIR
from .utils import atomic_write_text


def results_path(name: str) -> Path:
    """Where the stored results of checkpoint or study ``name`` live."""
    return RESULTS_DIR / f"{name}.json"


def load_results(name: str, verb: str = "reproduce") -> dict[str, Any]:
    """The stored ``data/results/<name>.json`` (what a notebook shows when it does not rerun a study). ``verb``:
    the command that writes it (``reproduce`` for a study, ``train`` for a checkpoint), named when it is missing."""
    path = results_path(name)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; create it with `CROSSFLOW_PROFILE=full python -m "
                                f"crossflow_mini {verb} {name}`")
    return json.loads(path.read_text())


def environment(device: Any) -> dict[str, Any]:
    """The machine a result was measured on: torch, threads, device, architecture, Python, and the processes and
    mixed precision of a run where they are not the default one fp32 process."""
    out: dict[str, Any] = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": str(device),
                           "machine": platform.machine(), "python": platform.python_version()}
    parallel, n = distributed.ParallelConfig.from_env(), distributed.num_processes()
    if n > 1:
        out["processes"] = n
    if parallel != distributed.ParallelConfig():
        out |= {"mixed_precision": parallel.mixed_precision, "grad_accum": parallel.grad_accum}
    return out


def write_results(name: str, profile_name: str, cfg: Any, metrics: dict[str, Any], verb: str, device: Any,
                  **extra: Any) -> Path:
    """Write ``data/results/<name>.json`` atomically: the metrics, the config they belong to (and its hash), the
    command that made them (``verb``: ``train`` or ``reproduce``), the machine, and ``extra`` keys."""
    blob = {"name": name, "profile": profile_name, "config_hash": config_hash(cfg), **extra,
            "command": f"CROSSFLOW_PROFILE={profile_name} python -m crossflow_mini {verb} {name}",
            "metrics": metrics, "config": to_dict(cfg), "environment": environment(device)}
    path = results_path(name)
    atomic_write_text(path, json.dumps(blob, indent=2) + "\n")
    return path


__all__ = ["results_path", "load_results", "environment", "write_results"]

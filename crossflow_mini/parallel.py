"""Independent jobs side by side, one process per CPU core: the notebooks use it where two runs that do not talk to
each other (CrossFlow and the baseline in notebook 06) would otherwise leave one core idle.

At these model sizes a second torch thread adds little to one run (``make bench``), while a second process doubles
the work done: so ``side_by_side`` starts ``processes`` workers of ``cores // processes`` threads each. Workers are
spawned (a fresh interpreter each, as on macOS and Windows), so a job must be a function importable from a module -
not one defined in a notebook cell - and its arguments and result are pickled. Weights never travel that way: a job
gets checkpoint names and a profile, and loads the weights itself from their checksummed files (``side_by_side``
refuses a ``torch.nn.Module`` argument). Each job seeds itself from its own recipe, so the results do not depend on
which worker ran it; with ``processes=1`` the jobs run one after another in this process.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

import torch

T = TypeVar("T")


def default_processes(jobs: int) -> int:
    """One process per core, at most one per job."""
    return max(1, min(jobs, os.cpu_count() or 1))


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)
    os.environ.setdefault("CROSSFLOW_PROGRESS", "0")  # several progress bars in one output interleave


def side_by_side(fn: Callable[..., T], jobs: Sequence[dict[str, Any]], processes: int | None = None) -> list[T]:
    """``[fn(**job) for job in jobs]``, computed by ``processes`` spawned workers (default: one per core, at most
    one per job); results come back in the order of ``jobs``. An exception in a job is raised here."""
    if not jobs:
        raise ValueError("side_by_side needs at least one job")
    modules = sorted({k for job in jobs for k, v in job.items() if isinstance(v, torch.nn.Module)})
    if modules:
        raise TypeError(f"side_by_side: {', '.join(modules)} is a torch module; pass the checkpoint's name (and the "
                        f"profile) and load it inside the job - weights are not sent to workers through pickle")
    processes = default_processes(len(jobs)) if processes is None else processes
    if processes < 1:
        raise ValueError(f"processes must be at least 1; got {processes}")
    if processes == 1:
        return [fn(**job) for job in jobs]
    threads = max(1, (os.cpu_count() or 1) // processes)
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker, initargs=(threads,)) as pool:
        futures = [pool.submit(fn, **job) for job in jobs]
        return [f.result() for f in futures]


__all__ = ["side_by_side", "default_processes"]

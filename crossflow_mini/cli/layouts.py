"""How a training run uses the machine: one process with T threads, or P processes (data parallel, gloo between CPU
processes) with one thread each - measured, chosen and launched here.

At these model sizes a second torch thread inside one process buys little (the matrices are small and each thread
waits on the other), while two processes of one thread each split every batch in two and only exchange gradients
once a step: on a 2-core CPU the ``2x1`` layout is the fast one (``make bench`` prints the ratios for every task's
recipe). So ``python -m crossflow_mini train NAME`` on a multi-core machine without a GPU starts itself again under
``accelerate launch`` with two processes (:func:`launch`), after training - with one process - any checkpoint the
run builds on that is missing; ``--processes 1`` keeps one process.

A layout is written ``PxT``: P processes of T threads (``1x1``, ``1x2``, ``2x1``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from .. import distributed

#: The environment variable a launched run reads its threads per process from.
THREADS_ENV = "CROSSFLOW_THREADS"


@dataclass(frozen=True)
class Layout:
    """``processes`` processes of ``threads`` torch threads each."""

    processes: int = 1
    threads: int = 1

    def __str__(self) -> str:
        return f"{self.processes}x{self.threads}"

    @classmethod
    def parse(cls, text: str) -> "Layout":
        try:
            p, t = (int(x) for x in text.lower().split("x"))
        except ValueError:
            raise ValueError(f"a layout is PROCESSESxTHREADS, e.g. 2x1 or 1x2; got {text!r}") from None
        if p < 1 or t < 1:
            raise ValueError(f"a layout needs at least one process and one thread, got {text!r}")
        return cls(p, t)


def fastest_layout(cores: int | None = None, gpu: bool | None = None) -> Layout:
    """The layout ``train`` uses by default: two processes of ``cores // 2`` threads on a CPU-only machine with at
    least two cores (measured fastest: ``make bench``), else one process with every core (a GPU: one process per GPU
    is ``accelerate launch``'s business)."""
    cores = (os.cpu_count() or 1) if cores is None else cores
    gpu = torch.cuda.is_available() if gpu is None else gpu
    if gpu or cores < 2:
        return Layout(1, max(1, cores))
    return Layout(2, max(1, cores // 2))


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(processes: int, module_args: list[str]) -> list[str]:
    """``accelerate launch`` of ``python -m <module_args...>`` with ``processes`` CPU processes on this machine."""
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
            str(free_port()), "-m", *module_args]


def launch(layout: Layout, module_args: list[str]) -> int:
    """Run ``python -m <module_args...>`` under ``accelerate launch`` with the layout's processes and threads; return
    its exit status. The children read their threads from :data:`THREADS_ENV`."""
    env = {**os.environ, THREADS_ENV: str(layout.threads), "OMP_NUM_THREADS": str(layout.threads),
           "MKL_NUM_THREADS": str(layout.threads)}
    return subprocess.run(launch_command(layout.processes, module_args), env=env).returncode


def threads_from_env() -> int | None:
    """The threads per process a launcher asked for (None: not launched by :func:`launch`)."""
    value = os.environ.get(THREADS_ENV, "").strip()
    return int(value) if value else None


# ---------------------------------------------------------------------------------------------- measuring
def _synthetic_batches(name: str) -> tuple[Any, Callable[[int], Any]]:
    """The full-size recipe of checkpoint ``name`` and ``step -> batch`` of random data with its real shapes (the
    speed of a training step does not depend on what the numbers are)."""
    from .. import registry
    from ..core.source import TokenBatch
    from ..profiles import get_profile

    recipe = registry.recipe(name, get_profile("full", device="cpu"))
    b = recipe.train.batch_size
    g = torch.Generator().manual_seed(0)
    target = torch.randn(b, *recipe.model.velocity.latent_shape, generator=g)
    if name.startswith("t2i"):
        n = recipe.model.source.max_tokens
        mask = torch.ones(b, n, dtype=torch.bool)
        mask[:, n * 3 // 4:] = False
        source: Any = TokenBatch(torch.randn(b, n, recipe.model.source.token_dim, generator=g), mask)
    else:
        src = recipe.model.source
        shape = getattr(src, "in_shape", None) or src.latent_shape  # an identity source reads the target's shape
        source = torch.randn(b, *shape, generator=g).clamp(-1, 1)
    return recipe, lambda step: (source, target)


def measure(name: str, steps: int = 12, warmup: int = 3) -> float | None:
    """Training samples per second of checkpoint ``name``'s full-size recipe in THIS process's layout (its threads;
    under ``accelerate launch``, all its processes together), over ``steps`` steps after ``warmup`` - the real
    training loop (:func:`crossflow_mini.training.train`), EMA and optimiser included. The main process returns the
    figure, the others ``None``."""
    from ..core.build import build_model
    from ..tasks.common import model_loss
    from ..training import train

    recipe, batch_fn = _synthetic_batches(name)
    cfg = dataclasses.replace(recipe.train, steps=warmup + steps, ckpt_every=0, log_every=10 ** 6)
    torch.manual_seed(0)
    model = build_model(recipe.model)
    marks: dict[int, float] = {}

    def mark(step: int, logs: dict[str, float]) -> None:
        if step + 1 in (warmup, warmup + steps):
            marks[step + 1] = time.perf_counter()

    train(model, model_loss, batch_fn, cfg, callback=mark, desc=f"bench {name}", device="cpu")
    if not distributed.is_main_process():
        return None
    return steps * cfg.batch_size / (marks[warmup + steps] - marks[warmup])


def _measure_once(name: str, layout: Layout, steps: int, warmup: int) -> float:
    if layout.processes == 1:
        torch.set_num_threads(layout.threads)
        return measure(name, steps, warmup)
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "figure.json"
        status = launch(layout, ["crossflow_mini.cli.layout_worker", name, str(steps), str(warmup), str(result)])
        if status != 0 or not result.exists():
            raise RuntimeError(f"the {layout} launch of {name} failed (exit status {status})")
        return json.loads(result.read_text())["samples_per_s"]


def measure_layouts(names: tuple[str, ...], layouts: tuple[Layout, ...], steps: int = 12, warmup: int = 3,
                    rounds: int = 2) -> dict[str, dict[str, float]]:
    """``{recipe: {layout: samples/s}}``: one-process layouts in this process, multi-process ones under
    ``accelerate launch`` (each figure from the launched run's main process). The layouts are measured in turn,
    ``rounds`` times, and each keeps its best round: a neighbour's burst of work on a shared machine slows one
    round, never speeds one up."""
    out: dict[str, dict[str, float]] = {}
    before = torch.get_num_threads()
    try:
        for name in names:
            row = out.setdefault(name, {})
            for _ in range(rounds):
                for layout in layouts:
                    figure = _measure_once(name, layout, steps, warmup)
                    row[str(layout)] = max(row.get(str(layout), 0.0), figure)
    finally:
        torch.set_num_threads(before)
    return out


__all__ = ["THREADS_ENV", "Layout", "fastest_layout", "free_port", "launch_command", "launch", "threads_from_env",
           "measure", "measure_layouts"]

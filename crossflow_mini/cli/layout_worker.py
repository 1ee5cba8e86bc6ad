"""``python -m crossflow_mini.cli.layout_worker NAME STEPS WARMUP OUT``, started under ``accelerate launch`` by
:func:`crossflow_mini.cli.layouts.measure_layouts`: measure one recipe's training speed with the launched processes;
the main process writes the figure to ``OUT``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from .layouts import measure, threads_from_env


def main(argv: list[str]) -> int:
    name, steps, warmup, out = argv
    torch.set_num_threads(threads_from_env() or 1)
    figure = measure(name, int(steps), int(warmup))
    if figure is not None:
        Path(out).write_text(json.dumps({"samples_per_s": figure}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

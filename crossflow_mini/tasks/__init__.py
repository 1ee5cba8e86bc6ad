"""The tasks: how each named checkpoint and study is configured, built, trained, measured and found again.

One module per capability (``t2i``, ``compare``, ``fashion``, ``autoencoder``, ``judge``, ``flow2d``, ...), and
:mod:`~crossflow_mini.tasks.registry`, which names every checkpoint and study. The CLI and the notebooks call the
same functions, so a number in ``data/results`` and the same number in a notebook come from the same code.

``from crossflow_mini import tasks; tasks.load("t2i_shapes")`` reaches the registry's functions directly.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # The registry imports the profiles, which import the task configs: load it on first use, not on import.
    if name.startswith("__"):
        raise AttributeError(name)
    import importlib

    registry = importlib.import_module(f"{__name__}.registry")
    try:
        return getattr(registry, name)
    except AttributeError:
        raise AttributeError(f"module 'crossflow_mini.tasks' has no attribute {name!r}") from None

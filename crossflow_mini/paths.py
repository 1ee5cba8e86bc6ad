"""Where the project keeps its files: shipped checkpoints, measured results, and computed caches."""

from __future__ import annotations

import os
from pathlib import Path

#: Repository root (holds ``data/``); the package lives in ``<root>/crossflow_mini``.
ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
CHECKPOINT_DIR = DATA_DIR / "checkpoints"
RESULTS_DIR = DATA_DIR / "results"
CACHE_ENV = "CROSSFLOW_CACHE"


def cache_dir() -> Path:
    """Where computed caches go (text embeddings, latents, checkpoints trained on the fly). Git-ignored.

    ``CROSSFLOW_CACHE`` overrides the default ``data/cache`` (useful for a read-only checkout)."""
    return Path(os.environ.get(CACHE_ENV, DATA_DIR / "cache"))


__all__ = ["ROOT", "DATA_DIR", "CHECKPOINT_DIR", "RESULTS_DIR", "CACHE_ENV", "cache_dir"]

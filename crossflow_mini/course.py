"""What the first cell of every notebook calls: seed everything, pick the profile, set small figures."""

from __future__ import annotations

import os

import torch

from .profiles import Profile, get_profile
from .utils import get_device, seed_everything

FIG_DPI = 80


def start(seed: int = 0, quiet: bool = False) -> Profile:
    """Seed Python/NumPy/torch with ``seed``, configure matplotlib for small inline figures, and return the active
    :class:`~crossflow_mini.config.Profile` (from ``CROSSFLOW_PROFILE``)."""
    import matplotlib

    seed_everything(seed)
    torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    matplotlib.rcParams.update({"figure.dpi": FIG_DPI, "savefig.dpi": FIG_DPI, "font.size": 8,
                                "figure.figsize": (6.0, 2.6)})
    profile = get_profile()
    if not quiet:
        print(f"profile: {profile.name} | seed: {seed} | device: {get_device()} | torch {torch.__version__}")
    return profile

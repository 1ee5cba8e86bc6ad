"""Small helpers shared by every layer: seeding, device choice, progress bars, atomic file writes."""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a fresh ``torch.Generator`` seeded with ``seed`` as well.

    Same seed, same machine -> same numbers (the project's determinism promise)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


DEVICE_ENV = "CROSSFLOW_DEVICE"


def get_device(device: str | torch.device | None = "auto") -> torch.device:
    """The device to run on. ``"auto"`` (or ``None``) takes ``CROSSFLOW_DEVICE`` where it is set, else CUDA where a
    GPU is, else the CPU - the tested default. Apple's ``"mps"`` is used only when asked for by name (it lacks some
    operations the course uses). Anything else is passed to ``torch.device``."""
    if isinstance(device, torch.device):
        return device
    if device is None or device == "auto":
        device = os.environ.get(DEVICE_ENV, "").strip() or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        out = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {device!r}: use cpu, cuda, cuda:N or mps ({DEVICE_ENV})") from err
    if out.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but this machine has no CUDA GPU; use cpu")
    return out


def to_device(batch: Any, device: torch.device | str | None) -> Any:
    """Move a batch - a tensor, anything with ``.to(device)`` (a TokenBatch), or tuples / lists / dicts of them -
    to ``device`` (``None``: leave it where it is)."""
    if device is None:
        return batch
    if isinstance(batch, (tuple, list)):
        return type(batch)(to_device(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if hasattr(batch, "to"):
        return batch.to(device)
    return batch


def progress(iterable=None, **kwargs):
    """A tqdm progress bar that renders as a widget in notebooks and as text elsewhere.

    Set ``CROSSFLOW_PROGRESS=0`` to silence all bars (tests do)."""
    from tqdm.auto import tqdm

    kwargs.setdefault("disable", os.environ.get("CROSSFLOW_PROGRESS", "1") == "0")
    kwargs.setdefault("mininterval", 0.5)
    return tqdm(iterable, **kwargs)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the same folder; on success it is renamed onto ``path`` in one step.

    A crash midway leaves the old file (or nothing) in place, never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)

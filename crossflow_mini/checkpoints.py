"""Checkpoints: safetensors weights + a JSON config, keyed by a hash of the config. No pickle anywhere.

A checkpoint is a folder ``<name>/`` holding

* ``model.safetensors`` - the weights; its metadata repeats the config hash and kind, so the two files can be
  checked against each other;
* ``config.json`` - ``{"name", "kind", "config", "config_hash", "format", "metrics", "command"}``, readable by
  people (``metrics`` are the numbers measured on these weights, ``command`` rebuilds them).

Shipped checkpoints live in ``data/checkpoints/<name>/``; checkpoints trained on the fly (a ``smoke`` run, or a
config you changed) go to ``data/cache/checkpoints/<name>-<hash>/``. :func:`load_or_train` looks in both, in
that order, and trains only when neither holds weights for exactly this config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .configs import config_hash, to_dict
from .paths import CHECKPOINT_DIR, cache_dir
from .utils import atomic_path, atomic_write_text

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


class CheckpointError(RuntimeError):
    """Base class for checkpoint problems; the message always says what to do."""


class CheckpointNotFoundError(CheckpointError):
    pass


class CheckpointMismatchError(CheckpointError):
    pass


def rebuild_command(name: str) -> str:
    return f"python -m crossflow_mini train {name}"


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Human-readable differences between two ``to_dict`` trees."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            key = f"{prefix}.{k}" if prefix else k
            if k not in a:
                out.append(f"{key}: missing in the checkpoint")
            elif k not in b:
                out.append(f"{key}: unknown to the code")
            else:
                out += _diff(a[k], b[k], key)
        return out
    return [] if a == b else [f"{prefix}: checkpoint has {a!r}, code asks for {b!r}"]


def save_checkpoint(directory: str | Path, state_dict: dict[str, torch.Tensor], cfg: Any, *, name: str,
                    kind: str, metrics: dict[str, Any] | None = None, dtype: torch.dtype | None = None) -> Path:
    """Write ``state_dict`` and ``cfg`` (a dataclass) to ``directory`` atomically; return the folder.

    ``dtype`` (e.g. ``torch.float16``) casts floating-point tensors to keep shipped files small."""
    directory = Path(directory)
    tensors = {}
    for k, v in state_dict.items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        tensors[k] = v.contiguous().clone()
    h = config_hash(cfg)
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"config_hash": h, "kind": kind, "name": name,
                                                "format": str(FORMAT_VERSION)})
    meta = {"name": name, "kind": kind, "format": FORMAT_VERSION, "config_hash": h, "config": to_dict(cfg),
            "metrics": metrics or {}, "command": rebuild_command(name)}
    atomic_write_text(directory / CONFIG_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return directory


def read_meta(directory: str | Path) -> dict[str, Any]:
    """The ``config.json`` of a checkpoint folder."""
    path = Path(directory) / CONFIG_FILE
    if not path.exists():
        raise CheckpointNotFoundError(f"no checkpoint config at {path}")
    return json.loads(path.read_text())


def update_metrics(directory: str | Path, metrics: dict[str, Any]) -> None:
    """Merge ``metrics`` into a checkpoint's ``config.json`` (atomically)."""
    directory = Path(directory)
    meta = read_meta(directory)
    meta["metrics"] = {**meta.get("metrics", {}), **metrics}
    atomic_write_text(directory / CONFIG_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n")


def load_checkpoint(directory: str | Path, cfg: Any, *, name: str | None = None,
                    kind: str | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load weights written by :func:`save_checkpoint`, refusing any that were built from another config.

    Returns ``(state_dict, meta)``. Raises :class:`CheckpointNotFoundError` or :class:`CheckpointMismatchError`
    with the command that rebuilds the checkpoint."""
    directory = Path(directory)
    name = name or directory.name
    weights = directory / WEIGHTS_FILE
    if not weights.exists():
        raise CheckpointNotFoundError(
            f"no checkpoint {name!r} at {directory}: build it with `{rebuild_command(name)}`")
    meta = read_meta(directory)
    if kind is not None and meta.get("kind") != kind:
        raise CheckpointMismatchError(
            f"checkpoint {name!r} holds a {meta.get('kind')!r}, not a {kind!r}; rebuild it with "
            f"`{rebuild_command(name)}`")
    if meta.get("format") != FORMAT_VERSION:
        raise CheckpointMismatchError(
            f"checkpoint {name!r} has file format {meta.get('format')}, the code reads {FORMAT_VERSION}; "
            f"rebuild it with `{rebuild_command(name)}`")
    wanted = to_dict(cfg)
    if meta.get("config") != wanted or meta.get("config_hash") != config_hash(cfg):
        diff = _diff(meta.get("config"), wanted)[:8]
        raise CheckpointMismatchError(
            f"checkpoint {name!r} at {directory} was built from a different config than the code asks for:\n  "
            + "\n  ".join(diff or ["(config hash differs)"])
            + f"\nRebuild it with `{rebuild_command(name)}` (or use the config it was built with).")
    state = load_file(str(weights))  # safetensors: plain tensors, no code execution
    with safe_open(str(weights), framework="pt") as fh:  # header metadata must agree with config.json
        header_meta = fh.metadata() or {}
    if header_meta.get("config_hash") != meta["config_hash"]:
        raise CheckpointMismatchError(
            f"checkpoint {name!r}: {WEIGHTS_FILE} and {CONFIG_FILE} disagree (an interrupted copy?); "
            f"rebuild it with `{rebuild_command(name)}`")
    return state, meta


def shipped_dir(name: str) -> Path:
    return CHECKPOINT_DIR / name


def cached_dir(name: str, cfg: Any) -> Path:
    return cache_dir() / "checkpoints" / f"{name}-{config_hash(cfg)}"


def run_dir(name: str, cfg: Any) -> Path:
    """Where the resumable training state of recipe ``name`` with config ``cfg`` lives (``data/cache/runs``)."""
    return cache_dir() / "runs" / f"{name}-{config_hash(cfg)}"


def load_or_train(name: str, cfg: Any, build: Callable[[Any], torch.nn.Module],
                  train: Callable[[Any], tuple[torch.nn.Module, dict[str, Any]]], *,
                  allow_train: bool = True, force_train: bool = False,
                  output_dir: Path | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Return ``(model, meta)`` for recipe ``name`` with config ``cfg``.

    Looks for weights built from exactly ``cfg`` in ``data/checkpoints/<name>`` and then in the cache; if there
    are none (or ``force_train``), calls ``train(cfg) -> (model, metrics)`` and saves the result to
    ``output_dir`` (default: the cache). ``allow_train=False`` turns "none found" into a clear error instead."""
    if not force_train:
        mismatch: CheckpointMismatchError | None = None
        for directory in (shipped_dir(name), cached_dir(name, cfg)):
            if not (directory / WEIGHTS_FILE).exists():
                continue
            try:
                state, meta = load_checkpoint(directory, cfg, name=name)
            except CheckpointMismatchError as err:
                mismatch = mismatch or err
                continue
            model = build(cfg)
            model.load_state_dict(state)  # copies (and casts, for fp16 files) into the fp32 parameters
            model.eval()
            return model, meta
        if not allow_train:
            if mismatch is not None:
                raise mismatch
            raise CheckpointNotFoundError(
                f"no checkpoint {name!r} for this config in {shipped_dir(name)} or the cache, and this profile does "
                f"not train on the fly: build it with `{rebuild_command(name)}`")
    out = Path(output_dir) if output_dir is not None else cached_dir(name, cfg)
    model, metrics = train(cfg)
    kind = type(model).__name__
    save_checkpoint(out, model.state_dict(), cfg, name=name, kind=kind, metrics=metrics)
    model.eval()
    return model, read_meta(out)


__all__ = ["CheckpointError", "CheckpointNotFoundError", "CheckpointMismatchError", "save_checkpoint",
           "load_checkpoint", "read_meta", "update_metrics", "load_or_train", "shipped_dir", "cached_dir",
           "rebuild_command", "run_dir"]

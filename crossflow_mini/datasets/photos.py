"""Real photographs cut into patches, for super-resolution later on.

The photos are the samples that scikit-image and matplotlib ship inside their packages (read from disk,
nothing downloaded). Train and test patches come from *different* photos, so a test score never sees a
training photo.
"""

from __future__ import annotations

from dataclasses import dataclass

import functools
from pathlib import Path

import numpy as np
import torch



@dataclass(frozen=True)
class PhotoDataConfig:
    """Patches cut from the real photographs that scikit-image ships."""

    patch_size: int = 64
    stride: int = 32

#: RGB photographs shipped with scikit-image (skimage/data) and matplotlib (mpl-data/sample_data).
TRAIN_PHOTOS: tuple[str, ...] = ("skimage:astronaut.png", "skimage:chelsea.png", "skimage:rocket.jpg",
                                 "skimage:motorcycle_left.png", "skimage:hubble_deep_field.jpg",
                                 "skimage:ihc.png")
TEST_PHOTOS: tuple[str, ...] = ("skimage:coffee.png", "skimage:motorcycle_right.png", "matplotlib:grace_hopper.jpg")
SPLITS = ("train", "test")


def _photo_path(ref: str) -> Path:
    package, name = ref.split(":", 1)
    if package == "skimage":
        import skimage

        return Path(skimage.__file__).parent / "data" / name
    if package == "matplotlib":
        import matplotlib

        return Path(matplotlib.get_data_path()) / "sample_data" / name
    raise ValueError(f"unknown photo source {package!r}")


@functools.lru_cache(maxsize=16)
def load_photo(ref: str) -> np.ndarray:
    """One shipped photo as ``uint8 (H, W, 3)``."""
    from skimage.io import imread

    path = _photo_path(ref)
    if not path.exists():
        raise FileNotFoundError(f"photo {ref} is not at {path}; reinstall scikit-image / matplotlib "
                                f"(`pip install --force-reinstall scikit-image matplotlib`)")
    img = imread(path)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


def photo_patches(split: str, cfg: PhotoDataConfig = PhotoDataConfig()) -> torch.Tensor:
    """All ``cfg.patch_size`` square patches (stride ``cfg.stride``) of the split's photos, ``(N, 3, P, P)`` in
    [-1, 1]."""
    if split not in SPLITS:
        raise ValueError(f"unknown photo split {split!r}; choose one of {', '.join(SPLITS)}")
    if cfg.patch_size < 1 or cfg.stride < 1:
        raise ValueError("patch_size and stride must be positive")
    out = []
    for ref in TRAIN_PHOTOS if split == "train" else TEST_PHOTOS:
        img = torch.from_numpy(load_photo(ref)).permute(2, 0, 1).float().div(127.5).sub(1.0)
        patches = img.unfold(1, cfg.patch_size, cfg.stride).unfold(2, cfg.patch_size, cfg.stride)
        out.append(patches.permute(1, 2, 0, 3, 4).reshape(-1, 3, cfg.patch_size, cfg.patch_size))
    return torch.cat(out)

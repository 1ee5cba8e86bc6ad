"""Real photographs, split by photograph, for super-resolution (notebook 10).

The photos are the samples that scikit-image (``skimage/data``) and matplotlib (``mpl-data/sample_data``) ship
inside their packages: read from disk, nothing downloaded (``skimage.data`` functions that fetch files - eagle,
lily, kidney, skin, cells3d, brain, ... - are never called). Every image file the two packages ship was looked
at; the usable ones are RGB photographs of natural scenes, and each *scene* goes to exactly one split, so a
validation or test score never sees a pixel of a training scene:

=======  ======================================================================================  ======
split    photos                                                                                  scenes
=======  ======================================================================================  ======
train    astronaut (512 x 512), rocket (427 x 640, JPEG), motorcycle_left (500 x 741),             6
         hubble_deep_field (872 x 1000, JPEG), ihc (512 x 512, microscopy), retina (1411 x 1411,
         JPEG, fundus photo)
val      chelsea (300 x 451, a cat)                                                                1
test     coffee (400 x 600), grace_hopper (600 x 512, matplotlib, JPEG)                            2
=======  ======================================================================================  ======

:func:`photo_counts` returns these counts. Left out, with the reason (:data:`EXCLUDED_PHOTOS`):
``motorcycle_right`` is the other half of the Middlebury stereo pair - the same scene as ``motorcycle_left``
seen a few centimetres to the side, so in another split it would leak the training scene and in the same split
it would only add a near-copy; grey-scale photographs (camera, coins, moon, grass, gravel, brick, clock_motion,
cell, text, page, lfw_subset faces) have no colour to learn; synthetic pictures (color wheel, phantom,
chessboards, horse silhouette, logos, gift box) are not natural images; a few files are too small for a patch
(multipage tiffs, a 25 x 14 animated gif, microaneurysms at 102 x 102 grey).

Nine scenes is small. The patches are many - the non-overlapping 32-pixel grid holds 3,890 training, 126
validation and 504 test patches (2,417 / 124 / 417 once near-flat ones are dropped, as
:mod:`crossflow_mini.datasets.superres` does), and random crops give far more - but they all come from nine
pictures: a test score measures how well a model generalises to *two unseen photographs*, which the notebook
says beside every number.

Behaviour change (notebook 10): ``TRAIN_PHOTOS`` and ``TEST_PHOTOS`` used to be six and three files with the
stereo pair split between them (``motorcycle_left`` in train, ``motorcycle_right`` in test) - a leak. Now
``motorcycle_right`` is out, ``chelsea`` moved to the validation split (:data:`VAL_PHOTOS`), and ``retina`` joined
the training photos. :func:`photo_patches` still serves ``train`` and ``test`` only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


@dataclass(frozen=True)
class PhotoDataConfig:
    """Patches cut from the real photographs that scikit-image and matplotlib ship (a fixed grid)."""

    patch_size: int = 64
    stride: int = 32


#: RGB photographs shipped with scikit-image (skimage/data) and matplotlib (mpl-data/sample_data), by split.
TRAIN_PHOTOS: tuple[str, ...] = ("skimage:astronaut.png", "skimage:rocket.jpg", "skimage:motorcycle_left.png",
                                 "skimage:hubble_deep_field.jpg", "skimage:ihc.png", "skimage:retina.jpg")
VAL_PHOTOS: tuple[str, ...] = ("skimage:chelsea.png",)
TEST_PHOTOS: tuple[str, ...] = ("skimage:coffee.png", "matplotlib:grace_hopper.jpg")
#: The splits :func:`photo_patches` serves (kept as they were); :func:`photo_refs` also knows ``val``.
SPLITS = ("train", "test")
PHOTO_SPLITS = ("train", "val", "test")
_BY_SPLIT: dict[str, tuple[str, ...]] = {"train": TRAIN_PHOTOS, "val": VAL_PHOTOS, "test": TEST_PHOTOS}

#: Every other image file the two packages ship, and why it is not used.
EXCLUDED_PHOTOS: dict[str, str] = {
    "skimage:motorcycle_right.png": "right view of the motorcycle_left stereo pair: same scene (would leak or "
                                    "duplicate)",
    "skimage:camera.png": "grey-scale", "skimage:coins.png": "grey-scale", "skimage:moon.png": "grey-scale",
    "skimage:grass.png": "grey-scale texture", "skimage:gravel.png": "grey-scale texture",
    "skimage:brick.png": "grey-scale texture", "skimage:clock_motion.png": "grey-scale, motion-blurred",
    "skimage:cell.png": "grey-scale microscopy", "skimage:text.png": "grey-scale text",
    "skimage:page.png": "grey-scale scanned page", "skimage:lfw_subset.npy": "grey-scale 25 x 25 faces",
    "skimage:microaneurysms.png": "grey-scale, 102 x 102",
    "skimage:color.png": "synthetic colour wheel", "skimage:phantom.png": "synthetic Shepp-Logan phantom",
    "skimage:chessboard_RGB.png": "synthetic", "skimage:chessboard_GRAY.png": "synthetic, grey-scale",
    "skimage:horse.png": "binary silhouette", "skimage:logo.png": "logo (synthetic, RGBA)",
    "skimage:multipage.tif": "10 x 15 test file", "skimage:multipage_rgb.tif": "10 x 10 test file",
    "skimage:no_time_for_that_tiny.gif": "25 x 14 animation frames",
    "matplotlib:Minduka_Present_Blue_Pack.png": "clip-art gift box (RGBA)",
    "matplotlib:logo2.png": "logo (synthetic)",
}
#: Files that show one scene; a split holds all files of a scene or none (here only the stereo pair).
SAME_SCENE: tuple[tuple[str, ...], ...] = (("skimage:motorcycle_left.png", "skimage:motorcycle_right.png"),)


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


@functools.lru_cache(maxsize=16)
def photo_tensor(ref: str) -> torch.Tensor:
    """One shipped photo as ``float32 (3, H, W)`` in [-1, 1] (cached: treat it as read-only)."""
    return torch.from_numpy(load_photo(ref)).permute(2, 0, 1).float().div(127.5).sub(1.0).contiguous()


def photo_refs(split: str) -> tuple[str, ...]:
    """The photos of ``train``, ``val`` or ``test`` (``"package:file"`` references)."""
    if split not in _BY_SPLIT:
        raise ValueError(f"unknown photo split {split!r}; choose one of {', '.join(PHOTO_SPLITS)}")
    return _BY_SPLIT[split]


def photo_counts() -> dict[str, int]:
    """How many distinct photographs (scenes) each split holds: ``{"train": 6, "val": 1, "test": 2}``."""
    return {split: len(refs) for split, refs in _BY_SPLIT.items()}


def photo_patches(split: str, cfg: PhotoDataConfig = PhotoDataConfig()) -> torch.Tensor:
    """All ``cfg.patch_size`` square patches (stride ``cfg.stride``) of the split's photos, ``(N, 3, P, P)`` in
    [-1, 1]."""
    if split not in SPLITS:
        raise ValueError(f"unknown photo split {split!r}; choose one of {', '.join(SPLITS)} (the validation photo "
                         f"is served by photo_refs('val') and crossflow_mini.datasets.superres.load_sr('val'))")
    if cfg.patch_size < 1 or cfg.stride < 1:
        raise ValueError("patch_size and stride must be positive")
    out = []
    for ref in photo_refs(split):
        img = photo_tensor(ref)
        patches = img.unfold(1, cfg.patch_size, cfg.stride).unfold(2, cfg.patch_size, cfg.stride)
        out.append(patches.permute(1, 2, 0, 3, 4).reshape(-1, 3, cfg.patch_size, cfg.patch_size))
    return torch.cat(out)

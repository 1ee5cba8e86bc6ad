"""Super-resolution pairs: a high-resolution (HR) image, its 4x smaller low-resolution (LR) version, and the
CrossFlow *source* made from it.

The paper (Table 6; docs/METHOD.md Sec. 7) does 4x super-resolution on ImageNet, 64 -> 256, and its
source is **the bicubic upsampling of the LR image** - no concatenated conditioning: the flow starts at the blurry
picture and ends at the sharp one. Here the HR image is a 32 x 32 patch (64 x 64 as an option), the LR image is
8 x 8 (16 x 16), and the flow runs between two tensors of the same shape ``(C, H, W)``:

    lr        = clamp(downsample(hr), -1, 1)                                (C, H/4, W/4)
    upsampled = clamp(F.interpolate(lr, (H, W), "bicubic", align_corners=False), -1, 1)     (C, H, W)
    flow:       x_0 = upsampled (or the source encoder's latent of it)  ->  x_1 = hr

**The degradation is anti-aliased bicubic downsampling** (``F.interpolate(..., mode="bicubic",
antialias=True)``): every LR pixel is a weighted mean of the HR pixels under a bicubic kernel stretched 4x, so
detail finer than the LR grid can hold (periods under 8 HR pixels) is averaged away instead of folding back as
false coarse patterns (aliasing, moire). Why this one: it is the usual "bicubic degradation" of the
super-resolution literature (MATLAB ``imresize``; PIL's ``BICUBIC`` resize, which torch's ``antialias=True``
matches when downsampling, per torch's documentation; the paper does not say how it made its LR
images), and its stop band is much cleaner than a 4 x 4 box average's: a stripe pattern of period 3 pixels
keeps about 7 % of its amplitude after bicubic, 25 % after the box (the box's sinc side lobe).
``downsample="area"`` (4 x 4 box average, what a sensor with 4x larger pixels records) is the simple
alternative. Plain subsampling ``hr[..., ::4, ::4]`` - or ``F.interpolate`` without ``antialias`` - keeps one
pixel in 16 and aliases; tests check that we do not.

Two data sets:

* ``"photos"`` - RGB patches of the photographs in :mod:`crossflow_mini.datasets.photos`, split by photograph
  (6 training, 1 validation, 2 test photos: :func:`photo_counts`). **Training** examples are random crops with a
  random flip / 90-degree rotation (the 8 symmetries of the square: a small patch of a photo has no preferred
  orientation); each photo is drawn equally often (by area the 1411-pixel retina would give half of them).
  **Validation and test** patches are the fixed, non-overlapping grid of the split's photos: 124 / 417 patches
  at 32 pixels, 28 / 119 at 64 (``n_val`` / ``n_test`` thin them evenly). Near-flat patches
  (black sky, the dark rim of the retina) are left out everywhere: their SR is trivial and would inflate PSNR;
  a patch is kept when sqrt(mean over channels of its per-channel variance) >= ``min_patch_std``.
* ``"fashion"`` - Fashion-MNIST (``load_fashion``), 28 x 28 centred on a ``hr_size`` canvas (32: 1 x 32 x 32 ->
  1 x 8 x 8), the same degradation. Training uses the first ``n_train`` training images (augmented by a random
  horizontal flip only: a mirrored coat is still a coat, an upside-down one is not a Fashion-MNIST image),
  validation the first ``n_val`` of the last 5,000 training images (:data:`FASHION_VAL_SIZE`, never trained
  on), test the first ``n_test`` test images.

**Determinism.** Training example ``index`` is a pure function of ``(cfg.seed, index)`` - its own random generator
is seeded by that pair - so a batch is a pure function of the step whatever came before (what the project's
resumable training loop needs): ``train_examples(EpochBatches(cfg.n_train, B, seed)(step), cfg)`` cycles through
``n_train`` fixed crops per epoch, :func:`stream_batch` draws fresh crops at every step.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .fashion import load_fashion, to_tensor
from .photos import photo_counts, photo_refs, photo_tensor

DATASETS = ("photos", "fashion")
SPLITS = ("train", "val", "test")
DOWNSAMPLE_METHODS = ("bicubic", "area")
#: The 8 symmetries of the square: 4 rotations by 90 degrees, each with or without a mirror flip.
N_DIHEDRAL = 8
#: Fashion-MNIST's validation images are the first ``n_val`` of its last 5,000 training images.
FASHION_VAL_SIZE = 5000
FASHION_SIZE = 28
PHOTO_CHANNELS, FASHION_CHANNELS = 3, 1


@dataclass(frozen=True)
class SRDataConfig:
    """4x super-resolution data: which images, how big, how many, and how the low-resolution image is made.

    ``n_train`` is the number of training examples per epoch (photos: random crops; Fashion: distinct images);
    ``n_val`` / ``n_test`` cap the fixed evaluation sets (``None``: every grid patch of the split's photos /
    5,000 Fashion validation images / all 10,000 Fashion test images). ``min_patch_std`` (in [-1, 1] units:
    0.04 is about 5 grey levels out of 255) drops near-flat photo patches; it does not apply to Fashion."""

    dataset: str = "photos"  # "photos" | "fashion"
    hr_size: int = 32  # 64 is the other tested size; the LR image is hr_size // scale
    scale: int = 4
    n_train: int = 4096
    n_val: int | None = None
    n_test: int | None = None
    seed: int = 0
    augment: bool = True  # photos: random flips and 90-degree rotations; Fashion: horizontal flips
    downsample: str = "bicubic"  # "bicubic" (anti-aliased, the default) or "area" (4 x 4 box average)
    min_patch_std: float = 0.04

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown SR dataset {self.dataset!r}; choose one of {', '.join(DATASETS)}")
        if self.downsample not in DOWNSAMPLE_METHODS:
            raise ValueError(f"unknown downsampling {self.downsample!r}; choose one of {', '.join(DOWNSAMPLE_METHODS)}")
        if self.scale < 2 or self.hr_size < self.scale or self.hr_size % self.scale:
            raise ValueError(f"hr_size ({self.hr_size}) must be a multiple of scale ({self.scale} >= 2)")
        if self.dataset == "fashion" and self.hr_size < FASHION_SIZE:
            raise ValueError(f"Fashion-MNIST images are {FASHION_SIZE} pixels: hr_size must be at least that "
                             f"(32 is the house size), got {self.hr_size}")
        if self.n_train < 1:
            raise ValueError(f"n_train must be positive, got {self.n_train}")
        for name in ("n_val", "n_test"):
            n = getattr(self, name)
            if n is not None and n < 1:
                raise ValueError(f"{name} must be positive or None, got {n}")

    @property
    def lr_size(self) -> int:
        return self.hr_size // self.scale

    @property
    def channels(self) -> int:
        return PHOTO_CHANNELS if self.dataset == "photos" else FASHION_CHANNELS


@dataclass
class SRSplit:
    """Super-resolution pairs, all in [-1, 1]: ``hr (N, C, H, W)``, ``lr (N, C, H/s, W/s)`` and the CrossFlow source
    ``upsampled (N, C, H, W)``; ``origin[i]`` says where item ``i`` came from (photo, position, transform)."""

    split: str
    hr: torch.Tensor
    lr: torch.Tensor
    upsampled: torch.Tensor
    origin: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.hr)

    def subset(self, index: Sequence[int] | torch.Tensor) -> "SRSplit":
        """The items at ``index``, as a new :class:`SRSplit`."""
        idx = torch.as_tensor(index, dtype=torch.long)
        return SRSplit(self.split, self.hr[idx], self.lr[idx], self.upsampled[idx],
                       tuple(self.origin[i] for i in idx.tolist()))


# ------------------------------------------------------------------------------------------------- degradation
def downsample(hr: torch.Tensor, scale: int = 4, method: str = "bicubic") -> torch.Tensor:
    """The anti-aliased LR image of ``hr (N, C, H, W)``: ``(N, C, H/scale, W/scale)``, clamped to [-1, 1]
    (bicubic's negative lobes overshoot at edges; an LR image is an image, stored in range)."""
    if hr.ndim != 4 or hr.shape[-1] % scale or hr.shape[-2] % scale:
        raise ValueError(f"expected hr (N, C, H, W) with H and W multiples of {scale}, got {tuple(hr.shape)}")
    if method == "bicubic":
        size = (hr.shape[-2] // scale, hr.shape[-1] // scale)
        lr = F.interpolate(hr, size=size, mode="bicubic", align_corners=False, antialias=True)
    elif method == "area":
        lr = F.avg_pool2d(hr, scale)
    else:
        raise ValueError(f"unknown downsampling {method!r}; choose one of {', '.join(DOWNSAMPLE_METHODS)}")
    return lr.clamp(-1.0, 1.0)


def upsample(lr: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """The CrossFlow source: bicubic upsampling of ``lr`` to ``size`` (``align_corners=False``), clamped to
    [-1, 1]. It is also the "bicubic" baseline of the results table."""
    return F.interpolate(lr, size=size, mode="bicubic", align_corners=False).clamp(-1.0, 1.0)


def make_pairs(hr: torch.Tensor, cfg: SRDataConfig, split: str = "custom",
               origin: Sequence[str] | None = None) -> SRSplit:
    """Degrade HR images ``(N, C, H, W)`` in [-1, 1] as ``cfg`` says and return the pairs."""
    lr = downsample(hr, cfg.scale, cfg.downsample)
    origin = tuple(origin) if origin is not None else tuple(f"{split}/{i}" for i in range(len(hr)))
    return SRSplit(split, hr, lr, upsample(lr, tuple(hr.shape[-2:])), origin)


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Symmetry ``k`` in 0..7 of the square applied to the last two axes: rotate by ``k % 4`` quarter turns, then
    mirror left-right when ``k >= 4``. ``k = 0`` is the identity."""
    if not 0 <= k < N_DIHEDRAL:
        raise ValueError(f"dihedral transform index must be in 0..{N_DIHEDRAL - 1}, got {k}")
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return x.flip(-1) if k >= 4 else x


# -------------------------------------------------------------------------------------------------- photo patches
def patch_std_map(image: torch.Tensor, size: int) -> np.ndarray:
    """For every ``size x size`` window of ``image (C, H, W)``: sqrt(mean over channels of the window's
    per-channel variance), shape ``(H - size + 1, W - size + 1)``, indexed by the window's top-left corner.

    Summed-area tables make it O(H W) whatever the size: a window sum is S[y+P, x+P] - S[y, x+P] - S[y+P, x]
    + S[y, x] where S is the 2-D cumulative sum; variance = E[x^2] - E[x]^2 (in float64)."""
    x = image.double().numpy()
    c, h, w = x.shape
    if size > h or size > w:
        raise ValueError(f"a {size}-pixel patch does not fit in a {h} x {w} image")

    def window_sums(a: np.ndarray) -> np.ndarray:
        s = np.zeros((c, h + 1, w + 1))
        s[:, 1:, 1:] = a.cumsum(1).cumsum(2)
        return s[:, size:, size:] - s[:, :-size, size:] - s[:, size:, :-size] + s[:, :-size, :-size]

    n = size * size
    mean = window_sums(x) / n
    var = window_sums(x * x) / n - mean ** 2
    return np.sqrt(np.clip(var, 0.0, None).mean(0))


@functools.lru_cache(maxsize=32)
def _valid_corners(ref: str, size: int, min_std: float) -> np.ndarray:
    """Flat indices ``y * (W - size + 1) + x`` of the top-left corners of the photo's non-flat patches."""
    ok = np.flatnonzero(patch_std_map(photo_tensor(ref), size) >= min_std)
    if len(ok) == 0:
        raise ValueError(f"no {size}-pixel patch of {ref} passes min_patch_std={min_std}; lower it")
    ok.setflags(write=False)
    return ok


def _photo_train_example(index: int, cfg: SRDataConfig) -> tuple[torch.Tensor, str]:
    rng = np.random.default_rng([cfg.seed, index])
    refs = photo_refs("train")
    ref = refs[int(rng.integers(len(refs)))]
    img = photo_tensor(ref)
    corners = _valid_corners(ref, cfg.hr_size, cfg.min_patch_std)
    y, x = divmod(int(corners[int(rng.integers(len(corners)))]), img.shape[-1] - cfg.hr_size + 1)
    k = int(rng.integers(N_DIHEDRAL)) if cfg.augment else 0
    crop = dihedral(img[:, y:y + cfg.hr_size, x:x + cfg.hr_size], k)
    return crop, f"{ref} y={y} x={x} t={k}"


def _photo_grid(split: str, cfg: SRDataConfig) -> tuple[torch.Tensor, list[str]]:
    """The non-overlapping grid patches of the split's photos that are not near-flat, photo by photo."""
    patches, origin = [], []
    p = cfg.hr_size
    for ref in photo_refs(split):
        img = photo_tensor(ref)
        std = patch_std_map(img, p)
        for y in range(0, img.shape[1] - p + 1, p):
            for x in range(0, img.shape[2] - p + 1, p):
                if std[y, x] >= cfg.min_patch_std:
                    patches.append(img[:, y:y + p, x:x + p])
                    origin.append(f"{ref} y={y} x={x}")
    return torch.stack(patches), origin


def _spread(n_have: int, n: int | None, what: str) -> np.ndarray:
    """``n`` evenly spaced indices out of ``n_have`` (all when ``n`` is None): every photo keeps its share."""
    if n is None:
        return np.arange(n_have)
    if n > n_have:
        raise ValueError(f"only {n_have} {what} exist; lower the count to at most {n_have} (or None for all)")
    return np.linspace(0, n_have - 1, n).round().astype(np.int64)


# ------------------------------------------------------------------------------------------------------ Fashion
def _fashion_train_example(index: int, cfg: SRDataConfig, images: np.ndarray) -> tuple[torch.Tensor, str]:
    i = index % cfg.n_train
    flip = bool(np.random.default_rng([cfg.seed, index]).integers(2)) if cfg.augment else False
    img = to_tensor(images[i:i + 1], cfg.hr_size)[0]
    return (img.flip(-1) if flip else img), f"fashion:train/{i}" + (" flip" if flip else "")


@functools.lru_cache(maxsize=2)
def _fashion_images(split: str) -> np.ndarray:
    """All Fashion-MNIST images of a split, ``uint8 (N, 28, 28)`` (read once; read-only)."""
    return load_fashion(split).images


def _fashion_train_images(cfg: SRDataConfig) -> np.ndarray:
    images = _fashion_images("train")
    usable = len(images) - FASHION_VAL_SIZE
    if cfg.n_train > usable:
        raise ValueError(f"n_train={cfg.n_train} is more than the {usable} Fashion-MNIST training images left "
                         f"beside the {FASHION_VAL_SIZE} validation images; lower it")
    return images[:cfg.n_train]


# -------------------------------------------------------------------------------------------------- public API
def train_examples(indices: Iterable[int] | torch.Tensor, cfg: SRDataConfig = SRDataConfig()) -> SRSplit:
    """Training examples ``indices`` (any non-negative integers): each a pure function of ``(cfg.seed, index)``.

    Photos: a training photo, then a non-flat crop of it, then one of the 8 flips/rotations (identity when
    ``cfg.augment`` is off), all drawn by a generator seeded with ``(cfg.seed, index)``. Fashion: image
    ``index % n_train``, mirrored or not by that generator."""
    idx = [int(i) for i in (indices.tolist() if isinstance(indices, torch.Tensor) else indices)]
    if not idx:
        raise ValueError("train_examples needs at least one index")
    if min(idx) < 0:
        raise ValueError(f"example indices must be non-negative, got {min(idx)}")
    if cfg.dataset == "photos":
        items = [_photo_train_example(i, cfg) for i in idx]
    else:
        images = _fashion_train_images(cfg)
        items = [_fashion_train_example(i, cfg, images) for i in idx]
    return make_pairs(torch.stack([hr for hr, _ in items]), cfg, "train", [o for _, o in items])


def stream_batch(step: int, batch_size: int, cfg: SRDataConfig = SRDataConfig()) -> SRSplit:
    """Batch ``step`` of an endless stream of fresh training examples: indices ``step * batch_size`` up to
    ``(step + 1) * batch_size - 1``, so the batch is a pure function of the step."""
    if step < 0 or batch_size < 1:
        raise ValueError(f"need step >= 0 and batch_size >= 1, got {step} and {batch_size}")
    return train_examples(range(step * batch_size, (step + 1) * batch_size), cfg)


def load_sr(split: str, cfg: SRDataConfig = SRDataConfig()) -> SRSplit:
    """The ``train`` (training examples ``0 .. n_train - 1``), ``val`` or ``test`` super-resolution pairs.

    Evaluation sets are fixed: photos - the non-overlapping, non-flat grid patches of the split's photos (evenly
    thinned to ``n_val`` / ``n_test`` when those are set); Fashion - see the module docstring."""
    if split not in SPLITS:
        raise ValueError(f"unknown SR split {split!r}; choose one of {', '.join(SPLITS)}")
    if split == "train":
        return train_examples(range(cfg.n_train), cfg)
    n = cfg.n_val if split == "val" else cfg.n_test
    if cfg.dataset == "photos":
        patches, origin = _photo_grid(split, cfg)
        keep = _spread(len(patches), n, f"non-flat {cfg.hr_size}-pixel {split} patches")
        return make_pairs(patches[torch.from_numpy(keep)], cfg, split, [origin[i] for i in keep])
    if split == "val":
        images = _fashion_images("train")
        first = len(images) - FASHION_VAL_SIZE
        count = FASHION_VAL_SIZE if n is None else n
        if count > FASHION_VAL_SIZE:
            raise ValueError(f"only {FASHION_VAL_SIZE} Fashion-MNIST validation images exist; lower n_val")
        rows, names = images[first:first + count], [f"fashion:train/{first + i}" for i in range(count)]
    else:
        rows = _fashion_images("test")[:n]
        names = [f"fashion:test/{i}" for i in range(len(rows))]
    return make_pairs(to_tensor(rows, cfg.hr_size), cfg, split, names)


__all__ = ["SRDataConfig", "SRSplit", "load_sr", "train_examples", "stream_batch", "make_pairs", "downsample",
           "upsample", "dihedral", "patch_std_map", "photo_counts", "DATASETS", "SPLITS", "DOWNSAMPLE_METHODS",
           "FASHION_VAL_SIZE"]

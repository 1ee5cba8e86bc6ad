"""The real zero-shot depth check: the Middlebury 2014 "Motorcycle" stereo pair that scikit-image ships.

``skimage.data.stereo_motorcycle()`` gives the rectified left and right images (500 x 741, a 4x down-sampled
version of the benchmark images) and the ground-truth disparity of the LEFT image. The files
(``motorcycle_left.png``, ``motorcycle_disp.npz``) are inside the scikit-image package; :func:`load_motorcycle`
reads them from there, so nothing is ever downloaded.

Disparity and depth
-------------------
For a rectified pair with focal length ``f`` (pixels) and baseline ``B``, a point at depth ``Z`` (along the
optical axis, the same z-depth as :mod:`~crossflow_mini.datasets.depthworld`) appears ``f B / Z`` pixels further
left in the right image: disparity is proportional to inverse depth. Middlebury's rectified images keep the two
cameras' own principal points, which differ by ``doffs`` pixels, so the stored disparity is
``d = f B / Z - doffs``, i.e. ``Z = f B / (d + doffs)`` (Middlebury 2014 README) - still an *affine* function of
inverse depth. :class:`StereoCalibration` holds the numbers that scikit-image documents for its down-sampled
images (f = 994.978 px, B = 193.001 mm, doffs = 31.086 px); :attr:`StereoSample.depth` applies them.

Invalid pixels: the ground truth has holes (occlusions, the image border, unmatched pixels) - about 7 % of the
pixels. scikit-image's docstring says they are NaN; in the shipped file they are ``+inf`` (checked here). Both
count as invalid (as would any non-positive value): :attr:`StereoSample.valid` is the mask, and the disparity
stored in a :class:`StereoSample` is NaN there.

Evaluation (see :mod:`crossflow_mini.eval.depth`): a model trained on DepthWorld knows nothing about this
camera's scale, so - as Marigold and the paper's zero-shot Table 9 do for affine-invariant predictions - its
prediction is aligned to the ground truth by a least-squares scale and shift *in inverse depth* over the valid
pixels (``depth_metrics(pred, gt, mask, align="inverse")``), which also absorbs the ``doffs`` offset above.

Model-sized input: :func:`model_input` cuts a square (by default the centre one) whose side is a multiple of the
model size and area-averages blocks: the image by the mean of each block, the disparity by the mean over the
VALID pixels of each block (disparity is affine in inverse depth, so this averages inverse depth), a block being
valid when at least :data:`MIN_VALID_FRACTION` of its pixels are.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

#: Files of the pair inside the scikit-image package (skimage/data).
LEFT_IMAGE_FILE = "motorcycle_left.png"
DISPARITY_FILE = "motorcycle_disp.npz"
FULL_SHAPE = (500, 741)  # (H, W) of the shipped images
MIN_VALID_FRACTION = 0.75  # a down-sampled pixel is valid when this share of its block has ground truth
MIN_MODEL_SIZE = 8


@dataclass(frozen=True)
class StereoCalibration:
    """Rectified stereo geometry: ``Z = focal_px * baseline_m / (disparity + doffs_px)`` (metres)."""

    focal_px: float
    baseline_m: float
    doffs_px: float  # x-difference of the two principal points (Middlebury's "doffs")

    def depth_from_disparity(self, disparity: np.ndarray) -> np.ndarray:
        """Depth in metres (NaN where the disparity is NaN)."""
        return (self.focal_px * self.baseline_m / (np.asarray(disparity, dtype=np.float64) + self.doffs_px)
                ).astype(np.float32)

    def disparity_from_depth(self, depth: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`depth_from_disparity`."""
        return (self.focal_px * self.baseline_m / np.asarray(depth, dtype=np.float64) - self.doffs_px
                ).astype(np.float32)

    def scaled(self, factor: float) -> "StereoCalibration":
        """The calibration of the image resized by ``factor`` (pixel lengths scale, the baseline does not)."""
        return StereoCalibration(self.focal_px * factor, self.baseline_m, self.doffs_px * factor)


#: scikit-image's documented calibration of its 4x down-sampled Motorcycle images.
MOTORCYCLE_CALIBRATION = StereoCalibration(focal_px=994.978, baseline_m=0.193001, doffs_px=31.086)


@dataclass
class StereoSample:
    """A left image with its ground-truth disparity (in this image's pixels; NaN where invalid)."""

    image: np.ndarray  # uint8 (H, W, 3)
    disparity: np.ndarray  # float32 (H, W), NaN where invalid
    valid: np.ndarray  # bool (H, W)
    calibration: StereoCalibration

    @property
    def depth(self) -> np.ndarray:
        """Ground-truth z-depth in metres, float32 (H, W), NaN where invalid."""
        return self.calibration.depth_from_disparity(self.disparity)

    def image_tensor(self) -> torch.Tensor:
        """The image as float32 ``(1, 3, H, W)`` in ``[-1, 1]`` (a batch of one, like a DepthWorld batch)."""
        scaled = self.image.astype(np.float32) / 127.5 - 1.0
        return torch.from_numpy(np.ascontiguousarray(np.moveaxis(scaled, -1, 0)))[None]

    def depth_tensor(self) -> torch.Tensor:
        """Ground-truth depth as float32 ``(1, 1, H, W)`` in metres, NaN where invalid."""
        return torch.from_numpy(np.array(self.depth, dtype=np.float32))[None, None]

    def valid_tensor(self) -> torch.Tensor:
        """The validity mask as bool ``(1, 1, H, W)``."""
        return torch.from_numpy(np.array(self.valid))[None, None]


def _data_path(name: str) -> Path:
    import skimage

    path = Path(skimage.__file__).parent / "data" / name
    if not path.exists():
        raise FileNotFoundError(f"{name} is not at {path}; it ships inside scikit-image >= 0.22 - reinstall it "
                                "(`pip install --force-reinstall scikit-image`)")
    return path


def _freeze(sample: StereoSample) -> StereoSample:
    for a in (sample.image, sample.disparity, sample.valid):
        a.flags.writeable = False
    return sample


@functools.lru_cache(maxsize=1)
def load_motorcycle() -> StereoSample:
    """The full-size left image (500 x 741) and its ground truth, read offline; cached, arrays read-only.

    Same data as ``skimage.data.stereo_motorcycle()[0]`` and ``[2]``, except that invalid disparities
    (``inf`` in the file) become NaN and are flagged in ``valid``."""
    from skimage.io import imread

    image = np.ascontiguousarray(imread(_data_path(LEFT_IMAGE_FILE))[..., :3]).astype(np.uint8)
    with np.load(_data_path(DISPARITY_FILE)) as data:
        raw = data["arr_0"].astype(np.float32)
    if raw.shape != image.shape[:2]:
        raise ValueError(f"disparity {raw.shape} and image {image.shape[:2]} differ; the scikit-image data files "
                         "look damaged - reinstall scikit-image")
    valid = np.isfinite(raw) & (raw > 0)
    return _freeze(StereoSample(image, np.where(valid, raw, np.nan).astype(np.float32), valid,
                                MOTORCYCLE_CALIBRATION))


def crop_box(shape: tuple[int, int], size: int, top: int | None = None, left: int | None = None
             ) -> tuple[int, int, int]:
    """``(top, left, side)`` of the square cut for a ``size`` x ``size`` input: the largest multiple of ``size``
    that fits; centred unless ``top`` / ``left`` are given."""
    if not isinstance(size, (int, np.integer)) or size < MIN_MODEL_SIZE:
        raise ValueError(f"size must be an integer >= {MIN_MODEL_SIZE}, got {size!r}")
    height, width = shape
    factor = min(height, width) // size
    if factor < 1:
        raise ValueError(f"an image of {height} x {width} is smaller than the requested {size} x {size}")
    side = factor * size
    top = (height - side) // 2 if top is None else top
    left = (width - side) // 2 if left is None else left
    if not (0 <= top <= height - side and 0 <= left <= width - side):
        raise ValueError(f"a {side}-pixel square at (top={top}, left={left}) does not fit in {height} x {width}; "
                         f"top must be in 0..{height - side} and left in 0..{width - side}")
    return top, left, side


def model_input(size: int = 32, sample: StereoSample | None = None, top: int | None = None,
                left: int | None = None) -> StereoSample:
    """A ``size`` x ``size`` version of ``sample`` (default: the Motorcycle) for a model trained at that size.

    Cuts the square :func:`crop_box` (centre by default; 480 px at size 32, 448 px at 64), then averages
    ``k x k`` blocks (k = side / size): the image over all pixels, the disparity over the valid pixels; a block
    is valid if at least MIN_VALID_FRACTION of it is. The disparity is rescaled to the small image's pixels
    (divided by k) and so is the calibration, so :attr:`StereoSample.depth` stays in metres."""
    sample = load_motorcycle() if sample is None else sample
    top, left, side = crop_box(sample.valid.shape, size, top, left)
    k = side // size
    window = (slice(top, top + side), slice(left, left + side))

    def blocks(a: np.ndarray) -> np.ndarray:
        return a.reshape(size, k, size, k, *a.shape[2:])

    image = np.rint(blocks(sample.image[window].astype(np.float64)).mean(axis=(1, 3))).astype(np.uint8)
    valid_full = sample.valid[window]
    disparity_sum = blocks(np.where(valid_full, sample.disparity[window], 0.0).astype(np.float64)).sum(axis=(1, 3))
    count = blocks(valid_full).sum(axis=(1, 3))
    valid = count >= MIN_VALID_FRACTION * k * k
    disparity = np.where(valid, disparity_sum / np.maximum(count, 1) / k, np.nan).astype(np.float32)
    return _freeze(StereoSample(image, disparity, valid, sample.calibration.scaled(1.0 / k)))


__all__ = ["StereoCalibration", "StereoSample", "MOTORCYCLE_CALIBRATION", "MIN_VALID_FRACTION", "load_motorcycle",
           "crop_box", "model_input"]

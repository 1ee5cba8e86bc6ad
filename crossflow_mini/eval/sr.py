"""Super-resolution metrics (paper Table 6): PSNR and SSIM against the ground truth, FID and KID against real
patches, each distribution score with its real-vs-real floor beside it.

**Fidelity: PSNR and SSIM** (torchmetrics' functional implementations). Images in [-1, 1] are clamped and mapped to
[0, 1] (``(x + 1) / 2``, as a saved image would be), so the data range is 1:

    PSNR = 10 log10(1 / MSE),   MSE = mean over the image's C x H x W values of (pred - hr)^2

    SSIM = mean over the image of  (2 mu_p mu_h + c1)(2 s_ph + c2) / ((mu_p^2 + mu_h^2 + c1)(s_p^2 + s_h^2 + c2))

with local means / (co)variances under an 11 x 11 Gaussian window (sigma 1.5), c1 = (0.01)^2, c2 = (0.03)^2
(Wang et al., 2004; torchmetrics' defaults); colour images are scored per channel and averaged, on RGB (no
conversion to luma, no border crop, no 8-bit rounding: the paper does not say, and our patches are too small
to crop). **Both are computed per image and then averaged over the images** - the convention of SR papers; a
PSNR of the pooled MSE would let a few bad images dominate. Identical images have MSE 0, so PSNR = +inf.

**Realism: FID and KID** on the Inception features of :mod:`crossflow_mini.eval.fid` (the same offline network,
loaded once; the features of a set are computed once and feed both scores). A model that copies the ground
truth perfectly should score exactly the real-vs-real floor, and no better, so we compare **across halves**:
the test patches are split (seeded, at random) into two disjoint halves A and B of the same size m,

    floor = FID(hr_A, hr_B)          score = ( FID(pred_A, hr_B) + FID(pred_B, hr_A) ) / 2

(KID alike). pred_A are the super-resolved versions of hr_A, so ``pred = hr`` gives ``score = floor`` and the
gap above the floor is what super-resolution lost. (FID(pred, hr) on the same images would go to 0 for a
perfect model, below any two real sets.) FID is biased upward for small sets - ours has m in the hundreds, the
paper 50,000 ImageNet images - so only the gap to the floor means anything, never the absolute value.
KID (Binkowski et al., 2018) is the unbiased squared MMD with the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3, averaged over random subsets (torchmetrics' ``KernelInceptionDistance``, subsets of
min(1000, m) images, seeded); unlike FID it is unbiased for small sets, so it may come out slightly negative.

The paper's numbers (:data:`PAPER_TABLE6`) are quoted as the paper's, for ImageNet 64 -> 256; IS is quoted but not
measured here (the Inception network shipped for FID gives pool features, not class logits).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .fid import FEATURES, inception

if TYPE_CHECKING:
    from ..datasets.superres import SRSplit

#: The paper's Table 6 (ImageNet 64 x 64 -> 256 x 256), quoted: FID / IS (lower / higher is better) and PSNR (dB) /
#: SSIM (higher is better). Not measured here.
PAPER_TABLE6: dict[str, dict[str, float]] = {
    "CrossFlow": {"fid": 3.0, "is": 207.2, "psnr": 25.6, "ssim": 0.764},
    "standard flow matching": {"fid": 3.4, "is": 200.8, "psnr": 24.7, "ssim": 0.747},
    "SR3": {"fid": 5.2, "is": 180.1, "psnr": 26.4, "ssim": 0.762},
    "regression": {"fid": 15.2, "is": 121.1, "psnr": 27.9, "ssim": 0.801},
}
PAPER_TABLE6_SETTING = "ImageNet 64 x 64 -> 256 x 256 (4x); the paper's Table 6, quoted, not measured here"

DATA_RANGE = 1.0  # images are scored in [0, 1]
SSIM_KERNEL_SIZE = 11  # Gaussian window of SSIM (Wang et al., 2004)
SSIM_SIGMA = 1.5
KID_SUBSETS = 100  # torchmetrics' default number of random subsets
KID_SUBSET_SIZE = 1000  # torchmetrics' default subset size; capped at the half-set size
MIN_FID_IMAGES = 4  # two halves of at least 2 images each (a covariance needs 2 samples)
INCEPTION_BATCH = 50


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped (what saving the image would do), float32."""
    return ((x.float() + 1.0) / 2.0).clamp(0.0, 1.0)


def _check_pair(pred: torch.Tensor, hr: torch.Tensor) -> None:
    if pred.ndim != 4 or pred.shape != hr.shape:
        raise ValueError(f"pred and hr must both be (N, C, H, W) of one shape, got {tuple(pred.shape)} and "
                         f"{tuple(hr.shape)}")


def psnr_per_image(pred: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of each image, ``(N,)``: 10 log10(1 / MSE) on [0, 1] images (+inf where identical)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    _check_pair(pred, hr)
    return peak_signal_noise_ratio(to_unit(pred), to_unit(hr), data_range=DATA_RANGE, reduction="none",
                                   dim=(1, 2, 3))


def ssim_per_image(pred: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """SSIM of each image, ``(N,)``, on [0, 1] images with an 11 x 11 Gaussian window (1 where identical)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    _check_pair(pred, hr)
    if min(hr.shape[-2:]) < SSIM_KERNEL_SIZE:
        raise ValueError(f"SSIM's {SSIM_KERNEL_SIZE}-pixel window needs images at least that big, got "
                         f"{tuple(hr.shape[-2:])}")
    return structural_similarity_index_measure(to_unit(pred), to_unit(hr), data_range=DATA_RANGE,
                                               kernel_size=SSIM_KERNEL_SIZE, sigma=SSIM_SIGMA, reduction="none")


def psnr_ssim(pred: torch.Tensor, hr: torch.Tensor) -> dict[str, float]:
    """``{"psnr", "ssim", "n_images"}``: the per-image PSNR (dB) and SSIM, averaged over the images."""
    return {"psnr": float(psnr_per_image(pred, hr).mean()), "ssim": float(ssim_per_image(pred, hr).mean()),
            "n_images": len(hr)}


# ------------------------------------------------------------------------------------------------- FID and KID
def inception_features(images: torch.Tensor, batch_size: int = INCEPTION_BATCH) -> torch.Tensor:
    """Inception pool features ``(N, 2048)`` of images ``(N, C, H, W)`` in [-1, 1] (the network of ``eval.fid``)."""
    net = inception()
    return torch.cat([net(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])


class _GivenFeatures(nn.Module):
    """Lets torchmetrics' FID / KID take features computed once instead of images (their ``feature`` module)."""

    num_features = FEATURES

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 2 or features.shape[1] != FEATURES:
            raise ValueError(f"expected Inception features (N, {FEATURES}), got {tuple(features.shape)}")
        return features


def fid_from_features(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two sets of Inception features (torchmetrics' ``FrechetInceptionDistance``)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    if len(real) < 2 or len(fake) < 2:
        raise ValueError(f"FID needs at least 2 images per set, got {len(real)} and {len(fake)}")
    metric = FrechetInceptionDistance(feature=_GivenFeatures())
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return float(metric.compute())


def kid_from_features(real: torch.Tensor, fake: torch.Tensor, seed: int = 0) -> tuple[float, float]:
    """KID (mean, std over subsets) between two sets of Inception features (torchmetrics'
    ``KernelInceptionDistance``); subsets of ``min(KID_SUBSET_SIZE, smaller set)`` images drawn with ``seed``
    (one subset - the whole sets - when that is all there is)."""
    from torchmetrics.image.kid import KernelInceptionDistance

    size = min(KID_SUBSET_SIZE, len(real), len(fake))
    if size < 2:
        raise ValueError(f"KID needs at least 2 images per set, got {len(real)} and {len(fake)}")
    whole = size == len(real) == len(fake)
    with warnings.catch_warnings():  # it warns that it keeps all features: here they are already in memory
        warnings.filterwarnings("ignore", message=".*save all extracted features.*")
        metric = KernelInceptionDistance(feature=_GivenFeatures(), subsets=1 if whole else KID_SUBSETS,
                                         subset_size=size)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with torch.random.fork_rng(devices=[]):  # torchmetrics draws the subsets from the global generator
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


class SRFIDReference:
    """The real HR patches' Inception features, computed once, split into two seeded halves A and B: scores
    any number of models' outputs for the same patches (see the module docstring for the cross-half FID / KID).

    :attr:`floor` is ``{"fid_floor", "kid_floor"}``: the scores of the real halves against each other."""

    def __init__(self, hr: torch.Tensor, seed: int = 0, batch_size: int = INCEPTION_BATCH):
        if hr.ndim != 4 or len(hr) < MIN_FID_IMAGES:
            raise ValueError(f"FID/KID with a floor need at least {MIN_FID_IMAGES} HR images (N, C, H, W): two "
                             f"disjoint halves of at least 2; got {tuple(hr.shape)}")
        self.hr, self.seed, self.batch_size = hr.detach().clone(), seed, batch_size
        self.shape = tuple(hr.shape)
        m = len(hr) // 2
        perm = torch.randperm(len(hr), generator=torch.Generator().manual_seed(seed))
        self.half_a, self.half_b = perm[:m], perm[m:2 * m]
        feats = inception_features(hr, batch_size)
        self._fa, self._fb = feats[self.half_a], feats[self.half_b]
        self.floor = {"fid_floor": round(fid_from_features(self._fa, self._fb), 3),
                      "kid_floor": kid_from_features(self._fa, self._fb, seed)[0]}

    @property
    def n_per_half(self) -> int:
        return len(self.half_a)

    def score(self, pred: torch.Tensor) -> dict[str, Any]:
        """``{"fid", "fid_floor", "kid", "kid_floor", "n_per_half", "fid_halves", "kid_halves"}`` for ``pred``, the
        model's outputs for the same HR patches in the same order. ``fid`` / ``kid`` are the means of the two
        cross-half scores (outputs for A against real B, outputs for B against real A); ``*_halves`` are the two,
        so their difference shows how far one split of the patches moves the score."""
        if tuple(pred.shape) != self.shape:
            raise ValueError(f"pred must be the outputs for the reference's HR patches, shape {self.shape}; got "
                             f"{tuple(pred.shape)}")
        feats = inception_features(pred, self.batch_size)
        pa, pb = feats[self.half_a], feats[self.half_b]
        fids = (fid_from_features(self._fb, pa), fid_from_features(self._fa, pb))
        kids = (kid_from_features(self._fb, pa, self.seed)[0], kid_from_features(self._fa, pb, self.seed)[0])
        return {"fid": round(sum(fids) / 2, 3), "fid_floor": self.floor["fid_floor"], "kid": sum(kids) / 2,
                "kid_floor": self.floor["kid_floor"], "n_per_half": self.n_per_half,
                "fid_halves": [round(f, 3) for f in fids], "kid_halves": [round(k, 6) for k in kids]}


def sr_metrics(pred: torch.Tensor, hr: torch.Tensor, *, fid: bool = True, reference: SRFIDReference | None = None,
               seed: int = 0, batch_size: int = INCEPTION_BATCH) -> dict[str, Any]:
    """Every Table 6 measure we compute for super-resolved ``pred`` against ground truth ``hr`` (both
    ``(N, C, H, W)`` in [-1, 1], item i of ``pred`` made from the LR of item i of ``hr``):

    ``{"psnr", "ssim", "n_images"}`` (per-image means) and, with ``fid``, ``{"fid", "fid_floor", "kid",
    "kid_floor", "n_per_half"}``. Pass ``reference=SRFIDReference(hr)`` to score several models on the same
    patches without recomputing the real features (about 0.12 s per image on 2 CPU cores)."""
    out: dict[str, Any] = psnr_ssim(pred, hr)
    if fid:
        if reference is None:
            reference = SRFIDReference(hr, seed, batch_size)
        elif reference.shape != tuple(hr.shape) or not torch.equal(reference.hr, hr):
            raise ValueError("the reference was built on other HR patches than these; build it with "
                             "SRFIDReference(hr) on the same patches")
        out.update(reference.score(pred))
    return out


def bicubic_scores(data: "SRSplit", *, fid: bool = False, reference: SRFIDReference | None = None) -> dict[str, Any]:
    """The "bicubic" row: :func:`sr_metrics` of the bicubic upsampling (the CrossFlow source) against the HR
    patches - what super-resolution has to beat. PSNR / SSIM only unless ``fid``."""
    return sr_metrics(data.upsampled, data.hr, fid=fid, reference=reference)


__all__ = ["PAPER_TABLE6", "PAPER_TABLE6_SETTING", "to_unit", "psnr_per_image", "ssim_per_image", "psnr_ssim",
           "inception_features", "fid_from_features", "kid_from_features", "SRFIDReference", "sr_metrics",
           "bicubic_scores"]

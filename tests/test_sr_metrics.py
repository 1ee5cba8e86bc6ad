"""Super-resolution metrics: PSNR / SSIM per image on [0, 1], the bicubic row, cross-half FID / KID with the
real-vs-real floor, and the paper's Table 6 quoted exactly."""

from __future__ import annotations

import math

import pytest
import torch

from crossflow_mini.datasets import superres
from crossflow_mini.eval import fid as project_fid
from crossflow_mini.eval import sr


def test_psnr_of_identical_images_is_infinite_and_ssim_is_one():
    hr = torch.rand(3, 3, 32, 32) * 2 - 1
    assert torch.isinf(sr.psnr_per_image(hr, hr)).all()
    assert torch.allclose(sr.ssim_per_image(hr, hr), torch.ones(3), atol=1e-5)
    res = sr.psnr_ssim(hr, hr)
    assert math.isinf(res["psnr"]) and abs(res["ssim"] - 1) < 1e-5 and res["n_images"] == 3


def test_psnr_of_a_known_error_is_10_log10_of_1_over_mse():
    """An error of +-delta in [-1, 1] is +-delta/2 on the [0, 1] scale the metric uses: MSE = delta^2 / 4."""
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(2, 3, 16, 16, generator=g) - 0.5
    delta = 0.1
    signs = torch.randint(0, 2, hr.shape, generator=g).float() * 2 - 1
    pred = hr + delta * signs
    expected = 10 * math.log10(1 / (delta / 2) ** 2)
    assert torch.allclose(sr.psnr_per_image(pred, hr), torch.full((2,), expected), atol=1e-3)


def test_psnr_and_ssim_average_per_image_not_pooled():
    hr = torch.zeros(2, 1, 16, 16)
    pred = hr.clone()
    pred[0] += 0.02  # MSE 1e-4 on [0, 1]: 40 dB
    pred[1] += 0.2  # MSE 1e-2: 20 dB
    res = sr.psnr_ssim(pred, hr)
    assert abs(res["psnr"] - 30.0) < 1e-3  # mean of 40 and 20; the pooled MSE would give 23.0 dB
    assert abs(res["ssim"] - float(sr.ssim_per_image(pred, hr).mean())) < 1e-6


def test_ssim_falls_with_noise_and_values_outside_range_are_clamped():
    g = torch.Generator().manual_seed(1)
    hr = torch.rand(2, 3, 32, 32, generator=g) * 1.6 - 0.8
    noisy = hr + 0.3 * torch.randn(hr.shape, generator=g)
    assert (sr.ssim_per_image(noisy, hr) < 0.9).all()
    assert torch.allclose(sr.psnr_per_image(hr.clamp(-1, 1) * 1.5, hr),
                          sr.psnr_per_image((hr * 1.5).clamp(-1, 1), hr))
    with pytest.raises(ValueError, match="one shape"):
        sr.psnr_ssim(hr, hr[:1])


def test_bicubic_row_scores_the_source_against_hr():
    data = superres.load_sr("test", superres.SRDataConfig(n_test=16))
    res = sr.bicubic_scores(data)
    assert res == sr.psnr_ssim(data.upsampled, data.hr)
    assert 20 < res["psnr"] < 40 and 0.3 < res["ssim"] < 0.95  # blurry but close: the floor a model must beat


def test_paper_table6_is_quoted_exactly():
    assert sr.PAPER_TABLE6 == {
        "CrossFlow": {"fid": 3.0, "is": 207.2, "psnr": 25.6, "ssim": 0.764},
        "standard flow matching": {"fid": 3.4, "is": 200.8, "psnr": 24.7, "ssim": 0.747},
        "SR3": {"fid": 5.2, "is": 180.1, "psnr": 26.4, "ssim": 0.762},
        "regression": {"fid": 15.2, "is": 121.1, "psnr": 27.9, "ssim": 0.801},
    }


# ------------------------------------------------------------------------- FID / KID (Inception: ~0.12 s an image)
@pytest.fixture(scope="module")
def hr() -> torch.Tensor:
    return superres.load_sr("test", superres.SRDataConfig(n_test=sr.MIN_FID_IMAGES)).hr


@pytest.fixture(scope="module")
def reference(hr) -> sr.SRFIDReference:
    return sr.SRFIDReference(hr, seed=0)


def test_a_perfect_model_scores_exactly_the_floor(hr, reference):
    res = sr.sr_metrics(hr, hr, reference=reference)
    assert res["fid"] == res["fid_floor"] > 0 and res["n_per_half"] == 2
    assert res["kid"] == pytest.approx(res["kid_floor"], abs=1e-6)
    assert math.isinf(res["psnr"]) and res["ssim"] == pytest.approx(1.0, abs=1e-5)
    assert sorted(reference.half_a.tolist() + reference.half_b.tolist()) == list(range(len(hr)))
    a, b = hr[reference.half_a], hr[reference.half_b]  # the floor is the project's FID of the two real halves
    assert res["fid_floor"] == pytest.approx(project_fid.fid(a, b), rel=1e-4, abs=1e-3)


def test_noise_scores_above_the_floor():
    """Four patches make a floor that is itself noise; 32 (16 a half) are enough to separate noise from photographs."""
    hr32 = superres.load_sr("test", superres.SRDataConfig(n_test=32)).hr
    noise = torch.rand(hr32.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    res = sr.SRFIDReference(hr32, seed=0).score(noise)
    assert res["fid"] == pytest.approx(sum(res["fid_halves"]) / 2, abs=1e-3)  # the mean of the two cross-half scores
    assert res["kid"] == pytest.approx(sum(res["kid_halves"]) / 2, abs=1e-5)
    assert res["fid"] > res["fid_floor"] and res["kid"] > res["kid_floor"]


def test_the_reference_refuses_other_patches(hr, reference):
    with pytest.raises(ValueError, match="other HR patches"):
        sr.sr_metrics(hr, -hr, reference=reference)
    with pytest.raises(ValueError, match="at least 4"):
        sr.SRFIDReference(hr[:3])

"""Tests of the depth metrics (crossflow_mini.eval.depth) on hand-computed examples: each metric's formula,
masks, per-image aggregation, and the scale-and-shift alignment in depth and in inverse depth."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from crossflow_mini.eval import depth as dm

GT = np.array([[1.0, 2.0], [4.0, 5.0]])


def test_twice_the_truth():
    gt = np.array([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]])
    m = dm.depth_metrics(2 * gt, gt)
    assert m["abs_rel"] == pytest.approx(1.0)
    assert m["sq_rel"] == pytest.approx(gt.mean())  # (2g - g)^2 / g = g
    assert m["rmse"] == pytest.approx(math.sqrt((gt ** 2).mean()))
    assert m["log_rmse"] == pytest.approx(math.log(2))
    assert m["delta1"] == m["delta2"] == m["delta3"] == 0.0  # ratio 2 >= 1.25^3 = 1.953
    assert set(m) == set(dm.METRIC_NAMES)


def test_a_hand_computed_example():
    pred = np.array([[1.1, 2.0], [3.0, 10.0]])  # ratios 1.1, 1, 4/3, 2
    m = dm.depth_metrics(pred, GT)
    assert m["abs_rel"] == pytest.approx((0.1 / 1 + 0 + 1 / 4 + 5 / 5) / 4)
    assert m["sq_rel"] == pytest.approx((0.01 / 1 + 0 + 1 / 4 + 25 / 5) / 4)
    assert m["rmse"] == pytest.approx(math.sqrt((0.01 + 0 + 1 + 25) / 4))
    assert m["log_rmse"] == pytest.approx(math.sqrt((math.log(1.1) ** 2 + math.log(0.75) ** 2 + math.log(2) ** 2) / 4))
    assert (m["delta1"], m["delta2"], m["delta3"]) == (0.5, 0.75, 0.75)  # 4/3 < 1.5625; 2 > 1.953
    assert dm.depth_metrics(GT, GT) == {**{k: 0.0 for k in dm.METRIC_NAMES}, "delta1": 1.0, "delta2": 1.0,
                                        "delta3": 1.0}


def test_masks_and_invalid_ground_truth_exclude_pixels():
    pred = np.array([[1.0, 2.0], [40.0, np.nan]])
    mask = np.array([[True, True], [False, True]])
    gt = np.array([[1.0, 2.0], [4.0, np.inf]])  # the inf hole is excluded without a mask entry
    m = dm.depth_metrics(pred, gt, mask)
    assert m["abs_rel"] == 0.0 and m["delta1"] == 1.0
    assert dm.depth_metrics(pred[None, None], gt[None, None], mask[None, None]) == m  # (N, 1, H, W) works
    assert dm.valid_mask(np.array([[0.0, -1.0, np.nan, 2.0]])).tolist() == [[[False, False, False, True]]]


def test_mean_over_images_not_pooled_over_pixels():
    gt = np.ones((2, 2, 2))
    pred = np.ones((2, 2, 2))
    pred[0, 0, 0] = 2.0  # image 0: one valid pixel, all wrong
    mask = np.ones((2, 2, 2), dtype=bool)
    mask[0] = False
    mask[0, 0, 0] = True
    per_image = dm.per_image_depth_metrics(pred, gt, mask)
    np.testing.assert_allclose(per_image["abs_rel"], [1.0, 0.0])
    assert dm.depth_metrics(pred, gt, mask)["abs_rel"] == pytest.approx(0.5)  # pooled over pixels would be 0.2


def test_fit_scale_shift_recovers_an_affine_map_per_image():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (3, 5, 6))
    scale, shift = np.array([2.0, -0.5, 7.0]), np.array([1.0, 3.0, -2.0])
    y = scale[:, None, None] * x + shift[:, None, None]
    s, b = dm.fit_scale_shift(x, y)
    np.testing.assert_allclose(s, scale, rtol=1e-12)
    np.testing.assert_allclose(b, shift, rtol=1e-12)
    # noise: the fit is the least-squares one (numpy's lstsq on the 2-column design matrix agrees)
    y_noisy = y + rng.normal(0, 0.1, y.shape)
    s, b = dm.fit_scale_shift(x, y_noisy)
    ref = np.linalg.lstsq(np.stack([x[1].ravel(), np.ones(30)], 1), y_noisy[1].ravel(), rcond=None)[0]
    np.testing.assert_allclose([s[1], b[1]], ref, rtol=1e-10)
    # masked pixels (even NaN ones) do not pull the fit; a constant prediction gets scale 0, shift = mean
    y_bad = y.copy()
    y_bad[:, 0, 0] = np.nan
    mask = np.ones_like(x, dtype=bool)
    mask[:, 0, 0] = False
    np.testing.assert_allclose(dm.fit_scale_shift(x, y_bad, mask)[0], scale, rtol=1e-12)
    s, b = dm.fit_scale_shift(np.full((1, 2, 2), 3.0), GT)
    assert s[0] == 0.0 and b[0] == pytest.approx(GT.mean())


def test_depth_alignment_undoes_an_affine_distortion():
    gt = np.random.default_rng(1).uniform(1.0, 10.0, (2, 8, 8))
    distorted = (gt - 2.0) / 3.0  # what an affine-invariant model might output (negative values too)
    assert dm.depth_metrics(distorted, gt, align="depth")["abs_rel"] < 1e-12
    aligned = dm.align_depth(distorted, gt)
    np.testing.assert_allclose(aligned, gt, rtol=1e-12)


def test_inverse_alignment_on_a_known_case():
    # pred with 1 / pred = 0.5 / gt + 0.1: affine in inverse depth, not in depth.
    gt = np.random.default_rng(2).uniform(1.0, 10.0, (2, 8, 8))
    pred = 1.0 / (0.5 / gt + 0.1)
    np.testing.assert_allclose(dm.align_inverse_depth(1.0 / pred, gt), gt, rtol=1e-10)
    inverse = dm.depth_metrics(pred, gt, align="inverse")
    assert inverse["abs_rel"] < 1e-10 and inverse["delta1"] == 1.0
    assert dm.depth_metrics(pred, gt, align="depth")["abs_rel"] > 1e-3  # the depth fit cannot undo it
    # stereo: Middlebury disparity d = f B / Z - doffs is affine in inverse depth, so it aligns exactly
    f_b, doffs = 994.978 * 0.193001, 31.086
    disparity = f_b / gt - doffs
    np.testing.assert_allclose(dm.align_inverse_depth(disparity, gt), gt, rtol=1e-10)


def test_alignment_clips_to_the_evaluation_range():
    gt = np.array([[[1.0, 2.0], [3.0, 4.0]]])
    pred_inverse = np.array([[[1.0, 0.5], [1 / 3, -5.0]]])  # one wrong-signed disparity
    aligned = dm.align_inverse_depth(pred_inverse, gt)
    assert aligned.min() >= 1.0 and aligned.max() <= 4.0  # the image's own gt range
    aligned = dm.align_inverse_depth(pred_inverse, gt, depth_range=(0.5, 100.0))
    assert aligned.max() <= 100.0 and np.isfinite(aligned).all()
    clipped = dm.depth_metrics(np.array([[[0.5, 2.0], [3.0, 40.0]]]), gt, depth_range=(1.0, 4.0))
    assert clipped["abs_rel"] == 0.0


def test_torch_and_numpy_agree():
    pred = np.array([[1.1, 2.0], [3.0, 10.0]])
    assert dm.depth_metrics(torch.tensor(pred)[None, None], torch.tensor(GT)[None, None]) == dm.depth_metrics(pred, GT)


def test_clear_errors():
    with pytest.raises(ValueError, match="align"):
        dm.depth_metrics(GT, GT, align="log")
    with pytest.raises(ValueError, match="shape"):
        dm.depth_metrics(GT[:1], GT)
    with pytest.raises(ValueError, match="no valid pixel"):
        dm.depth_metrics(GT, GT, mask=np.zeros_like(GT, dtype=bool))
    with pytest.raises(ValueError, match="positive"):
        dm.depth_metrics(-GT, GT)
    with pytest.raises(ValueError, match="positive"):
        dm.depth_metrics(-GT, GT, align="inverse")
    with pytest.raises(ValueError, match="depth_range"):
        dm.depth_metrics(GT, GT, align="depth", depth_range=(2.0, 1.0))


def test_paper_table5_is_quoted():
    assert dm.PAPER_TABLE5["KITTI"] == {"abs_rel": 0.053, "delta1": 0.973}
    assert dm.PAPER_TABLE5["NYUv2"] == {"abs_rel": 0.094, "delta1": 0.928}

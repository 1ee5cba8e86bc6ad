"""Monocular depth metrics, written once: AbsRel, SqRel, RMSE, log-RMSE and delta < 1.25^k, with the
least-squares scale-and-shift alignment used for affine-invariant predictions.

With ``p`` the predicted and ``g`` the ground-truth depth over the valid pixels of one image (``n`` of them)::

    AbsRel   = mean |p - g| / g                SqRel = mean (p - g)^2 / g
    RMSE     = sqrt(mean (p - g)^2)            log-RMSE = sqrt(mean (ln p - ln g)^2)
    delta_k  = share of pixels with max(p / g, g / p) < 1.25^k        (k = 1, 2, 3; higher is better)

**Aggregation**: each metric is computed per image over its valid pixels, then averaged over images (the
KITTI / NYUv2 evaluation scripts of Eigen et al., BTS, AdaBins and Marigold do the same); pixels are not pooled
across images. :func:`per_image_depth_metrics` returns the per-image values.

**Validity**: a pixel counts when the ground truth is finite and positive AND the optional ``mask`` is True
(holes in stereo ground truth are NaN or inf; DepthWorld has none).

**Alignment** (``align=``). A model that cannot know the scale of the scene (any zero-shot use, e.g. DepthWorld ->
the Middlebury Motorcycle) is evaluated after a per-image least-squares fit of a scale ``s`` and shift ``b``:

* ``"depth"``: ``s, b = argmin sum (s p + b - g)^2`` over the valid pixels; prediction ``s p + b``.
* ``"inverse"``: the same fit in inverse depth (disparity), ``s, b = argmin sum (s / p + b - 1 / g)^2``;
  prediction ``1 / (s / p + b)``. This is the protocol for affine-invariant disparity (MiDaS, and Marigold's
  zero-shot comparison that the paper's Table 9 follows); it is also exact for stereo ground truth, whose
  disparity is affine in inverse depth.

The fit is the closed-form solution of the 2 x 2 normal equations, vectorised over the batch (centred form):
``s = sum (x - mean x)(y - mean y) / sum (x - mean x)^2``, ``b = mean y - s mean x``; a constant prediction gets
``s = 0, b = mean y``.

**Clipping**: an aligned prediction is clipped to the evaluation range - ``depth_range=(lo, hi)`` if given (the
KITTI / NYUv2 scripts use dataset constants, e.g. 1e-3..80 m), else that image's own valid ground-truth range
[min g, max g], as the data sets' units differ. In inverse depth that is the clip ``1 / hi <= s / p + b <= 1 / lo``
(MiDaS's "disparity cap", which also catches aligned inverse depths <= 0). An unaligned prediction is clipped
only when ``depth_range`` is given, and must otherwise be positive at the valid pixels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

METRIC_NAMES: tuple[str, ...] = ("abs_rel", "sq_rel", "rmse", "log_rmse", "delta1", "delta2", "delta3")
HIGHER_IS_BETTER: frozenset[str] = frozenset({"delta1", "delta2", "delta3"})
DELTA_BASE = 1.25  # delta_k counts pixels with max(p / g, g / p) < DELTA_BASE ** k
DELTA_POWERS = (1, 2, 3)
ALIGN_MODES: tuple[str | None, ...] = (None, "depth", "inverse")
DEGENERATE_VARIANCE = 1e-12  # a prediction whose (weighted) variance is below this per pixel counts as constant

#: The paper's Table 5 (CrossFlow, monocular depth in pixel space) - quoted as the paper's, not measured here.
PAPER_TABLE5: dict[str, dict[str, float]] = {
    "KITTI": {"abs_rel": 0.053, "delta1": 0.973},
    "NYUv2": {"abs_rel": 0.094, "delta1": 0.928},
}


def _as_batch(x: Any, name: str) -> np.ndarray:
    """numpy / torch ``(H, W)``, ``(N, H, W)`` or ``(N, 1, H, W)`` -> float64 ``(N, H, W)``."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().to(torch.float64).numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 4 and a.shape[1] == 1:
        a = a[:, 0]
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(f"{name} must be (H, W), (N, H, W) or (N, 1, H, W), got shape {a.shape}")
    return a


def _as_mask(mask: Any, shape: tuple[int, ...]) -> np.ndarray:
    if mask is None:
        return np.ones(shape, dtype=bool)
    m = _as_batch(mask, "mask") != 0
    if m.shape != shape:
        try:
            m = np.broadcast_to(m, shape)
        except ValueError:
            raise ValueError(f"mask has shape {m.shape}, the depth maps {shape}") from None
    return m


def valid_mask(gt: Any, mask: Any = None) -> np.ndarray:
    """bool ``(N, H, W)``: ground truth finite and positive, and ``mask`` (if given) True."""
    g = _as_batch(gt, "gt")
    with np.errstate(invalid="ignore"):
        return np.isfinite(g) & (g > 0) & _as_mask(mask, g.shape)


def _counts(valid: np.ndarray) -> np.ndarray:
    n = valid.sum(axis=(1, 2))
    if (n == 0).any():
        raise ValueError(f"image(s) {np.flatnonzero(n == 0).tolist()} have no valid pixel (ground truth finite, > 0 "
                         "and inside the mask); drop them before evaluating")
    return n


def fit_scale_shift(x: Any, y: Any, mask: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-image least squares ``s, b = argmin sum_mask (s x + b - y)^2``; returns ``(s, b)``, each ``(N,)``.

    Closed form of the 2 x 2 normal equations ``[[sum x^2, sum x], [sum x, n]] [s, b] = [sum x y, sum y]``,
    in centred form: ``s = cov(x, y) / var(x)``, ``b = mean y - s mean x``. A constant ``x`` (variance below
    DEGENERATE_VARIANCE) gets ``s = 0, b = mean y``. ``mask`` selects the pixels (all if None); values outside
    it are ignored, even if not finite."""
    xa, ya = _as_batch(x, "x"), _as_batch(y, "y")
    if xa.shape != ya.shape:
        raise ValueError(f"x {xa.shape} and y {ya.shape} must have the same shape")
    m = _as_mask(mask, xa.shape)
    n = _counts(m)
    xa, ya = np.where(m, xa, 0.0), np.where(m, ya, 0.0)
    mean_x, mean_y = xa.sum(axis=(1, 2)) / n, ya.sum(axis=(1, 2)) / n
    cx = np.where(m, xa - mean_x[:, None, None], 0.0)
    cy = np.where(m, ya - mean_y[:, None, None], 0.0)
    var = (cx * cx).sum(axis=(1, 2))
    cov = (cx * cy).sum(axis=(1, 2))
    degenerate = var <= DEGENERATE_VARIANCE * n
    scale = np.where(degenerate, 0.0, cov / np.where(degenerate, 1.0, var))
    return scale, mean_y - scale * mean_x


def _range(g: np.ndarray, valid: np.ndarray, depth_range: tuple[float, float] | None) -> tuple[np.ndarray, ...]:
    """Evaluation range per image, ``(lo, hi)`` each ``(N, 1, 1)``."""
    if depth_range is not None:
        lo, hi = depth_range
        if not 0 < lo < hi:
            raise ValueError(f"depth_range must be (lo, hi) with 0 < lo < hi, got {depth_range}")
        return np.full((len(g), 1, 1), float(lo)), np.full((len(g), 1, 1), float(hi))
    lo = np.where(valid, g, np.inf).min(axis=(1, 2))
    hi = np.where(valid, g, -np.inf).max(axis=(1, 2))
    return lo[:, None, None], hi[:, None, None]


def align_depth(pred: Any, gt: Any, mask: Any = None, depth_range: tuple[float, float] | None = None) -> np.ndarray:
    """``s pred + b`` with ``s, b`` fitted in depth on the valid pixels, clipped to the evaluation range
    (``depth_range``, else each image's valid ground-truth range). float64 ``(N, H, W)``."""
    g = _as_batch(gt, "gt")
    valid = valid_mask(g, mask)
    p = _as_batch(pred, "pred")
    scale, shift = fit_scale_shift(p, g, valid)
    lo, hi = _range(g, valid, depth_range)
    return np.clip(scale[:, None, None] * p + shift[:, None, None], lo, hi)


def align_inverse_depth(pred_inverse: Any, gt: Any, mask: Any = None,
                        depth_range: tuple[float, float] | None = None) -> np.ndarray:
    """Depth ``1 / (s x + b)`` from an affine-invariant inverse-depth (disparity-like) prediction ``x``, with
    ``s, b`` fitted to ``1 / gt`` on the valid pixels; ``s x + b`` is clipped to ``[1 / hi, 1 / lo]`` of the
    evaluation range first. float64 ``(N, H, W)``. For a depth prediction ``p`` pass ``1 / p``."""
    g = _as_batch(gt, "gt")
    valid = valid_mask(g, mask)
    x = _as_batch(pred_inverse, "pred_inverse")
    with np.errstate(divide="ignore"):
        scale, shift = fit_scale_shift(x, np.where(valid, 1.0 / np.where(valid, g, 1.0), 0.0), valid)
    lo, hi = _range(g, valid, depth_range)
    inverse = np.clip(scale[:, None, None] * x + shift[:, None, None], 1.0 / hi, 1.0 / lo)
    return 1.0 / inverse


def per_image_depth_metrics(pred: Any, gt: Any, mask: Any = None) -> dict[str, np.ndarray]:
    """Every metric of :data:`METRIC_NAMES` per image, ``(N,)`` float64 arrays, over the valid pixels
    (no alignment, no clipping: ``pred`` must be positive there)."""
    g = _as_batch(gt, "gt")
    p = _as_batch(pred, "pred")
    if p.shape != g.shape:
        raise ValueError(f"pred {p.shape} and gt {g.shape} must have the same shape")
    valid = valid_mask(g, mask)
    n = _counts(valid)
    p = np.where(valid, p, 1.0)
    g = np.where(valid, g, 1.0)
    if not (np.isfinite(p) & (p > 0)).all():
        raise ValueError("predicted depth must be finite and positive at the valid pixels; pass "
                         "depth_range=(lo, hi) to clip it, or align='depth' / 'inverse'")

    def mean(v: np.ndarray) -> np.ndarray:
        return np.where(valid, v, 0.0).sum(axis=(1, 2)) / n

    err = p - g
    ratio = np.maximum(p / g, g / p)
    out = {
        "abs_rel": mean(np.abs(err) / g),
        "sq_rel": mean(err * err / g),
        "rmse": np.sqrt(mean(err * err)),
        "log_rmse": np.sqrt(mean((np.log(p) - np.log(g)) ** 2)),
    }
    for k in DELTA_POWERS:
        out[f"delta{k}"] = mean((ratio < DELTA_BASE ** k).astype(np.float64))
    return out


def depth_metrics(pred: Any, gt: Any, mask: Any = None, align: str | None = None,
                  depth_range: tuple[float, float] | None = None) -> dict[str, float]:
    """Mean over images of the per-image metrics, ``{"abs_rel": ..., "delta1": ..., ...}`` (see the module).

    ``pred`` and ``gt``: depth maps ``(H, W)``, ``(N, H, W)`` or ``(N, 1, H, W)``, numpy or torch, same units.
    ``align``: None (metric depth as predicted), ``"depth"`` (scale and shift fitted in depth) or ``"inverse"``
    (fitted in inverse depth; ``pred`` must then be positive). ``depth_range``: the evaluation range to clip to.
    To evaluate a disparity-like prediction ``x`` directly: ``depth_metrics(align_inverse_depth(x, gt), gt)``."""
    if align not in ALIGN_MODES:
        raise ValueError(f"align must be one of {ALIGN_MODES}, got {align!r}")
    g = _as_batch(gt, "gt")
    p = _as_batch(pred, "pred")
    if align == "depth":
        p = align_depth(p, g, mask, depth_range)
    elif align == "inverse":
        valid = valid_mask(g, mask)
        if not (np.isfinite(p[valid]) & (p[valid] > 0)).all():
            raise ValueError("align='inverse' inverts the prediction: it must be a positive depth at the valid "
                             "pixels (for a disparity-like prediction use align_inverse_depth)")
        with np.errstate(divide="ignore"):
            p = align_inverse_depth(1.0 / np.where(valid, p, 1.0), g, mask, depth_range)
    elif depth_range is not None:
        lo, hi = _range(g, valid_mask(g, mask), depth_range)
        p = np.clip(p, lo, hi)
    return {name: float(values.mean()) for name, values in per_image_depth_metrics(p, g, mask).items()}


__all__ = ["METRIC_NAMES", "HIGHER_IS_BETTER", "DELTA_BASE", "ALIGN_MODES", "PAPER_TABLE5", "valid_mask",
           "fit_scale_shift", "align_depth", "align_inverse_depth", "per_image_depth_metrics", "depth_metrics"]

"""Plotting helpers for the notebooks: small figures that read well on a web page."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

FIG_WIDTH = 7.0  # inches: a page-width figure at the notebook's dpi


def to_numpy_images(images: torch.Tensor | np.ndarray | Sequence) -> np.ndarray:
    """Images in any of the project's forms -> ``(N, H, W, C)`` floats in [0, 1]:

    * a tensor ``(N, C, H, W)`` in [-1, 1] (the project's convention, e.g. ``autoencoder.decode``);
    * a NumPy array ``(N, H, W, C)``: floats in [0, 1] (a pipeline's ``output_type="np"``) or uint8;
    * a list of PIL images (a pipeline's default ``output_type="pil"``)."""
    if isinstance(images, (list, tuple)):
        images = np.stack([np.asarray(im) for im in images])
        if images.ndim == 3:  # grey-scale PIL images
            images = images[..., None]
    if isinstance(images, torch.Tensor):
        x = images.detach().float().cpu()
        if x.ndim == 3:
            x = x[None]
        x = ((x.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).numpy()
    else:
        x = np.asarray(images)
        if x.ndim == 3:
            x = x[None]
        x = x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x.astype(np.float32)
    return x


def show_images(images: torch.Tensor | np.ndarray, titles: Sequence[str] | None = None, ncols: int = 8,
                size: float = 0.9, title: str | None = None, fontsize: int = 6):
    """A grid of images with optional per-image titles (captions wrap onto two lines)."""
    x = to_numpy_images(images)
    n = len(x)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    extra = 0.5 if titles is not None else 0.0  # room for a caption of up to three short lines
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * size, nrows * (size + extra)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = x[i]
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None,
                  vmin=0, vmax=1, interpolation="nearest")
        if titles is not None:
            ax.set_title(_wrap(titles[i]), fontsize=fontsize)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def _wrap(text: str, width: int = 18) -> str:
    words, lines, cur = text.split(), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    lines.append(cur)
    return "\n".join(lines[:3])


def plot_history(history: dict[str, list[float]], keys: Sequence[str] = ("loss",), ax=None, logy: bool = True,
                 label_prefix: str = ""):
    """Loss curves from a training history (``history["step"]`` on the x axis)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(FIG_WIDTH * 0.6, 2.4))
    for k in keys:
        ax.plot(history["step"], history[k], label=f"{label_prefix}{k}")
    ax.set_xlabel("step")
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return ax


def scatter2d(points: torch.Tensor, ax=None, c=None, s: float = 3.0, title: str | None = None, cmap: str = "coolwarm",
              alpha: float = 0.6):
    """Scatter plot of 2-D points, optionally coloured (e.g. by label)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(2.6, 2.6))
    p = points.detach().cpu().numpy()
    colour = {} if c is None else {"c": np.asarray(c), "cmap": cmap, "vmin": 0, "vmax": 1}
    ax.scatter(p[:, 0], p[:, 1], s=s, alpha=alpha, **colour)
    if title:
        ax.set_title(title, fontsize=8)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=6)
    return ax


def trajectories2d(trajectory: torch.Tensor, ax=None, c=None, title: str | None = None, cmap: str = "coolwarm"):
    """Draw 2-D trajectories ``(steps + 1, N, 2)``: lines from start (dot) to end (cross)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(2.6, 2.6))
    tr = trajectory.detach().cpu().numpy()
    colours = plt.get_cmap(cmap)(np.asarray(c, dtype=float)) if c is not None else None
    for i in range(tr.shape[1]):
        col = None if colours is None else colours[i]
        ax.plot(tr[:, i, 0], tr[:, i, 1], lw=0.7, alpha=0.8, color=col)
        ax.plot(tr[0, i, 0], tr[0, i, 1], "o", ms=2, color=col)
        ax.plot(tr[-1, i, 0], tr[-1, i, 1], "x", ms=3, color=col)
    if title:
        ax.set_title(title, fontsize=8)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=6)
    return ax


def show_depth_grid(images: torch.Tensor | np.ndarray | None, rows: dict[str, np.ndarray | torch.Tensor],
                    errors: dict[str, np.ndarray | torch.Tensor] | None = None, *, near: float = 0.5,
                    far: float = 20.0, max_error: float = 1.0, size: float = 0.85, title: str | None = None,
                    transpose: bool = False):
    """Depth maps side by side: a row of RGB ``images`` (optional), one row per entry of ``rows`` (depth in metres,
    ``(N, H, W)`` or ``(N, 1, H, W)``; one log colour scale from ``near`` to ``far`` m, near = bright), then one row
    per entry of ``errors`` (e.g. ``|ln pred - ln true|``, 0 to ``max_error``, NaN = no ground truth, shown grey).
    ``transpose=True`` puts each entry in a column instead (for one or two images)."""
    from matplotlib.colors import LogNorm

    def arr(x: np.ndarray | torch.Tensor) -> np.ndarray:
        a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        return a[:, 0] if a.ndim == 4 else a

    cmap_err = plt.get_cmap("magma").copy()
    cmap_err.set_bad("0.7")
    panels: list[tuple[str, np.ndarray, dict]] = []
    if images is not None:
        panels.append(("image", to_numpy_images(images), {}))
    panels += [(k, np.clip(arr(v), near, far), {"cmap": "inferno_r", "norm": LogNorm(near, far)})
               for k, v in rows.items()]
    panels += [(k, np.ma.masked_invalid(arr(v)), {"cmap": cmap_err, "vmin": 0, "vmax": max_error})
               for k, v in (errors or {}).items()]
    n = len(panels[-1][1])
    shape = (n, len(panels)) if transpose else (len(panels), n)
    fig, axes = plt.subplots(*shape, figsize=(shape[1] * size + (0 if transpose else 0.9),
                                              shape[0] * size + (0.3 if transpose else 0)), squeeze=False)
    for i, (label, a, style) in enumerate(panels):
        for j in range(n):
            ax = axes[j, i] if transpose else axes[i, j]
            ax.imshow(a[j], interpolation="nearest", **style)
            ax.set_xticks([])
            ax.set_yticks([])
        if transpose:
            axes[0, i].set_title(label, fontsize=6)
        else:
            axes[i, 0].set_ylabel(label, fontsize=6, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout(pad=0.2, rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight() if title else 1))  # 0.3 in: the title
    return fig

"""Two-dimensional distributions for the flow-matching lesson (notebook 01).

``sample_2d(name, n)`` draws from a named 2-D distribution; :func:`paired_blobs_to_moons` draws *pairs*
(x0, x1) in which the source point says which half of the target it belongs to - a 2-D stand-in for
CrossFlow's text latent (source) and image latent (target), where the caption decides the image.
"""

from __future__ import annotations

import math

import torch

#: Where the two source "classes" sit (think: two different captions): blob 0 above, blob 1 below.
BLOB_CENTRES = ((-2.0, 1.5), (-2.0, -1.5))
BLOB_STD = 0.35
MOON_NOISE = 0.08


def _gaussian(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.randn(n, 2, generator=g)


def _moons_with_labels(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaved half circles; label 0 = the upper moon, 1 = the lower one."""
    labels = torch.randint(0, 2, (n,), generator=g)
    angle = torch.rand(n, generator=g) * math.pi
    x = torch.where(labels == 0, torch.cos(angle), 1 - torch.cos(angle))
    y = torch.where(labels == 0, torch.sin(angle), 0.5 - torch.sin(angle))
    pts = torch.stack([x, y], dim=1) + MOON_NOISE * torch.randn(n, 2, generator=g)
    pts = (pts - torch.tensor([0.5, 0.25])) * 1.6 + torch.tensor([1.5, 0.0])
    return pts, labels


def _moons(n: int, g: torch.Generator) -> torch.Tensor:
    return _moons_with_labels(n, g)[0]


def _eight_gaussians(n: int, g: torch.Generator) -> torch.Tensor:
    k = torch.randint(0, 8, (n,), generator=g).float()
    centres = torch.stack([torch.cos(k * math.pi / 4), torch.sin(k * math.pi / 4)], dim=1) * 2.0
    return centres + 0.2 * torch.randn(n, 2, generator=g)


def _checkerboard(n: int, g: torch.Generator) -> torch.Tensor:
    x = torch.rand(n, generator=g) * 4 - 2
    y = torch.rand(n, generator=g) * 2 - 1 + 2 * (torch.floor(x) % 2) - 1
    return torch.stack([x, y], dim=1)


DISTRIBUTIONS = {"gaussian": _gaussian, "moons": _moons, "eight_gaussians": _eight_gaussians,
                 "checkerboard": _checkerboard}


def sample_2d(name: str, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` points ``(n, 2)`` from the distribution called ``name`` (see ``DISTRIBUTIONS``)."""
    if name not in DISTRIBUTIONS:
        raise ValueError(f"unknown 2-D distribution {name!r}; choose one of {sorted(DISTRIBUTIONS)}")
    if n < 1:
        raise ValueError(f"need at least one point, got n={n}")
    return DISTRIBUTIONS[name](n, generator or torch.Generator().manual_seed(0))


def paired_blobs_to_moons(n: int, generator: torch.Generator | None = None, crossed: bool = False
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pairs ``(x0, x1, label)``: x0 from a blob (the "caption"), x1 from moon ``label`` (the "image").

    By default blob 0 (above) is paired with the upper moon and blob 1 (below) with the lower one, so the
    straight paths of the pairs do not cross. ``crossed=True`` swaps the blobs: the paired paths must then
    cross, and a deterministic flow - which can only preserve the marginals - cannot keep every pair
    (an exercise in notebook 01)."""
    g = generator or torch.Generator().manual_seed(0)
    x1, labels = _moons_with_labels(n, g)
    centres = torch.tensor(BLOB_CENTRES)[1 - labels if crossed else labels]
    x0 = centres + BLOB_STD * torch.randn(n, 2, generator=g)
    return x0, x1, labels


def moon_label(points: torch.Tensor) -> torch.Tensor:
    """Which moon each point is nearest to (0 upper, 1 lower): how notebook 01 scores the transported points."""
    ref, ref_labels = _moons_with_labels(4000, torch.Generator().manual_seed(1234))
    d = torch.cdist(points, ref)
    return ref_labels[d.argmin(dim=1)]

"""Interpolating between two prompts' text latents, and reading the path back with the judge (paper Fig. 5).

CrossFlow's flow starts at the text latent z0, so a path between two prompts' z0 is a path of starting points: flow
each point to an image and the pictures morph from one prompt to the other. The paper (and the public code,
``demo_t2i_arith.py``) interpolates *linearly* and does not standardise the points; :func:`slerp` (spherical, along
the great circle between the two directions, norms interpolated linearly) is offered beside it, because the midpoint
of a straight line between two latents is shorter than either end (``|a + b| / 2 < |a|`` unless they point the
same way) and a flow trained on full-norm latents may treat a short one differently.

:func:`read_path` turns the judge's reading of each picture on the path into one value per attribute (the most
prominent object's shape, colour, size and position, and the object count); :func:`switch` says where an attribute
changes from the first prompt's value to the second's, and whether it does so *cleanly*: once, with no third value
and no flip-flop on the way.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from ...datasets import shapes as sw
from ...eval.judge import ReadObject

METHODS: tuple[str, ...] = ("lerp", "slerp")
ATTRIBUTES: tuple[str, ...] = ("shape", "colour", "size", "position")
#: Below this angle (radians) between two latents slerp is lerp (sin(omega) ~ 0 would divide by nearly zero).
SLERP_MIN_ANGLE = 1e-4


def _as_t(t: float | torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """``t`` as a tensor that broadcasts over a batch ``(B, ...)``: a number, or one value per sample ``(B,)``."""
    t = torch.as_tensor(t, dtype=z.dtype, device=z.device)
    if t.ndim == 0:
        return t
    if t.shape != z.shape[:1]:
        raise ValueError(f"t must be a number or one value per sample ({z.shape[0]}), got shape {tuple(t.shape)}")
    return t.view(-1, *([1] * (z.ndim - 1)))


def lerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """``(1 - t) a + t b`` for batches of latents ``(B, ...)`` (the public code's interpolation)."""
    if a.shape != b.shape:
        raise ValueError(f"cannot interpolate latents of shapes {tuple(a.shape)} and {tuple(b.shape)}")
    return a + _as_t(t, a) * (b - a)


def slerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of each sample of ``a`` and ``b`` ``(B, ...)`` (flattened): the direction moves along
    the great circle, ``sin((1 - t) w) / sin w * a^ + sin(t w) / sin w * b^`` with ``w`` the angle between them, and
    the norm goes linearly from ``|a|`` to ``|b|``. So every point has the norm of its end points' mix (equal norms:
    that norm all along), where :func:`lerp`'s midpoint is shorter. Nearly parallel pairs fall back to lerp."""
    if a.shape != b.shape:
        raise ValueError(f"cannot interpolate latents of shapes {tuple(a.shape)} and {tuple(b.shape)}")
    if a.ndim < 2:
        raise ValueError(f"slerp works on batches (B, ...); got shape {tuple(a.shape)} - add a batch axis with a[None]")
    fa, fb = a.flatten(1), b.flatten(1)
    na, nb = fa.norm(dim=1, keepdim=True), fb.norm(dim=1, keepdim=True)
    ua, ub = fa / na.clamp_min(1e-12), fb / nb.clamp_min(1e-12)
    omega = torch.arccos((ua * ub).sum(1, keepdim=True).clamp(-1.0, 1.0))
    t = _as_t(t, fa)  # a number, or (B, 1)
    sin = torch.sin(omega)
    small = omega < SLERP_MIN_ANGLE
    wa = torch.where(small, 1 - t, torch.sin((1 - t) * omega) / torch.where(small, 1.0, sin))
    wb = torch.where(small, t * torch.ones_like(omega), torch.sin(t * omega) / torch.where(small, 1.0, sin))
    direction = wa * ua + wb * ub
    direction = direction / direction.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (direction * ((1 - t) * na + t * nb)).view_as(a)


def path(a: torch.Tensor, b: torch.Tensor, ts: Sequence[float] | torch.Tensor, method: str = "lerp") -> torch.Tensor:
    """Points between ``a`` and ``b`` ``(B, ...)`` at each ``t`` of ``ts``: ``(len(ts), B, ...)``."""
    if method not in METHODS:
        raise ValueError(f"unknown interpolation {method!r}; choose one of {', '.join(METHODS)}")
    fn = lerp if method == "lerp" else slerp
    return torch.stack([fn(a, b, float(t)) for t in ts])


# ------------------------------------------------------------------------------------------------ reading
def reading(read: Sequence[ReadObject]) -> dict[str, Any]:
    """One picture's reading: the object count and the most prominent (largest) object's attribute names (None for
    each attribute when the judge found no object)."""
    out: dict[str, Any] = {"count": len(read)}
    if not read:
        return out | {k: None for k in ATTRIBUTES}
    o = max(read, key=lambda r: r.area)
    names = o.names()
    return out | {"shape": names["shape"], "colour": names["colour"], "size": names["size"],
                  "position": sw.POSITIONS[int(sw.position_of(np.array([o.centre]))[0])]}


def read_path(reads: Sequence[Sequence[ReadObject]]) -> list[dict[str, Any]]:
    """:func:`reading` of every picture along a path."""
    return [reading(r) for r in reads]


def switch(values: Sequence[Any], ts: Sequence[float], start: Any, end: Any) -> dict[str, Any]:
    """Where a sequence of read values along a path goes from ``start`` to ``end``.

    ``clean``: the path starts at ``start``, ends at ``end``, takes no other value and changes exactly once;
    ``changes``: how often the value changes along the path; ``t``: the middle of the step where a clean switch
    happens (None otherwise)."""
    values = list(values)
    if len(values) != len(ts):
        raise ValueError(f"{len(values)} values for {len(ts)} path positions")
    changes = sum(x != y for x, y in zip(values, values[1:]))
    clean = (values[0] == start and values[-1] == end and changes == 1 and set(values) <= {start, end}
             and start != end)
    t = None
    if clean:
        k = next(i for i, v in enumerate(values) if v == end)
        t = (float(ts[k - 1]) + float(ts[k])) / 2
    return {"clean": bool(clean), "changes": int(changes), "t": t}


def summarise_paths(paths: Sequence[list[dict[str, Any]]], ends: Sequence[tuple[dict[str, Any], dict[str, Any]]],
                    ts: Sequence[float], attributes: Sequence[str] = ("shape", "colour", "position")) -> dict[str, Any]:
    """Over many paths: per attribute that differs between the two prompts, the share of clean switches and the mean
    switch position; the share of paths whose end pictures are read as their prompts ask; and the share of pictures
    along the paths that hold exactly one object. ``ends``: each path's (start, end) expected reading
    (:func:`reading`-like dicts)."""
    out: dict[str, Any] = {"n_paths": len(paths)}
    for attr in attributes:
        rows = [switch([r[attr] for r in p], ts, s[attr], e[attr]) for p, (s, e) in zip(paths, ends)
                if s[attr] != e[attr]]
        switched = [r["t"] for r in rows if r["clean"]]
        out[attr] = {"clean_switch": round(float(np.mean([r["clean"] for r in rows])), 4) if rows else None,
                     "mean_switch_t": round(float(np.mean(switched)), 3) if switched else None,
                     "mean_changes": round(float(np.mean([r["changes"] for r in rows])), 3) if rows else None,
                     "n": len(rows)}
    out["ends_read_right"] = round(float(np.mean([
        all(p[0][a] == s[a] and p[-1][a] == e[a] for a in attributes) for p, (s, e) in zip(paths, ends)])), 4) \
        if paths else None
    out["one_object_along_path"] = round(float(np.mean([r["count"] == 1 for p in paths for r in p])), 4) \
        if paths else None
    return out


def norm_profile(a: torch.Tensor, b: torch.Tensor, ts: Sequence[float], method: str) -> list[float]:
    """The mean norm of the path's points at each ``t`` (divided by the mean end-point norm): lerp dips in the middle,
    slerp does not."""
    pts = path(a, b, ts, method).flatten(2).norm(dim=2)  # (T, B)
    ref = (a.flatten(1).norm(dim=1) + b.flatten(1).norm(dim=1)) / 2
    return [round(float((p / ref).mean()), 4) for p in pts]


__all__ = ["METHODS", "ATTRIBUTES", "SLERP_MIN_ANGLE", "lerp", "slerp", "path", "reading", "read_path", "switch",
           "summarise_paths", "norm_profile"]

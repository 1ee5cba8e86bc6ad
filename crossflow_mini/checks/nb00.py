"""Checks for the exercises of notebook 00 (set-up and data: profiles, ShapesWorld, the frozen text encoder).

Each check recomputes the expected value from the library or the data at run time, so it holds under every profile.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

import numpy as np
import torch

from ..core.source import masked_mean
from ..datasets import shapes as sw
from ..profiles import Profile, get_profile
from . import close, verdict


def profile_differences(a: Profile, b: Profile) -> set[str]:
    """The names of the :class:`~crossflow_mini.profiles.Profile` fields whose values differ between ``a`` and ``b``."""
    return {f.name for f in dataclasses.fields(Profile) if getattr(a, f.name) != getattr(b, f.name)}


def exercise_1(changed_fields: Iterable[str]) -> bool:
    """Profiles: the fields in which ``smoke`` differs from ``course``."""
    expected = profile_differences(get_profile("smoke"), get_profile("course"))
    try:
        answer = set(changed_fields)
    except TypeError:
        answer = set()
    missing, extra = sorted(expected - answer), sorted(answer - expected)
    hint = "; ".join(part for part in (f"missing {missing[:4]}" if missing else "",
                                       f"not different: {extra[:4]}" if extra else "") if part)
    return verdict(answer == expected, f"{len(expected)} profile fields differ between smoke and course",
                   f"{hint} - compare every field of dataclasses.fields(Profile)")


def mean_pooled(encoder: Any, captions: list[str]) -> torch.Tensor:
    """L2-normalised mean of each caption's real MiniLM tokens, ``(len(captions), 384)``."""
    tokens, mask = encoder.encode(captions).batch(slice(None))
    return torch.nn.functional.normalize(masked_mean(tokens, mask), dim=-1)


def exercise_2(swap_similarity: float, encoder: Any, caption: str, swapped: str) -> bool:
    """Paraphrases: the cosine similarity of the mean-pooled embeddings of ``caption`` and its colour-swapped
    version ``swapped``."""
    a, b = mean_pooled(encoder, [caption, swapped])
    expected = float(a @ b)
    return verdict(close(swap_similarity, expected, rtol=0, atol=1e-4),
                   f"cosine similarity {expected:.3f} between {caption!r} and {swapped!r}",
                   "mean-pool each caption's real tokens (masked_mean), L2-normalise, take the dot product")


def exercise_3(drawn: list[tuple[str, str, str]], images: np.ndarray) -> bool:
    """Held-out combinations: every held-out (shape, colour) in every size, each image showing its colour at its
    centre (objects drawn at the image centre)."""
    expected = {(shape, colour, size) for shape, colour in sw.HELDOUT_COMBINATIONS for size in sw.SIZES}
    labels = [tuple(d) for d in drawn]
    if set(labels) != expected or len(labels) != len(expected):
        return verdict(False, f"{len(expected)} images: {len(sw.HELDOUT_COMBINATIONS)} held-out combinations x "
                              f"{len(sw.SIZES)} sizes", "list each (shape, colour, size) once in `drawn`")
    images = np.asarray(images)
    if images.ndim != 4 or len(images) != len(labels) or images.shape[-1] != 3:
        return verdict(False, "one RGB image per entry of `drawn`", "sw.render returns (N, H, W, 3) uint8 images")
    h, w = images.shape[1:3]
    centre = images[:, h // 2, w // 2].astype(int)
    wrong = [lab for lab, rgb in zip(labels, centre) if np.abs(rgb - sw.COLOUR_RGB[lab[1]]).max() > 8]
    return verdict(not wrong, f"all {len(expected)} held-out (shape, colour, size) drawn",
                   f"these images do not show their colour at the centre: {wrong[:3]}")


def relation_separations(split: sw.ShapesWorldSplit) -> np.ndarray:
    """For every ``pair`` scene: object 1 minus object 0 along the relation's axis, signed so that the relation
    holds when it is positive (as fractions of the image side)."""
    pairs = np.flatnonzero(split.kinds == sw.SCENE_KINDS.index("pair"))
    c0, c1 = split.centres[pairs, 0], split.centres[pairs, 1]
    rel = split.relations[pairs]
    axis = np.where(np.isin(rel, [sw.RELATIONS.index("left of"), sw.RELATIONS.index("right of")]), 0, 1)
    sign = np.where(np.isin(rel, [sw.RELATIONS.index("left of"), sw.RELATIONS.index("above")]), 1.0, -1.0)
    return sign * (c1[np.arange(len(pairs)), axis] - c0[np.arange(len(pairs)), axis])


def exercise_4(smallest_separation: float, split: sw.ShapesWorldSplit) -> bool:
    """Relations: the smallest separation of the two objects of a pair along the relation's axis (a fraction of
    the image side), over the pair scenes of ``split``."""
    expected = float(relation_separations(split).min())
    return verdict(close(smallest_separation, expected, rtol=0, atol=1e-4),
                   f"smallest separation along the relation axis {expected:.4f} of the image side "
                   f"({expected * split.images.shape[1]:.1f} px)",
                   "x for 'left of' / 'right of', y for 'above' / 'below' (y grows downwards); a fraction, "
                   "not pixels")


__all__ = ["profile_differences", "mean_pooled", "relation_separations", "exercise_1", "exercise_2", "exercise_3",
           "exercise_4"]

"""ShapesWorld: deterministic, procedurally rendered toy scenes with captions and exact attributes.

Each RGB image (``cfg.image_size`` square, 32 x 32 by default) shows 1-3 flat-coloured objects on a plain
dark-grey background. Every sample keeps its structured attributes (shape, colour, size and centre of each
object, the position word or the relation between two objects) next to its caption, so later code can train
a "judge" that reads the attributes back and score text-to-image models on a mini-GenEval.

Three scene kinds (:data:`SCENE_KINDS`), in equal numbers:

* ``single`` - one object of some size, in one of the regions :data:`POSITIONS` ("a large red circle on the left").
* ``pair``   - two objects that differ in shape *and* colour, in one of the :data:`RELATIONS`
  ("a red circle to the left of a blue square"); object 0 is the subject: ``object0 REL object1``.
* ``count``  - two or three identical small objects ("three red squares").

Geometry is sampled in image coordinates in ``[0, 1]`` (x to the right, y down), independent of the
resolution; :func:`render` draws scenes with signed-distance anti-aliasing, vectorised over the batch.
Objects never overlap (their bounding boxes keep a gap) and stay fully inside the image.

Some (shape, colour) combinations (:data:`HELDOUT_COMBINATIONS`) never occur in ``train`` or ``val``; about a
quarter of the ``test`` samples contain at least one of them and are flagged ``heldout``.

Captions come from the grammar in :mod:`crossflow_mini.datasets.shapes_text`, in one of two vocabularies
(``ShapesDataConfig.vocabulary``): ``"template"`` (the closed template set every shipped checkpoint was trained
on) or ``"rich"`` (many synonyms and sentence forms, with test-only wording flagged ``test_only_wording``). The
vocabulary changes only the captions: images and attributes are the same for the same seed.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from ..configs import added_field
from . import shapes_text
from .shapes_text import (CAPTION_TEMPLATES, INVERSE_RELATION, NUMBER_WORDS, POSITION_PHRASES, RELATION_PHRASES,
                          SHAPE_PLURALS, SIZE_WORDS, VOCABULARIES)


@dataclass(frozen=True)
class ShapesDataConfig:
    """ShapesWorld split sizes and caption vocabulary (see :mod:`crossflow_mini.datasets.shapes`).

    ``vocabulary``: ``"template"`` (the shipped captions, bit for bit) or ``"rich"`` (the grammar of
    :mod:`~crossflow_mini.datasets.shapes_text` with synonyms and test-only wording); images are the same."""

    n_train: int = 50_000
    n_val: int = 2_000
    n_test: int = 4_000
    image_size: int = 32
    seed: int = 0
    vocabulary: str = added_field("template")

# ------------------------------------------------------------------------------------------- vocabulary
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "diamond")
#: Saturated, clearly distinct colours (RGB, 0..255).
COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (40, 90, 235),
    "yellow": (240, 220, 40),
    "purple": (160, 60, 220),
    "cyan": (40, 210, 230),
}
COLOURS: tuple[str, ...] = tuple(COLOUR_RGB)
BACKGROUND_RGB: tuple[int, int, int] = (60, 60, 60)
SIZES: tuple[str, ...] = ("small", "large")
POSITIONS: tuple[str, ...] = ("left", "right", "top", "bottom", "centre")
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
SCENE_KINDS: tuple[str, ...] = ("single", "pair", "count")
SPLITS: tuple[str, ...] = ("train", "val", "test")
MAX_OBJECTS = 3
COUNT_CHOICES: tuple[int, ...] = (2, 3)

#: (shape, colour) pairs that never appear in train or val - only in the held-out part of test.
HELDOUT_COMBINATIONS: frozenset[tuple[str, str]] = frozenset({
    ("triangle", "blue"), ("circle", "yellow"), ("square", "purple"), ("diamond", "green"), ("cross", "red"),
})
HELDOUT_TEST_FRACTION = 0.25  # share of test samples that contain at least one held-out object
SPLIT_SEED_STRIDE = 1000  # split seed = cfg.seed * SPLIT_SEED_STRIDE + SPLITS.index(split)

# --------------------------------------------------------------------------------------------- geometry
# Lengths are given in pixels of a REFERENCE_SIZE image and stored as fractions of the image side, so the
# same seed gives the same scenes (just sharper) at any resolution.
REFERENCE_SIZE = 32
MIN_IMAGE_SIZE = 16
SIZE_HALF_EXTENT_PX: tuple[float, ...] = (4.5, 7.5)  # half the bounding-box side of a small / large object
SIZE_HALF_EXTENTS: tuple[float, ...] = tuple(px / REFERENCE_SIZE for px in SIZE_HALF_EXTENT_PX)
EDGE_MARGIN = 1.0 / REFERENCE_SIZE  # free space between an object's bounding box and the image border
MIN_GAP = 2.0 / REFERENCE_SIZE  # free space between the bounding boxes of two objects
PAIR_GAP = 3.0 / REFERENCE_SIZE  # ... along the relation axis of a pair (a clearly visible separation)
#: Region centres (x, y) of the single-object positions; a centre is jittered by at most POSITION_JITTER per axis.
POSITION_ANCHORS: dict[str, tuple[float, float]] = {
    "left": (0.28, 0.5), "right": (0.72, 0.5), "top": (0.5, 0.28), "bottom": (0.5, 0.72), "centre": (0.5, 0.5),
}
POSITION_JITTER = 0.05
PAIR_SIZE_CHOICES: tuple[tuple[int, int], ...] = ((0, 0), (0, 1), (1, 0))  # two large objects do not fit side by side
PAIR_LINE_RANGE = 0.15  # the pair's shared cross-axis line lies within 0.5 +- this
PAIR_CROSS_JITTER = 0.04  # each object's offset from that line (so the off-axis offset stays small)
COUNT_SIZE = SIZES.index("small")  # three large objects do not fit in the image
MAX_PLACEMENT_ROUNDS = 10_000

# Shape outlines, relative to the half-extent r (all shapes fill their centre and fit in the r-box).
SQUARE_SCALE = 0.85  # squares are a bit smaller than their box so they do not look bigger than circles
CROSS_ARM_HALF_WIDTH = 0.35

RENDER_CHUNK = 2048  # images rendered at once (bounds memory: ~40 MB per chunk at 32 x 32)

# ---------------------------------------------------------------------------------------------- captions
# The words (SHAPE_PLURALS, SIZE_WORDS, POSITION_PHRASES, RELATION_PHRASES, NUMBER_WORDS, CAPTION_TEMPLATES,
# INVERSE_RELATION) live in shapes_text, the one place of the caption grammar; they are imported above.
assert (shapes_text.SHAPE_NAMES, shapes_text.COLOUR_NAMES, shapes_text.SIZE_NAMES, shapes_text.POSITION_NAMES,
        shapes_text.RELATION_NAMES, shapes_text.SCENE_KINDS) == (SHAPES, COLOURS, SIZES, POSITIONS, RELATIONS,
                                                                 SCENE_KINDS), "caption grammar and scenes disagree"

# (shape, colour) combination ids: shape * len(COLOURS) + colour. Sorted, so sampling never depends on set order.
_N_COMBOS = len(SHAPES) * len(COLOURS)
_HELDOUT_IDS = np.array(sorted(SHAPES.index(s) * len(COLOURS) + COLOURS.index(c) for s, c in HELDOUT_COMBINATIONS))
#: An extra split for the judge (the referee, not a model under test): ``cfg.n_train`` fresh scenes over ALL
#: (shape, colour) combinations, so that it can recognise the held-out ones it will be asked to judge.
#: No generator ever trains on it, and the judge is scored on the ``test`` split, which it never sees.
JUDGE_SPLIT = "judge"
JUDGE_HELDOUT_FRACTION = len(HELDOUT_COMBINATIONS) / _N_COMBOS  # every combination about equally often
_IN_DIST_IDS = np.setdiff1d(np.arange(_N_COMBOS), _HELDOUT_IDS)
_ALL_IDS = np.arange(_N_COMBOS)
_PALETTE = np.array([COLOUR_RGB[c] for c in COLOURS], dtype=np.float32)
_HALF_EXTENTS = np.array(SIZE_HALF_EXTENTS, dtype=np.float32)


# ------------------------------------------------------------------------------------------------ split
@dataclass
class ShapesWorldSplit:
    """One split of ShapesWorld: images, captions and per-object attributes (index arrays, -1 = no object)."""

    split: str
    images: np.ndarray  # uint8 (N, H, W, 3)
    captions: list[str]
    kinds: np.ndarray  # int (N,), index into SCENE_KINDS
    n_objects: np.ndarray  # int (N,) in 1..3
    shapes: np.ndarray  # int (N, 3), index into SHAPES, -1 where no object
    colours: np.ndarray  # int (N, 3), index into COLOURS, -1 where no object
    sizes: np.ndarray  # int (N, 3), index into SIZES, -1 where no object
    centres: np.ndarray  # float32 (N, 3, 2), (x, y) in [0, 1] (x right, y down), nan where no object
    positions: np.ndarray  # int (N,), index into POSITIONS for "single" scenes, -1 otherwise
    relations: np.ndarray  # int (N,), index into RELATIONS for "pair" scenes (object 0 REL object 1), -1 otherwise
    heldout: np.ndarray  # bool (N,), True where the scene contains a held-out (shape, colour) combination
    vocabulary: str = "template"  # the caption vocabulary (ShapesDataConfig.vocabulary)
    #: bool (N,), True where the caption uses test-only wording (rich vocabulary, test split only); None -> all False
    test_only_wording: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.test_only_wording is None:
            self.test_only_wording = np.zeros(len(self.captions), dtype=bool)

    def __len__(self) -> int:
        return len(self.captions)

    def attributes(self, i: int) -> dict[str, Any]:
        """Sample ``i``'s attributes as plain Python with names, e.g. ``{"kind": "single", "objects": [...]}``."""
        i = _check_index(i, len(self))
        n = int(self.n_objects[i])
        objects = [
            {
                "shape": SHAPES[self.shapes[i, k]],
                "colour": COLOURS[self.colours[i, k]],
                "size": SIZES[self.sizes[i, k]],
                "centre": (float(self.centres[i, k, 0]), float(self.centres[i, k, 1])),
            }
            for k in range(n)
        ]
        return {
            "index": i,
            "split": self.split,
            "kind": SCENE_KINDS[self.kinds[i]],
            "caption": self.captions[i],
            "n_objects": n,
            "objects": objects,
            "position": POSITIONS[self.positions[i]] if self.positions[i] >= 0 else None,
            "relation": RELATIONS[self.relations[i]] if self.relations[i] >= 0 else None,
            "heldout": bool(self.heldout[i]),
            "test_only_wording": bool(self.test_only_wording[i]),
        }

    def paraphrases(self, i: int) -> list[str]:
        """Captions of sample ``i``'s scene, its stored caption first: every template filled in (``template``
        vocabulary), or every train/val sentence form with the canonical words (``rich``; see
        :func:`~crossflow_mini.datasets.shapes_text.rich_paraphrases`). References for caption metrics."""
        stored = self.captions[_check_index(i, len(self))]
        others = captions_for(self.attributes(i), self.vocabulary)
        if self.vocabulary == "template":
            return others  # the stored caption is one of the templates
        return [stored] + [c for c in others if c != shapes_text.normalise(stored)]

    def images_tensor(self) -> torch.Tensor:
        """All images as float32 ``(N, 3, H, W)`` in ``[-1, 1]``."""
        return images_to_tensor(self.images)

    def subset(self, which: np.ndarray) -> "ShapesWorldSplit":
        """The samples selected by a boolean mask or an index array (e.g. ``split.subset(split.heldout)``)."""
        idx = np.flatnonzero(which) if np.asarray(which).dtype == bool else np.asarray(which, dtype=np.int64)
        return ShapesWorldSplit(
            self.split, self.images[idx], [self.captions[i] for i in idx], self.kinds[idx], self.n_objects[idx],
            self.shapes[idx], self.colours[idx], self.sizes[idx], self.centres[idx], self.positions[idx],
            self.relations[idx], self.heldout[idx], self.vocabulary, self.test_only_wording[idx])


def _check_index(i: int, n: int) -> int:
    if not -n <= i < n:
        raise IndexError(f"sample index {i} is out of range for a split of {n} samples")
    return int(i) % n


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(..., H, W, 3)`` -> float32 ``(..., 3, H, W)`` in ``[-1, 1]`` (a fresh, writable copy)."""
    scaled = images.astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(scaled, -1, -3)))


# --------------------------------------------------------------------------------------------- captions
def captions_for(attrs: dict[str, Any], vocabulary: str = "template") -> list[str]:
    """All paraphrases of the scene described by ``attrs`` (as returned by :meth:`ShapesWorldSplit.attributes`):
    every template (``"template"``), or every train/val sentence form with canonical words (``"rich"``)."""
    if _check_vocabulary(vocabulary) == "rich":
        return shapes_text.rich_paraphrases(attrs)
    return shapes_text.template_captions(attrs)


def caption_for(attrs: dict[str, Any], template: int) -> str:
    """Caption template number ``template`` of the scene ``attrs``
    (:func:`~crossflow_mini.datasets.shapes_text.template_caption`).

    ``attrs`` needs ``kind``, ``objects`` (dicts with ``shape``, ``colour``, ``size``) and, for ``single``
    scenes ``position``, for ``pair`` scenes ``relation``; see :meth:`ShapesWorldSplit.attributes`."""
    return shapes_text.template_caption(attrs, template)


def _check_vocabulary(vocabulary: str) -> str:
    if vocabulary not in VOCABULARIES:
        raise ValueError(f"unknown caption vocabulary {vocabulary!r}; choose one of {', '.join(VOCABULARIES)}")
    return vocabulary


def _names_only(kind: int, n: int, shapes: np.ndarray, colours: np.ndarray, sizes: np.ndarray,
                position: int, relation: int) -> dict[str, Any]:
    """The part of an attributes dict that :func:`caption_for` reads, built straight from index arrays."""
    return {
        "kind": SCENE_KINDS[kind],
        "objects": [{"shape": SHAPES[shapes[k]], "colour": COLOURS[colours[k]], "size": SIZES[sizes[k]]}
                    for k in range(n)],
        "position": POSITIONS[position] if position >= 0 else None,
        "relation": RELATIONS[relation] if relation >= 0 else None,
    }


# ------------------------------------------------------------------------------------------ geometry read-back
def position_of(centres: np.ndarray) -> np.ndarray:
    """Index into :data:`POSITIONS` of the region nearest to each centre ``(..., 2)`` (the judge's rule)."""
    anchors = np.array([POSITION_ANCHORS[p] for p in POSITIONS], dtype=np.float32)
    dist = np.linalg.norm(np.asarray(centres, dtype=np.float32)[..., None, :] - anchors, axis=-1)
    return dist.argmin(axis=-1)


def relation_of(centre0: np.ndarray, centre1: np.ndarray) -> np.ndarray:
    """Index into :data:`RELATIONS` of ``object0 REL object1`` along the axis where the two centres differ most."""
    d = np.asarray(centre1, dtype=np.float32) - np.asarray(centre0, dtype=np.float32)  # object 1 minus object 0
    horizontal = np.abs(d[..., 0]) >= np.abs(d[..., 1])
    return np.where(horizontal, np.where(d[..., 0] > 0, RELATIONS.index("left of"), RELATIONS.index("right of")),
                    np.where(d[..., 1] > 0, RELATIONS.index("above"), RELATIONS.index("below")))


# -------------------------------------------------------------------------------------------------- render
# Signed distance (in pixels, negative inside; exact near edges) from pixel offsets (u, v) to the outline of a
# shape of half-extent r, before it is clipped to its r-box.
def _sdf_circle(u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    return np.sqrt(u * u + v * v) - r


def _sdf_square(u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) - SQUARE_SCALE * r


def _sdf_triangle(u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    # Apex (0, -r) at the top, base corners (+-r, r); the slanted sides have outward normals (+-2, -1) / sqrt(5).
    # The base (v = r) and the apex cap come from the r-box that _slot_coverage intersects every shape with.
    return (2 * np.abs(u) - v - r) / math.sqrt(5)


def _sdf_cross(u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    au, av, w = np.abs(u), np.abs(v), CROSS_ARM_HALF_WIDTH * r
    return np.minimum(np.maximum(au - r, av - w), np.maximum(au - w, av - r))


def _sdf_diamond(u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    return (np.abs(u) + np.abs(v) - r) / math.sqrt(2)


_SDFS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "circle": _sdf_circle, "square": _sdf_square, "triangle": _sdf_triangle, "cross": _sdf_cross,
    "diamond": _sdf_diamond,
}
assert tuple(_SDFS) == SHAPES, "every shape needs a signed-distance function"


def _slot_coverage(shapes: np.ndarray, sizes: np.ndarray, centres: np.ndarray, image_size: int) -> np.ndarray:
    """Anti-aliased coverage in [0, 1], float32 ``(B, H, W)``, of one object per scene (shape -1 = none)."""
    coverage = np.zeros((len(shapes), image_size, image_size), dtype=np.float32)
    grid = np.arange(image_size, dtype=np.float32) + 0.5  # pixel centres, in pixels
    for s, name in enumerate(SHAPES):
        rows = np.flatnonzero(shapes == s)
        if rows.size == 0:
            continue
        cx = (centres[rows, 0] * image_size).astype(np.float32)[:, None, None]
        cy = (centres[rows, 1] * image_size).astype(np.float32)[:, None, None]
        r = (_HALF_EXTENTS[sizes[rows]] * image_size)[:, None, None]
        u, v = grid[None, None, :] - cx, grid[None, :, None] - cy
        # Intersecting with the r-box keeps the anti-aliased fringe at sharp corners within half a pixel of it.
        sd = np.maximum(_SDFS[name](u, v, r), np.maximum(np.abs(u), np.abs(v)) - r)
        coverage[rows] = np.clip(0.5 - sd, 0.0, 1.0)  # a one-pixel linear ramp across the outline
    return coverage


def _check_scene_arrays(shapes: Any, sizes: Any, centres: Any, image_size: int,
                        colours: Any | None = None) -> tuple[np.ndarray, ...]:
    shapes, sizes = np.asarray(shapes, dtype=np.int64), np.asarray(sizes, dtype=np.int64)
    centres = np.asarray(centres, dtype=np.float32)
    if shapes.ndim != 2 or sizes.shape != shapes.shape or centres.shape != (*shapes.shape, 2):
        raise ValueError(
            f"render expects shapes/colours/sizes of shape (N, K) and centres (N, K, 2), got shapes {shapes.shape}, "
            f"sizes {sizes.shape}, centres {centres.shape}; wrap a single scene as [[...]]"
        )
    present = shapes >= 0
    if (shapes >= len(SHAPES)).any() or (present & ((sizes < 0) | (sizes >= len(SIZES)))).any():
        raise ValueError(f"shape indices must be in -1..{len(SHAPES) - 1} and sizes of present objects in "
                         f"0..{len(SIZES) - 1}")
    if colours is not None:
        colours = np.asarray(colours, dtype=np.int64)
        if colours.shape != shapes.shape or (present & ((colours < 0) | (colours >= len(COLOURS)))).any():
            raise ValueError(f"colours must have shape {shapes.shape} with indices 0..{len(COLOURS) - 1} "
                             "for every present object")
    if not np.isfinite(centres[present]).all():
        raise ValueError("every present object (shape >= 0) needs a finite centre")
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be at least {MIN_IMAGE_SIZE}, got {image_size}")
    return shapes, sizes, centres, colours


def render(shapes: Any, colours: Any, sizes: Any, centres: Any, image_size: int = REFERENCE_SIZE) -> np.ndarray:
    """Draw a batch of scenes from their attributes: uint8 ``(N, H, W, 3)``.

    ``shapes``, ``colours``, ``sizes``: int ``(N, K)`` indices into :data:`SHAPES`, :data:`COLOURS`,
    :data:`SIZES` (-1 where a slot is empty); ``centres``: ``(N, K, 2)`` (x, y) in ``[0, 1]``. Edges are
    anti-aliased from each shape's signed distance; vectorised over the batch in chunks of RENDER_CHUNK."""
    shapes, sizes, centres, colours = _check_scene_arrays(shapes, sizes, centres, image_size, colours)
    n, k = shapes.shape
    images = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    background = np.array(BACKGROUND_RGB, dtype=np.float32)
    for start in range(0, n, RENDER_CHUNK):
        stop = min(start + RENDER_CHUNK, n)
        canvas = np.broadcast_to(background, (stop - start, image_size, image_size, 3)).copy()
        for slot in range(k):
            alpha = _slot_coverage(shapes[start:stop, slot], sizes[start:stop, slot], centres[start:stop, slot],
                                   image_size)[..., None]
            colour = _PALETTE[np.clip(colours[start:stop, slot], 0, None)][:, None, None, :]
            canvas += alpha * (colour - canvas)
        images[start:stop] = np.rint(canvas)
    return images


def swapped_pairs(split: ShapesWorldSplit) -> tuple[np.ndarray, np.ndarray]:
    """Hard negatives for the two-object scenes: each pair scene of ``split`` drawn again with the same words but
    the wrong binding - the two objects' colours swapped, or, where both have the same colour, their places swapped
    (which flips the relation). Returns the pair scenes' indices and their swapped images, uint8 ``(P, H, W, 3)``
    (the contrastive loss's extra negatives; docs/METHOD.md Sec. 9, ours)."""
    rows = np.flatnonzero(split.kinds == SCENE_KINDS.index("pair"))
    colours, centres = split.colours[rows].copy(), split.centres[rows].copy()
    same = colours[:, 0] == colours[:, 1]
    colours[~same, 0], colours[~same, 1] = split.colours[rows[~same], 1], split.colours[rows[~same], 0]
    centres[same, 0], centres[same, 1] = split.centres[rows[same], 1], split.centres[rows[same], 0]
    images = render(split.shapes[rows], colours, split.sizes[rows], centres, split.images.shape[1])
    return rows, images


def render_masks(shapes: Any, sizes: Any, centres: Any, image_size: int = REFERENCE_SIZE) -> np.ndarray:
    """Per-object anti-aliased coverage, float32 ``(N, K, H, W)`` in ``[0, 1]`` (0 for empty slots)."""
    shapes, sizes, centres, _ = _check_scene_arrays(shapes, sizes, centres, image_size)
    masks = np.zeros((*shapes.shape, image_size, image_size), dtype=np.float32)
    for slot in range(shapes.shape[1]):
        masks[:, slot] = _slot_coverage(shapes[:, slot], sizes[:, slot], centres[:, slot], image_size)
    return masks


# ------------------------------------------------------------------------------------------------ sampling
@dataclass
class _Scenes:
    """Attributes of a batch of scenes being sampled (same layout as :class:`ShapesWorldSplit`)."""

    shapes: np.ndarray
    colours: np.ndarray
    sizes: np.ndarray
    centres: np.ndarray
    positions: np.ndarray
    relations: np.ndarray
    n_objects: np.ndarray

    @classmethod
    def empty(cls, n: int) -> "_Scenes":
        return cls(*(np.full((n, MAX_OBJECTS), -1, dtype=np.int64) for _ in range(3)),
                   np.full((n, MAX_OBJECTS, 2), np.nan, dtype=np.float32),
                   np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64), np.zeros(n, dtype=np.int64))


def _pick(rng: np.random.Generator, pool: np.ndarray, n: int) -> np.ndarray:
    return pool[rng.integers(0, len(pool), n)]


def _combos(rng: np.random.Generator, heldout: np.ndarray) -> np.ndarray:
    """One (shape, colour) id per row: a held-out one where ``heldout``, an in-distribution one elsewhere."""
    return np.where(heldout, _pick(rng, _HELDOUT_IDS, len(heldout)), _pick(rng, _IN_DIST_IDS, len(heldout)))


def _uniform_between(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return lo + rng.random(np.shape(lo)) * (hi - lo)


def _sample_single(rng: np.random.Generator, heldout: np.ndarray, out: _Scenes, rows: np.ndarray) -> None:
    m = len(rows)
    combo = _combos(rng, heldout)
    size = rng.integers(0, len(SIZES), m)
    position = rng.integers(0, len(POSITIONS), m)
    r = _HALF_EXTENTS[size]
    anchors = np.array([POSITION_ANCHORS[p] for p in POSITIONS], dtype=np.float32)[position]  # (m, 2)
    lo = np.maximum(anchors - POSITION_JITTER, (EDGE_MARGIN + r)[:, None])
    hi = np.minimum(anchors + POSITION_JITTER, (1 - EDGE_MARGIN - r)[:, None])
    out.shapes[rows, 0], out.colours[rows, 0] = np.divmod(combo, len(COLOURS))
    out.sizes[rows, 0] = size
    out.centres[rows, 0] = _uniform_between(rng, lo, hi)
    out.positions[rows] = position
    out.n_objects[rows] = 1


def _sample_pair(rng: np.random.Generator, heldout: np.ndarray, out: _Scenes, rows: np.ndarray) -> None:
    m = len(rows)
    # Objects differ in shape and colour. In a held-out scene a random one of the two is a held-out combination.
    first = _combos(rng, heldout)
    pool_other = np.where(heldout, _pick(rng, _ALL_IDS, m), _pick(rng, _IN_DIST_IDS, m))
    for _ in range(MAX_PLACEMENT_ROUNDS):
        (shape_a, colour_a), (shape_b, colour_b) = np.divmod(first, len(COLOURS)), np.divmod(pool_other, len(COLOURS))
        clash = (shape_a == shape_b) | (colour_a == colour_b)
        if not clash.any():
            break
        pool_other[clash] = np.where(heldout[clash], _pick(rng, _ALL_IDS, int(clash.sum())),
                                     _pick(rng, _IN_DIST_IDS, int(clash.sum())))
    swap = heldout & (rng.integers(0, 2, m) == 1)
    combo = np.stack([np.where(swap, pool_other, first), np.where(swap, first, pool_other)], axis=1)
    size = np.array(PAIR_SIZE_CHOICES)[rng.integers(0, len(PAIR_SIZE_CHOICES), m)]  # (m, 2)
    relation = rng.integers(0, len(RELATIONS), m)
    r = _HALF_EXTENTS[size]
    # Along the relation axis the "lesser" object (left / upper) comes first, at distance d before the other.
    lesser_first = np.isin(relation, [RELATIONS.index("left of"), RELATIONS.index("above")])
    r_a, r_b = np.where(lesser_first, r[:, 0], r[:, 1]), np.where(lesser_first, r[:, 1], r[:, 0])
    d = _uniform_between(rng, r_a + r_b + PAIR_GAP, 1 - 2 * EDGE_MARGIN - r_a - r_b)
    p_a = _uniform_between(rng, EDGE_MARGIN + r_a, 1 - EDGE_MARGIN - r_b - d)
    main = np.where(lesser_first[:, None], np.stack([p_a, p_a + d], 1), np.stack([p_a + d, p_a], 1))
    line = 0.5 + rng.uniform(-PAIR_LINE_RANGE, PAIR_LINE_RANGE, m)
    cross = line[:, None] + rng.uniform(-PAIR_CROSS_JITTER, PAIR_CROSS_JITTER, (m, 2))
    horizontal = np.isin(relation, [RELATIONS.index("left of"), RELATIONS.index("right of")])[:, None]
    centres = np.stack([np.where(horizontal, main, cross), np.where(horizontal, cross, main)], axis=-1)
    out.shapes[rows, :2], out.colours[rows, :2] = np.divmod(combo, len(COLOURS))
    out.sizes[rows, :2] = size
    out.centres[rows, :2] = centres
    out.relations[rows] = relation
    out.n_objects[rows] = 2


def _boxes_apart(a: np.ndarray, b: np.ndarray, min_distance: float) -> np.ndarray:
    """True where the centres ``(..., 2)`` are at least ``min_distance`` apart along x or y (boxes disjoint)."""
    return np.abs(a - b).max(axis=-1) >= min_distance


def _sample_count(rng: np.random.Generator, heldout: np.ndarray, out: _Scenes, rows: np.ndarray) -> None:
    m = len(rows)
    combo = _combos(rng, heldout)
    n = np.array(COUNT_CHOICES)[rng.integers(0, len(COUNT_CHOICES), m)]
    r = float(_HALF_EXTENTS[COUNT_SIZE])
    lo, hi, apart = EDGE_MARGIN + r, 1 - EDGE_MARGIN - r, 2 * r + MIN_GAP
    centres = rng.uniform(lo, hi, (m, MAX_OBJECTS, 2))
    todo = np.arange(m)
    for _ in range(MAX_PLACEMENT_ROUNDS):  # rejection sampling: redraw every scene with touching objects
        c, third = centres[todo], n[todo] == 3
        ok = (_boxes_apart(c[:, 0], c[:, 1], apart)
              & (~third | (_boxes_apart(c[:, 0], c[:, 2], apart) & _boxes_apart(c[:, 1], c[:, 2], apart))))
        todo = todo[~ok]
        if todo.size == 0:
            break
        centres[todo] = rng.uniform(lo, hi, (todo.size, MAX_OBJECTS, 2))
    else:
        raise RuntimeError("could not place the count objects without overlap; reduce the object sizes or gaps")
    present = np.arange(MAX_OBJECTS)[None, :] < n[:, None]
    shape, colour = np.divmod(combo, len(COLOURS))
    out.shapes[rows] = np.where(present, shape[:, None], -1)
    out.colours[rows] = np.where(present, colour[:, None], -1)
    out.sizes[rows] = np.where(present, COUNT_SIZE, -1)
    out.centres[rows] = np.where(present[..., None], centres, np.nan)
    out.n_objects[rows] = n


_SAMPLERS = {"single": _sample_single, "pair": _sample_pair, "count": _sample_count}


# ---------------------------------------------------------------------------------------------- generation
def split_seed(split: str, cfg: ShapesDataConfig) -> int:
    """The seed of ``split``: ``cfg.seed * SPLIT_SEED_STRIDE + (SPLITS + (JUDGE_SPLIT,)).index(split)``."""
    return cfg.seed * SPLIT_SEED_STRIDE + (*SPLITS, JUDGE_SPLIT).index(_check_split(split))


def _check_split(split: str) -> str:
    if split not in SPLITS and split != JUDGE_SPLIT:
        raise ValueError(f"unknown ShapesWorld split {split!r}; choose one of {', '.join(SPLITS)}")
    return split


def _split_size(split: str, cfg: ShapesDataConfig) -> int:
    field = "n_train" if split == JUDGE_SPLIT else f"n_{split}"
    n = getattr(cfg, field)
    if not isinstance(n, (int, np.integer)) or n <= 0:
        raise ValueError(f"ShapesDataConfig.{field} must be a positive integer, got {n!r}; "
                         f"e.g. ShapesDataConfig({field}=100)")
    return int(n)


def generate_split(split: str, cfg: ShapesDataConfig = ShapesDataConfig()) -> ShapesWorldSplit:
    """Sample and render one split. Same ``cfg`` -> the same images and captions, bit for bit."""
    n = _split_size(_check_split(split), cfg)
    if cfg.image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"ShapesDataConfig.image_size must be at least {MIN_IMAGE_SIZE}, got {cfg.image_size}")
    _check_vocabulary(cfg.vocabulary)
    rng = np.random.default_rng(split_seed(split, cfg))
    kinds = rng.permutation(np.arange(n) % len(SCENE_KINDS))
    fraction = {"test": HELDOUT_TEST_FRACTION, JUDGE_SPLIT: JUDGE_HELDOUT_FRACTION}.get(split, 0.0)
    n_heldout = round(fraction * n)
    heldout = rng.permutation(np.arange(n) < n_heldout)
    scenes = _Scenes.empty(n)
    templates = np.zeros(n, dtype=np.int64)
    for k, kind in enumerate(SCENE_KINDS):
        rows = np.flatnonzero(kinds == k)
        _SAMPLERS[kind](rng, heldout[rows], scenes, rows)
        templates[rows] = rng.integers(0, len(CAPTION_TEMPLATES[kind]), len(rows))  # drawn in both vocabularies
    names = [_names_only(kinds[i], scenes.n_objects[i], scenes.shapes[i], scenes.colours[i], scenes.sizes[i],
                         scenes.positions[i], scenes.relations[i]) for i in range(n)]
    if cfg.vocabulary == "template":
        captions = [caption_for(names[i], int(templates[i])) for i in range(n)]
        test_only = np.zeros(n, dtype=bool)
    else:  # a separate random stream: the scenes (and `rng`) stay exactly those of the template vocabulary
        text_rng = np.random.default_rng([split_seed(split, cfg), shapes_text.RICH_CAPTION_STREAM])
        share = shapes_text.TEST_ONLY_WORDING_FRACTION if split == "test" else 0.0
        captions, test_only = shapes_text.rich_captions(names, text_rng, share)
    images = render(scenes.shapes, scenes.colours, scenes.sizes, scenes.centres, cfg.image_size)
    return ShapesWorldSplit(split=split, images=images, captions=captions, kinds=kinds, n_objects=scenes.n_objects,
                            shapes=scenes.shapes, colours=scenes.colours, sizes=scenes.sizes,
                            centres=scenes.centres, positions=scenes.positions, relations=scenes.relations,
                            heldout=heldout, vocabulary=cfg.vocabulary, test_only_wording=test_only)


@functools.lru_cache(maxsize=8)
def load_shapes(split: str, cfg: ShapesDataConfig = ShapesDataConfig()) -> ShapesWorldSplit:
    """:func:`generate_split`, cached in memory per ``(split, cfg)``. The arrays are shared and read-only."""
    data = generate_split(split, cfg)
    for value in vars(data).values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    return data


class ShapesWorldDataset(Dataset):
    """A ShapesWorld split for a ``DataLoader``: ``{"image": (3, H, W) float in [-1, 1], "caption", "index"}``."""

    def __init__(self, split: str, cfg: ShapesDataConfig = ShapesDataConfig()) -> None:
        self.data = load_shapes(split, cfg)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> dict[str, Any]:
        i = _check_index(index, len(self.data))
        return {"image": images_to_tensor(self.data.images[i]), "caption": self.data.captions[i], "index": i}


def benchmark(n: int = 50_000, image_size: int = REFERENCE_SIZE) -> float:
    """Images per second of :func:`generate_split` (sampling, captions and rendering) for ``n`` images."""
    cfg = ShapesDataConfig(n_train=n, n_val=1, n_test=1, image_size=image_size)
    start = time.perf_counter()
    generate_split("train", cfg)
    return n / (time.perf_counter() - start)


__all__ = [
    "SHAPES", "SHAPE_PLURALS", "COLOUR_RGB", "COLOURS", "BACKGROUND_RGB", "SIZES", "SIZE_HALF_EXTENTS",
    "POSITIONS", "POSITION_ANCHORS", "RELATIONS", "INVERSE_RELATION", "SCENE_KINDS", "SPLITS", "MAX_OBJECTS",
    "HELDOUT_COMBINATIONS", "HELDOUT_TEST_FRACTION", "CAPTION_TEMPLATES", "SIZE_WORDS", "POSITION_PHRASES",
    "RELATION_PHRASES", "NUMBER_WORDS", "VOCABULARIES", "ShapesWorldSplit", "ShapesWorldDataset",
    "generate_split", "load_shapes", "split_seed", "render", "render_masks", "caption_for", "captions_for",
    "position_of", "relation_of", "benchmark", "swapped_pairs", "images_to_tensor",
]

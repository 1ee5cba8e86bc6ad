"""Latent-arithmetic cases on ShapesWorld and what counts as success (paper Sec. 5.3, Table 8, Fig. 5-6).

A *case* is a sum of prompts with coefficients, the scene the sum should give, and the *trivial answer*: the one
prompt that asks for that scene directly. The kinds (:data:`KINDS`):

* ``addition`` - VE("a large red circle on the left") + VE("a small blue square on the right") -> a red circle and a
  blue square; trivial answer "a red circle to the left of a blue square". The operands stand where the pair's
  relation puts them (:data:`RELATION_POSITIONS`), so the pair caption exists, and their sizes are a pair's
  (:data:`~crossflow_mini.datasets.shapes.PAIR_SIZE_CHOICES`: two large objects do not fit side by side).
* ``subtraction`` - VE("a red circle to the left of a blue square") - VE("a small blue square on the right") -> the
  red circle alone; trivial answer "a large red circle on the left".
* ``edit_colour``, ``edit_shape``, ``edit_size``, ``edit_position`` - the paper's three-term "combination":
  VE("a red circle ...") - VE("a red square ...") + VE("a blue square ...") -> "a blue circle ..."; one attribute
  changes (red -> blue), a *helper* attribute (:data:`EDIT_HELPER`, here the shape) tells the operands apart, and
  everything else is shared. The trivial answer is the edited scene's caption.

Prompts use the grammar's canonical wording (template 0 of :mod:`crossflow_mini.datasets.shapes_text`, which is also
the first sentence form of the rich vocabulary with every slot's first word), so the operands are sentences every
ShapesWorld model was trained on. (shape, colour) combinations are drawn uniformly from all 30 - the test vocabulary,
held-out combinations included; a case is ``heldout`` when any object of an operand or of the target is a held-out
combination (:data:`~crossflow_mini.datasets.shapes.HELDOUT_COMBINATIONS`), and is reported apart.

Success (:func:`score`) is read from the judge's objects (:func:`crossflow_mini.eval.judge.read_scenes`):

* two-object targets (addition, the strength sweep): exactly two objects, whose (shape, colour) pairs are the two
  operands' - "count 2, both present" (the paper's detector checks presence); ``strict`` adds the relation and sizes;
* one-object targets (subtraction, edits): exactly one object with the target's shape and colour, and for a size or
  position edit the edited attribute too; ``strict`` checks shape, colour, size and position.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ...datasets import shapes as sw
from ...datasets import shapes_text as st
from ...eval.judge import ReadObject

KINDS: tuple[str, ...] = ("addition", "subtraction", "edit_colour", "edit_shape", "edit_size", "edit_position")
EDIT_KINDS: tuple[str, ...] = tuple(k for k in KINDS if k.startswith("edit_"))
#: Our kinds grouped as the paper's Table 8 rows (its "combination" is z_a + z_b - z_c: our attribute edits).
PAPER_ROWS: dict[str, tuple[str, ...]] = {"addition": ("addition",), "subtraction": ("subtraction",),
                                          "combination": EDIT_KINDS}
#: CrossFlow's arithmetic success in the paper (Table 8: a detector on 1,000 COCO prompts, %), quoted beside ours.
PAPER_TABLE8: dict[str, float] = {"addition": 95.3, "subtraction": 92.7, "combination": 87.5, "overall": 91.4}
#: The attribute that tells an edit's operands apart: A - A' + B' with A' = A with the helper changed,
#: B' = A' with the edited attribute changed (the paper's "a red circle" - "a red square" + "a blue square").
EDIT_HELPER: dict[str, str] = {"colour": "shape", "shape": "colour", "size": "shape", "position": "shape"}
#: Where a pair's objects stand when each is drawn alone: ``object0 REL object1`` <-> (position 0, position 1).
RELATION_POSITIONS: dict[str, tuple[str, str]] = {
    "left of": ("left", "right"), "right of": ("right", "left"), "above": ("top", "bottom"), "below": ("bottom", "top"),
}
#: Canonical wording: template 0 (= the first rich sentence form with every slot's first word).
CANONICAL_TEMPLATE = 0
_VALUES = {"shape": sw.SHAPES, "colour": sw.COLOURS, "size": sw.SIZES, "position": sw.POSITIONS}


@dataclass
class ArithmeticCase:
    """One arithmetic question: ``terms`` ((coefficient, prompt), ...) whose latent sum should give the scene
    ``target`` (an attributes dict in the layout of ``ShapesWorldSplit.attributes``: ``kind``, ``objects``,
    ``position``, ``relation``); ``trivial`` is the target's caption (asking directly); ``heldout``: an object of an
    operand or the target is a held-out (shape, colour) combination; ``edited``: the attribute an edit changes."""

    kind: str
    terms: tuple[tuple[float, str], ...]
    target: dict[str, Any]
    trivial: str
    heldout: bool
    edited: str | None = None

    @property
    def prompts(self) -> list[str]:
        return [p for _, p in self.terms]

    @property
    def coefficients(self) -> list[float]:
        return [c for c, _ in self.terms]

    def formula(self) -> str:
        """The case as text: ``VE("...") - VE("...") + VE("...")`` (coefficients other than 1 written out)."""
        parts = []
        for i, (c, p) in enumerate(self.terms):
            sign = "-" if c < 0 else ("+" if i else "")
            size = "" if abs(c) == 1 else f"{abs(c):g} "
            parts.append(f'{sign} {size}VE("{p}")'.strip())
        return " ".join(parts)

    def with_coefficients(self, coefficients: Sequence[float]) -> "ArithmeticCase":
        """The same prompts with other coefficients (the strength sweep: VE(A) + alpha VE(B))."""
        if len(coefficients) != len(self.terms):
            raise ValueError(f"{len(coefficients)} coefficients for {len(self.terms)} terms")
        return dataclasses.replace(self, terms=tuple((float(c), p) for c, (_, p) in zip(coefficients, self.terms)))


# ------------------------------------------------------------------------------------------------ scenes
def _obj(shape: int, colour: int, size: int) -> dict[str, str]:
    return {"shape": sw.SHAPES[shape], "colour": sw.COLOURS[colour], "size": sw.SIZES[size]}


def single(obj: dict[str, str], position: str) -> dict[str, Any]:
    """The attributes of a one-object scene."""
    return {"kind": "single", "n_objects": 1, "objects": [dict(obj)], "position": position, "relation": None}


def pair(a: dict[str, str], b: dict[str, str], relation: str) -> dict[str, Any]:
    """The attributes of a two-object scene ``a REL b``."""
    return {"kind": "pair", "n_objects": 2, "objects": [dict(a), dict(b)], "position": None, "relation": relation}


def caption(scene: dict[str, Any]) -> str:
    """The canonical caption of a scene (template :data:`CANONICAL_TEMPLATE`)."""
    return st.template_caption(scene, CANONICAL_TEMPLATE)


def is_heldout(*scenes: dict[str, Any]) -> bool:
    """Does any object of the scenes have a held-out (shape, colour) combination?"""
    return any((o["shape"], o["colour"]) in sw.HELDOUT_COMBINATIONS for s in scenes for o in s["objects"])


def _two_objects(rng: np.random.Generator) -> tuple[dict[str, str], dict[str, str], str]:
    """Two objects that differ in shape and colour (as in a pair scene), pair sizes, and a relation."""
    shapes = rng.choice(len(sw.SHAPES), 2, replace=False)
    colours = rng.choice(len(sw.COLOURS), 2, replace=False)
    sizes = sw.PAIR_SIZE_CHOICES[rng.integers(len(sw.PAIR_SIZE_CHOICES))]
    relation = sw.RELATIONS[rng.integers(len(sw.RELATIONS))]
    return _obj(shapes[0], colours[0], sizes[0]), _obj(shapes[1], colours[1], sizes[1]), relation


def _addition(rng: np.random.Generator) -> ArithmeticCase:
    a, b, rel = _two_objects(rng)
    pa, pb = RELATION_POSITIONS[rel]
    sa, sb, target = single(a, pa), single(b, pb), pair(a, b, rel)
    return ArithmeticCase("addition", ((1.0, caption(sa)), (1.0, caption(sb))), target, caption(target),
                          is_heldout(sa, sb, target))


def _subtraction(rng: np.random.Generator) -> ArithmeticCase:
    a, b, rel = _two_objects(rng)
    pa, pb = RELATION_POSITIONS[rel]
    both, sb, target = pair(a, b, rel), single(b, pb), single(a, pa)
    return ArithmeticCase("subtraction", ((1.0, caption(both)), (-1.0, caption(sb))), target, caption(target),
                          is_heldout(both, sb, target))


def _other(rng: np.random.Generator, values: Sequence[str], old: str) -> str:
    choices = [v for v in values if v != old]
    return choices[rng.integers(len(choices))]


def _with(scene: dict[str, Any], attribute: str, value: str) -> dict[str, Any]:
    if attribute == "position":
        return single(scene["objects"][0], value)
    return single({**scene["objects"][0], attribute: value}, scene["position"])


def _edit(rng: np.random.Generator, attribute: str) -> ArithmeticCase:
    base = single(_obj(rng.integers(len(sw.SHAPES)), rng.integers(len(sw.COLOURS)), rng.integers(len(sw.SIZES))),
                  sw.POSITIONS[rng.integers(len(sw.POSITIONS))])
    helper = EDIT_HELPER[attribute]
    old = base["position"] if attribute == "position" else base["objects"][0][attribute]
    new = _other(rng, _VALUES[attribute], old)
    helper_new = _other(rng, _VALUES[helper], base["objects"][0][helper])
    s2 = _with(base, helper, helper_new)                        # A'  = A with the helper changed
    s3 = _with(s2, attribute, new)                              # B'  = A' with the attribute edited
    target = _with(base, attribute, new)                        # A - A' + B' should be A with the attribute edited
    terms = ((1.0, caption(base)), (-1.0, caption(s2)), (1.0, caption(s3)))
    return ArithmeticCase(f"edit_{attribute}", terms, target, caption(target), is_heldout(base, s2, s3, target),
                          edited=attribute)


def make_cases(kind: str, n: int, seed: int = 0) -> list[ArithmeticCase]:
    """``n`` random cases of ``kind`` (:data:`KINDS`), the same for the same ``(kind, n, seed)``; each kind draws
    from its own stream, so adding a kind changes no other kind's cases."""
    if kind not in KINDS:
        raise ValueError(f"unknown arithmetic kind {kind!r}; choose one of {', '.join(KINDS)}")
    if n < 0:
        raise ValueError(f"the number of cases must be >= 0, got {n}")
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    if kind == "addition":
        return [_addition(rng) for _ in range(n)]
    if kind == "subtraction":
        return [_subtraction(rng) for _ in range(n)]
    return [_edit(rng, kind.removeprefix("edit_")) for _ in range(n)]


# ------------------------------------------------------------------------------------------------ scoring
def _binding(o: dict[str, str]) -> tuple[int, int]:
    return sw.SHAPES.index(o["shape"]), sw.COLOURS.index(o["colour"])


def _position(o: ReadObject) -> str:
    return sw.POSITIONS[int(sw.position_of(np.array([o.centre]))[0])]


def score(case: ArithmeticCase, read: Sequence[ReadObject]) -> dict[str, bool]:
    """Did the image the judge ``read`` (its objects) answer ``case``? Keys: ``success`` (the criterion of the module
    docstring), ``strict`` (every attribute, relation included), ``count`` (the target's number of objects), and per
    target object ``present_0`` / ``present_1`` (an object with its shape and colour is there, whatever the count)."""
    target = case.target["objects"]
    got = [(o.shape, o.colour) for o in read]
    want = [_binding(o) for o in target]
    out = {f"present_{k}": w in got for k, w in enumerate(want)}
    out["count"] = len(read) == len(target)
    if case.target["kind"] == "pair":
        ok = out["count"] and sorted(got) == sorted(want)
        strict = False
        if ok:
            first, second = (read[got.index(w)] for w in want)
            relation = sw.RELATIONS[int(sw.relation_of(np.array(first.centre), np.array(second.centre)))]
            sizes = [sw.SIZES[first.size], sw.SIZES[second.size]] == [o["size"] for o in target]
            strict = relation == case.target["relation"] and sizes
        return out | {"success": ok, "strict": strict}
    o = read[0] if out["count"] else None
    same = {"identity": o is not None and (o.shape, o.colour) == want[0],
            "size": o is not None and sw.SIZES[o.size] == target[0]["size"],
            "position": o is not None and _position(o) == case.target["position"]}
    ok = same["identity"] and (case.edited not in ("size", "position") or same[case.edited])
    return out | {"success": ok, "strict": same["identity"] and same["size"] and same["position"]}


def describe(read: Sequence[ReadObject]) -> str:
    """The judge's reading in words, e.g. ``"red circle, blue square"`` (``"nothing"`` for an empty image)."""
    return ", ".join(f"{sw.COLOURS[o.colour]} {sw.SHAPES[o.shape]}" for o in read) or "nothing"


# ------------------------------------------------------------------------------------------------ rendering
#: Where :func:`render_target` puts a pair's objects along the relation axis (the lesser object first).
PAIR_RENDER_AXIS = (0.27, 0.73)


def render_target(scenes: Sequence[dict[str, Any]], image_size: int = sw.REFERENCE_SIZE) -> np.ndarray:
    """What the answers look like: each scene drawn by the ShapesWorld renderer, uint8 ``(N, H, W, 3)`` (single
    objects at their position's anchor, pairs on the centre line at :data:`PAIR_RENDER_AXIS`; an object whose size
    is None - parsed from a caption that does not state it - is drawn small)."""
    n = len(scenes)
    shapes, colours, sizes = (np.full((n, 2), -1, dtype=np.int64) for _ in range(3))
    centres = np.full((n, 2, 2), 0.5, dtype=np.float32)
    for i, s in enumerate(scenes):
        for k, o in enumerate(s["objects"]):
            shapes[i, k], colours[i, k] = _binding(o)
            sizes[i, k] = sw.SIZES.index(o["size"] or "small")  # a pair caption states no size: draw it small
        if s["kind"] == "single":
            centres[i, 0] = sw.POSITION_ANCHORS[s["position"]]
        else:
            lo, hi = PAIR_RENDER_AXIS
            rel = s["relation"]
            along = (lo, hi) if rel in ("left of", "above") else (hi, lo)
            axis = 0 if rel in ("left of", "right of") else 1
            centres[i, 0, axis], centres[i, 1, axis] = along
    return sw.render(shapes, colours, sizes, centres, image_size)


__all__ = ["KINDS", "EDIT_KINDS", "PAPER_ROWS", "PAPER_TABLE8", "EDIT_HELPER", "RELATION_POSITIONS",
           "CANONICAL_TEMPLATE", "ArithmeticCase", "single", "pair", "caption", "is_heldout", "make_cases", "score",
           "describe", "PAIR_RENDER_AXIS", "render_target"]

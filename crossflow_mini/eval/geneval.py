"""mini-GenEval: the paper's GenEval categories (Table 2 / Table 7) on ShapesWorld prompts, scored by the judge.

GenEval (Ghosh et al., 2023) asks an object detector six questions about each generated image; its overall score
is the plain mean of the six category scores. Here the ShapesWorld judge (:mod:`crossflow_mini.judge`) reads
every object's shape, colour and centre, and the prompts come from a held-out ShapesWorld split:

* ``single_object`` ("single" prompts): an object of the named shape is there.
* ``two_objects`` ("pair" prompts): two different objects with the two named shapes are there.
* ``counting`` ("count" prompts): exactly the named number of objects of the named shape.
* ``colours`` ("single" prompts): an object of the named shape has the named colour.
* ``position`` ("pair" prompts): two objects with the named shapes stand in the named relation.
* ``colour_attribution`` ("pair" prompts): two different objects with the named (shape, colour) pairs.

Like GenEval, each category checks only what it names (``single_object`` ignores colour, ``colours`` ignores
position). Prompts whose (shape, colour) pairs never occur in training are scored apart by :func:`mini_geneval`.
"""

from __future__ import annotations

from itertools import permutations
from typing import Any, Callable

import numpy as np
import torch

from ..datasets import shapes as sw
from .judge import JudgeNet, ReadObject, read_scenes

CATEGORIES: tuple[str, ...] = ("single_object", "two_objects", "counting", "colours", "position",
                               "colour_attribution")
#: The scene kind whose prompts each category uses.
CATEGORY_KIND: dict[str, str] = {"single_object": "single", "two_objects": "pair", "counting": "count",
                                 "colours": "single", "position": "pair", "colour_attribution": "pair"}
#: CrossFlow's GenEval scores in the paper (Table 2), quoted beside ours; a different benchmark and scale.
PAPER_GENEVAL: dict[str, float] = {"single_object": 0.98, "two_objects": 0.72, "counting": 0.39, "colours": 0.82,
                                   "position": 0.18, "colour_attribution": 0.21, "overall": 0.55}


def _pairs(read: list[ReadObject], split: sw.ShapesWorldSplit, i: int, colours: bool):
    """Ordered pairs (a, b) of different read objects with the prompt's shapes (and colours)."""
    want = [(split.shapes[i, k], split.colours[i, k]) for k in range(2)]
    for a, b in permutations(read, 2):
        if (a.shape, b.shape) != (want[0][0], want[1][0]):
            continue
        if colours and (a.colour, b.colour) != (want[0][1], want[1][1]):
            continue
        yield a, b


def score_scene(category: str, read: list[ReadObject], split: sw.ShapesWorldSplit, i: int) -> bool:
    """Does the scene the judge ``read`` satisfy prompt ``i`` of ``split`` for ``category``?"""
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; choose one of {CATEGORIES}")
    kind = sw.SCENE_KINDS[split.kinds[i]]
    if kind != CATEGORY_KIND[category]:
        raise ValueError(f"category {category!r} scores {CATEGORY_KIND[category]!r} prompts, prompt {i} is {kind!r}")
    shape, colour = split.shapes[i, 0], split.colours[i, 0]
    if category == "single_object":
        return any(o.shape == shape for o in read)
    if category == "colours":
        return any(o.shape == shape and o.colour == colour for o in read)
    if category == "counting":
        return sum(o.shape == shape for o in read) == int(split.n_objects[i])
    if category == "two_objects":
        return any(True for _ in _pairs(read, split, i, colours=False))
    if category == "colour_attribution":
        return any(True for _ in _pairs(read, split, i, colours=True))
    relation = split.relations[i]  # position: object 0 REL object 1
    return any(int(sw.relation_of(np.array(a.centre), np.array(b.centre))) == relation
               for a, b in _pairs(read, split, i, colours=False))


def prompt_indices(split: sw.ShapesWorldSplit, max_per_kind: int | None = None) -> dict[str, np.ndarray]:
    """Indices of the first ``max_per_kind`` prompts of each scene kind the categories use."""
    return {kind: np.flatnonzero(split.kinds == sw.SCENE_KINDS.index(kind))[:max_per_kind]
            for kind in sorted(set(CATEGORY_KIND.values()))}


def geneval_scores(judge: JudgeNet, images_by_kind: dict[str, torch.Tensor], split: sw.ShapesWorldSplit,
                   idx_by_kind: dict[str, np.ndarray]) -> dict[str, Any]:
    """Per-category accuracy and the overall mean for images generated from the prompts ``idx_by_kind``."""
    reads = {kind: read_scenes(judge, images_by_kind[kind]) for kind in idx_by_kind if len(idx_by_kind[kind])}
    out: dict[str, Any] = {}
    for category in CATEGORIES:
        kind = CATEGORY_KIND[category]
        if kind not in reads:
            continue
        hits = [score_scene(category, read, split, int(i)) for read, i in zip(reads[kind], idx_by_kind[kind])]
        out[category] = round(float(np.mean(hits)), 4)
    scored = [out[c] for c in CATEGORIES if c in out]
    out["overall"] = round(float(np.mean(scored)), 4) if scored else None
    out["n_prompts"] = {kind: int(len(idx)) for kind, idx in idx_by_kind.items()}
    return out


def prompt_groups(split: sw.ShapesWorldSplit) -> dict[str, np.ndarray]:
    """The prompt groups scored apart, as boolean masks over the split: prompts whose scene holds a (shape, colour)
    pair never seen in training (``heldout_combinations``) or not (``in_distribution``); and, where the split's
    captions use the rich vocabulary, captions with wording that occurs only in test captions
    (``test_only_wording``) or not (``train_wording``)."""
    groups = {"in_distribution": ~split.heldout, "heldout_combinations": split.heldout.copy()}
    if split.vocabulary == "rich" and split.test_only_wording.any():
        groups |= {"train_wording": ~split.test_only_wording, "test_only_wording": split.test_only_wording.copy()}
    return groups


def mini_geneval(generate: Callable[[np.ndarray], torch.Tensor], judge: JudgeNet, split: sw.ShapesWorldSplit,
                 max_per_kind: int | None = None) -> dict[str, Any]:
    """mini-GenEval of a generator: ``generate(indices) -> images in [-1, 1]`` for prompts of ``split`` (one
    image per prompt). Scored on all prompts (``"all"``), and on each group of :func:`prompt_groups` apart (the same
    images, split by prompt)."""
    idx = prompt_indices(split, max_per_kind)
    images = {kind: generate(ix) for kind, ix in idx.items() if len(ix)}
    out: dict[str, Any] = {"all": geneval_scores(judge, images, split, idx)}
    for label, mask in prompt_groups(split).items():
        keep = {kind: mask[ix] for kind, ix in idx.items() if len(ix)}
        sub_idx = {kind: idx[kind][k] for kind, k in keep.items()}
        sub_images = {kind: images[kind][torch.from_numpy(k)] for kind, k in keep.items()}
        out[label] = geneval_scores(judge, sub_images, split, sub_idx)
    return out


__all__ = ["CATEGORIES", "CATEGORY_KIND", "PAPER_GENEVAL", "score_scene", "prompt_indices", "prompt_groups",
           "geneval_scores", "mini_geneval"]

"""mini-GenEval scoring, checked on real ShapesWorld renders with the shipped judge: real images score 1 in every
category, and breaking one property of the scenes costs exactly the categories that look at it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossflow_mini.eval import geneval as ev
from crossflow_mini import registry as recipes
from crossflow_mini.datasets.shapes import ShapesDataConfig
from crossflow_mini.profiles import get_profile
from crossflow_mini.datasets import shapes as sw

CFG = ShapesDataConfig(n_train=16, n_val=16, n_test=300)


@pytest.fixture(scope="module")
def judge():
    return recipes.load("judge_shapes", profile=get_profile("course"))


@pytest.fixture(scope="module")
def test_split():
    return sw.load_shapes("test", CFG)


def _real(split):
    images = split.images_tensor()
    return lambda idx: images[torch.from_numpy(np.asarray(idx))]


def _render(split, idx, colours=None, centres=None):
    sub = split.subset(idx)
    img = sw.render(sub.shapes, sub.colours if colours is None else colours, sub.sizes,
                    sub.centres if centres is None else centres)
    return torch.from_numpy(img).permute(0, 3, 1, 2).float() / 127.5 - 1


def test_real_renders_score_one_in_every_category(judge, test_split):
    res = ev.mini_geneval(_real(test_split), judge, test_split)
    for label in ("all", "in_distribution", "heldout_combinations"):
        for c in ev.CATEGORIES:
            assert res[label][c] == 1.0, (label, c, res[label])
        assert res[label]["overall"] == 1.0
    assert sum(res["in_distribution"]["n_prompts"].values()) + sum(res["heldout_combinations"]["n_prompts"].values()) \
        == sum(res["all"]["n_prompts"].values()) == len(test_split)


def test_swapped_colours_break_only_colour_attribution(judge, test_split):
    idx = ev.prompt_indices(test_split)["pair"]
    sub = test_split.subset(idx)
    swapped = sub.colours.copy()
    swapped[:, [0, 1]] = swapped[:, [1, 0]]  # each object gets the other one's colour
    different = sub.colours[:, 0] != sub.colours[:, 1]
    res = ev.geneval_scores(judge, {"pair": _render(test_split, idx, colours=swapped)}, test_split, {"pair": idx})
    assert res["two_objects"] == 1.0 and res["position"] == 1.0
    assert res["colour_attribution"] == pytest.approx(1 - different.mean(), abs=1e-4)


def test_swapped_places_break_only_position(judge, test_split):
    idx = ev.prompt_indices(test_split)["pair"]
    sub = test_split.subset(idx)
    moved = sub.centres.copy()
    moved[:, [0, 1]] = moved[:, [1, 0]]  # the two objects trade places: every relation is reversed
    res = ev.geneval_scores(judge, {"pair": _render(test_split, idx, centres=moved)}, test_split, {"pair": idx})
    assert res["two_objects"] == 1.0 and res["colour_attribution"] == 1.0
    assert res["position"] == 0.0


def test_counting_needs_the_exact_number(judge, test_split):
    idx = ev.prompt_indices(test_split)["count"]
    assert len(idx) > 10
    assert not any(ev.score_scene("counting", [], test_split, int(i)) for i in idx)  # nothing read: wrong count
    images = _real(test_split)(idx)
    blank = images.clone()
    blank[:] = images[:, :, :1, :1]  # the background colour everywhere
    res = ev.geneval_scores(judge, {"count": blank}, test_split, {"count": idx})
    assert res["counting"] == 0.0


def test_wrong_kind_and_unknown_category_are_refused(test_split):
    single = int(ev.prompt_indices(test_split)["single"][0])
    with pytest.raises(ValueError, match="scores 'pair'"):
        ev.score_scene("position", [], test_split, single)
    with pytest.raises(ValueError, match="unknown category"):
        ev.score_scene("texture", [], test_split, single)

"""Scoring text-to-image output with the shipped judge: real renders of single-object prompts score 1, and
images that break one attribute lose exactly that attribute."""

from __future__ import annotations

import numpy as np
import torch

from crossflow_mini import registry as recipes
from crossflow_mini.datasets.shapes import ShapesDataConfig
from crossflow_mini.profiles import get_profile
from crossflow_mini.datasets import shapes as sw
from crossflow_mini.tasks.t2i.evaluate import judge_single_objects

CFG = ShapesDataConfig(n_train=16, n_val=16, n_test=240)


def _singles():
    test = sw.load_shapes("test", CFG)
    return test.subset(test.kinds == sw.SCENE_KINDS.index("single"))


def test_real_renders_score_perfectly_with_the_shipped_judge():
    judge = recipes.load("judge_shapes", profile=get_profile("course"))
    single = _singles()
    res = judge_single_objects(judge, single.images_tensor(), single)
    assert res["n_prompts"] == len(single) > 50
    for k in ("one_object", "colour", "shape", "position", "all"):
        assert res[k] == 1.0, (k, res)


def test_wrong_colour_is_caught():
    judge = recipes.load("judge_shapes", profile=get_profile("course"))
    single = _singles()
    recoloured = (single.colours + 1) % len(sw.COLOURS)  # every object in the next colour
    images = sw.render(single.shapes, np.where(single.shapes >= 0, recoloured, -1), single.sizes, single.centres)
    res = judge_single_objects(judge, torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1, single)
    assert res["colour"] == 0.0 and res["shape"] == 1.0 and res["position"] == 1.0

"""The ShapesWorld judge: its targets, its read-out, and its accuracy bookkeeping (with an oracle network)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crossflow_mini.eval.judge import JudgeConfig

from crossflow_mini.datasets.shapes import ShapesDataConfig
from crossflow_mini.datasets import shapes as sw
from crossflow_mini.eval.judge import IGNORE, JudgeNet, judge_accuracy, pixel_targets, read_scenes

CFG = ShapesDataConfig(n_train=64, n_val=16, n_test=96)


class Oracle(torch.nn.Module):
    """Outputs the exact per-pixel targets as logits: a perfect judge network."""

    def __init__(self, split):
        super().__init__()
        self.targets = pixel_targets(split)

    def forward(self, images):
        out = {}
        for name, n in JudgeNet.HEADS.items():
            t = self.targets[name][: len(images)].clamp_min(0)
            out[name] = torch.nn.functional.one_hot(t, n).permute(0, 3, 1, 2).float() * 10
        return out


def test_pixel_targets_follow_the_attributes():
    split = sw.load_shapes("test", CFG)
    t = pixel_targets(split)
    for i in range(8):
        for k in range(int(split.n_objects[i])):
            x, y = (split.centres[i, k] * 32).astype(int)
            assert t["object"][i, y, x] == 1
            assert t["shape"][i, y, x] == split.shapes[i, k] and t["colour"][i, y, x] == split.colours[i, k]
    assert (t["shape"][t["object"] == 0] == IGNORE).all()


def test_oracle_reads_every_scene_perfectly():
    split = sw.load_shapes("test", CFG)
    acc = judge_accuracy(Oracle(split), split)
    assert acc["n_images"] == len(split)
    for k in ("count", "shape", "colour", "size", "position"):
        assert acc[k] == 1.0, (k, acc)


def test_read_scenes_centres_and_order():
    split = sw.load_shapes("test", CFG)
    scenes = read_scenes(Oracle(split), split.images_tensor(), batch_size=len(split))
    for i, read in enumerate(scenes[:20]):
        true = split.centres[i, : split.n_objects[i]]
        got = np.array([o.centre for o in read])
        assert len(got) == len(true)
        assert np.abs(np.sort(got[:, 0]) - np.sort(true[:, 0])).max() < 0.03
        assert [o.centre[0] for o in read] == sorted(o.centre[0] for o in read)


def test_untrained_judge_is_not_accurate_and_shapes_are_checked():
    split = sw.load_shapes("test", CFG)
    torch.manual_seed(0)
    net = JudgeNet(JudgeConfig(width=16, dilations=(1,)))
    acc = judge_accuracy(net, split)
    assert acc["shape"] < 0.9  # the bookkeeping can fail: an untrained net does not score like the oracle
    logits = net(split.images_tensor()[:2])
    assert logits["shape"].shape == (2, len(sw.SHAPES), 32, 32)
    with pytest.raises(ValueError, match="RGB"):
        net(torch.zeros(2, 1, 32, 32))

"""The checks of notebook 00's exercises: right answers pass, wrong ones fail with "not yet"."""

import dataclasses

import numpy as np
import pytest
import torch

from crossflow_mini.checks import nb00
from crossflow_mini.datasets import shapes as sw
from crossflow_mini.profiles import Profile, get_profile

SMALL = sw.ShapesDataConfig(n_train=400, n_val=8, n_test=8)


def test_exercise_1_profile_fields(capsys):
    smoke, course = get_profile("smoke"), get_profile("course")
    right = [f.name for f in dataclasses.fields(Profile) if getattr(smoke, f.name) != getattr(course, f.name)]
    assert "shapes" in right and "device" not in right
    assert nb00.exercise_1(right)
    assert not nb00.exercise_1(right[:-1])                         # one missing
    assert not nb00.exercise_1(right + ["device"])                 # one that is the same
    assert not nb00.exercise_1(None)
    assert "not yet" in capsys.readouterr().out


class _FakeEncoder:
    """Stands in for the MiniLM encoder: fixed token vectors per word (the check only needs .encode().batch())."""

    def encode(self, captions):
        words = [c.split() for c in captions]
        n = max(map(len, words))
        tokens, mask = torch.zeros(len(captions), n, 8), torch.zeros(len(captions), n, dtype=torch.bool)
        for i, ws in enumerate(words):
            for j, w in enumerate(ws):
                tokens[i, j] = torch.randn(8, generator=torch.Generator().manual_seed(sum(map(ord, w))))
                mask[i, j] = True

        class _E:
            def batch(self, _):
                return tokens, mask
        return _E()


def test_exercise_2_swap_similarity(capsys):
    enc, a, b = _FakeEncoder(), "a large red circle", "a large blue circle"
    t, m = enc.encode([a, b]).batch(None)
    mean = (t * m[..., None]).sum(1) / m.sum(1, keepdim=True)
    right = float(torch.nn.functional.cosine_similarity(mean[0], mean[1], dim=0))
    assert nb00.exercise_2(right, enc, a, b)
    unpooled = float(torch.nn.functional.cosine_similarity(t[0].flatten(), t[1].flatten(), dim=0))
    assert not nb00.exercise_2(unpooled, enc, a, b)                # tokens compared one by one, not pooled
    assert not nb00.exercise_2(1.0, enc, a, b)
    assert "not yet" in capsys.readouterr().out


def _render(drawn):
    nan = [np.nan, np.nan]
    return sw.render(shapes=[[sw.SHAPES.index(s), -1, -1] for s, _, _ in drawn],
                     colours=[[sw.COLOURS.index(c), -1, -1] for _, c, _ in drawn],
                     sizes=[[sw.SIZES.index(z), -1, -1] for _, _, z in drawn],
                     centres=[[[0.5, 0.5], nan, nan] for _ in drawn])


def test_exercise_3_heldout_renders(capsys):
    drawn = [(s, c, z) for s, c in sorted(sw.HELDOUT_COMBINATIONS) for z in sw.SIZES]
    images = _render(drawn)
    assert nb00.exercise_3(drawn, images)
    assert not nb00.exercise_3(drawn[::2], images[::2])            # one size only
    assert not nb00.exercise_3(drawn, images[::-1])                # images not in the order of `drawn`
    assert "not yet" in capsys.readouterr().out


def test_exercise_4_smallest_separation(capsys):
    train = sw.generate_split("train", SMALL)
    pairs = np.flatnonzero(train.kinds == sw.SCENE_KINDS.index("pair"))
    seps = []
    for i in pairs:
        (x0, y0), (x1, y1), rel = train.centres[i, 0], train.centres[i, 1], sw.RELATIONS[train.relations[i]]
        seps.append({"left of": x1 - x0, "right of": x0 - x1, "above": y1 - y0, "below": y0 - y1}[rel])
    right = min(seps)
    assert right >= (2 * sw.SIZE_HALF_EXTENTS[0] + sw.PAIR_GAP) - 1e-6
    assert nb00.exercise_4(right, train)
    distance = min(float(np.linalg.norm(train.centres[i, 0] - train.centres[i, 1])) for i in pairs)
    assert not nb00.exercise_4(distance, train) or distance == pytest.approx(right)   # Euclidean, not along the axis
    assert not nb00.exercise_4(right * train.images.shape[1], train)                 # pixels, not a fraction
    assert "not yet" in capsys.readouterr().out

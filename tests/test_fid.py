"""Inception FID: offline network, our image convention, the real-vs-real floor, and a clear ordering."""

from __future__ import annotations

import pytest
import torch

from crossflow_mini.eval import fid
from crossflow_mini.datasets.shapes import ShapesDataConfig
from crossflow_mini.datasets import shapes as sw

N = 16


@pytest.fixture(scope="module")
def real():
    return sw.load_shapes("test", ShapesDataConfig(n_train=16, n_val=16, n_test=3 * N)).images_tensor()


def test_features_take_our_images_in_any_size_and_grey(real):
    net = fid.inception()
    f = net(real[:2])
    assert f.shape == (2, fid.FEATURES) and torch.isfinite(f).all()
    grey = real[:2].mean(1, keepdim=True)
    assert torch.allclose(net(grey), net(grey.expand(-1, 3, -1, -1)), atol=1e-4)
    with pytest.raises(ValueError, match="expected images"):
        net(torch.zeros(1, 2, 32, 32))


def test_fid_is_zero_for_identical_sets_and_ordered_sensibly(real):
    same = fid.fid(real[:N], real[:N])
    assert abs(same) < 1e-2
    noise = torch.rand(N, 3, 32, 32) * 2 - 1
    res = fid.fid_with_floor(real, noise)
    assert res["n_images"] == N
    assert 0 < res["real_vs_real_floor"] < res["fid"]  # real vs real is far closer than real vs noise


def test_bad_sizes_are_refused(real):
    with pytest.raises(ValueError, match="at least 2"):
        fid.fid(real[:1], real[:4])
    with pytest.raises(ValueError, match="two disjoint real sets"):
        fid.fid_with_floor(real[:N], real[:N])


def test_a_reference_scores_several_sets_as_fid_does_and_keeps_its_reals(real):
    n = N // 2
    ref = fid.FIDReference(real[:n], real[n:2 * n])
    noise = torch.rand(n, 3, 32, 32) * 2 - 1
    first = ref.score(noise)
    assert first["real_vs_real_floor"] == pytest.approx(fid.fid(real[:n], real[n:2 * n]), abs=1e-2)
    assert ref.fid(real[2 * n:3 * n]) < first["fid"]  # a later set is scored against the same reals
    assert ref.score(noise)["fid"] == first["fid"]
    with pytest.raises(ValueError, match="the floor's size"):
        ref.score(noise[:4])

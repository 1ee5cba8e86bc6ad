"""Super-resolution data: photos split by photograph, an anti-aliased degradation, the bicubic source, shapes and
ranges, and training examples that are a pure function of (seed, index)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib
import pytest
import skimage
import torch
import torch.nn.functional as F

from crossflow_mini.datasets import photos
from crossflow_mini.datasets import superres as sr
from crossflow_mini.datasets.fashion import DatasetNotFoundError

SMALL = sr.SRDataConfig(n_train=16, n_val=8, n_test=12)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".tif", ".tiff", ".bmp", ".npy")
ORIGIN = re.compile(r"^(?P<ref>\S+) y=(?P<y>\d+) x=(?P<x>\d+)(?: t=(?P<t>\d))?$")


def _fashion_cfg(**kw) -> sr.SRDataConfig:
    try:
        sr.load_fashion("test")
    except DatasetNotFoundError as err:
        pytest.skip(f"Fashion-MNIST is not installed here: {err}")
    return sr.SRDataConfig(dataset="fashion", **kw)


# ------------------------------------------------------------------------------------------------ the photo split
def test_photo_splits_are_disjoint_by_scene_and_counted():
    splits = {s: set(photos.photo_refs(s)) for s in photos.PHOTO_SPLITS}
    assert not splits["train"] & splits["val"] and not splits["train"] & splits["test"]
    assert not splits["val"] & splits["test"]
    for scene in photos.SAME_SCENE:  # all files of one scene sit in one split (or are excluded)
        holders = {s for s, refs in splits.items() if refs & set(scene)}
        assert len(holders) <= 1, f"{scene} is spread over {holders}"
    assert photos.photo_counts() == {"train": 6, "val": 1, "test": 2}
    assert sr.photo_counts() == photos.photo_counts()
    used = set().union(*splits.values())
    assert not used & set(photos.EXCLUDED_PHOTOS)
    for ref in used:
        img = photos.load_photo(ref)
        assert img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= 256, ref
        assert (img[..., 0] != img[..., 1]).mean() > 0.1, f"{ref} looks grey"


def test_every_shipped_image_is_used_or_excluded_with_a_reason():
    shipped = [f"skimage:{p.name}" for p in (Path(skimage.__file__).parent / "data").iterdir()]
    shipped += [f"matplotlib:{p.name}" for p in (Path(matplotlib.get_data_path()) / "sample_data").iterdir()]
    images = {ref for ref in shipped if ref.lower().endswith(IMAGE_SUFFIXES) and "bivariate" not in ref}
    known = set(photos.TRAIN_PHOTOS + photos.VAL_PHOTOS + photos.TEST_PHOTOS) | set(photos.EXCLUDED_PHOTOS)
    assert images <= known, f"new image files to judge (use or exclude): {sorted(images - known)}"


def test_eval_patches_come_only_from_their_split_and_are_not_flat():
    for split in ("val", "test"):
        data = sr.load_sr(split, SMALL)
        refs = {ORIGIN.match(o)["ref"] for o in data.origin}
        assert refs <= set(photos.photo_refs(split))
        assert len(refs) == len(photos.photo_refs(split))  # thinning keeps every photo
        per_channel_var = data.hr.flatten(2).var(-1, unbiased=False).mean(1)
        assert (per_channel_var.sqrt() >= SMALL.min_patch_std - 1e-6).all()
    train = sr.load_sr("train", SMALL)
    assert {ORIGIN.match(o)["ref"] for o in train.origin} <= set(photos.TRAIN_PHOTOS)


def test_grid_patches_are_the_photo_pixels():
    data = sr.load_sr("test", SMALL)
    for i in (0, len(data) - 1):
        m = ORIGIN.match(data.origin[i])
        y, x, p = int(m["y"]), int(m["x"]), SMALL.hr_size
        assert torch.equal(data.hr[i], photos.photo_tensor(m["ref"])[:, y:y + p, x:x + p])


def test_asking_for_more_patches_than_exist_says_how_many():
    with pytest.raises(ValueError, match="only .* exist; lower"):
        sr.load_sr("val", sr.SRDataConfig(hr_size=64, n_val=10_000))
    with pytest.raises(ValueError, match="train, val, test"):
        sr.load_sr("validation", SMALL)
    with pytest.raises(ValueError, match="multiple of scale"):
        sr.SRDataConfig(hr_size=30)
    with pytest.raises(ValueError, match="photos, fashion"):
        sr.SRDataConfig(dataset="imagenet")


def test_photo_patches_keep_serving_train_and_test():
    cfg = photos.PhotoDataConfig(patch_size=32, stride=32)
    assert photos.photo_patches("test", cfg).shape == (504, 3, 32, 32)  # coffee 12 x 18 + grace_hopper 18 x 16


# ------------------------------------------------------------------------------------------------- degradation
def _stripes(period: float, amplitude: float = 0.9, size: int = 32, phase: float = 0.3) -> torch.Tensor:
    col = torch.arange(size, dtype=torch.float32)
    return (amplitude * torch.cos(2 * math.pi * col / period + phase)).expand(1, 1, size, size).contiguous()


@pytest.mark.parametrize("period", [2.0, 2.5, 3.0, 3.5, 4.0])
def test_lr_is_anti_aliased(period):
    """Stripes finer than the LR grid can hold (period < 8 HR pixels) must average away to their mean (0), not fold
    into a false coarse pattern as plain subsampling does."""
    amplitude = 0.9
    hr = _stripes(period, amplitude)
    assert hr[..., ::4, ::4].abs().max() > 0.6 * amplitude  # subsampling aliases: the test can tell
    assert sr.downsample(hr, 4, "bicubic").abs().max() < 0.15 * amplitude
    assert sr.downsample(hr, 4, "area").abs().max() < 0.3 * amplitude  # the box's sinc side lobe lets more through
    data = sr.make_pairs(hr.expand(1, 3, -1, -1), sr.SRDataConfig())
    assert data.lr.abs().max() < 0.15 * amplitude


def test_lr_keeps_coarse_structure_and_constants():
    hr = _stripes(32.0)
    assert sr.downsample(hr, 4).std() > 0.5  # a pattern the LR grid can hold survives (not blurred to grey)
    const = torch.full((2, 3, 32, 32), 0.37)
    assert torch.allclose(sr.downsample(const, 4, "bicubic"), torch.full((2, 3, 8, 8), 0.37), atol=1e-5)
    assert torch.allclose(sr.downsample(const, 4, "area"), torch.full((2, 3, 8, 8), 0.37), atol=1e-6)
    assert torch.allclose(sr.downsample(hr, 4, "area"), F.avg_pool2d(hr, 4))


def test_shapes_ranges_and_the_bicubic_source():
    for cfg in (SMALL, sr.SRDataConfig(hr_size=64, n_train=4, n_test=4)):
        for split in sr.SPLITS:
            d = sr.load_sr(split, cfg)
            n = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}[split] or len(d)
            p, q = cfg.hr_size, cfg.hr_size // 4
            assert d.hr.shape == (n, 3, p, p) and d.upsampled.shape == (n, 3, p, p) and d.lr.shape == (n, 3, q, q)
            assert len(d.origin) == n and d.hr.dtype == d.lr.dtype == d.upsampled.dtype == torch.float32
            for t in (d.hr, d.lr, d.upsampled):
                assert t.min() >= -1 and t.max() <= 1
            assert torch.equal(d.lr, F.interpolate(d.hr, size=(q, q), mode="bicubic", align_corners=False,
                                                   antialias=True).clamp(-1, 1))
            expected = F.interpolate(d.lr, size=(p, p), mode="bicubic", align_corners=False).clamp(-1, 1)
            assert torch.equal(d.upsampled, expected)
            assert d.hr.std() > 0.1


def test_fashion_pairs():
    cfg = _fashion_cfg(n_train=10, n_val=6, n_test=5)
    for split, n in (("train", 10), ("val", 6), ("test", 5)):
        d = sr.load_sr(split, cfg)
        assert d.hr.shape == (n, 1, 32, 32) and d.lr.shape == (n, 1, 8, 8) and d.upsampled.shape == (n, 1, 32, 32)
        assert d.hr.min() >= -1 and d.hr.max() <= 1 and d.hr[..., :2, :].eq(-1).all()  # padded canvas
        assert torch.equal(d.upsampled, F.interpolate(d.lr, size=(32, 32), mode="bicubic",
                                                      align_corners=False).clamp(-1, 1))
    val_ids = [int(o.split("/")[1]) for o in sr.load_sr("val", cfg).origin]
    train_ids = [int(o.split("/")[1].split()[0]) for o in sr.load_sr("train", cfg).origin]
    assert min(val_ids) >= 60_000 - sr.FASHION_VAL_SIZE > max(train_ids)
    with pytest.raises(ValueError, match="lower it"):
        sr.train_examples([0], _fashion_cfg(n_train=60_000))


# -------------------------------------------------------------------------------------------------- determinism
def test_training_examples_are_a_pure_function_of_seed_and_index():
    cfg = sr.SRDataConfig(seed=3)
    a = sr.train_examples([5, 17, 40], cfg)
    b = sr.train_examples([40, 17], cfg)  # another batch, another order: same examples
    assert torch.equal(a.hr[1], b.hr[1]) and torch.equal(a.hr[2], b.hr[0]) and a.origin[2] == b.origin[0]
    assert torch.equal(a.lr, sr.train_examples([5, 17, 40], cfg).lr)
    assert not torch.equal(a.hr, sr.train_examples([5, 17, 40], sr.SRDataConfig(seed=4)).hr)
    step = sr.stream_batch(3, 4, cfg)
    assert torch.equal(step.hr, sr.train_examples(range(12, 16), cfg).hr)
    assert torch.equal(sr.load_sr("train", sr.SRDataConfig(seed=3, n_train=6)).hr, sr.train_examples(range(6), cfg).hr)


def test_augmentation_is_a_flip_or_rotation_of_a_real_crop():
    cfg = sr.SRDataConfig(seed=1)
    data = sr.train_examples(range(64), cfg)
    seen_t, seen_ref = set(), set()
    for hr, origin in zip(data.hr, data.origin):
        m = ORIGIN.match(origin)
        y, x, k, p = int(m["y"]), int(m["x"]), int(m["t"]), cfg.hr_size
        crop = photos.photo_tensor(m["ref"])[:, y:y + p, x:x + p]
        assert torch.equal(hr, sr.dihedral(crop, k))
        seen_t.add(k)
        seen_ref.add(m["ref"])
    assert len(seen_t) == sr.N_DIHEDRAL and seen_ref == set(photos.TRAIN_PHOTOS)
    plain = sr.train_examples(range(8), sr.SRDataConfig(seed=1, augment=False))
    assert all(o.endswith("t=0") for o in plain.origin)


def test_dihedral_transforms_are_the_eight_distinct_symmetries():
    x = torch.arange(9.0).reshape(1, 3, 3)
    outs = [sr.dihedral(x, k) for k in range(sr.N_DIHEDRAL)]
    assert torch.equal(outs[0], x)
    assert len({tuple(o.flatten().tolist()) for o in outs}) == sr.N_DIHEDRAL
    with pytest.raises(ValueError, match="0..7"):
        sr.dihedral(x, 8)


def test_patch_std_map_matches_direct_computation():
    img = torch.rand(3, 20, 23) * 2 - 1
    std = sr.patch_std_map(img, 7)
    assert std.shape == (14, 17)
    for y, x in ((0, 0), (13, 16), (5, 9)):
        patch = img[:, y:y + 7, x:x + 7].double()
        direct = patch.flatten(1).var(-1, unbiased=False).mean().sqrt()
        assert abs(std[y, x] - float(direct)) < 1e-9

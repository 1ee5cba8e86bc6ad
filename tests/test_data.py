"""Fashion-MNIST and photo patches: loading, captions, and clear errors when data are missing."""

from __future__ import annotations

import pytest
import torch

from crossflow_mini.datasets.fashion import FashionDataConfig

from crossflow_mini.datasets.photos import PhotoDataConfig
from crossflow_mini.datasets import fashion, photos

HAVE_FASHION = fashion._has_all(fashion.DEBIAN_DIR)
needs_fashion = pytest.mark.skipif(not HAVE_FASHION, reason="Debian package dataset-fashion-mnist not installed "
                                                            "(`make data` installs it)")


@needs_fashion
def test_fashion_loads_with_captions_that_name_the_class():
    split = fashion.load_fashion("test", FashionDataConfig(n_test=200))
    assert split.images.shape == (200, 28, 28) and split.images.dtype.name == "uint8"
    for label, caption in zip(split.labels, split.captions):
        assert fashion.CLASS_PHRASES[label] in caption
    assert len(set(split.captions)) > 10  # several templates in use
    x = split.images_tensor(32)
    assert x.shape == (200, 1, 32, 32) and x.min() >= -1 and x.max() <= 1
    assert torch.all(x[:, :, :2] == -1)  # the padding border is black


@needs_fashion
def test_fashion_is_deterministic_and_dataset_items():
    a = fashion.load_fashion("train", FashionDataConfig(n_train=50))
    b = fashion.load_fashion("train", FashionDataConfig(n_train=50))
    assert a.captions == b.captions and (a.images == b.images).all()
    item = fashion.FashionMNISTDataset("train", FashionDataConfig(n_train=50))[3]
    assert item["image"].shape == (1, 32, 32) and item["caption"] == a.captions[3]


def test_missing_fashion_gives_a_clear_error(tmp_path):
    with pytest.raises(fashion.DatasetNotFoundError) as err:
        fashion.load_fashion("train", root=tmp_path, download=False)
    msg = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in msg and fashion.ENV_DIR in msg


def test_missing_fashion_without_network_mentions_the_download(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion, "DEBIAN_DIR", tmp_path / "none")
    monkeypatch.setenv("CROSSFLOW_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(fashion.ENV_DIR, raising=False)

    def offline(*a, **k):
        raise OSError("network unreachable")

    monkeypatch.setattr(fashion.urllib.request, "urlopen", offline)
    with pytest.raises(fashion.DatasetNotFoundError, match="download .* failed"):
        fashion.load_fashion("test")


def test_unknown_fashion_split():
    with pytest.raises(ValueError, match="train, test"):
        fashion.load_fashion("validation")


def test_photo_patches_split_by_photo():
    cfg = PhotoDataConfig(patch_size=64, stride=64)
    train, test = photos.photo_patches("train", cfg), photos.photo_patches("test", cfg)
    assert train.shape[1:] == (3, 64, 64) and test.shape[1:] == (3, 64, 64)
    assert len(train) > 100 and len(test) > 30
    assert train.min() >= -1 and train.max() <= 1 and train.std() > 0.1
    assert not set(photos.TRAIN_PHOTOS) & set(photos.TEST_PHOTOS)
    with pytest.raises(ValueError, match="train, test"):
        photos.photo_patches("val")

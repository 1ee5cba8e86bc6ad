"""Fashion-MNIST: real 28 x 28 grey-scale photos of clothing, with captions from class names and templates.

Where the files come from, in order (the first folder that holds all four ``*-ubyte.gz`` files wins):

1. the ``root`` argument, or the ``CROSSFLOW_FASHION_DIR`` environment variable;
2. ``/usr/share/datasets/fashion-mnist`` - the Debian package ``dataset-fashion-mnist``
   (``sudo apt-get install dataset-fashion-mnist``; ``make setup`` does it where apt exists);
3. ``data/cache/fashion-mnist`` - filled by a download of the official files, tried only where a network
   exists (``download=True``, the default); no network gives a clear error that lists the options.
"""

from __future__ import annotations

import functools
import gzip
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset


from ..paths import cache_dir
from ..utils import atomic_path


@dataclass(frozen=True)
class FashionDataConfig:
    """How much of Fashion-MNIST to use (``None`` = all of it: 60,000 train / 10,000 test)."""

    n_train: int | None = None
    n_test: int | None = None
    image_size: int = 32  # 28 x 28 images are zero-padded to 32 x 32 so the autoencoder halves cleanly

CLASS_NAMES: tuple[str, ...] = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
                                "bag", "ankle boot")
#: How each class is named inside a caption (with its article).
CLASS_PHRASES: tuple[str, ...] = ("a t-shirt", "a pair of trousers", "a pullover", "a dress", "a coat", "a sandal",
                                  "a shirt", "a sneaker", "a bag", "an ankle boot")
TEMPLATES: tuple[str, ...] = ("a photo of {}", "{}", "a black and white photo of {}", "a picture showing {}")
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
SPLITS = tuple(FILES)
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
DOWNLOAD_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DOWNLOAD_TIMEOUT_S = 10
ENV_DIR = "CROSSFLOW_FASHION_DIR"
CAPTION_SEED = 12345


class DatasetNotFoundError(FileNotFoundError):
    """A data set's files are not where the loader looks; the message says how to get them."""


def _has_all(folder: Path) -> bool:
    return all((folder / f).exists() for pair in FILES.values() for f in pair)


def _download(folder: Path) -> None:
    for pair in FILES.values():
        for name in pair:
            with urllib.request.urlopen(DOWNLOAD_URL + name, timeout=DOWNLOAD_TIMEOUT_S) as resp:
                blob = resp.read()
            with atomic_path(folder / name) as tmp:
                tmp.write_bytes(blob)


def find_fashion_dir(root: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The folder that holds the Fashion-MNIST files (see the module docstring for the search order)."""
    candidates = []
    if root is not None:
        candidates.append(Path(root))
    elif os.environ.get(ENV_DIR):
        candidates.append(Path(os.environ[ENV_DIR]))
    else:
        candidates += [DEBIAN_DIR, cache_dir() / "fashion-mnist"]
    for folder in candidates:
        if _has_all(folder):
            return folder
    reason = "downloading was not tried (download=False)"
    if download and root is None:
        target = cache_dir() / "fashion-mnist"
        try:
            _download(target)
            return target
        except OSError as err:  # no network, DNS failure, timeout, HTTP error
            reason = f"the download from {DOWNLOAD_URL} failed ({err})"
    raise DatasetNotFoundError(
        "Fashion-MNIST not found: looked in " + ", ".join(str(c) for c in candidates) + f", and {reason}.\n"
        "Get it one of these ways: `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or put the four "
        f"files {', '.join(f for pair in FILES.values() for f in pair)} in a folder and set {ENV_DIR}=that/folder "
        "(or pass root=...).")


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


@dataclass
class FashionSplit:
    """Images ``uint8 (N, 28, 28)``, labels ``(N,)``, one caption per image."""

    split: str
    images: np.ndarray
    labels: np.ndarray
    captions: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def images_tensor(self, image_size: int = 32) -> torch.Tensor:
        """``(N, 1, S, S)`` floats in [-1, 1]; the 28 x 28 images are centred on a black ``S x S`` canvas."""
        return to_tensor(self.images, image_size)


def to_tensor(images: np.ndarray, image_size: int = 32) -> torch.Tensor:
    x = torch.from_numpy(np.array(images, dtype=np.float32)).div(127.5).sub(1.0)[:, None]
    pad = image_size - x.shape[-1]
    if pad < 0:
        raise ValueError(f"image_size {image_size} is smaller than Fashion-MNIST's 28 pixels")
    lo = pad // 2
    return torch.nn.functional.pad(x, (lo, pad - lo, lo, pad - lo), value=-1.0)


def caption_words() -> set[str]:
    """Every word a Fashion-MNIST caption can use (lower case)."""
    return {w for t in TEMPLATES for c in CLASS_PHRASES for w in t.format(c).lower().split()}


def caption(label: int, template: int) -> str:
    return TEMPLATES[template % len(TEMPLATES)].format(CLASS_PHRASES[label])


@functools.lru_cache(maxsize=4)
def _load_all(split: str, folder: str) -> tuple[np.ndarray, np.ndarray]:
    img_file, lab_file = FILES[split]
    images = _read_idx(Path(folder) / img_file)
    labels = _read_idx(Path(folder) / lab_file).astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def load_fashion(split: str, cfg: FashionDataConfig = FashionDataConfig(), root: str | os.PathLike | None = None,
                 download: bool = True) -> FashionSplit:
    """The ``train`` or ``test`` split (the first ``cfg.n_train`` / ``cfg.n_test`` images, all if ``None``),
    each image with a caption from its class name and a template chosen by a fixed seed."""
    if split not in FILES:
        raise ValueError(f"unknown Fashion-MNIST split {split!r}; choose one of {', '.join(SPLITS)}")
    images, labels = _load_all(split, str(find_fashion_dir(root, download)))
    n = cfg.n_train if split == "train" else cfg.n_test
    if n is not None:
        if n < 1:
            raise ValueError(f"FashionDataConfig.n_{split} must be positive or None, got {n}")
        images, labels = images[:n], labels[:n]
    rng = np.random.default_rng(CAPTION_SEED + SPLITS.index(split))
    templates = rng.integers(0, len(TEMPLATES), size=len(labels))
    return FashionSplit(split, images, labels, [caption(int(l), int(t)) for l, t in zip(labels, templates)])


class FashionMNISTDataset(Dataset):
    """Torch view: ``{"image": (1, S, S) in [-1, 1], "caption": str, "label": int, "index": int}``."""

    def __init__(self, split: str, cfg: FashionDataConfig = FashionDataConfig(), root=None):
        self.data = load_fashion(split, cfg, root)
        self.image_size = cfg.image_size

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict:
        img = to_tensor(self.data.images[i:i + 1], self.image_size)[0]
        return {"image": img, "caption": self.data.captions[i], "label": int(self.data.labels[i]), "index": i}

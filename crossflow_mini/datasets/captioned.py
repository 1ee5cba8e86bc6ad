"""Your own image-caption pairs from disk: a ``datasets``-style image folder or webdataset shards.

Two layouts are read, both offline and without extra packages (the Hugging Face ``datasets`` library pulls
pandas and pyarrow, so this module reads the same layout itself; webdataset shards are plain tar files):

* **image folder** - the layout of ``datasets``' ``imagefolder`` builder: images plus a ``metadata.jsonl`` with one
  JSON object per line, ``{"file_name": "0001.jpg", "text": "a photo of ..."}`` (``file_name`` relative to the
  file; the caption key is ``CaptionedImagesConfig.caption_column``). Splits are sub-folders (``train/``,
  ``validation/``, ``test/``) each with its own ``metadata.jsonl``; a folder with ``metadata.jsonl`` at its top
  is the ``train`` split;
* **webdataset shards** - ``*.tar`` files (at the top or in a split sub-folder) whose members share a key per
  sample: ``000001.jpg`` (or .jpeg / .png / .webp) with ``000001.txt`` (the caption) or ``000001.json``
  (the caption under ``caption_column``, ``caption`` or ``text``).

Images are made square as ADM/DiT do for ImageNet (and the paper's 256 px training): the shorter side is resized
to ``image_size`` (bicubic), then the centre is cropped; pixels go to [-1, 1], ``(3, S, S)``.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class CaptionedImagesConfig:
    """Where image-caption pairs are and how they are read (:mod:`crossflow_mini.datasets.captioned`).

    ``path``: a folder (image folder or webdataset shards); ``None`` until a user points it somewhere
    (``CROSSFLOW_IMAGE_FOLDER``). ``limit``: read at most this many pairs per split (``None``: all)."""

    path: str | None = None
    image_size: int = 256
    caption_column: str = "text"
    limit: int | None = None


@dataclass
class CaptionedImages:
    """The pairs of one split: ``captions[i]`` belongs to item ``i``; :meth:`image` loads its pixels."""

    captions: list[str]
    items: list[tuple[str, str]]  # (file, "") for a folder image; (tar file, member name) for a shard member
    image_size: int

    def __len__(self) -> int:
        return len(self.captions)

    def _bytes(self, i: int) -> bytes:
        where, member = self.items[i]
        if not member:
            return Path(where).read_bytes()
        with tarfile.open(where) as tar:
            return tar.extractfile(member).read()

    def image(self, i: int) -> torch.Tensor:
        """Item ``i`` as ``(3, S, S)`` in [-1, 1]."""
        return load_image(self._bytes(i), self.image_size)

    def batches(self, batch_size: int) -> Iterator[torch.Tensor]:
        """All images in order, ``(B, 3, S, S)`` at a time; each tar shard is opened once."""
        open_tar: tuple[str, tarfile.TarFile] | None = None
        batch: list[torch.Tensor] = []
        try:
            for where, member in self.items:
                if member:
                    if open_tar is None or open_tar[0] != where:
                        if open_tar is not None:
                            open_tar[1].close()
                        open_tar = (where, tarfile.open(where))
                    data = open_tar[1].extractfile(member).read()
                else:
                    data = Path(where).read_bytes()
                batch.append(load_image(data, self.image_size))
                if len(batch) == batch_size:
                    yield torch.stack(batch)
                    batch = []
            if batch:
                yield torch.stack(batch)
        finally:
            if open_tar is not None:
                open_tar[1].close()


def load_image(data: bytes, size: int) -> torch.Tensor:
    """Encoded image bytes -> ``(3, size, size)`` in [-1, 1]: RGB, shorter side resized to ``size``, centre crop."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGB")
        w, h = im.size
        scale = size / min(w, h)
        im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
        w, h = im.size
        left, top = (w - size) // 2, (h - size) // 2
        im = im.crop((left, top, left + size, top + size))
        arr = np.asarray(im, dtype=np.float32)
    return torch.from_numpy(arr).permute(2, 0, 1) / 127.5 - 1.0


def _split_dir(root: Path, split: str) -> Path | None:
    """The folder holding ``split``: ``root/split``, or ``root`` itself for ``train`` when files lie at its top."""
    if (root / split).is_dir():
        return root / split
    if split == "train" and ((root / "metadata.jsonl").is_file() or any(root.glob("*.tar"))):
        return root
    return None


def _caption(record: dict, column: str, where: str) -> str:
    for key in (column, "caption", "text"):
        value = record.get(key)
        if isinstance(value, str) and value.strip():
            return value
    raise ValueError(f"{where} has no caption under {column!r} (nor 'caption' / 'text'): set "
                     f"CaptionedImagesConfig.caption_column to the key your captions use")


def _read_folder(folder: Path, cfg: CaptionedImagesConfig) -> tuple[list[str], list[tuple[str, str]]]:
    captions, items = [], []
    meta = folder / "metadata.jsonl"
    for n, line in enumerate(meta.read_text().splitlines(), 1):
        if not line.strip():
            continue
        record = json.loads(line)
        if "file_name" not in record:
            raise ValueError(f"{meta} line {n} has no 'file_name' (the image file, relative to {folder})")
        image = folder / record["file_name"]
        if not image.is_file():
            raise FileNotFoundError(f"{meta} line {n} names {record['file_name']}, which is not in {folder}")
        captions.append(_caption(record, cfg.caption_column, f"{meta} line {n}"))
        items.append((str(image), ""))
        if cfg.limit is not None and len(items) >= cfg.limit:
            break
    return captions, items


def _read_shards(shards: list[Path], cfg: CaptionedImagesConfig) -> tuple[list[str], list[tuple[str, str]]]:
    captions, items = [], []
    for shard in shards:
        samples: dict[str, dict[str, tarfile.TarInfo]] = {}
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                if not member.isfile():
                    continue
                name = member.name
                key, _, ext = Path(name).name.partition(".")
                samples.setdefault(str(Path(name).parent / key), {})["." + ext.lower()] = member
            for key, parts in samples.items():  # tar order, as webdataset reads it
                image = next((parts[s] for s in IMAGE_SUFFIXES if s in parts), None)
                if image is None:
                    continue
                if ".txt" in parts:
                    text = tar.extractfile(parts[".txt"]).read().decode("utf-8").strip()
                elif ".json" in parts:
                    text = _caption(json.loads(tar.extractfile(parts[".json"]).read()), cfg.caption_column,
                                    f"{shard}:{key}.json")
                else:
                    raise ValueError(f"{shard}: sample {key} has an image but no .txt or .json caption")
                captions.append(text)
                items.append((str(shard), image.name))
                if cfg.limit is not None and len(items) >= cfg.limit:
                    return captions, items
    return captions, items


def load_captioned(cfg: CaptionedImagesConfig, split: str = "train") -> CaptionedImages:
    """The pairs of ``split`` under ``cfg.path`` (an image folder with ``metadata.jsonl`` or webdataset shards)."""
    if cfg.path is None:
        raise FileNotFoundError("no image-caption folder is set: point CaptionedImagesConfig.path (or the "
                                "environment variable CROSSFLOW_IMAGE_FOLDER) at a folder with images and a "
                                "metadata.jsonl, or with webdataset *.tar shards (docs/SCALING_UP.md)")
    root = Path(cfg.path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"the image-caption folder {root} does not exist")
    folder = _split_dir(root, split)
    if folder is None:
        raise FileNotFoundError(f"{root} has no {split!r} split: a sub-folder {split}/ with a metadata.jsonl or "
                                f"*.tar shards (a top-level metadata.jsonl counts as the train split)")
    if (folder / "metadata.jsonl").is_file():
        captions, items = _read_folder(folder, cfg)
    else:
        captions, items = _read_shards(sorted(folder.glob("*.tar")), cfg)
    if not captions:
        raise ValueError(f"{folder} holds no image-caption pairs")
    return CaptionedImages(captions, items, cfg.image_size)


def has_split(cfg: CaptionedImagesConfig, split: str) -> bool:
    """Whether ``cfg.path`` holds ``split``."""
    return cfg.path is not None and Path(cfg.path).expanduser().is_dir() and \
        _split_dir(Path(cfg.path).expanduser(), split) is not None


__all__ = ["CaptionedImagesConfig", "CaptionedImages", "load_captioned", "load_image", "has_split", "SPLITS"]

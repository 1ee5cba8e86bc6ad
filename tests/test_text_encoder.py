"""The frozen MiniLM encoder: real embeddings, the disk cache, and clear errors for bad captions."""

from __future__ import annotations

import warnings

import pytest
import torch

from crossflow_mini.nn.text_encoder import TextEncoderConfig
from crossflow_mini.nn.text_encoder import TOKEN_DIM, TextEncoder

CAPTIONS = ["a red circle on the left", "a blue square above a green triangle", "a red circle on the left",
            "three yellow crosses"]


def test_embeddings_shapes_mask_and_dedup(tmp_cache):
    emb = TextEncoder(TextEncoderConfig()).encode(CAPTIONS)
    assert len(emb) == 4 and len(emb.captions) == 3  # the repeated caption is embedded once
    tokens, mask = emb.batch(torch.arange(4))
    assert tokens.shape[0] == 4 and tokens.shape[2] == TOKEN_DIM and mask.shape == tokens.shape[:2]
    assert torch.equal(tokens[0], tokens[2])
    assert mask[:, 0].all() and not mask.all()  # [CLS] always there; shorter captions are padded
    assert tokens[mask].abs().mean() > 0.01  # a real network's output, not zeros


def test_meaning_is_in_the_embedding(tmp_cache):
    emb = TextEncoder().encode(["a red circle", "a red circle on the left", "three blue crosses"])
    t, m = emb.batch(torch.arange(3))
    pooled = torch.nn.functional.normalize((t * m[..., None]).sum(1) / m.sum(1, keepdim=True), dim=-1)
    sim = pooled @ pooled.T
    assert sim[0, 1] > sim[0, 2]


def test_cache_returns_identical_numbers(tmp_cache):
    enc = TextEncoder()
    cold = enc.encode(CAPTIONS)
    files = list((tmp_cache / "text").glob("*.safetensors"))
    assert len(files) == 1
    warm = enc.encode(CAPTIONS)
    assert torch.equal(cold.tokens, warm.tokens) and torch.equal(cold.mask, warm.mask)
    assert torch.equal(cold.index, warm.index)


def test_bad_captions(tmp_cache):
    enc = TextEncoder()
    with pytest.raises(ValueError, match="empty"):
        enc.encode([])
    with pytest.raises(ValueError, match="caption 1 is empty"):
        enc.encode(["a red circle", "   "])
    with pytest.raises(TypeError, match="list of captions"):
        enc.encode("a red circle")


def test_long_caption_truncated_with_warning(tmp_cache):
    enc = TextEncoder(TextEncoderConfig(max_tokens=8))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        emb = enc.encode(["a very long caption " * 10, "short"])
    assert any("truncated" in str(w.message) for w in caught)
    assert emb.tokens.shape[1] == 8


def test_cache_root_argument(tmp_path, tmp_cache):
    enc = TextEncoder(cache_root=tmp_path / "mine")
    enc.encode(["a red circle"])
    assert len(list((tmp_path / "mine").glob("*.safetensors"))) == 1
    assert not (tmp_cache / "text").exists()  # nothing written to the default cache

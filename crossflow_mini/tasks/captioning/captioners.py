"""The captioners CrossFlow is compared with (paper Table 4 compares it with other captioners): two without a flow.

* :class:`DirectCaptioner` - image -> the text latent's shape -> the SAME non-autoregressive
  :class:`~.text_decoder.TextDecoder` that decodes CrossFlow's text latents, trained end to end with the token
  cross-entropy. It is CrossFlow's captioner without the flow and without the text autoencoder: what a single
  regression onto words gives.
* :class:`AutoregressiveCaptioner` - the usual captioner (Show, Attend and Tell; the paper's autoregressive rows):
  a transformer decoder over the words so far (causal self-attention) with cross-attention to the image's
  patches, trained with teacher forcing and decoded greedily word by word.

Both read the image LATENT (4 x 8 x 8, the autoencoder's; the flow captioners read the same), both predict the
target ids of :mod:`.text_decoder` (words, ``<eos>``, padding; no ``<bos>``), and both answer
``caption_ids(images) -> (B, max_len)``.

:func:`image_token_batch` turns an image latent into a :class:`~.source.TokenBatch` of its ``p x p`` patches, each
with a one-hot of its position appended (ours): the cross-attention of the standard flow-matching baseline (and of
the autoregressive captioner) sees a SET of keys, so without the position the left/right and above/below of a scene
would be lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from ...core.image_ve import ImageVE, ImageVEConfig
from ...core.source import TokenBatch
from ...nn.text_decoder import PAD_ID, TextDecoder, TextDecoderConfig, greedy_ids, reconstruction_loss, token_accuracy
from ...core.transformer import INIT_STD, patchify

#: Ids of the start and end tokens (``CaptionVocab.bos_id`` / ``eos_id``).
BOS_ID, EOS_ID = 1, 2


def image_token_dim(image_shape: tuple[int, int, int], patch: int) -> int:
    """Width of :func:`image_token_batch`'s tokens: the patch's values plus the one-hot of its position."""
    c, h, w = image_shape
    return c * patch * patch + (h // patch) * (w // patch)


def image_token_batch(latents: torch.Tensor, patch: int) -> TokenBatch:
    """Image latents ``(B, C, H, W)`` -> a :class:`TokenBatch` of ``(H / p)(W / p)`` tokens, each the patch's
    ``C p p`` values followed by a one-hot of the patch's position (row-major); every token is real."""
    if latents.ndim != 4 or latents.shape[2] % patch or latents.shape[3] % patch:
        raise ValueError(f"image latents must be (B, C, H, W) with H and W divisible by {patch}, got "
                         f"{tuple(latents.shape)}")
    values = patchify(latents, patch)
    b, n, _ = values.shape
    where = torch.eye(n, dtype=values.dtype, device=values.device).expand(b, n, n)
    return TokenBatch(torch.cat([values, where], dim=-1), torch.ones(b, n, dtype=torch.bool, device=values.device))


# --------------------------------------------------------------------------------------------- direct
@dataclass(frozen=True)
class DirectCaptionerConfig:
    """An image encoder (the Image VE's network, ``variant="plain"``: its mean, no sampling) into the text latent's
    shape, then the text decoder."""

    method: ClassVar[str] = "direct"  # the method's name in tables (tasks.common.method_of)

    encoder: ImageVEConfig = ImageVEConfig(in_shape=(4, 8, 8), latent_shape=(8, 4, 4), head="linear",
                                           variant="plain")
    decoder: TextDecoderConfig = TextDecoderConfig()

    def __post_init__(self) -> None:
        if tuple(self.encoder.latent_shape) != tuple(self.decoder.latent_shape):
            raise ValueError(f"the encoder makes {self.encoder.latent_shape} but the decoder reads "
                             f"{self.decoder.latent_shape}: set both latent_shape fields to the same value")
        if self.encoder.variant != "plain" or self.encoder.enc_loss != "none":
            raise ValueError("the direct captioner's encoder is deterministic and has no loss of its own: use "
                             "ImageVEConfig(variant='plain', enc_loss='none')")


class DirectCaptioner(nn.Module):
    """Image latent -> word logits, end to end (see the module docstring)."""

    def __init__(self, cfg: DirectCaptionerConfig = DirectCaptionerConfig()):
        super().__init__()
        self.cfg = cfg
        self.encoder = ImageVE(cfg.encoder)
        self.decoder = TextDecoder(cfg.decoder)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder.encode_mean(images))

    def loss(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        logits = self(images)
        rec = reconstruction_loss(logits, targets, self.cfg.decoder.pad_id)
        return rec, {"rec": float(rec.detach()),
                     "token_acc": float(token_accuracy(logits.detach(), targets, self.cfg.decoder.pad_id))}

    @torch.no_grad()
    def caption_ids(self, images: torch.Tensor) -> torch.Tensor:
        return greedy_ids(self(images))


# --------------------------------------------------------------------------------------- autoregressive
@dataclass(frozen=True)
class AutoregressiveCaptionerConfig:
    """A transformer captioner: ``encoder_depth`` self-attention blocks over the image's patch tokens
    (:func:`image_token_batch`), then ``depth`` decoder blocks (causal self-attention over the words so far,
    cross-attention to the image). ``max_len`` output positions, as in :class:`TextDecoderConfig`."""

    method: ClassVar[str] = "autoregressive"  # the method's name in tables (tasks.common.method_of)

    image_shape: tuple[int, int, int] = (4, 8, 8)
    patch: int = 2
    vocab_size: int = 122  # the ShapesWorld grammar's CaptionVocab
    max_len: int = 15
    width: int = 128
    encoder_depth: int = 1
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    pad_id: int = PAD_ID
    bos_id: int = BOS_ID
    eos_id: int = EOS_ID

    def __post_init__(self) -> None:
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be divisible by heads {self.heads}")
        if any(s % self.patch for s in self.image_shape[1:]):
            raise ValueError(f"image size {self.image_shape[1:]} is not divisible by patch {self.patch}")


class AutoregressiveCaptioner(nn.Module):
    """Image latent + words so far -> next-word logits; greedy decoding (see the module docstring)."""

    def __init__(self, cfg: AutoregressiveCaptionerConfig = AutoregressiveCaptionerConfig()):
        super().__init__()
        self.cfg = cfg
        hidden = int(cfg.mlp_ratio * cfg.width)
        self.image_in = nn.Linear(image_token_dim(cfg.image_shape, cfg.patch), cfg.width)
        self.image_blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(cfg.width, cfg.heads, hidden, cfg.dropout, activation="gelu",
                                       batch_first=True, norm_first=True) for _ in range(cfg.encoder_depth))
        self.image_norm = nn.LayerNorm(cfg.width)
        self.embed = nn.Embedding(cfg.vocab_size, cfg.width)
        self.pos = nn.Parameter(torch.randn(1, cfg.max_len, cfg.width) * INIT_STD)
        self.blocks = nn.ModuleList(
            nn.TransformerDecoderLayer(cfg.width, cfg.heads, hidden, cfg.dropout, activation="gelu",
                                       batch_first=True, norm_first=True) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.width)
        self.head = nn.Linear(cfg.width, cfg.vocab_size)

    def memory(self, images: torch.Tensor) -> torch.Tensor:
        """The image's patch tokens after the encoder blocks ``(B, N, width)``."""
        if images.ndim != 4 or tuple(images.shape[1:]) != tuple(self.cfg.image_shape):
            raise ValueError(f"the captioner reads image latents of shape (B, "
                             f"{', '.join(map(str, self.cfg.image_shape))}), got {tuple(images.shape)}")
        x = self.image_in(image_token_batch(images, self.cfg.patch).tokens)
        for block in self.image_blocks:
            x = block(x)
        return self.image_norm(x)

    def forward(self, images: torch.Tensor, inputs: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing: ``inputs (B, L)`` = ``<bos>`` + the words so far -> next-word logits ``(B, L, vocab)``."""
        length = inputs.shape[1]
        if length > self.cfg.max_len:
            raise ValueError(f"at most {self.cfg.max_len} positions, got {length}")
        memory = self.memory(images) if memory is None else memory
        x = self.embed(inputs) + self.pos[:, :length]
        causal = torch.triu(torch.ones(length, length, dtype=torch.bool, device=x.device), diagonal=1)
        for block in self.blocks:
            x = block(x, memory, tgt_mask=causal)
        return self.head(self.norm(x))

    def teacher_inputs(self, targets: torch.Tensor) -> torch.Tensor:
        """Targets (words, ``<eos>``, padding) -> decoder inputs (``<bos>``, the same shifted right by one)."""
        bos = torch.full_like(targets[:, :1], self.cfg.bos_id)
        return torch.cat([bos, targets[:, :-1]], dim=1)

    def loss(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        logits = self(images, self.teacher_inputs(targets))
        rec = reconstruction_loss(logits, targets, self.cfg.pad_id)
        return rec, {"rec": float(rec.detach()),
                     "token_acc": float(token_accuracy(logits.detach(), targets, self.cfg.pad_id))}

    @torch.no_grad()
    def caption_ids(self, images: torch.Tensor) -> torch.Tensor:
        """Greedy decoding: ``max_len`` steps, each appending the most likely next word (after ``<eos>``, padding)."""
        memory = self.memory(images)
        b = images.shape[0]
        inputs = torch.full((b, 1), self.cfg.bos_id, dtype=torch.long, device=images.device)
        done = torch.zeros(b, dtype=torch.bool, device=images.device)
        out = []
        for _ in range(self.cfg.max_len):
            nxt = self(images, inputs, memory)[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, self.cfg.pad_id), nxt)
            out.append(nxt)
            done |= nxt == self.cfg.eos_id
            inputs = torch.cat([inputs, nxt[:, None]], dim=1)
            if bool(done.all()) or inputs.shape[1] > self.cfg.max_len:
                break
        ids = torch.stack(out, dim=1)
        return torch.nn.functional.pad(ids, (0, self.cfg.max_len - ids.shape[1]), value=self.cfg.pad_id)


__all__ = ["BOS_ID", "EOS_ID", "image_token_dim", "image_token_batch", "DirectCaptionerConfig", "DirectCaptioner",
           "AutoregressiveCaptionerConfig", "AutoregressiveCaptioner"]

"""The text decoder of captioning: a text latent ``(C, H, W)`` -> word logits at every caption position at once.

CrossFlow captions an image by flowing from the image to a TEXT latent and decoding that latent (paper Sec. 5.4,
Table 4; docs/METHOD.md Sec. 7): "a text decoder (stacked transformer blocks, trained with a reconstruction loss
from the Text VE latent) produces tokens; non-autoregressive". The paper gives no more detail and the public code
has no captioning, so the layout below is ours:

    z (B, C, H, W) --patchify (p x p)--> (B, N, C p p) --linear--> latent tokens (B, N, width) + latent positions
    learned position queries (max_len, width)                         one query per output position
    [latent tokens ; queries] --depth pre-norm transformer blocks (full, bidirectional attention)--> LayerNorm
    query outputs --linear--> logits (B, max_len, vocab_size)

All positions are predicted together from the latent (no causal mask, no feedback of earlier words): one forward
pass per caption, whatever its length. The decoder therefore cannot fix a word after seeing its neighbours; the
latent has to say everything, which is what the text autoencoder (:mod:`.text_autoencoder`) trains it to do.

Targets are the caption's word ids WITHOUT the leading ``<bos>`` (a constant needs no prediction): the words, then
``<eos>``, then padding. The reconstruction loss (:func:`reconstruction_loss`) is the token-level cross-entropy

    L_rec = - (1 / N) sum_{b, i : y_bi != pad} log softmax(logits_bi)[y_bi]        (N = number of non-pad targets)

so positions after ``<eos>`` are free (decoding stops at the first ``<eos>``; :func:`greedy_ids`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..core.transformer import INIT_STD, patchify

#: Id of the padding token in targets (``CaptionVocab.pad_id``): ignored by the reconstruction loss.
PAD_ID = 0


@dataclass(frozen=True)
class TextDecoderConfig:
    """Sizes of :class:`TextDecoder`. ``max_len``: output positions (words + ``<eos>``, no ``<bos>``);
    ``latent_patch``: side of the latent patch that becomes one latent token; ``pad_id``: the target id the loss
    ignores. Transformer knobs share the names of the other transformers (``width``, ``depth``, ``heads``,
    ``mlp_ratio``)."""

    latent_shape: tuple[int, int, int] = (8, 4, 4)
    vocab_size: int = 122  # the ShapesWorld grammar's CaptionVocab
    max_len: int = 15
    latent_patch: int = 1
    width: int = 128
    depth: int = 3
    heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    pad_id: int = PAD_ID

    def __post_init__(self) -> None:
        if len(self.latent_shape) != 3 or any(int(s) < 1 for s in self.latent_shape):
            raise ValueError(f"latent_shape must be three positive sizes (C, H, W), got {self.latent_shape!r}")
        if any(s % self.latent_patch for s in self.latent_shape[1:]):
            raise ValueError(f"latent size {self.latent_shape[1:]} is not divisible by latent_patch="
                             f"{self.latent_patch}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be divisible by heads {self.heads}")
        if self.vocab_size < 3 or self.max_len < 2:
            raise ValueError(f"vocab_size must be >= 3 and max_len >= 2 (a word and <eos>), got {self.vocab_size}, "
                             f"{self.max_len}")
        if not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(f"pad_id {self.pad_id} is not a token id (vocab_size {self.vocab_size})")

    @property
    def num_latent_tokens(self) -> int:
        _, h, w = self.latent_shape
        return (h // self.latent_patch) * (w // self.latent_patch)


class TextDecoder(nn.Module):
    """Text latent ``(B, *latent_shape)`` -> word logits ``(B, max_len, vocab_size)``, all positions at once."""

    def __init__(self, cfg: TextDecoderConfig = TextDecoderConfig()):
        super().__init__()
        self.cfg = cfg
        c, p = cfg.latent_shape[0], cfg.latent_patch
        self.latent_in = nn.Linear(c * p * p, cfg.width)
        self.latent_pos = nn.Parameter(torch.randn(1, cfg.num_latent_tokens, cfg.width) * INIT_STD)
        self.queries = nn.Parameter(torch.randn(1, cfg.max_len, cfg.width) * INIT_STD)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(cfg.width, cfg.heads, int(cfg.mlp_ratio * cfg.width), cfg.dropout,
                                       activation="gelu", batch_first=True, norm_first=True)
            for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.width)
        self.head = nn.Linear(cfg.width, cfg.vocab_size)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if z.ndim != 4 or tuple(z.shape[1:]) != tuple(cfg.latent_shape):
            raise ValueError(f"the text decoder reads latents of shape (B, {', '.join(map(str, cfg.latent_shape))}) "
                             f"(TextDecoderConfig.latent_shape), got {tuple(z.shape)}")
        tokens = self.latent_in(patchify(z, cfg.latent_patch)) + self.latent_pos
        x = torch.cat([tokens, self.queries.expand(z.shape[0], -1, -1)], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, cfg.num_latent_tokens:]))


def reconstruction_loss(logits: torch.Tensor, targets: torch.Tensor, pad_id: int = PAD_ID) -> torch.Tensor:
    """Token cross-entropy of ``logits (B, L, V)`` against ``targets (B, L)``, averaged over the non-pad targets
    (the formula in the module docstring)."""
    if logits.shape[:2] != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} must agree on (B, L)")
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=pad_id)


def greedy_ids(logits: torch.Tensor) -> torch.Tensor:
    """The most likely word at every position, ``(B, L)`` (decoding reads them up to the first ``<eos>``)."""
    return logits.argmax(dim=-1)


def token_accuracy(logits: torch.Tensor, targets: torch.Tensor, pad_id: int = PAD_ID) -> torch.Tensor:
    """Share of non-pad target positions whose most likely word is right."""
    keep = targets != pad_id
    return (greedy_ids(logits)[keep] == targets[keep]).float().mean()


__all__ = ["PAD_ID", "TextDecoderConfig", "TextDecoder", "reconstruction_loss", "greedy_ids", "token_accuracy"]

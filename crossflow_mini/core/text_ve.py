"""The Text Variational Encoder (Text VE): text tokens -> a Gaussian latent with the target latent's shape.

CrossFlow (Liu et al., CVPR 2025, Sec. 4.1; docs/METHOD.md Sec. 2) makes the *text* the source distribution of
flow matching. The Text VE turns frozen language-model token embeddings into (mu, logvar) shaped exactly like the
target latent z1 (the image latent for text-to-image), and the flow starts from z0 = mu + exp(logvar / 2) eps
(:func:`~crossflow_mini.core.source.reparameterise`).

Encoder (the public code's, scaled down; the paper only says "a Text VE"):

    tokens (B, L, 384) --linear--> (B, L, width) + positions --depth pre-norm transformer encoder layers
    (padding mask only)--> LayerNorm --> token states h (B, L, width)

Two heads turn the token states into (mu, logvar) (``TextVEConfig.head``):

* ``"flatten"`` (public code): reduction layers (width -> width/2 -> ..., per token) -> zero the padding ->
  flatten (max_tokens * reduced width) -> linear -> (mu, logvar), reshaped to ``latent_shape``. Every latent value
  depends on every token through one dense map: nothing ties a latent position to a part of the sentence.
* ``"patch_queries"`` (ours; docs/METHOD.md Sec. 9): one learned query per latent patch attends to the token
  states through ``head_depth`` cross-attention decoder layers, and each query gives mu / logvar of its own
  ``head_patch`` x ``head_patch`` patch. The source is then laid out like the target it flows to, patch by patch.

Losses (:meth:`TextVE.encoder_loss`, plus the KL of :class:`~crossflow_mini.core.source.SourceEncoder`); the joint
objective is L_FM + L_Enc + lambda L_KL (docs/METHOD.md Sec. 2), and ``enc_loss`` picks the paper's Table 3b row:

* ``"image_text"`` (paper best): InfoNCE between z0 and a small tower's embedding of the paired TARGET latent;
* ``"text_text"``: InfoNCE between z0 and a linear projection of the mean-pooled input tokens;
* ``"text_recon"``: MSE between a linear decoding of z0 and the mean-pooled input tokens;
* ``"none"``.

The contrastive loss must see the TRUE (text, target) pairs: the CrossFlow model passes the unswapped targets here,
not the ones :func:`crossflow_mini.core.guidance.swap_targets` made for the flow loss.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..configs import added_field
from .source import (LOGVAR_RANGE, resolve_kl_weight, MINILM_TOKEN_DIM, CLIP_INIT_TEMPERATURE, SourceEncoder,
                     SourceOutput, TokenBatch, TowerConfig, check_common, info_nce, masked_mean)
from .transformer import INIT_STD, patchify, unpatchify

ENC_LOSSES = ("image_text", "text_text", "text_recon", "none")
CONTRASTIVE_LOSSES = ("image_text", "text_text")
HEADS = ("flatten", "patch_queries")


@dataclass(frozen=True)
class TextVEConfig:
    """Text VE sizes and loss choices (docs/METHOD.md Sec. 2; paper Sec. 4.1, Table 3a/3b).

    Transformer knobs share the names of :class:`~crossflow_mini.core.transformer.TransformerConfig` (``width``,
    ``depth``, ``heads``, ``mlp_ratio``). ``kl_weight=None`` follows ``kl_form``: 1e-4 for ``"paper"``, 1e-2 for
    ``"code"``. ``token_scale`` multiplies the input tokens (the public code multiplies T5 features by 10; MiniLM needs 1).
    ``hard_negatives``: how many extra negative captions per sample the contrastive loss may be given (0 = none;
    the caller supplies them, e.g. the same scene with the colours of two objects swapped)."""

    token_dim: int = MINILM_TOKEN_DIM
    width: int = 128
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    max_tokens: int = 32
    latent_shape: tuple[int, int, int] = (4, 8, 8)
    token_scale: float = 1.0
    head: str = "flatten"
    reduction_layers: int = 2  # "flatten" head: halving layers before the flatten
    head_depth: int = 2  # "patch_queries" head: cross-attention decoder layers
    head_patch: int = 2  # "patch_queries" head: latent patch side per query
    variant: str = "ve"  # "ve" | "plain" | "noise"   (Table 3a)
    fixed_noise_std: float = 1.0  # "noise" variant: z0 = mu + fixed_noise_std * eps (the prior's std)
    kl_form: str = "paper"  # "paper" | "code"
    kl_weight: float | None = None  # None -> 1e-4 (paper) or 1e-2 (code), following kl_form
    enc_loss: str = "image_text"  # "image_text" | "text_text" | "text_recon" | "none"   (Table 3b)
    enc_weight: float = 1.0
    init_temperature: float = CLIP_INIT_TEMPERATURE
    temperature_param: str = "log"  # "log" (exp of a learnable log-scale) | "raw" (public-code quirk)
    tower: TowerConfig = TowerConfig()
    hard_negatives: int = added_field(0)
    align_weight: float = added_field(0.0)  # ours: weight of || mu - z1 ||^2 (SourceEncoder.losses)

    def __post_init__(self) -> None:
        check_common("TextVEConfig", self.variant, self.kl_form, self.temperature_param, self.fixed_noise_std,
                     self.init_temperature)
        if self.enc_loss not in ENC_LOSSES:
            raise ValueError(f"TextVEConfig.enc_loss={self.enc_loss!r} is not one of {ENC_LOSSES}")
        if self.head not in HEADS:
            raise ValueError(f"TextVEConfig.head={self.head!r} is not one of {HEADS}")
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be divisible by heads {self.heads}")
        if self.head == "flatten" and self.width % 2 ** self.reduction_layers:
            raise ValueError(f"width {self.width} must be divisible by 2 ** reduction_layers = "
                             f"{2 ** self.reduction_layers} (each reduction layer halves it)")
        if len(self.latent_shape) != 3:
            raise ValueError(f"latent_shape must be (C, H, W), got {self.latent_shape}")
        if self.head == "patch_queries" and any(s % self.head_patch for s in self.latent_shape[1:]):
            raise ValueError(f"latent size {self.latent_shape[1:]} is not divisible by head_patch={self.head_patch}")
        if self.max_tokens < 1 or self.token_dim < 1:
            raise ValueError("max_tokens and token_dim must be positive")
        if self.enc_loss == "image_text" and tuple(self.tower.in_shape) != tuple(self.latent_shape):
            raise ValueError(f"the image tower reads targets of shape {self.tower.in_shape} but the latent is "
                             f"{self.latent_shape}: set tower=TowerConfig(in_shape=latent_shape)")
        if self.hard_negatives < 0 or self.align_weight < 0:
            raise ValueError("hard_negatives and align_weight must be >= 0")

    @property
    def reduced_width(self) -> int:
        return self.width // 2 ** self.reduction_layers

    @property
    def latent_numel(self) -> int:
        return math.prod(self.latent_shape)

    @property
    def resolved_kl_weight(self) -> float:
        """lambda of L_KL: ``kl_weight`` if set, else the default of ``kl_form``."""
        return resolve_kl_weight(self.kl_form, self.kl_weight)


def check_tokens(source: TokenBatch, token_dim: int) -> TokenBatch:
    """Validate a token batch against the encoder's token width."""
    if not isinstance(source, TokenBatch):
        raise ValueError(f"the Text VE reads a TokenBatch (tokens, mask) from the text encoder, got "
                         f"{type(source).__name__}")
    if source.tokens.shape[-1] != token_dim:
        raise ValueError(f"tokens have dimension {source.tokens.shape[-1]} but the Text VE expects {token_dim}: "
                         f"set TextVEConfig.token_dim to match your text encoder")
    return source


class TextVE(SourceEncoder):
    """:class:`~crossflow_mini.core.source.TokenBatch` -> :class:`~crossflow_mini.core.source.SourceOutput` with z0
    ``(B, *latent_shape)``.

    Padding never matters: padded positions are zeroed on input, masked out as attention keys and (flatten head)
    zeroed again before flattening, so appending padding - or putting anything into padded slots - leaves the output
    unchanged. Sequences are padded or truncated to ``max_tokens``."""

    def __init__(self, cfg: TextVEConfig = TextVEConfig()):
        super().__init__(cfg, contrastive=cfg.enc_loss in CONTRASTIVE_LOSSES,
                         tower=cfg.tower if cfg.enc_loss == "image_text" else None)
        self.cfg: TextVEConfig = cfg
        self.proj = nn.Linear(cfg.token_dim, cfg.width)
        self.pos = nn.Parameter(torch.zeros(1, cfg.max_tokens, cfg.width))
        nn.init.normal_(self.pos, std=INIT_STD)
        hidden = int(cfg.mlp_ratio * cfg.width)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(cfg.width, cfg.heads, hidden, cfg.dropout, activation="gelu",
                                       batch_first=True, norm_first=True)
            for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.width)
        n_stats = 2 if cfg.variant == "ve" else 1  # (mu, logvar) or mu only
        if cfg.head == "flatten":
            reductions: list[nn.Module] = []
            w = cfg.width
            for i in range(cfg.reduction_layers):  # GELU between the halving layers, none after the last
                reductions.append(nn.Linear(w, w // 2))
                w //= 2
                if i < cfg.reduction_layers - 1:
                    reductions.append(nn.GELU())
            self.reduce = nn.Sequential(*reductions)
            self.to_stats = nn.Linear(cfg.max_tokens * cfg.reduced_width, n_stats * cfg.latent_numel)
        else:
            c, h, w = cfg.latent_shape
            p = cfg.head_patch
            self.queries = nn.Parameter(torch.randn(1, (h // p) * (w // p), cfg.width) * INIT_STD)
            self.decoder = nn.ModuleList(
                nn.TransformerDecoderLayer(cfg.width, cfg.heads, hidden, cfg.dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
                for _ in range(cfg.head_depth))
            self.query_norm = nn.LayerNorm(cfg.width)
            self.to_stats = nn.Linear(cfg.width, n_stats * c * p * p)
        if cfg.enc_loss == "text_text":
            self.text_head = nn.Linear(cfg.token_dim, cfg.latent_numel)
        if cfg.enc_loss == "text_recon":
            self.recon_head = nn.Linear(cfg.latent_numel, cfg.token_dim)

    # -- encoder
    def _fit_length(self, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.cfg.max_tokens
        length = tokens.shape[1]
        if length > n:
            if mask[:, n:].any():
                warnings.warn(f"some sequences have real tokens beyond TextVEConfig.max_tokens={n}; they were "
                              f"truncated", stacklevel=4)
            return tokens[:, :n], mask[:, :n]
        if length < n:
            tokens = F.pad(tokens, (0, 0, 0, n - length))
            mask = F.pad(mask, (0, n - length), value=False)
        return tokens, mask

    def token_states(self, source: TokenBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's token states ``(B, max_tokens, width)`` and the (fitted) mask."""
        source = check_tokens(source, self.cfg.token_dim)
        tokens, mask = self._fit_length(source.tokens, source.mask)
        empty = (~mask.any(dim=1)).nonzero().flatten()
        if len(empty):
            raise ValueError(f"sample(s) {empty.tolist()} have no real token in the first {self.cfg.max_tokens} "
                             f"positions (mask all False): every caption needs at least one token")
        x = tokens.masked_fill(~mask[..., None], 0.0) * self.cfg.token_scale
        x = self.proj(x) + self.pos
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=~mask)
        return self.norm(x), mask

    def stats(self, source: TokenBatch) -> tuple[torch.Tensor, torch.Tensor | None]:
        h, mask = self.token_states(source)
        cfg = self.cfg
        b = h.shape[0]
        if cfg.head == "flatten":
            x = self.reduce(h).masked_fill(~mask[..., None], 0.0)  # padding positions contribute exactly zero
            stats = self.to_stats(x.flatten(1)).reshape(b, -1, *cfg.latent_shape)
        else:
            q = self.queries.expand(b, -1, -1)
            for layer in self.decoder:
                q = layer(q, h, memory_key_padding_mask=~mask)
            per_patch = self.to_stats(self.query_norm(q))  # (B, N, n_stats * C p p)
            n_stats = 2 if cfg.variant == "ve" else 1
            c = cfg.latent_shape[0]
            stats = torch.stack([unpatchify(part, cfg.head_patch, cfg.latent_shape)
                                 for part in per_patch.chunk(n_stats, dim=-1)], dim=1)
        if cfg.variant == "ve":
            return stats[:, 0], stats[:, 1].clamp(*LOGVAR_RANGE)
        return stats[:, 0], None

    # -- loss parts
    def text_embedding(self, source: TokenBatch) -> torch.Tensor:
        """``"text_text"``: a linear projection of the mean-pooled input tokens, ``(B, latent_numel)``."""
        if not hasattr(self, "text_head"):
            raise ValueError("text_embedding needs TextVEConfig(enc_loss='text_text')")
        source = check_tokens(source, self.cfg.token_dim)
        return self.text_head(masked_mean(source.tokens * self.cfg.token_scale, source.mask))

    def encoder_loss(self, out: SourceOutput, source: TokenBatch, target: torch.Tensor | None,
                     negatives: torch.Tensor | None = None) -> torch.Tensor:
        """L_Enc by ``cfg.enc_loss`` (paper Table 3b; see the module docstring). ``negatives`` (extra targets that
        must not match, e.g. images of colour-swapped scenes) join the image-text loss as hard negatives."""
        enc_loss = self.cfg.enc_loss
        if enc_loss == "image_text":
            return self.target_contrastive(out.z0, target, negatives)
        if enc_loss == "text_text":
            return info_nce(out.z0, self.text_embedding(source), self.logit_scale())
        if enc_loss == "text_recon":
            source = check_tokens(source, self.cfg.token_dim)
            pooled = masked_mean(source.tokens * self.cfg.token_scale, source.mask)
            return F.mse_loss(self.recon_head(out.z0.flatten(1)), pooled)
        return out.mu.new_zeros(())


__all__ = ["ENC_LOSSES", "CONTRASTIVE_LOSSES", "HEADS", "TextVEConfig", "TextVE", "check_tokens", "patchify"]

"""The latent-patch transformers: CrossFlow's velocity network and the baseline's.

* :class:`VelocityTransformer` - the CrossFlow velocity model (paper Sec. 4, docs/METHOD.md Sec. 3-4): a
  vanilla DiT-style transformer over latent patches that sees only ``z_t``, ``t`` and the CFG indicator.
  No cross-attention and no text tokens: the text is already *in* the source latent ``z0``.
* :class:`CrossAttentionTransformer` - the standard flow-matching baseline of the paper (Table 1, Fig. 3):
  the same transformer family, plus cross-attention from the patches to the frozen text tokens; its source
  is Gaussian noise.

Both transformers condition every block on time by adaLN-Zero (DiT, Peebles & Xie 2023) and zero-initialise
their output projection, so an untrained model predicts exactly zero velocity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .guidance import CONDITIONAL, NUM_INDICATOR_STATES, UNCONDITIONAL
from .source import MINILM_TOKEN_DIM


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding of times ``t`` ``(B,)`` in [0, 1] -> ``(B, dim)`` (as in DiT, with t scaled by 1000)."""
    if t.ndim == 0:
        t = t[None]
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = 1000.0 * t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


# ------------------------------------------------------------------------------------------- transformers
INDICATOR_MODES = ("token", "embedding")
POS_EMBED_MODES = ("learned", "sincos")
LN_EPS = 1e-6  # LayerNorm epsilon of DiT
INIT_STD = 0.02  # std of learned embeddings (positions, indicator tokens, null text token)
SINCOS_MAX_PERIOD = 10_000.0


@dataclass(frozen=True)
class TransformerConfig:
    """Knobs shared by both latent-patch transformers (so their sizes can be matched, paper Table 1 / Fig. 3).

    A latent ``latent_shape = (C, H, W)`` is cut into ``(H / p) * (W / p)`` patches of ``C * p * p`` values
    (``p = patch_size``); the defaults give 16 tokens of 16 values. ``time_dim`` is the size of the sinusoidal
    time features fed to the time MLP; ``pos_embed`` is ``"learned"`` (one vector per patch position) or
    ``"sincos"`` (the fixed 2-D sine-cosine table of DiT, no parameters)."""

    latent_shape: tuple[int, int, int] = (4, 8, 8)
    patch_size: int = 2
    width: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    time_dim: int = 128
    dropout: float = 0.0
    pos_embed: str = "learned"

    @property
    def grid(self) -> tuple[int, int]:
        """Patches along the height and the width of the latent."""
        _, h, w = self.latent_shape
        return h // self.patch_size, w // self.patch_size

    @property
    def num_patches(self) -> int:
        gh, gw = self.grid
        return gh * gw

    @property
    def patch_dim(self) -> int:
        """Values in one patch: ``C * p * p``."""
        return self.latent_shape[0] * self.patch_size**2

    def validate(self) -> None:
        """Raise ``ValueError`` with a helpful message if the knobs do not fit together."""
        if len(self.latent_shape) != 3 or any(int(s) < 1 for s in self.latent_shape):
            raise ValueError(f"latent_shape must be three positive sizes (C, H, W), got {self.latent_shape!r}")
        if self.patch_size < 1:
            raise ValueError(f"patch_size must be a positive integer, got {self.patch_size!r}")
        _, h, w = self.latent_shape
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"latent size {h} x {w} is not divisible by patch_size={self.patch_size}; "
                             f"choose a patch size that divides both")
        if self.width < 1 or self.depth < 1 or self.heads < 1:
            raise ValueError(f"width, depth and heads must be positive, got {self.width}, {self.depth}, {self.heads}")
        if self.width % self.heads:
            raise ValueError(f"width={self.width} must be divisible by heads={self.heads}")
        if self.pos_embed == "sincos" and self.width % 4:
            raise ValueError(f"the 2-D sincos position table needs width divisible by 4, got {self.width}")
        if self.mlp_ratio <= 0 or self.time_dim < 1:
            raise ValueError(f"mlp_ratio and time_dim must be positive, got {self.mlp_ratio}, {self.time_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.pos_embed not in POS_EMBED_MODES:
            raise ValueError(f"unknown pos_embed {self.pos_embed!r}; choose one of {POS_EMBED_MODES}")


@dataclass(frozen=True)
class VelocityTransformerConfig(TransformerConfig):
    """:class:`VelocityTransformer` (CrossFlow). ``indicator`` says how the CFG indicator 1_c enters (Sec. 4.2):

    * ``"token"`` - a learned token per indicator state, prepended to the patch sequence (the DiMR backbone of
      the CrossFlow code; there a learned scalar per state is broadcast to a token, here a learned vector);
    * ``"embedding"`` - a 2-class label embedding added to the time embedding (the DiT backbone)."""

    indicator: str = "token"

    def validate(self) -> None:
        super().validate()
        if self.indicator not in INDICATOR_MODES:
            raise ValueError(f"unknown indicator mode {self.indicator!r}; choose one of {INDICATOR_MODES}")


@dataclass(frozen=True)
class CrossAttentionTransformerConfig(TransformerConfig):
    """:class:`CrossAttentionTransformer` (the standard flow-matching baseline). ``token_dim`` is the width of
    the frozen text-encoder tokens (384 for MiniLM)."""

    token_dim: int = MINILM_TOKEN_DIM

    def validate(self) -> None:
        super().validate()
        if self.token_dim < 1:
            raise ValueError(f"token_dim must be positive, got {self.token_dim}")


# ----------------------------------------------------------------------------------------- patch helpers
def patchify(z: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, N, C * p * p)``: patches in row-major order, each flattened as ``(C, p, p)``."""
    b, c, h, w = z.shape
    p = patch_size
    z = z.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
    return z.reshape(b, (h // p) * (w // p), c * p * p)


def unpatchify(tokens: torch.Tensor, patch_size: int, latent_shape: tuple[int, int, int]) -> torch.Tensor:
    """The inverse of :func:`patchify`: ``(B, N, C * p * p)`` -> ``(B, C, H, W)``."""
    c, h, w = latent_shape
    p = patch_size
    z = tokens.reshape(tokens.shape[0], h // p, w // p, c, p, p).permute(0, 3, 1, 4, 2, 5)
    return z.reshape(tokens.shape[0], c, h, w)


def sincos_pos_embed_2d(width: int, grid_h: int, grid_w: int) -> torch.Tensor:
    """The fixed 2-D sine-cosine position table of DiT / MAE: ``(grid_h * grid_w, width)``, half of the
    channels encode the row, half the column."""
    quarter = width // 4
    freqs = 1.0 / SINCOS_MAX_PERIOD ** (torch.arange(quarter, dtype=torch.float32) / quarter)
    rows, cols = torch.meshgrid(torch.arange(grid_h, dtype=torch.float32),
                                torch.arange(grid_w, dtype=torch.float32), indexing="ij")

    def encode(pos: torch.Tensor) -> torch.Tensor:
        args = pos.reshape(-1, 1) * freqs[None]
        return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)

    return torch.cat([encode(rows), encode(cols)], dim=-1)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: ``x * (1 + scale) + shift`` with per-sample ``shift, scale`` ``(B, D)`` over tokens ``(B, N, D)``."""
    return x * (1 + scale[:, None]) + shift[:, None]


# ------------------------------------------------------------------------------------------------ layers
class Attention(nn.Module):
    """Multi-head attention via ``F.scaled_dot_product_attention``.

    Self-attention when ``context`` is ``None``; otherwise cross-attention from ``x`` (queries) to ``context``
    (keys and values). ``key_mask`` ``(B, L)`` bool is True where a key takes part; masked keys get weight 0."""

    def __init__(self, width: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.reshape(b, n, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                key_mask: torch.Tensor | None = None) -> torch.Tensor:
        context = x if context is None else context
        q = self._split(self.q(x))
        k, v = (self._split(y) for y in self.kv(context).chunk(2, dim=-1))
        mask = None if key_mask is None else key_mask[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(x.shape))


class Block(nn.Module):
    """A pre-norm transformer block with adaLN-Zero time conditioning (DiT):

        x = x + g1 * SelfAttn(modulate(LN(x), b1, s1))
        x = x + g2 * CrossAttn(modulate(LN(x), b2, s2), text)      (only with ``cross_attention=True``)
        x = x + g3 * MLP(modulate(LN(x), b3, s3))

    where (b, s, g) come from a linear map of SiLU(c), c the conditioning embedding. That map is zero-initialised
    ("Zero"), so every gate g starts at 0 and the block starts as the identity."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0,
                 cross_attention: bool = False):
        super().__init__()
        self.cross = cross_attention
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=LN_EPS)
        self.attn = Attention(width, heads, dropout)
        if cross_attention:
            self.norm_cross = nn.LayerNorm(width, elementwise_affine=False, eps=LN_EPS)
            self.cross_attn = Attention(width, heads, dropout)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=LN_EPS)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Dropout(dropout),
                                 nn.Linear(hidden, width))
        self.n_mod = 9 if cross_attention else 6  # (shift, scale, gate) per sub-layer
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, self.n_mod * width))

    def forward(self, x: torch.Tensor, c: torch.Tensor, context: torch.Tensor | None = None,
                context_mask: torch.Tensor | None = None) -> torch.Tensor:
        mods = self.modulation(c).chunk(self.n_mod, dim=-1)
        shift, scale, gate = mods[0:3]
        x = x + gate[:, None] * self.attn(modulate(self.norm1(x), shift, scale))
        if self.cross:
            if context is None:
                raise ValueError("this block has cross-attention and needs a context")
            shift, scale, gate = mods[3:6]
            x = x + gate[:, None] * self.cross_attn(modulate(self.norm_cross(x), shift, scale), context, context_mask)
        shift, scale, gate = mods[-3:]
        return x + gate[:, None] * self.mlp(modulate(self.norm2(x), shift, scale))


class FinalLayer(nn.Module):
    """adaLN (shift, scale from the conditioning) then a linear map from ``width`` to patch values. Both linear
    maps are zero-initialised (DiT), so an untrained model outputs exactly zero velocity."""

    def __init__(self, width: int, patch_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=LN_EPS)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.linear = nn.Linear(width, patch_dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.modulation(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


class TimestepEmbedder(nn.Module):
    """t ``(B,)`` -> sinusoidal features (:func:`timestep_embedding`) -> MLP -> ``(B, width)`` (DiT)."""

    def __init__(self, width: int, time_dim: int):
        super().__init__()
        self.time_dim = time_dim
        self.mlp = nn.Sequential(nn.Linear(time_dim, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.time_dim).to(self.mlp[0].weight.dtype))


# ---------------------------------------------------------------------------------------------- backbones
class _PatchTransformer(nn.Module):
    """What both models share: patch embedding + positions, time embedding, ``depth`` adaLN-Zero blocks, the
    final layer, input checks and DiT's initialisation. Subclasses add their conditioning and ``forward``."""

    def __init__(self, cfg: TransformerConfig, cross_attention: bool):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.patch_embed = nn.Linear(cfg.patch_dim, cfg.width)
        if cfg.pos_embed == "learned":
            self.pos_embed = nn.Parameter(torch.randn(1, cfg.num_patches, cfg.width) * INIT_STD)
        else:  # fixed table, recomputed from the config, so not stored in checkpoints
            self.register_buffer("pos_embed", sincos_pos_embed_2d(cfg.width, *cfg.grid)[None], persistent=False)
        self.time_embed = TimestepEmbedder(cfg.width, cfg.time_dim)
        self.blocks = nn.ModuleList(
            Block(cfg.width, cfg.heads, cfg.mlp_ratio, cfg.dropout, cross_attention) for _ in range(cfg.depth))
        self.final = FinalLayer(cfg.width, cfg.patch_dim)

    def _init_weights(self) -> None:
        """DiT's initialisation: Xavier-uniform linear weights with zero biases, then zero the adaLN maps of
        every block and of the final layer, and the final projection (adaLN-Zero)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.time_embed.mlp[0].weight, std=INIT_STD)
        nn.init.normal_(self.time_embed.mlp[2].weight, std=INIT_STD)
        for layer in [*(b.modulation[-1] for b in self.blocks), self.final.modulation[-1], self.final.linear]:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def _check_latent(self, z_t: torch.Tensor) -> int:
        """Return the batch size of ``z_t`` after checking it is ``(B, *latent_shape)``."""
        if z_t.ndim != 4 or tuple(z_t.shape[1:]) != tuple(self.cfg.latent_shape):
            raise ValueError(f"expected z_t of shape (B, {', '.join(map(str, self.cfg.latent_shape))}), "
                             f"got {tuple(z_t.shape)}; the model was built for latent_shape={self.cfg.latent_shape}")
        return z_t.shape[0]

    def _embed_time(self, t: torch.Tensor | float, batch: int, device: torch.device) -> torch.Tensor:
        """Accept t as ``(B,)``, a 0-dim tensor or a float (broadcast to the batch) -> ``(B, width)``."""
        t = torch.as_tensor(t, device=device)
        if t.ndim == 0:
            t = t.expand(batch)
        if t.shape != (batch,):
            raise ValueError(f"expected t of shape ({batch},) or a scalar, got {tuple(t.shape)}")
        return self.time_embed(t)

    def _embed_patches(self, z_t: torch.Tensor) -> torch.Tensor:
        return self.patch_embed(patchify(z_t, self.cfg.patch_size)) + self.pos_embed

    def _to_latent(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return unpatchify(self.final(x, c), self.cfg.patch_size, self.cfg.latent_shape)


class VelocityTransformer(_PatchTransformer):
    """The CrossFlow velocity model v_theta(z_t, t, 1_c) (paper Sec. 4, Fig. 2; docs/METHOD.md Sec. 3-4).

    A vanilla transformer over latent patches: patchify -> linear embedding + positions -> [indicator token]
    -> ``depth`` pre-norm blocks with adaLN-Zero time modulation -> drop the indicator token -> final adaLN
    layer -> linear -> unpatchify. It has no cross-attention and never sees text tokens: the text enters only
    through the source latent z0 that the flow starts from.

    The CFG indicator 1_c (Sec. 4.2) is 1 for the conditional map (text latent -> its image) and 0 for the
    unconditional one (text latent -> some image); see ``VelocityTransformerConfig.indicator`` for how it
    enters. The final projection is zero-initialised (DiT), so an untrained model outputs exactly zero."""

    def __init__(self, cfg: VelocityTransformerConfig = VelocityTransformerConfig()):
        super().__init__(cfg, cross_attention=False)
        if cfg.indicator == "token":
            self.indicator_tokens = nn.Parameter(torch.randn(NUM_INDICATOR_STATES, cfg.width) * INIT_STD)
        else:
            self.indicator_embed = nn.Embedding(NUM_INDICATOR_STATES, cfg.width)
            nn.init.normal_(self.indicator_embed.weight, std=INIT_STD)
        self._init_weights()

    def _check_indicator(self, indicator: torch.Tensor | None, batch: int, device: torch.device) -> torch.Tensor:
        if indicator is None:
            return torch.full((batch,), CONDITIONAL, dtype=torch.long, device=device)
        indicator = torch.as_tensor(indicator, device=device)
        if indicator.shape != (batch,):
            raise ValueError(f"expected indicator of shape ({batch},), got {tuple(indicator.shape)}")
        if indicator.is_floating_point() or indicator.is_complex():
            raise ValueError(f"indicator must be an integer or bool tensor of 0/1, got dtype {indicator.dtype}")
        indicator = indicator.long()
        if not bool(((indicator == CONDITIONAL) | (indicator == UNCONDITIONAL)).all()):
            raise ValueError(f"indicator values must be 1 (conditional) or 0 (unconditional), "
                             f"got {sorted(set(indicator.tolist()))}")
        return indicator

    def forward(self, z_t: torch.Tensor, t: torch.Tensor | float,
                indicator: torch.Tensor | None = None) -> torch.Tensor:
        """Velocity at ``z_t`` ``(B, C, H, W)`` and time ``t`` (``(B,)`` or scalar, in [0, 1]).

        ``indicator`` ``(B,)`` long/bool in {0, 1}: 1 = conditional, 0 = unconditional; ``None`` = all 1."""
        batch = self._check_latent(z_t)
        c = self._embed_time(t, batch, z_t.device)
        ind = self._check_indicator(indicator, batch, z_t.device)
        x = self._embed_patches(z_t)
        use_token = self.cfg.indicator == "token"
        if use_token:
            x = torch.cat([self.indicator_tokens[ind][:, None], x], dim=1)
        else:
            c = c + self.indicator_embed(ind)
        for block in self.blocks:
            x = block(x, c)
        if use_token:
            x = x[:, 1:]
        return self._to_latent(x, c)


class CrossAttentionTransformer(_PatchTransformer):
    """The standard flow-matching baseline of the paper (Table 1, Fig. 3): the same patch transformer with
    cross-attention in every block from the patches to the (projected) frozen text tokens. Its source z0 is
    Gaussian noise, so the text is its only link to the prompt.

    Text tokens ``(B, L, token_dim)`` go through LayerNorm + Linear to ``width``; a learned **null token** is
    prepended to every key sequence and is always visible. Classifier-free guidance drops the text: pass
    ``drop=True`` (or a ``(B,)`` bool tensor), or equivalently a ``text_mask`` that is all False for a sample;
    such a sample then attends only to the null token, which is the learned "empty prompt". (The always-visible
    null token also means attention never sees an all-masked row.) Padded tokens (mask False) are zeroed
    before the projection and masked out of attention, so their values never matter."""

    def __init__(self, cfg: CrossAttentionTransformerConfig = CrossAttentionTransformerConfig()):
        super().__init__(cfg, cross_attention=True)
        self.text_proj = nn.Sequential(nn.LayerNorm(cfg.token_dim), nn.Linear(cfg.token_dim, cfg.width))
        self.null_token = nn.Parameter(torch.randn(1, 1, cfg.width) * INIT_STD)
        self._init_weights()

    def encode_text(self, text_tokens: torch.Tensor, text_mask: torch.Tensor,
                    drop: torch.Tensor | bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys for cross-attention: ``[null, proj(tokens)]`` ``(B, 1 + L, width)`` and their mask
        ``(B, 1 + L)`` (null always True; text tokens True where real and not dropped)."""
        if text_tokens.ndim != 3 or text_tokens.shape[-1] != self.cfg.token_dim:
            raise ValueError(f"expected text_tokens of shape (B, L, {self.cfg.token_dim}), "
                             f"got {tuple(text_tokens.shape)}")
        batch, length = text_tokens.shape[:2]
        if text_mask.shape != (batch, length):
            raise ValueError(f"expected text_mask of shape ({batch}, {length}) to match text_tokens, "
                             f"got {tuple(text_mask.shape)}")
        if text_mask.dtype != torch.bool:
            if text_mask.is_floating_point() or not bool(((text_mask == 0) | (text_mask == 1)).all()):
                raise ValueError("text_mask must be a bool (or 0/1 integer) tensor, True on real tokens")
            text_mask = text_mask.bool()
        if drop is not None:
            drop = torch.as_tensor(drop, dtype=torch.bool, device=text_mask.device)
            drop = drop.expand(batch) if drop.ndim == 0 else drop
            if drop.shape != (batch,):
                raise ValueError(f"expected drop as a bool or a ({batch},) bool tensor, got {tuple(drop.shape)}")
            text_mask = text_mask & ~drop[:, None]
        tokens = text_tokens.masked_fill(~text_mask[..., None], 0.0)
        context = torch.cat([self.null_token.expand(batch, 1, -1), self.text_proj(tokens)], dim=1)
        keep = torch.cat([text_mask.new_ones(batch, 1), text_mask], dim=1)
        return context, keep

    def forward(self, z_t: torch.Tensor, t: torch.Tensor | float, text_tokens: torch.Tensor,
                text_mask: torch.Tensor, drop: torch.Tensor | bool | None = None) -> torch.Tensor:
        """Velocity at ``z_t`` ``(B, C, H, W)``, time ``t`` (``(B,)`` or scalar), given frozen text tokens
        ``(B, L, token_dim)`` with padding mask ``(B, L)`` (True = real token). ``drop`` (bool or ``(B,)``)
        replaces a sample's text by the null token: the unconditional branch of CFG."""
        batch = self._check_latent(z_t)
        context, keep = self.encode_text(text_tokens, text_mask, drop)
        if context.shape[0] != batch:
            raise ValueError(f"text_tokens has {context.shape[0]} samples but z_t has {batch}")
        c = self._embed_time(t, batch, z_t.device)
        x = self._embed_patches(z_t)
        for block in self.blocks:
            x = block(x, c, context, keep)
        return self._to_latent(x, c)


__all__ = [
    "timestep_embedding", "INIT_STD",
    "CONDITIONAL", "UNCONDITIONAL", "INDICATOR_MODES", "POS_EMBED_MODES",
    "TransformerConfig", "VelocityTransformerConfig", "CrossAttentionTransformerConfig",
    "patchify", "unpatchify", "sincos_pos_embed_2d", "modulate",
    "Attention", "Block", "FinalLayer", "TimestepEmbedder",
    "VelocityTransformer", "CrossAttentionTransformer",
]

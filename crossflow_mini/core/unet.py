"""A convolutional velocity network: ``diffusers.UNet2DModel`` in the project's calling convention.

Pixel-space tasks (depth, super-resolution; paper Sec. 5.5-5.6) have targets with a strong local structure, where a
UNet is the usual choice. :class:`UNetVelocity` wraps diffusers' ``UNet2DModel`` so that it is called like the
transformers, ``v(z_t, t, indicator, cond=None)``:

* ``t`` in [0, 1] is scaled by 1000 before diffusers' sinusoidal time embedding (as DiT scales it);
* the CFG indicator 1_c enters as a 2-class label embedding added to the time embedding (diffusers'
  ``num_class_embeds``; the DiT way of docs/METHOD.md Sec. 4);
* ``cond`` (the baseline only, ``cond_channels > 0``): an image concatenated to z_t as extra input channels
  (Marigold-style conditioning); where the indicator says unconditional, it is replaced by zeros, so the
  unconditional branch of CFG sees no condition.

For CrossFlow, ``cond_channels = 0``: the network sees z_t, t and the indicator only - the source is already in z_t.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..configs import added_field
from .guidance import CONDITIONAL, NUM_INDICATOR_STATES, UNCONDITIONAL

TIME_SCALE = 1000.0  # t in [0, 1] -> diffusers' timestep range


@dataclass(frozen=True)
class UNetVelocityConfig:
    """``latent_shape``: the target (C, H, W); ``cond_channels``: channels of a concatenated condition (0 for
    CrossFlow); ``block_out_channels``: one entry per resolution (each after the first halves H and W);
    ``attention``: self-attention at the lowest resolution; ``zero_out``: the last convolution starts at zero, so the
    untrained network predicts v = 0 everywhere and a flow from a source starts *at* its source (an identity start:
    for super-resolution, step 0 returns the bicubic upsampling exactly; docs/METHOD.md Sec. 7)."""

    latent_shape: tuple[int, int, int] = (1, 32, 32)
    cond_channels: int = 0
    block_out_channels: tuple[int, ...] = (32, 64, 64)
    layers_per_block: int = 1
    norm_num_groups: int = 8
    attention: bool = True
    attention_head_dim: int = 8
    zero_out: bool = added_field(False)

    def validate(self) -> None:
        c, h, w = self.latent_shape
        if h % 2 ** (len(self.block_out_channels) - 1) or w % 2 ** (len(self.block_out_channels) - 1):
            raise ValueError(f"{len(self.block_out_channels)} resolutions halve the latent {h} x {w} "
                             f"{len(self.block_out_channels) - 1} times: it must stay an integer size")
        if any(ch % self.norm_num_groups for ch in self.block_out_channels):
            raise ValueError(f"block_out_channels {self.block_out_channels} must be divisible by norm_num_groups "
                             f"{self.norm_num_groups}")
        if self.cond_channels < 0:
            raise ValueError("cond_channels must be >= 0")

    def __post_init__(self) -> None:
        self.validate()


class UNetVelocity(nn.Module):
    """v(z_t, t, indicator, cond) with a diffusers ``UNet2DModel`` inside (see the module docstring)."""

    def __init__(self, cfg: UNetVelocityConfig = UNetVelocityConfig()):
        super().__init__()
        from diffusers import UNet2DModel  # a heavy import, only where a UNet is used

        self.cfg = cfg
        c, h, _ = cfg.latent_shape
        n = len(cfg.block_out_channels)
        down = ["DownBlock2D"] * n
        up = ["UpBlock2D"] * n
        if cfg.attention:
            down[-1], up[0] = "AttnDownBlock2D", "AttnUpBlock2D"
        self.unet = UNet2DModel(
            sample_size=h, in_channels=c + cfg.cond_channels, out_channels=c,
            block_out_channels=tuple(cfg.block_out_channels), layers_per_block=cfg.layers_per_block,
            down_block_types=tuple(down), up_block_types=tuple(up), norm_num_groups=cfg.norm_num_groups,
            attention_head_dim=cfg.attention_head_dim, add_attention=cfg.attention,
            num_class_embeds=NUM_INDICATOR_STATES)
        if cfg.zero_out:
            nn.init.zeros_(self.unet.conv_out.weight)
            nn.init.zeros_(self.unet.conv_out.bias)

    def forward(self, z_t: torch.Tensor, t: torch.Tensor | float, indicator: torch.Tensor | None = None,
                cond: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.cfg
        if z_t.ndim != 4 or tuple(z_t.shape[1:]) != tuple(cfg.latent_shape):
            raise ValueError(f"expected z_t of shape (B, {', '.join(map(str, cfg.latent_shape))}), "
                             f"got {tuple(z_t.shape)}")
        b = z_t.shape[0]
        t = torch.as_tensor(t, device=z_t.device, dtype=z_t.dtype)
        t = t.expand(b) if t.ndim == 0 else t
        if t.shape != (b,):
            raise ValueError(f"expected t of shape ({b},) or a scalar, got {tuple(t.shape)}")
        if indicator is None:
            indicator = torch.full((b,), CONDITIONAL, dtype=torch.long, device=z_t.device)
        indicator = torch.as_tensor(indicator, device=z_t.device).long()
        if indicator.shape != (b,) or not bool(((indicator == CONDITIONAL) | (indicator == UNCONDITIONAL)).all()):
            raise ValueError(f"indicator must be a ({b},) tensor of 0/1 values")
        x = z_t
        if cfg.cond_channels:
            if cond is None or cond.shape != (b, cfg.cond_channels, *cfg.latent_shape[1:]):
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(f"this UNet concatenates a condition of shape (B, {cfg.cond_channels}, "
                                 f"{cfg.latent_shape[1]}, {cfg.latent_shape[2]}); got {got}")
            keep = (indicator == CONDITIONAL).to(cond.dtype)[:, None, None, None]
            x = torch.cat([z_t, cond * keep], dim=1)
        elif cond is not None:
            raise ValueError("this UNet takes no condition (cond_channels=0): CrossFlow's source is already in z_t")
        return self.unet(x, t * TIME_SCALE, class_labels=indicator).sample


__all__ = ["UNetVelocityConfig", "UNetVelocity", "TIME_SCALE"]

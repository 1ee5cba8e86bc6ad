"""Velocity networks by config: one place that turns a velocity config into its module.

* :class:`~crossflow_mini.core.transformer.VelocityTransformerConfig` - CrossFlow's plain latent-patch transformer
  (sees z_t, t and the CFG indicator; paper Sec. 4);
* :class:`~crossflow_mini.core.transformer.CrossAttentionTransformerConfig` - the baseline's transformer, which
  also cross-attends to text tokens (paper Table 1);
* :class:`~crossflow_mini.core.unet.UNetVelocityConfig` - a ``diffusers.UNet2DModel`` for pixel-space tasks,
  optionally with a concatenated condition (the baseline's Marigold-style conditioning).
"""

from __future__ import annotations

from torch import nn

from .transformer import (CrossAttentionTransformer, CrossAttentionTransformerConfig, VelocityTransformer,
                          VelocityTransformerConfig)
from .unet import UNetVelocity, UNetVelocityConfig

VelocityConfig = VelocityTransformerConfig | CrossAttentionTransformerConfig | UNetVelocityConfig


def build_velocity(cfg: VelocityConfig) -> nn.Module:
    """The velocity network a config describes (randomly initialised)."""
    if isinstance(cfg, VelocityTransformerConfig):
        return VelocityTransformer(cfg)
    if isinstance(cfg, CrossAttentionTransformerConfig):
        return CrossAttentionTransformer(cfg)
    if isinstance(cfg, UNetVelocityConfig):
        return UNetVelocity(cfg)
    raise TypeError(f"no velocity network for a {type(cfg).__name__}; use one of VelocityTransformerConfig, "
                    f"CrossAttentionTransformerConfig, UNetVelocityConfig")


__all__ = ["VelocityConfig", "build_velocity"]

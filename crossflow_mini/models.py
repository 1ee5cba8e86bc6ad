"""Velocity networks.

* :class:`MLPVelocity` - the small 2-D field of notebook 01.
* :class:`VelocityTransformer` - the CrossFlow velocity model (paper Sec. 4, CROSSFLOW_NOTES Sec. 3-4): a
  vanilla DiT-style transformer over latent patches that sees only ``z_t``, ``t`` and the CFG indicator.
  No cross-attention and no text tokens: the text is already *in* the source latent ``z0``.
* :class:`CrossAttentionTransformer` - the standard flow-matching baseline of the paper (Table 1, Fig. 3):
  the same transformer family, plus cross-attention from the patches to the frozen text tokens; its source
  is Gaussian noise.
* :func:`parameter_report` - total and per-submodule parameter counts (to report and match model sizes).

Both transformers condition every block on time by adaLN-Zero (DiT, Peebles & Xie 2023) and zero-initialise
their output projection, so an untrained model predicts exactly zero velocity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


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


class MLPVelocity(nn.Module):
    """v_theta(x, t) for points in R^d: an MLP over [x, embed(t)] (notebook 01)."""

    def __init__(self, dim: int = 2, hidden: int = 128, layers: int = 3, time_dim: int = 32):
        super().__init__()
        self.dim, self.time_dim = dim, time_dim
        blocks: list[nn.Module] = []
        width = dim + time_dim
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        blocks.append(nn.Linear(width, dim))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected points of shape (B, {self.dim}), got {tuple(x.shape)}")
        t = t.expand(x.shape[0]) if t.ndim == 0 else t
        return self.net(torch.cat([x, timestep_embedding(t, self.time_dim)], dim=-1))

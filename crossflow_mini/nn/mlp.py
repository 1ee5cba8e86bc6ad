"""The small velocity field of the 2-D lesson (notebook 01): an MLP over the point and its time features."""

from __future__ import annotations

import torch
from torch import nn

from ..core.transformer import timestep_embedding


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


__all__ = ["MLPVelocity"]

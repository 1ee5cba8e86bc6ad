"""The standard flow-matching baseline CrossFlow is compared against (paper Table 1, Fig. 3; CROSSFLOW_NOTES 7).

The usual text-to-image recipe: the flow starts from Gaussian noise and the text enters through cross-attention
to the frozen text-encoder tokens (:class:`~crossflow_mini.models.CrossAttentionTransformer`). Everything else is
CrossFlow's: the same straight path with ``sigma_min``, the same FM loss and time sampler, the same optimiser,
steps, ODE solver and NFE (the recipes share those settings).

    z0 ~ N(0, I)                                     (the source carries no information)
    drop ~ Bernoulli(p_uncond)                       (CFG: the text is replaced by the learned null token)
    z_t = (1 - (1 - sigma_min) t) z0 + t z1,  t ~ U(0, 1)
    L = || v(z_t, t, text if not drop else null) - (z1 - (1 - sigma_min) z0) ||^2

Guidance at sampling is the same formula as CrossFlow's, v = v_uncond + w (v_cond - v_uncond), with the
unconditional branch given by the null text instead of CrossFlow's indicator (:func:`guidance.guided_velocity`
runs both branches as one batch of 2B). The baseline has no Text VE: matching sizes means making its transformer
wider or deeper until its parameter count matches CrossFlow's Text VE + velocity model (the paper's comparison).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import path as flow
from .crossflow import CrossFlowConfig, CrossFlowLoss
from .guidance import make_guided, unconditional_mask
from .transformer import CONDITIONAL, CrossAttentionTransformer, CrossAttentionTransformerConfig
from .sampling import SampleResult, sample


@dataclass(frozen=True)
class BaselineConfig:
    """The baseline: its cross-attention transformer, the text-drop probability of CFG training (the same p as
    CrossFlow's unconditional share), the default guidance scale, and the flow's time sampler and sigma_min."""

    velocity: CrossAttentionTransformerConfig = CrossAttentionTransformerConfig()
    p_uncond: float = 0.1
    scale: float = 4.0
    time_sampler: str = "uniform"
    sigma_min: float = flow.SIGMA_MIN

    def __post_init__(self) -> None:
        if not 0.0 <= self.p_uncond <= 1.0:
            raise ValueError(f"BaselineConfig.p_uncond must be in [0, 1], got {self.p_uncond}")
        if self.time_sampler not in flow.TIME_SAMPLERS:
            raise ValueError(f"unknown time sampler {self.time_sampler!r}; use one of {sorted(flow.TIME_SAMPLERS)}")


class BaselineModel(nn.Module):
    """Noise -> image flow with cross-attention to the caption tokens; the same ``loss`` / ``generate`` / ``flow``
    interface as :class:`~crossflow_mini.crossflow.CrossFlowModel`, so the recipes train and judge both alike."""

    def __init__(self, cfg: BaselineConfig = BaselineConfig()):
        super().__init__()
        self.cfg = cfg
        self.velocity = CrossAttentionTransformer(cfg.velocity)

    def _indicator_velocity(self, z: torch.Tensor, t: torch.Tensor, indicator: torch.Tensor,
                            tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The velocity in :mod:`guidance`'s calling convention: indicator 0 drops the text (null token)."""
        return self.velocity(z, t, tokens, mask, drop=indicator != CONDITIONAL)

    def loss(self, tokens: torch.Tensor, mask: torch.Tensor, z1: torch.Tensor) -> CrossFlowLoss:
        """L_FM from Gaussian noise to the image latents, the text dropped with probability ``p_uncond``."""
        z0 = torch.randn_like(z1)
        drop = unconditional_mask(z1.shape[0], self.cfg.p_uncond, device=z1.device)
        t = flow.sample_time(self.cfg.time_sampler, z1.shape[0], device=z1.device)
        zt = flow.interpolate(z0, z1, t, self.cfg.sigma_min)
        fm = flow.fm_loss(self.velocity(zt, t, tokens, mask, drop=drop), z0, z1, self.cfg.sigma_min)
        return CrossFlowLoss(fm, {"fm": float(fm.detach()), "uncond": float(drop.float().mean())})

    @torch.no_grad()
    def generate(self, tokens: torch.Tensor, mask: torch.Tensor, guidance_scale: float | None = None,
                 steps: int = 50, method: str = "euler", generator: torch.Generator | None = None,
                 return_trajectory: bool = False) -> SampleResult:
        """Image latents for caption tokens: z0 ~ N(0, I) (from ``generator``), then the guided ODE to t = 1."""
        self.eval()
        z0 = torch.randn((tokens.shape[0], *self.cfg.velocity.latent_shape), generator=generator)
        return self.flow(z0, tokens, mask, guidance_scale, steps, method, return_trajectory)

    @torch.no_grad()
    def flow(self, z0: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor, guidance_scale: float | None = None,
             steps: int = 50, method: str = "euler", return_trajectory: bool = False) -> SampleResult:
        """The guided ODE from given noise z0 (t = 0) to image latents (t = 1), conditioned on the tokens."""
        self.eval()
        scale = self.cfg.scale if guidance_scale is None else guidance_scale
        if tokens.shape[0] != z0.shape[0]:
            raise ValueError(f"{tokens.shape[0]} captions but {z0.shape[0]} noise samples: give one of each")
        guided = make_guided(self._indicator_velocity, scale, tokens=tokens, mask=mask)
        return sample(guided, z0, steps, method=method, return_trajectory=return_trajectory)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def matched_baseline(crossflow: CrossFlowConfig, depth: int | None = None, heads: int | None = None,
                     **baseline_kw) -> BaselineConfig:
    """The baseline whose parameter count is closest to the CrossFlow model's (Text VE and image tower counted,
    as in the paper's size-matched comparison): the same depth, heads and patching as CrossFlow's velocity model
    (unless given), and the width that matches best among multiples of ``2 * heads``."""
    from .crossflow import CrossFlowModel

    v = crossflow.velocity
    depth, heads = depth or v.depth, heads or v.heads
    target = parameter_count(CrossFlowModel(crossflow))
    step = 2 * heads
    best: tuple[float, BaselineConfig] | None = None
    for width in range(step, 4 * v.width + step, step):
        cfg = BaselineConfig(velocity=CrossAttentionTransformerConfig(
            latent_shape=v.latent_shape, patch_size=v.patch_size, width=width, depth=depth, heads=heads,
            mlp_ratio=v.mlp_ratio, time_dim=v.time_dim, pos_embed=v.pos_embed), **baseline_kw)
        gap = abs(parameter_count(BaselineModel(cfg)) - target) / target
        if best is None or gap < best[0]:
            best = (gap, cfg)
    assert best is not None
    return best[1]


__all__ = ["BaselineConfig", "BaselineModel", "matched_baseline", "parameter_count"]

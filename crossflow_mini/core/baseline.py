"""The standard flow-matching baseline CrossFlow is compared against (paper Table 1, 5, 6, Fig. 3; docs/METHOD.md Sec. 3,
7).

The usual recipe: the flow starts from Gaussian noise and the task's input enters the network as a CONDITION -
text tokens through cross-attention (:class:`~crossflow_mini.core.transformer.CrossAttentionTransformer`, text to
image), or an image concatenated to z_t as input channels (:class:`~crossflow_mini.core.unet.UNetVelocity` with
``cond_channels > 0``, Marigold-style, depth and super-resolution). Everything else is CrossFlow's: the same
straight path with ``sigma_min``, the same FM loss and time sampler, and the same ``loss`` / ``generate`` /
``flow`` interface (:class:`~crossflow_mini.core.flow_model.FlowModel`), so a task compares both in one code path.

    z0 ~ N(0, I)                                     (draw 1: the source carries no information)
    drop ~ Bernoulli(p_uncond)                       (draw 2: CFG - the condition is dropped: null text / zeros)
    z_t = (1 - (1 - sigma_min) t) z0 + t z1,  t ~ U(0, 1)      (draw 3)
    L = || v(z_t, t, condition if not drop else null) - (z1 - (1 - sigma_min) z0) ||^2

Guidance at sampling is CrossFlow's formula, v = v_uncond + w (v_cond - v_uncond), with the unconditional branch
given by the dropped condition instead of CrossFlow's indicator. The baseline has no source encoder: matching sizes
means making its network wider until its parameter count matches CrossFlow's encoder + velocity network.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

import torch

from . import path as flow
from .flow_model import FlowLoss, FlowModel
from .guidance import CONDITIONAL, UNCONDITIONAL, unconditional_mask
from .networks import build_velocity
from .params import count_parameters
from .source import Source, SourceOutput, TokenBatch, batch_size, draw_noise
from .transformer import CrossAttentionTransformerConfig
from .unet import UNetVelocityConfig


@dataclass(frozen=True)
class BaselineConfig:
    """The baseline: its conditioned network, the condition-drop probability of CFG training (the same p as
    CrossFlow's unconditional share), and the flow's time sampler and sigma_min. (Its guidance weight at sampling
    time is a sampling setting, as CrossFlow's.)"""

    method: ClassVar[str] = "baseline"  # the method's name in tables (tasks.common.method_of)

    velocity: CrossAttentionTransformerConfig | UNetVelocityConfig = CrossAttentionTransformerConfig()
    p_uncond: float = 0.1
    time_sampler: str = "uniform"
    sigma_min: float = flow.SIGMA_MIN

    def __post_init__(self) -> None:
        if not 0.0 <= self.p_uncond <= 1.0:
            raise ValueError(f"BaselineConfig.p_uncond must be in [0, 1], got {self.p_uncond}")
        if self.time_sampler not in flow.TIME_SAMPLERS:
            raise ValueError(f"unknown time sampler {self.time_sampler!r}; use one of {sorted(flow.TIME_SAMPLERS)}")
        if isinstance(self.velocity, UNetVelocityConfig) and not self.velocity.cond_channels:
            raise ValueError("the baseline's UNet needs cond_channels > 0: its source is noise, so the condition "
                             "is how the input reaches it")


class BaselineModel(FlowModel):
    """Noise -> target flow with the input as a condition; CrossFlow's interface (see the module docstring)."""

    def __init__(self, cfg: BaselineConfig = BaselineConfig()):
        super().__init__()
        self.cfg = cfg
        self.velocity = build_velocity(cfg.velocity)

    def encode(self, source: Source, generator: torch.Generator | None = None) -> SourceOutput:
        """Standard flow matching's source: Gaussian noise of the target's shape (the input is not used here)."""
        z0 = draw_noise((batch_size(source), *self.latent_shape), generator, self.device)
        return SourceOutput(z0, torch.zeros_like(z0), None)

    def condition(self, source: Source) -> Source:
        return source

    def velocity_at(self, z: torch.Tensor, t: torch.Tensor, indicator: torch.Tensor,
                    condition: Source | None = None) -> torch.Tensor:
        """The velocity in :mod:`.guidance`'s calling convention: indicator 0 drops the condition."""
        if condition is None:
            raise ValueError("the baseline needs its condition (the text tokens or the conditioning image)")
        if isinstance(self.cfg.velocity, CrossAttentionTransformerConfig):
            if not isinstance(condition, TokenBatch):
                raise ValueError(f"the cross-attention baseline reads a TokenBatch, got {type(condition).__name__}")
            return self.velocity(z, t, condition.tokens, condition.mask, drop=indicator != CONDITIONAL)
        return self.velocity(z, t, indicator, condition)

    def loss(self, source: Source, target: torch.Tensor, *, t: torch.Tensor | None = None,
             uncond: torch.Tensor | None = None, perm: torch.Tensor | None = None,
             generator: torch.Generator | None = None, negatives: torch.Tensor | None = None) -> FlowLoss:
        """L_FM from Gaussian noise to the targets, the condition dropped with probability ``p_uncond``.

        Draws, in order, from ``generator``: the noise z0; the drop mask (unless ``uncond`` is given); t (unless
        given). The baseline has no target swap and no encoder loss, so ``perm`` and ``negatives`` must be None."""
        if perm is not None or negatives is not None:
            raise ValueError("the baseline drops the condition for CFG: it has no target swap (perm) and no "
                             "contrastive loss (negatives)")
        b = batch_size(source)
        if target.shape[0] != b:
            raise ValueError(f"{b} sources but {target.shape[0]} targets: give one target per source")
        device = target.device
        z0 = draw_noise(tuple(target.shape), generator, device, target.dtype)
        drop = unconditional_mask(b, self.cfg.p_uncond, generator, device) if uncond is None else uncond.to(device)
        if t is None:
            t = flow.sample_time(self.cfg.time_sampler, b, generator, device)
        indicator = torch.where(drop, UNCONDITIONAL, CONDITIONAL).long()
        zt = flow.interpolate(z0, target, t, self.cfg.sigma_min)
        fm = flow.fm_loss(self.velocity_at(zt, t, indicator, source), z0, target, self.cfg.sigma_min)
        return FlowLoss(fm, {"fm": fm}, {"fm": float(fm.detach()), "uncond": float(drop.float().mean())}, z0, t,
                        indicator)


def matched_baseline(crossflow_model: torch.nn.Module, baseline: BaselineConfig, *, step: int | None = None,
                     max_factor: int = 4) -> BaselineConfig:
    """The baseline config whose parameter count is closest to ``crossflow_model``'s (its source encoder and target
    tower counted, as in the paper's size-matched comparison): ``baseline`` with its network's width (transformer)
    or its channels (UNet, all scaled together) searched over multiples of ``step``."""
    target = count_parameters(crossflow_model)
    v = baseline.velocity
    best: tuple[float, BaselineConfig] | None = None
    if isinstance(v, CrossAttentionTransformerConfig):
        step = step or 2 * v.heads
        candidates = [replace(v, width=w) for w in range(step, max_factor * v.width + step, step)]
    else:
        step = step or v.norm_num_groups
        base = v.block_out_channels[0]
        candidates = [replace(v, block_out_channels=tuple(c * w // base for c in v.block_out_channels))
                      for w in range(step, max_factor * base + step, step)]
    for cand in candidates:
        cfg = replace(baseline, velocity=cand)
        gap = abs(count_parameters(BaselineModel(cfg)) - target) / target
        if best is None or gap < best[0]:
            best = (gap, cfg)
    assert best is not None
    return best[1]


__all__ = ["BaselineConfig", "BaselineModel", "matched_baseline"]

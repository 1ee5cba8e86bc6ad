"""CrossFlow: a source encoder + a velocity network without cross-attention, trained jointly (paper Sec. 4).

One model for any pair of modalities (docs/METHOD.md Sec. 1-5, 7). Its parts come from configs:

* ``source`` - the source encoder (:mod:`.source`): the Text VE for text-to-image, an Image VE for depth or
  captioning, the identity (+ noise) for super-resolution. It maps the source to a Gaussian with the TARGET
  latent's shape and owns L_Enc and the KL;
* ``velocity`` - the velocity network (:mod:`.networks`): the plain patch transformer or a UNet; it sees only
  z_t, t and the CFG indicator, never the source itself;
* ``guidance`` - the CFG indicator's training share and swap (:mod:`.guidance`);
* the flow settings: the time sampler and sigma_min (:mod:`.path`).

One loss trains the parts together with one optimiser (paper Table 3e: joint beats two-stage):

    z0 = mu + sigma eps ~ Enc(source)                   (draw 1: the reparameterised sample)
    uncond ~ Bernoulli(p), perm = roll within uncond    (draw 2: CFG - unconditional samples get another's target)
    z1', indicator = permute_targets(z1, perm)          (indicator 1 where a sample keeps its own target)
    t ~ U(0, 1)                                         (draw 3; the public code: logit-normal, an option)
    z_t = (1 - (1 - sigma_min) t) z0 + t z1'            (path.interpolate)
    L = || v(z_t, t, indicator) - (z1' - (1 - sigma_min) z0) ||^2          (path.fm_loss)
        + L_Enc(z0, z1) + lambda KL(mu, sigma) + align_weight || mu - z1 ||^2      (the source encoder's losses)

L_Enc is the paper's contrastive loss (or none); the alignment term is ours (0 in the paper's design, 1 in the
shipped ShapesWorld model: it pulls the source's mean towards the paired target latent; docs/METHOD.md Sec. 9).
The FM loss back-propagates into the source encoder too: the source latent is shaped by what the flow needs. The
contrastive loss sees the true (unswapped) pairs. ``loss`` takes ``t``, ``uncond`` or ``perm`` and a ``generator``
so that a notebook or a test can replay the draws above by hand and check every term.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from . import path as flow
from .flow_model import FlowLoss, FlowModel
from .guidance import GuidanceConfig, derangement_within, permute_targets, unconditional_mask
from .image_ve import ImageVE, ImageVEConfig
from .networks import build_velocity
from .source import IdentitySource, IdentitySourceConfig, Source, SourceEncoder, SourceOutput, batch_size
from .text_ve import TextVE, TextVEConfig
from .transformer import VelocityTransformerConfig
from .unet import UNetVelocityConfig

SourceConfig = TextVEConfig | ImageVEConfig | IdentitySourceConfig
CrossFlowVelocityConfig = VelocityTransformerConfig | UNetVelocityConfig


def build_source(cfg: SourceConfig) -> SourceEncoder:
    """The source encoder a config describes (randomly initialised)."""
    if isinstance(cfg, TextVEConfig):
        return TextVE(cfg)
    if isinstance(cfg, ImageVEConfig):
        return ImageVE(cfg)
    if isinstance(cfg, IdentitySourceConfig):
        return IdentitySource(cfg)
    raise TypeError(f"no source encoder for a {type(cfg).__name__}; use TextVEConfig, ImageVEConfig or "
                    f"IdentitySourceConfig")


@dataclass(frozen=True)
class CrossFlowConfig:
    """The whole CrossFlow model: source encoder, velocity network, guidance and flow settings.

    ``time_sampler``: the public code samples t logit-normal (docs/METHOD.md Sec. 3; kept as ``"logit_normal"``). At our
    scale that starves the start of the path, where the source alone must decide the target, so uniform t is the
    default here (measured: docs/MEASUREMENTS.md, "time sampler")."""

    method: ClassVar[str] = "crossflow"  # the method's name in tables (tasks.common.method_of)

    source: SourceConfig = TextVEConfig()
    velocity: CrossFlowVelocityConfig = VelocityTransformerConfig()
    guidance: GuidanceConfig = GuidanceConfig()
    time_sampler: str = "uniform"
    sigma_min: float = flow.SIGMA_MIN

    def __post_init__(self) -> None:
        if tuple(self.source.latent_shape) != tuple(self.velocity.latent_shape):
            raise ValueError(f"the source encoder makes latents of shape {tuple(self.source.latent_shape)} but the "
                             f"velocity network expects {tuple(self.velocity.latent_shape)}: both must be the "
                             f"target latent's shape")
        if isinstance(self.velocity, UNetVelocityConfig) and self.velocity.cond_channels:
            raise ValueError("CrossFlow's velocity network takes no condition (cond_channels must be 0): the source "
                             "is already in z_t")
        if self.time_sampler not in flow.TIME_SAMPLERS:
            raise ValueError(f"unknown time sampler {self.time_sampler!r}; use one of {sorted(flow.TIME_SAMPLERS)}")


class CrossFlowModel(FlowModel):
    """Source encoder + velocity network, with the joint loss and the guided sampler of :class:`FlowModel`."""

    def __init__(self, cfg: CrossFlowConfig = CrossFlowConfig()):
        super().__init__()
        self.cfg = cfg
        self.source = build_source(cfg.source)
        self.velocity = build_velocity(cfg.velocity)

    def encode(self, source: Source, generator: torch.Generator | None = None) -> SourceOutput:
        """z0 (and mu, logvar) of a batch of sources: the flow's starting points."""
        return self.source(source, generator)

    def condition(self, source: Source) -> None:
        return None  # the source reaches the velocity network only through z0

    def velocity_at(self, z: torch.Tensor, t: torch.Tensor, indicator: torch.Tensor,
                    condition: Source | None = None) -> torch.Tensor:
        if condition is not None:
            raise ValueError("CrossFlow's velocity network takes no condition: the source is already in z0")
        return self.velocity(z, t, indicator)

    def loss(self, source: Source, target: torch.Tensor, *, t: torch.Tensor | None = None,
             uncond: torch.Tensor | None = None, perm: torch.Tensor | None = None,
             generator: torch.Generator | None = None, negatives: torch.Tensor | None = None) -> FlowLoss:
        """The joint loss L_FM + L_Enc + lambda L_KL on one batch of (source, target latent) pairs.

        Random draws, in this order, from ``generator`` (else the global RNG): the source sample eps; the
        unconditional mask (unless ``uncond`` or ``perm`` is given); a random derangement (``swap="random"`` only);
        t (unless given). ``perm`` gives the target permutation directly (identity = conditional); ``negatives``
        are extra targets for the contrastive loss (hard negatives)."""
        b = batch_size(source)
        if target.shape[0] != b:
            raise ValueError(f"{b} sources but {target.shape[0]} targets: give one target per source")
        device = target.device
        out = self.source(source, generator)
        g = self.cfg.guidance
        if perm is None:
            if uncond is None:
                uncond = unconditional_mask(b, g.p_uncond, generator, device)
            perm = derangement_within(uncond.to(device), generator, g.swap)
        else:
            perm = perm.to(device)
            if uncond is not None or sorted(perm.tolist()) != list(range(b)):
                raise ValueError("give either uncond or perm, and perm must be a permutation of the batch")
        z1, indicator = permute_targets(target, perm)
        if t is None:
            t = flow.sample_time(self.cfg.time_sampler, b, generator, device)
        zt = flow.interpolate(out.z0, z1, t, self.cfg.sigma_min)
        fm = flow.fm_loss(self.velocity_at(zt, t, indicator), out.z0, z1, self.cfg.sigma_min)
        enc = self.source.losses(out, source, target, negatives)  # the TRUE pairs
        total = fm + enc["total"]
        parts = {"fm": fm, "enc": enc["enc"], "kl": enc["kl"], "align": enc["align"]}
        logs = {k: float(v.detach()) for k, v in parts.items()} | {"uncond": float((indicator == 0).float().mean())}
        return FlowLoss(total, parts, logs, out.z0, t, indicator)

    def training_only(self) -> list[nn.Module]:
        return self.source.training_only()


__all__ = ["SourceConfig", "CrossFlowConfig", "CrossFlowModel", "build_source"]

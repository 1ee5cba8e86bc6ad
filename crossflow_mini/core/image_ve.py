"""The Image Variational Encoder (Image VE): an image (or image latent) -> a Gaussian latent of any target shape.

CrossFlow's downstream tasks run the same recipe from an image (paper Sec. 5.4-5.6; docs/METHOD.md Sec. 7):

* captioning: image latent (4 x 8 x 8) -> a Gaussian in the TEXT latent's shape, then flow to the text latent;
* depth: RGB image (3 x 32 x 32) -> a Gaussian in the depth map's shape (1 x 32 x 32), then flow to the depth map;
* super-resolution: the upsampled low-resolution image -> a Gaussian in the high-resolution image's shape.

Architecture: a small convolutional network. A 3x3 stem conv to ``width`` channels, then residual blocks
(GroupNorm, SiLU, 3x3 conv, twice) at each resolution on the way from the input size to the output size (a stride-2
conv between sizes going down, nearest upsampling + conv going up), then a head:

* ``head="conv"``: a 3x3 conv to (mu, logvar) per output pixel - local, for dense targets (depth, SR);
* ``head="linear"``: flatten -> linear -> (mu, logvar) - global, like the Text VE's flatten head, for targets
  without a spatial layout tied to the input (a text latent).

``residual=True`` (input and output shapes equal) adds the input to mu: the encoder then learns a correction of
its source, the natural form for super-resolution. The losses are the shared KL and, with
``enc_loss="contrastive"``, InfoNCE between z0 and a small tower's embedding of the paired target (the paper's
image-text loss with the roles of the modalities swapped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .source import (CLIP_INIT_TEMPERATURE, LOGVAR_RANGE, SourceEncoder, SourceOutput, TowerConfig, check_common,
                     resolve_kl_weight)

ENC_LOSSES = ("contrastive", "none")
HEADS = ("conv", "linear")
GROUPS = 8  # GroupNorm groups in the residual blocks


@dataclass(frozen=True)
class ImageVEConfig:
    """Image VE sizes and loss choices. ``in_shape``: the source (C, H, W); ``latent_shape``: the target's."""

    in_shape: tuple[int, int, int] = (3, 32, 32)
    latent_shape: tuple[int, int, int] = (1, 32, 32)
    width: int = 32
    blocks: int = 1  # residual blocks per resolution
    head: str = "conv"
    residual: bool = False
    variant: str = "ve"
    fixed_noise_std: float = 1.0
    kl_form: str = "paper"
    kl_weight: float | None = None
    enc_loss: str = "none"
    enc_weight: float = 1.0
    init_temperature: float = CLIP_INIT_TEMPERATURE
    temperature_param: str = "log"
    tower: TowerConfig = TowerConfig(in_shape=(1, 32, 32))
    align_weight: float = 0.0  # weight of || mu - z1 ||^2 (SourceEncoder.losses)

    def __post_init__(self) -> None:
        check_common("ImageVEConfig", self.variant, self.kl_form, self.temperature_param, self.fixed_noise_std,
                     self.init_temperature)
        if self.enc_loss not in ENC_LOSSES:
            raise ValueError(f"ImageVEConfig.enc_loss={self.enc_loss!r} is not one of {ENC_LOSSES}")
        if self.head not in HEADS:
            raise ValueError(f"ImageVEConfig.head={self.head!r} is not one of {HEADS}")
        if len(self.in_shape) != 3 or len(self.latent_shape) != 3:
            raise ValueError("in_shape and latent_shape must be (C, H, W)")
        if self.residual and tuple(self.in_shape) != tuple(self.latent_shape):
            raise ValueError(f"residual=True adds the input to mu, so in_shape {self.in_shape} must equal "
                             f"latent_shape {self.latent_shape}")
        h_in, h_out = self.in_shape[1], self.latent_shape[1]
        ratio = max(h_in, h_out) / min(h_in, h_out)
        if self.in_shape[1:] != (h_in, h_in) or self.latent_shape[1:] != (h_out, h_out) or \
                ratio != 2 ** round(math.log2(ratio)):
            raise ValueError(f"the Image VE maps square inputs to square outputs whose sides differ by a power of 2; "
                             f"got {self.in_shape} -> {self.latent_shape}")
        if self.width % GROUPS:
            raise ValueError(f"width must be divisible by {GROUPS} (GroupNorm groups), got {self.width}")
        if self.enc_loss == "contrastive" and tuple(self.tower.in_shape) != tuple(self.latent_shape):
            raise ValueError(f"the target tower reads {self.tower.in_shape} but the target is {self.latent_shape}")

    @property
    def resolved_kl_weight(self) -> float:
        """lambda of L_KL: ``kl_weight`` if set, else the default of ``kl_form``."""
        return resolve_kl_weight(self.kl_form, self.kl_weight)


class ResBlock(nn.Module):
    """x + conv(SiLU(GN(conv(SiLU(GN(x)))))): a pre-activation residual block."""

    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(nn.GroupNorm(GROUPS, width), nn.SiLU(), nn.Conv2d(width, width, 3, padding=1),
                                 nn.GroupNorm(GROUPS, width), nn.SiLU(), nn.Conv2d(width, width, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class ImageVE(SourceEncoder):
    """Image ``(B, *in_shape)`` -> :class:`~crossflow_mini.core.source.SourceOutput` with z0 ``(B, *latent_shape)``."""

    def __init__(self, cfg: ImageVEConfig = ImageVEConfig()):
        super().__init__(cfg, contrastive=cfg.enc_loss == "contrastive",
                         tower=cfg.tower if cfg.enc_loss == "contrastive" else None)
        self.cfg: ImageVEConfig = cfg
        c_in, h_in, _ = cfg.in_shape
        c_out, h_out, _ = cfg.latent_shape
        w = cfg.width
        layers: list[nn.Module] = [nn.Conv2d(c_in, w, 3, padding=1)]
        size = h_in
        while True:
            layers += [ResBlock(w) for _ in range(cfg.blocks)]
            if size > h_out:
                layers.append(nn.Conv2d(w, w, 3, stride=2, padding=1))
                size //= 2
            elif size < h_out:
                layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(w, w, 3, padding=1)]
                size *= 2
            else:
                break
        layers += [nn.GroupNorm(GROUPS, w), nn.SiLU()]
        self.body = nn.Sequential(*layers)
        n_stats = 2 if cfg.variant == "ve" else 1
        if cfg.head == "conv":
            self.to_stats = nn.Conv2d(w, n_stats * c_out, 3, padding=1)
        else:
            self.to_stats = nn.Linear(w * h_out * h_out, n_stats * math.prod(cfg.latent_shape))
        if cfg.residual:  # start as the identity map: mu = x, logvar = 0 (unit noise) until trained
            nn.init.zeros_(self.to_stats.weight)
            nn.init.zeros_(self.to_stats.bias)

    def stats(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        cfg = self.cfg
        if not torch.is_tensor(source) or source.ndim != 4 or tuple(source.shape[1:]) != tuple(cfg.in_shape):
            shape = tuple(source.shape) if torch.is_tensor(source) else type(source).__name__
            raise ValueError(f"the Image VE reads images of shape (B, {', '.join(map(str, cfg.in_shape))}) "
                             f"(ImageVEConfig.in_shape), got {shape}")
        h = self.body(source)
        b = source.shape[0]
        stats = self.to_stats(h if cfg.head == "conv" else h.flatten(1)).reshape(b, -1, *cfg.latent_shape)
        mu = stats[:, 0] + source if cfg.residual else stats[:, 0]
        if cfg.variant == "ve":
            return mu, stats[:, 1].clamp(*LOGVAR_RANGE)
        return mu, None

    def encoder_loss(self, out: SourceOutput, source: torch.Tensor, target: torch.Tensor | None,
                     negatives: torch.Tensor | None = None) -> torch.Tensor:
        if self.cfg.enc_loss == "contrastive":
            return self.target_contrastive(out.z0, target, negatives)
        return out.mu.new_zeros(())


__all__ = ["ENC_LOSSES", "HEADS", "ImageVEConfig", "ImageVE", "ResBlock"]

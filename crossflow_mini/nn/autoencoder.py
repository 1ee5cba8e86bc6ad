"""The image autoencoder: a small ``diffusers.AutoencoderKL`` whose latents are the images' side of CrossFlow.

The paper works in the latent space of SD-VAE (256 x 256 x 3 -> 4 x 32 x 32) and multiplies latents by the
scale factor 0.23010 from its code so that they have roughly unit variance (docs/METHOD.md Sec. 3). Here a
small AutoencoderKL maps 32 x 32 images to 4 x 8 x 8 latents (:attr:`AutoencoderConfig.latent_shape`) and its
scale factor is *computed from data*: 1 / std of posterior samples over a batch of training images.
The scale is stored with the weights (a buffer), so a checkpoint carries it.

Images everywhere in the project are float tensors ``(B, C, H, W)`` in [-1, 1].
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataclasses import dataclass

import torch
from torch import nn

if TYPE_CHECKING:
    from diffusers import AutoencoderKL



@dataclass(frozen=True)
class AutoencoderConfig:
    """A small ``diffusers.AutoencoderKL``: 32 x 32 x C images <-> ``latent_channels`` x 8 x 8 latents.

    ``len(block_out_channels) - 1`` down-samplings by 2, so three blocks give a factor 4 (32 -> 8), like the
    paper's SD-VAE gives a factor 8 (256 -> 32)."""

    in_channels: int = 3
    latent_channels: int = 4
    block_out_channels: tuple[int, ...] = (16, 32, 64)
    layers_per_block: int = 1
    norm_num_groups: int = 8
    image_size: int = 32
    kl_weight: float = 1e-6

    @property
    def latent_size(self) -> int:
        return self.image_size // 2 ** (len(self.block_out_channels) - 1)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return (self.latent_channels, self.latent_size, self.latent_size)


def build_vae(cfg: AutoencoderConfig) -> "AutoencoderKL":
    """The diffusers AutoencoderKL described by ``cfg`` (randomly initialised). diffusers is imported here, on first
    use, so that lessons without an autoencoder (the 2-D flows of notebook 01) do not pay for it."""
    from diffusers import AutoencoderKL

    n = len(cfg.block_out_channels)
    return AutoencoderKL(
        in_channels=cfg.in_channels,
        out_channels=cfg.in_channels,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(cfg.block_out_channels),
        layers_per_block=cfg.layers_per_block,
        latent_channels=cfg.latent_channels,
        norm_num_groups=cfg.norm_num_groups,
        sample_size=cfg.image_size,
    )


class ImageAutoencoder(nn.Module):
    """AutoencoderKL + its latent scale. ``encode`` gives scaled latents, ``decode`` takes them back to images."""

    def __init__(self, cfg: AutoencoderConfig, vae: "AutoencoderKL | None" = None):
        super().__init__()
        self.cfg = cfg
        self.vae = vae if vae is not None else build_vae(cfg)  # a given one: a pretrained VAE (load_pretrained_vae)
        self.register_buffer("latent_scale", torch.tensor(1.0))

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return self.cfg.latent_shape

    def _check_images(self, images: torch.Tensor) -> None:
        want = (self.cfg.in_channels, self.cfg.image_size, self.cfg.image_size)
        if images.ndim != 4 or tuple(images.shape[1:]) != want:
            raise ValueError(f"this autoencoder takes images of shape (B, {want[0]}, {want[1]}, {want[2]}) in "
                             f"[-1, 1]; got {tuple(images.shape)}. Resize or pad the images first.")

    def posterior(self, images: torch.Tensor):
        """The diagonal-Gaussian posterior q(z | x) (unscaled)."""
        self._check_images(images)
        return self.vae.encode(images).latent_dist

    def encode(self, images: torch.Tensor, sample: bool = False,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Images -> scaled latents. ``sample=True`` draws from the posterior (as the paper's training does);
        the default returns its mean (deterministic)."""
        dist = self.posterior(images)
        z = dist.sample(generator=generator) if sample else dist.mean
        return z * self.latent_scale

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents -> images in (roughly) [-1, 1]."""
        if latents.ndim != 4 or tuple(latents.shape[1:]) != self.latent_shape:
            raise ValueError(f"expected latents of shape (B, {', '.join(map(str, self.latent_shape))}), "
                             f"got {tuple(latents.shape)}")
        return self.vae.decode(latents / self.latent_scale).sample

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(images))

    def loss(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Training loss: pixel MSE of a posterior sample's reconstruction + ``kl_weight`` * KL(q(z|x) || N(0, I))."""
        dist = self.posterior(images)
        recon = self.vae.decode(dist.sample()).sample
        mse = torch.mean((recon - images) ** 2)
        kl = dist.kl().mean() / dist.mean[0].numel()  # per latent dimension
        return mse + self.cfg.kl_weight * kl, {"mse": float(mse.detach()), "kl": float(kl.detach())}

    @torch.no_grad()
    def fit_latent_scale(self, images: torch.Tensor, batch_size: int = 256) -> float:
        """Set ``latent_scale`` to 1 / std of posterior samples on ``images`` (the SD recipe); return it."""
        self.latent_scale.fill_(1.0)
        zs = [self.posterior(images[i:i + batch_size]).sample() for i in range(0, len(images), batch_size)]
        scale = 1.0 / torch.cat(zs).std().item()
        self.latent_scale.fill_(scale)
        return scale


def load_pretrained_vae(path: str, *, scaling_factor: float | None = None,
                        image_size: int | None = None) -> ImageAutoencoder:
    """A local diffusers ``AutoencoderKL`` folder (``config.json`` + weights, as ``save_pretrained`` writes it; e.g.
    the SD-VAE of the paper) as a frozen :class:`ImageAutoencoder` for ``image_size`` images (default: the
    folder's ``sample_size``). Its latents are multiplied by ``scaling_factor`` - by default the folder's own
    (0.18215 for the SD-VAEs); the CrossFlow public code uses 0.23010 with its SD-VAE (docs/METHOD.md Sec. 3).
    Loaded with ``local_files_only``: nothing is downloaded."""
    from pathlib import Path

    from diffusers import AutoencoderKL

    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not a local diffusers AutoencoderKL folder (no config.json): save one "
                                f"with `vae.save_pretrained(folder)`, or point CROSSFLOW_VAE at one")
    vae = AutoencoderKL.from_pretrained(str(folder), local_files_only=True)
    c = vae.config
    if getattr(c, "shift_factor", None):
        raise ValueError(f"the VAE in {folder} shifts its latents (shift_factor={c.shift_factor}, as the SD3 and FLUX "
                         f"VAEs do); only scale-only VAEs (SD-VAE) are supported here")
    if set(c.down_block_types) != {"DownEncoderBlock2D"}:
        raise ValueError(f"the VAE in {folder} uses blocks {c.down_block_types}; only DownEncoderBlock2D VAEs "
                         f"(SD-VAE) are supported here")
    cfg = AutoencoderConfig(in_channels=c.in_channels, latent_channels=c.latent_channels,
                            block_out_channels=tuple(c.block_out_channels), layers_per_block=c.layers_per_block,
                            norm_num_groups=c.norm_num_groups, image_size=image_size or c.sample_size)
    ae = ImageAutoencoder(cfg, vae=vae)
    ae.latent_scale.fill_(float(c.scaling_factor if scaling_factor is None else scaling_factor))
    return ae.eval().requires_grad_(False)


def psnr(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB for images in [-1, 1] (computed on the [0, 1] scale, peak 1): 10 log10(1 / MSE)."""
    ref = (reference.clamp(-1, 1) + 1) / 2
    est = (estimate.clamp(-1, 1) + 1) / 2
    mse = ((ref - est) ** 2).flatten(1).mean(1).clamp_min(1e-12)
    return 10 * torch.log10(1.0 / mse)


@torch.no_grad()
def reconstruction_psnr(ae: ImageAutoencoder, images: torch.Tensor, batch_size: int = 256) -> float:
    """Mean per-image PSNR (dB) of ``ae``'s deterministic reconstructions of ``images``."""
    device = ae.latent_scale.device
    vals = [psnr(images[i:i + batch_size], ae.reconstruct(images[i:i + batch_size].to(device)).cpu())
            for i in range(0, len(images), batch_size)]
    return float(torch.cat(vals).mean())

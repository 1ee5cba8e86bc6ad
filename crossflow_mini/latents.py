"""Image latents of a whole data split, computed once with an autoencoder and cached on disk.

Training a latent flow model re-reads the same images many times; encoding them every step would cost more
than the flow model itself on a CPU. The paper's code samples from the VAE posterior at every step, so we keep
the posterior's mean *and* standard deviation (both already multiplied by the latent scale) and draw
``mean + std * eps`` per batch (:meth:`LatentSet.sample`), or take the mean for evaluation.
Cache files are keyed by the autoencoder's weights and the images, written atomically, and carry a checksum of
their contents: a damaged entry (truncated, overwritten) is never used but recomputed, with a warning.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass

import torch

from .nn.autoencoder import ImageAutoencoder
from .paths import cache_dir
from .utils import DamagedFileWarning, load_cache_entry, save_tensors

ENCODE_BATCH = 512


@dataclass
class LatentSet:
    """Scaled posterior statistics ``(N, C, h, w)`` of N images."""

    mean: torch.Tensor
    std: torch.Tensor

    def __len__(self) -> int:
        return len(self.mean)

    def sample(self, idx: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A posterior sample for the images ``idx`` (what the paper's training uses)."""
        mean, std = self.mean[idx], self.std[idx]
        return mean + std * torch.randn(mean.shape, generator=generator)


def _fingerprint(ae: ImageAutoencoder, images: torch.Tensor) -> str:
    h = hashlib.sha256()
    for k, v in sorted(ae.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().float().cpu().contiguous().numpy().tobytes())
    h.update(str(tuple(images.shape)).encode())
    h.update(images[:: max(1, len(images) // 64)].detach().cpu().contiguous().numpy().tobytes())
    h.update(images.double().sum().item().hex().encode())
    return h.hexdigest()[:20]


@torch.no_grad()
def encode_images(ae: ImageAutoencoder, images: torch.Tensor, use_cache: bool = True) -> LatentSet:
    """Posterior mean and std (scaled) of ``images`` ``(N, C, H, W)`` in [-1, 1], from the cache if present."""
    path = cache_dir() / "latents" / f"{_fingerprint(ae, images)}.safetensors"
    t = load_cache_entry(path, ("mean", "std")) if use_cache else None  # None: absent or damaged
    if t is not None:
        if len(t["mean"]) == len(images) and t["mean"].shape == t["std"].shape:
            return LatentSet(t["mean"], t["std"])
        warnings.warn(f"{path} holds latents of the wrong shape {tuple(t['mean'].shape)} for {len(images)} images; "
                      f"rebuilding this cache entry", DamagedFileWarning, stacklevel=2)
    ae.eval()
    means, stds = [], []
    for i in range(0, len(images), ENCODE_BATCH):
        post = ae.posterior(images[i:i + ENCODE_BATCH].to(ae.latent_scale.device))
        means.append((post.mean * ae.latent_scale).cpu())
        stds.append((post.std * ae.latent_scale).cpu())
    out = LatentSet(torch.cat(means), torch.cat(stds))
    if use_cache:
        save_tensors(path, {"mean": out.mean, "std": out.std})
    return out

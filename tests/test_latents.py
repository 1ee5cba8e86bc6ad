"""Cached image latents: posterior statistics, the disk cache, and posterior sampling."""

from __future__ import annotations

import torch

from crossflow_mini.nn.autoencoder import ImageAutoencoder
from crossflow_mini.nn.autoencoder import AutoencoderConfig
from crossflow_mini.latents import encode_images

TINY = AutoencoderConfig(block_out_channels=(8, 8, 8), norm_num_groups=4)


def test_latents_match_the_autoencoder_and_are_cached(tmp_cache):
    torch.manual_seed(0)
    ae = ImageAutoencoder(TINY).eval()
    ae.latent_scale.fill_(0.5)
    x = torch.rand(10, 3, 32, 32) * 2 - 1
    lat = encode_images(ae, x)
    assert torch.allclose(lat.mean, ae.encode(x), atol=1e-6)
    assert torch.allclose(lat.std, ae.posterior(x).std * 0.5, atol=1e-6)
    assert len(list((tmp_cache / "latents").glob("*.safetensors"))) == 1
    again = encode_images(ae, x)
    assert torch.equal(again.mean, lat.mean)
    ae.latent_scale.fill_(0.25)  # other weights -> another cache entry, not stale latents
    assert torch.allclose(encode_images(ae, x).mean, lat.mean * 0.5, atol=1e-6)
    z = lat.sample(torch.arange(3), generator=torch.Generator().manual_seed(1))
    eps = torch.randn(lat.mean[:3].shape, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(z, lat.mean[:3] + lat.std[:3] * eps)

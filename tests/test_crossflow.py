"""The joint CrossFlow model: shapes, the joint loss's parts, gradients into the Text VE, guided generation."""

from __future__ import annotations

import pytest
import torch

from crossflow_mini.core.crossflow import CrossFlowConfig, CrossFlowModel
from crossflow_mini.core.guidance import GuidanceConfig
from crossflow_mini.core.transformer import VelocityTransformerConfig
from crossflow_mini.core.text_ve import TextVEConfig

SMALL = CrossFlowConfig(text_ve=TextVEConfig(width=32, n_layers=1, n_heads=2, max_tokens=8),
                        velocity=VelocityTransformerConfig(width=32, depth=2, heads=2),
                        guidance=GuidanceConfig(p_uncond=0.5))


def _batch(b=8, length=6):
    g = torch.Generator().manual_seed(3)
    tokens = torch.randn(b, length, 384, generator=g)
    mask = torch.ones(b, length, dtype=torch.bool)
    mask[::2, -2:] = False
    return tokens, mask, torch.randn(b, 4, 8, 8, generator=g)


def test_loss_parts_and_gradients_reach_every_part():
    model = CrossFlowModel(SMALL)
    torch.nn.init.normal_(model.velocity.final.linear.weight, std=0.02)  # leave DiT's zero init
    tokens, mask, z1 = _batch()
    out = model.loss(tokens, mask, z1)
    assert set(out.logs) >= {"fm", "enc", "kl", "uncond"} and out.total.ndim == 0
    out.total.backward()
    for part in (model.text_ve, model.image_tower, model.velocity):
        grads = [p.grad for p in part.parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), type(part).__name__


def test_fm_loss_trains_the_text_ve_jointly():
    """With the encoder loss and KL switched off, the Text VE still gets gradients: from the flow loss."""
    cfg = CrossFlowConfig(text_ve=TextVEConfig(width=32, n_layers=1, n_heads=2, max_tokens=8, enc_loss="none",
                                               kl_weight=0.0),
                          velocity=VelocityTransformerConfig(width=32, depth=2, heads=2))
    model = CrossFlowModel(cfg)
    torch.nn.init.normal_(model.velocity.final.linear.weight, std=0.02)
    tokens, mask, z1 = _batch()
    model.loss(tokens, mask, z1).total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.text_ve.parameters())


def test_generate_shapes_and_w1_is_conditional():
    model = CrossFlowModel(SMALL)
    torch.nn.init.normal_(model.velocity.final.linear.weight, std=0.05)
    tokens, mask, _ = _batch(4)
    out = model.generate(tokens, mask, guidance_scale=1.0, steps=3, generator=torch.Generator().manual_seed(0),
                         return_trajectory=True)
    assert out.sample.shape == (4, 4, 8, 8) and out.trajectory.shape == (4, 4, 4, 8, 8) and out.nfe == 3
    again = model.generate(tokens, mask, guidance_scale=1.0, steps=3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out.sample, again.sample)  # same generator, same image latents


def test_mismatched_latent_shapes_are_refused():
    with pytest.raises(ValueError, match="must match the image latent"):
        CrossFlowConfig(text_ve=TextVEConfig(latent_shape=(4, 16, 16)))

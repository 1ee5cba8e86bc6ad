"""The general CrossFlow core: the joint loss replayed by hand, guided sampling against a hand-written loop, the
mode contract, and a non-text pair (image -> target) trained and sampled through the same code as text -> image.

These tests use networks with NON-ZERO output weights: an untrained DiT-style network predicts exactly zero
velocity, and a test run on it cannot tell a flow from no flow."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from crossflow_mini.core import path as flow
from crossflow_mini.core.baseline import BaselineConfig, BaselineModel
from crossflow_mini.core.build import build_model
from crossflow_mini.core.crossflow import CrossFlowConfig, CrossFlowModel
from crossflow_mini.core.guidance import CONDITIONAL, UNCONDITIONAL, GuidanceConfig
from crossflow_mini.core.image_ve import ImageVEConfig
from crossflow_mini.core.sampling import SamplingConfig
from crossflow_mini.core.source import IdentitySourceConfig, TokenBatch, TowerConfig
from crossflow_mini.core.text_ve import TextVEConfig
from crossflow_mini.core.transformer import CrossAttentionTransformerConfig, VelocityTransformerConfig
from crossflow_mini.core.unet import UNetVelocityConfig

SMALL = CrossFlowConfig(source=TextVEConfig(width=32, depth=1, heads=2, max_tokens=8),
                        velocity=VelocityTransformerConfig(width=32, depth=2, heads=2),
                        guidance=GuidanceConfig(p_uncond=0.5))


def _unzero(model: torch.nn.Module, std: float = 0.05, seed: int = 1) -> torch.nn.Module:
    """Give every all-zero weight (adaLN-Zero maps, the final projection) small random values, as training would."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim > 1 and not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * std)
    return model


def _batch(b: int = 8, length: int = 6) -> tuple[TokenBatch, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    mask = torch.ones(b, length, dtype=torch.bool)
    mask[::2, -2:] = False
    return TokenBatch(torch.randn(b, length, 384, generator=g), mask), torch.randn(b, 4, 8, 8, generator=g)


def _model(cfg: CrossFlowConfig = SMALL) -> CrossFlowModel:
    torch.manual_seed(0)
    return _unzero(CrossFlowModel(cfg))


# ---------------------------------------------------------------------------------------------- the loss
def test_joint_loss_replayed_by_hand_with_a_given_swap_and_time():
    """L = || v(z_t, t, 1_c) - (z1[perm] - (1 - s) z0) ||^2 + L_Enc(z0, z1) + lambda KL, z0 from the Text VE."""
    model = _model()
    source, z1 = _batch()
    perm = torch.tensor([0, 3, 2, 5, 4, 1, 6, 7])  # samples 1, 3, 5 unconditional: 1 <- 3 <- 5 <- 1
    t = torch.linspace(0.05, 0.95, 8)
    out = model.loss(source, z1, t=t, perm=perm, generator=torch.Generator().manual_seed(9))
    # by hand: the one random draw is the Text VE's eps, from the same generator
    ve = model.source(source, generator=torch.Generator().manual_seed(9))
    indicator = torch.tensor([CONDITIONAL, UNCONDITIONAL, CONDITIONAL, UNCONDITIONAL, CONDITIONAL, UNCONDITIONAL,
                              CONDITIONAL, CONDITIONAL])
    target = z1[perm]
    s = SMALL.sigma_min
    zt = (1 - (1 - s) * t[:, None, None, None]) * ve.z0 + t[:, None, None, None] * target
    fm = ((model.velocity(zt, t, indicator) - (target - (1 - s) * ve.z0)) ** 2).mean()
    enc = model.source.losses(ve, source, z1)  # the TRUE pairs: z1, not z1[perm]
    want = fm + enc["enc"] + SMALL.source.resolved_kl_weight * enc["kl"]
    torch.testing.assert_close(out.parts["fm"], fm)
    torch.testing.assert_close(out.total, want)
    assert torch.equal(out.indicator, indicator) and torch.equal(out.t, t) and torch.equal(out.z0, ve.z0)
    assert out.logs["uncond"] == pytest.approx(3 / 8)


def test_the_swap_changes_the_loss_and_the_draws_replay_from_the_generator():
    model = _model()
    source, z1 = _batch()
    t = torch.full((8,), 0.5)
    g = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    same = model.loss(source, z1, t=t, perm=torch.arange(8), generator=g())
    swapped = model.loss(source, z1, t=t, perm=torch.tensor([1, 0, 2, 3, 4, 5, 6, 7]), generator=g())
    assert not torch.isclose(same.parts["fm"], swapped.parts["fm"])
    assert torch.equal(same.parts["enc"], swapped.parts["enc"])  # the contrastive loss never sees the swap
    # no t, perm or mask given: every draw comes from the generator, in the documented order
    a = model.loss(source, z1, generator=g())
    b = model.loss(source, z1, generator=g())
    torch.testing.assert_close(a.total, b.total)
    gen = g()
    eps_z0 = model.source(source, generator=gen).z0
    uncond = torch.rand(8, generator=gen) < SMALL.guidance.p_uncond
    t_drawn = torch.rand(8, generator=gen)
    assert torch.equal(a.z0, eps_z0) and torch.equal(a.t, t_drawn)
    idx = uncond.nonzero().flatten()
    assert torch.equal(a.indicator == UNCONDITIONAL, uncond if len(idx) >= 2 else torch.zeros(8, dtype=torch.bool))
    with pytest.raises(ValueError, match="permutation"):
        model.loss(source, z1, perm=torch.zeros(8, dtype=torch.long))


def test_gradients_reach_every_part_and_the_flow_loss_trains_the_encoder():
    model = _model()
    source, z1 = _batch()
    model.loss(source, z1).total.backward()
    for part in (model.source, model.source.tower, model.velocity):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters()), type(part).__name__
    lone = _model(dataclasses.replace(SMALL, source=dataclasses.replace(SMALL.source, enc_loss="none", kl_weight=0.0)))
    lone.loss(source, z1).total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in lone.source.parameters())


# ------------------------------------------------------------------------------------------- sampling
def _hand_guided_euler(model: CrossFlowModel, z: torch.Tensor, w: float, steps: int) -> torch.Tensor:
    """v = v_u + w (v_c - v_u) at the same z_t, Euler steps of 1 / steps from t = 0 to 1."""
    ones, zeros = torch.ones(len(z), dtype=torch.long), torch.zeros(len(z), dtype=torch.long)
    with torch.no_grad():
        for k in range(steps):
            t = torch.full((len(z),), k / steps)
            v_c, v_u = model.velocity(z, t, ones), model.velocity(z, t, zeros)
            z = z + (v_u + w * (v_c - v_u)) / steps
    return z


@pytest.mark.parametrize("w", [2.5, 0.0, -1.0])
def test_generate_equals_a_hand_written_guided_euler_loop(w):
    model = _model()
    source, _ = _batch(4)
    out = model.generate(source, guidance_scale=w, steps=5, generator=torch.Generator().manual_seed(2))
    z0 = model.encode(source, torch.Generator().manual_seed(2)).z0
    want = _hand_guided_euler(model, z0, w, 5)
    torch.testing.assert_close(out.sample, want, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(out.sample, _hand_guided_euler(model, z0, 1.0, 5), atol=1e-4)  # w matters
    assert not torch.allclose(out.sample, z0, atol=1e-3)  # and the flow moved


def test_default_scale_comes_from_the_sampling_settings_and_finishing_late_is_the_tail_of_a_run():
    model = _model()
    model.sampling = SamplingConfig(guidance_scale=3.0)
    source, _ = _batch(3)
    z0 = model.encode(source, torch.Generator().manual_seed(0)).z0
    torch.testing.assert_close(model.flow(z0, steps=4).sample, _hand_guided_euler(model, z0, 3.0, 4))
    whole = model.flow(z0, guidance_scale=2.0, steps=10, return_trajectory=True)
    tail = model.flow(whole.trajectory[3], guidance_scale=2.0, steps=7, t_start=0.3)
    torch.testing.assert_close(tail.sample, whole.sample, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="no condition"):
        model.flow(z0, source, steps=2)
    with pytest.raises(ValueError, match="finite"):
        model.flow(z0, guidance_scale=float("nan"), steps=2)


def test_sampling_restores_the_training_mode():
    model = _model().train()
    source, _ = _batch(2)
    model.generate(source, steps=2)
    assert model.training and all(m.training for m in model.modules())
    model.eval()
    model.generate(source, steps=2)
    assert not model.training


# ------------------------------------------------------------------------------------- other modalities
def _image_pairs(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A toy image -> map task: the target is the source's mean over colour channels, 2x downsampled and negated."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 1, 1, generator=g) * 2 - 1 + 0.3 * torch.randn(n, 3, 16, 16, generator=g)
    y = -torch.nn.functional.avg_pool2d(x.mean(1, keepdim=True), 2)
    return x, y


@pytest.mark.parametrize("kind", ["crossflow-transformer", "crossflow-unet", "baseline-unet"])
def test_an_image_to_map_pair_trains_and_samples_through_the_same_core(kind):
    """Not text: an Image VE source (3 x 16 x 16 -> 1 x 8 x 8) with the transformer or a UNet, and the baseline with
    the image concatenated. Each learns: its samples land far closer to the targets than the untrained model's."""
    target_shape = (1, 8, 8)
    if kind == "baseline-unet":
        cfg = BaselineConfig(velocity=UNetVelocityConfig(latent_shape=target_shape, cond_channels=3,
                                                         block_out_channels=(16, 16), attention=False))
        source_shape = target_shape  # the baseline's condition is concatenated: the same size as the target
    else:
        source_shape = (3, 16, 16)
        velocity = (VelocityTransformerConfig(latent_shape=target_shape, patch_size=2, width=32, depth=2, heads=2)
                    if kind == "crossflow-transformer" else
                    UNetVelocityConfig(latent_shape=target_shape, block_out_channels=(16, 16), attention=False))
        cfg = CrossFlowConfig(source=ImageVEConfig(in_shape=source_shape, latent_shape=target_shape, width=16,
                                                   kl_weight=1e-3, align_weight=1.0, enc_loss="contrastive",
                                                   tower=TowerConfig(in_shape=target_shape, channels=(8,))),
                              velocity=velocity)
    x, y = _image_pairs(256)
    if kind == "baseline-unet":
        x = torch.nn.functional.avg_pool2d(x, 2)
    torch.manual_seed(0)
    model = build_model(cfg)
    test_x, test_y = x[:32], y[:32]

    def error() -> float:
        out = model.generate(test_x, guidance_scale=1.0, steps=8, generator=torch.Generator().manual_seed(0))
        return float(((out.sample - test_y) ** 2).mean())

    before = error()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    for step in range(150):
        idx = torch.randint(0, 256, (64,), generator=g)
        loss = model.loss(x[idx], y[idx]).total
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = error()
    assert after < 0.25 * before, (before, after)
    assert after < float(test_y.var()) * 0.5  # better than predicting the mean map


def test_the_identity_source_flows_from_the_source_itself():
    cfg = CrossFlowConfig(source=IdentitySourceConfig(latent_shape=(1, 8, 8)),
                          velocity=UNetVelocityConfig(latent_shape=(1, 8, 8), block_out_channels=(8, 8),
                                                      attention=False))
    model = CrossFlowModel(cfg)
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(model.encode(x).z0, x)
    assert model.generate(x, steps=2).sample.shape == x.shape


def test_configs_check_that_source_and_target_shapes_agree():
    with pytest.raises(ValueError, match="target latent's shape"):
        CrossFlowConfig(source=TextVEConfig(latent_shape=(4, 16, 16), enc_loss="none"))
    with pytest.raises(ValueError, match="takes no condition"):
        CrossFlowConfig(source=IdentitySourceConfig(latent_shape=(1, 32, 32)),
                        velocity=UNetVelocityConfig(cond_channels=3))
    with pytest.raises(ValueError, match="cond_channels"):
        BaselineConfig(velocity=UNetVelocityConfig())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine")
def test_a_seeded_generation_means_the_same_on_the_gpu():
    model = _model()
    source, _ = _batch(2)
    cpu = model.generate(source, guidance_scale=2.0, steps=3, generator=torch.Generator().manual_seed(0)).sample
    gpu = model.to("cuda").generate(source, guidance_scale=2.0, steps=3,
                                    generator=torch.Generator().manual_seed(0)).sample
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-3, atol=1e-3)


def test_baseline_cross_attention_condition_type_is_checked():
    model = BaselineModel(BaselineConfig(velocity=CrossAttentionTransformerConfig(width=16, depth=1, heads=2)))
    with pytest.raises(ValueError, match="TokenBatch"):
        model.velocity_at(torch.zeros(1, 4, 8, 8), torch.zeros(1), torch.ones(1, dtype=torch.long),
                          torch.zeros(1, 4, 8, 8))
    with pytest.raises(ValueError, match="no target swap"):
        model.loss(*_batch(2), perm=torch.arange(2))

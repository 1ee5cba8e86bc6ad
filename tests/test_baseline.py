"""The standard flow-matching baseline: its loss is the FM loss from noise, text dropping drives the null token,
guidance follows the project's convention, and the shipped sizes are matched to CrossFlow's."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from crossflow_mini.core import path as flow
from crossflow_mini.core.baseline import BaselineConfig, BaselineModel, matched_baseline
from crossflow_mini.core.crossflow import CrossFlowModel
from crossflow_mini.core.guidance import CONDITIONAL, UNCONDITIONAL, guided_velocity
from crossflow_mini.core.params import count_parameters as parameter_count
from crossflow_mini.core.source import TokenBatch
from crossflow_mini.core.transformer import CrossAttentionTransformerConfig
from crossflow_mini.profiles import get_profile
from crossflow_mini.registry import recipe

SMALL = BaselineConfig(velocity=CrossAttentionTransformerConfig(width=32, depth=1, heads=2, time_dim=16,
                                                                token_dim=8))


def _text(b: int = 4, length: int = 5) -> TokenBatch:
    mask = torch.ones(b, length, dtype=torch.bool)
    mask[:, 3:] = False
    return TokenBatch(torch.randn(b, length, 8), mask)


def _trained_ish(model: BaselineModel) -> BaselineModel:
    """Break the zero initialisation of the output so that velocities depend on the input."""
    for p in model.parameters():
        if p.ndim > 1:
            torch.nn.init.normal_(p, std=0.05)
    return model


def test_loss_is_the_fm_loss_from_gaussian_noise_to_the_image():
    model = _trained_ish(BaselineModel(SMALL))
    text = _text()
    tokens, mask = text
    z1 = torch.randn(4, 4, 8, 8)
    out = model.loss(text, z1, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)  # replay the loss's draws in its order: noise, drop mask, times
    z0 = torch.randn(z1.shape, generator=g)
    drop = torch.rand(4, generator=g) < SMALL.p_uncond
    t = torch.rand(4, generator=g)
    want = flow.fm_loss(model.velocity(flow.interpolate(z0, z1, t), t, tokens, mask, drop=drop), z0, z1)
    assert out.total.item() == pytest.approx(want.item(), rel=1e-6)
    assert torch.equal(out.indicator, torch.where(drop, UNCONDITIONAL, CONDITIONAL))
    assert set(out.logs) == {"fm", "uncond"}
    given = model.loss(text, z1, t=torch.full((4,), 0.5), uncond=torch.tensor([True, False, True, False]))
    assert given.t.tolist() == [0.5] * 4 and given.indicator.tolist() == [0, 1, 0, 1]


def test_every_sample_is_dropped_with_p_one_and_none_with_p_zero():
    z1 = torch.randn(4, 4, 8, 8)
    for p, share in ((1.0, 1.0), (0.0, 0.0)):
        model = BaselineModel(BaselineConfig(velocity=SMALL.velocity, p_uncond=p))
        assert model.loss(_text(), z1).logs["uncond"] == share


def test_guidance_uses_the_null_text_for_the_unconditional_branch():
    model = _trained_ish(BaselineModel(SMALL)).eval()
    text = _text()
    tokens, mask = text
    z, t = torch.randn(4, 4, 8, 8), torch.full((4,), 0.3)
    cond = model.velocity(z, t, tokens, mask)
    uncond = model.velocity(z, t, tokens, mask, drop=True)
    assert not torch.allclose(cond, uncond)
    for w in (0.0, 1.0, 3.0):
        got = guided_velocity(model.velocity_at, z, t, w, condition=text)
        assert torch.allclose(got, uncond + w * (cond - uncond), atol=1e-5)


def test_generation_is_seeded_and_checks_its_inputs():
    model = _trained_ish(BaselineModel(SMALL))
    text = _text()
    a = model.generate(text, guidance_scale=2.0, steps=3, generator=torch.Generator().manual_seed(1))
    b = model.generate(text, guidance_scale=2.0, steps=3, generator=torch.Generator().manual_seed(1))
    assert a.sample.shape == (4, 4, 8, 8) and torch.equal(a.sample, b.sample) and a.nfe == 3
    noise = torch.randn((4, 4, 8, 8), generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.z0, noise)  # the baseline's source: noise from the generator
    with pytest.raises(ValueError, match="one of each"):
        model.flow(torch.randn(3, 4, 8, 8), text, guidance_scale=1.0, steps=2)
    with pytest.raises(ValueError, match="p_uncond"):
        BaselineConfig(p_uncond=1.5)


def test_shipped_baseline_matches_crossflow_within_ten_percent_and_shares_its_recipe():
    """The baseline was sized against the paper-head CrossFlow (all parameters counted). The shipped patch-query
    CrossFlow samples with as many (its larger head is offset by the image tower, which only trains); counting the
    tower too it has about 13 % more, which the README states beside the comparison."""
    from crossflow_mini.core.params import sampling_parameters

    full = get_profile("full")
    cf, base = recipe("t2i_shapes", full), recipe("t2i_baseline_shapes", full)
    n_base = parameter_count(BaselineModel(base.model))
    n_flatten = parameter_count(CrossFlowModel(recipe("t2i_shapes_flatten", full).model))
    assert abs(n_base - n_flatten) / n_flatten < 0.10
    n_sampling = sampling_parameters(CrossFlowModel(cf.model))
    assert abs(n_base - n_sampling) / n_sampling < 0.10
    n_all = parameter_count(CrossFlowModel(cf.model))
    assert n_sampling < n_all < 1.15 * n_base
    assert base.train == cf.train and base.sampling.steps == cf.sampling.steps and \
        base.sampling.sampler == cf.sampling.sampler
    assert base.model.p_uncond == cf.model.guidance.p_uncond and base.model.time_sampler == cf.model.time_sampler
    assert base.text == cf.text and base.autoencoder == cf.autoencoder
    fashion, baseline_fashion = recipe("t2i_fashion", full), recipe("t2i_baseline_fashion", full)
    assert baseline_fashion.train == fashion.train
    assert fashion.autoencoder.dataset == baseline_fashion.autoencoder.dataset == "fashion"


def test_matched_baseline_is_the_closest_width():
    smoke = get_profile("smoke")
    cf = recipe("t2i_shapes", smoke).model
    baseline = recipe("t2i_baseline_shapes", smoke).model
    best = matched_baseline(CrossFlowModel(cf), baseline)
    target = parameter_count(CrossFlowModel(cf))
    gap = abs(parameter_count(BaselineModel(best)) - target)
    step = 2 * best.velocity.heads
    for width in (best.velocity.width - step, best.velocity.width + step):
        other = dataclasses.replace(best, velocity=dataclasses.replace(best.velocity, width=width))
        assert abs(parameter_count(BaselineModel(other)) - target) >= gap
    assert best.velocity.depth == baseline.velocity.depth

"""Tests of classifier-free guidance with an indicator (crossflow_mini.guidance; paper Sec. 4.2, Table 3c).

Convention under test: v = v_uncond + w (v_cond - v_uncond), so w = 1 is the conditional model and w = 0 the
unconditional one; the model is called as model(z_t, t, indicator) with indicator (B,) long, 1 = conditional."""

from __future__ import annotations

import pytest
import torch

from crossflow_mini.core import sampling
from crossflow_mini.core.guidance import (GuidanceConfig, derangement_within, guided_velocity, make_guided,
                                     swap_targets, unconditional_mask)
from crossflow_mini.core.sampling import SamplingConfig


class ToyVelocity(torch.nn.Module):
    """A small per-sample network whose output depends on z, t and the indicator; counts its calls."""

    def __init__(self, dim: int = 6):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(dim + 2, 32), torch.nn.SiLU(), torch.nn.Linear(32, dim))
        self.calls: list[tuple[int, list[int]]] = []

    def forward(self, z, t, indicator):
        assert indicator.dtype == torch.long and indicator.shape == (z.shape[0],)
        self.calls.append((z.shape[0], indicator.tolist()))
        return self.net(torch.cat([z, t[:, None], indicator[:, None].float()], dim=1))


# ---------------------------------------------------------------------------------------------- training
def test_unconditional_fraction_matches_p():
    for p in (0.1, 0.15):
        mask = unconditional_mask(100_000, p, generator=torch.Generator().manual_seed(0))
        assert mask.dtype == torch.bool and mask.shape == (100_000,)
        assert abs(mask.float().mean().item() - p) < 0.005  # ~5 standard errors
    assert not unconditional_mask(50, 0.0).any() and unconditional_mask(50, 1.0).all()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        unconditional_mask(4, 1.5)
    assert GuidanceConfig().p_uncond == 0.1


@pytest.mark.parametrize("method", ["roll", "random"])
def test_swap_is_a_derangement_within_the_unconditional_subset(method):
    g = torch.Generator().manual_seed(1)
    for trial in range(50):
        b = 2 + trial % 20
        mask = unconditional_mask(b, 0.4, generator=g)
        z1 = torch.arange(b, dtype=torch.float64)[:, None, None] * torch.ones(b, 2, 3)  # row i holds value i
        swapped, indicator = swap_targets(z1, mask, generator=g, method=method)
        source = swapped[:, 0, 0].long()  # which sample each target came from
        idx = mask.nonzero().flatten()
        assert indicator.dtype == torch.long and indicator.shape == (b,)
        cond = ~mask
        assert torch.equal(source[cond], torch.arange(b)[cond])  # conditional targets untouched
        if len(idx) >= 2:
            assert (source[idx] != idx).all()  # nobody keeps its own target
            assert sorted(source[idx].tolist()) == idx.tolist()  # a permutation of the unconditional subset
            assert torch.equal(indicator, (~mask).long())
        perm = derangement_within(mask, generator=g, method=method)
        assert sorted(perm.tolist()) == list(range(b))


def test_roll_is_the_public_codes_cat_of_target_1_on_and_target_0():
    """The public code: target_null = cat((target_null[1:], target_null[:1])) - each unconditional sample takes the
    NEXT unconditional sample's target, the last one the first's."""
    mask = torch.tensor([False, True, False, True, True, False])
    z1 = torch.randn(6, 4)
    swapped, _ = swap_targets(z1, mask)
    idx = mask.nonzero().flatten()
    target_null = z1[idx]
    assert torch.equal(swapped[idx], torch.cat((target_null[1:], target_null[:1])))
    assert derangement_within(mask).tolist() == [0, 3, 2, 4, 1, 5]


def test_random_swap_draws_different_derangements():
    mask = torch.ones(6, dtype=torch.bool)
    g = torch.Generator().manual_seed(0)
    perms = {tuple(derangement_within(mask, generator=g, method="random").tolist()) for _ in range(200)}
    assert len(perms) > 50  # 265 derangements of 6 exist; a roll would give one
    again = derangement_within(mask, generator=torch.Generator().manual_seed(5), method="random")
    assert torch.equal(again, derangement_within(mask, generator=torch.Generator().manual_seed(5), method="random"))


def test_fewer_than_two_unconditional_turn_back_to_conditional():
    z1 = torch.randn(5, 3)
    for mask in (torch.zeros(5, dtype=torch.bool), torch.tensor([False, False, True, False, False])):
        assert torch.equal(derangement_within(mask), torch.arange(5))
        swapped, indicator = swap_targets(z1, mask)
        assert torch.equal(swapped, z1)
        assert torch.equal(indicator, torch.ones(5, dtype=torch.long))  # the lone sample is conditional again
    with pytest.raises(ValueError, match="bool"):
        derangement_within(torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="samples but the mask"):
        swap_targets(torch.randn(4, 2), torch.ones(3, dtype=torch.bool))


def test_swap_leaves_the_inputs_alone():
    z1 = torch.randn(6, 2)
    before = z1.clone()
    mask = torch.tensor([True, True, False, True, False, False])
    swapped, _ = swap_targets(z1, mask)
    assert torch.equal(z1, before) and not torch.equal(swapped, z1)


# ---------------------------------------------------------------------------------------------- sampling
def _inputs(b=5, dim=6):
    g = torch.Generator().manual_seed(0)
    return torch.randn(b, dim, generator=g), torch.rand(b, generator=g)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_guidance_is_refused(bad):
    model = ToyVelocity()
    z, t = _inputs()
    with pytest.raises(ValueError, match="finite"):
        guided_velocity(model, z, t, bad)
    with pytest.raises(ValueError, match="finite"):
        SamplingConfig(guidance_scale=bad)  # a default scale is refused too (model.sampling, sampling.json)
    with pytest.raises(TypeError, match="number"):
        guided_velocity(model, z, t, "3")


def test_w1_is_exactly_the_conditional_model_in_one_call():
    model = ToyVelocity()
    z, t = _inputs()
    v = guided_velocity(model, z, t, 1.0)
    assert model.calls == [(5, [1] * 5)]
    assert torch.equal(v, model.net(torch.cat([z, t[:, None], torch.ones(5, 1)], dim=1)))


def test_w0_is_the_unconditional_model():
    model = ToyVelocity()
    z, t = _inputs()
    v = guided_velocity(model, z, t, 0.0)
    assert torch.equal(v, model.net(torch.cat([z, t[:, None], torch.zeros(5, 1)], dim=1)))
    assert len(model.calls) == 1


def test_batched_call_equals_two_separate_calls_and_is_linear_in_w():
    model = ToyVelocity()
    z, t = _inputs()
    with torch.no_grad():
        v_cond = model(z, t, torch.ones(5, dtype=torch.long))
        v_uncond = model(z, t, torch.zeros(5, dtype=torch.long))
        model.calls.clear()
        for w in (-1.0, 0.5, 2.0, 4.0, 7.0):
            v = guided_velocity(model, z, t, w)
            assert torch.allclose(v, v_uncond + w * (v_cond - v_uncond), atol=1e-5)
        assert model.calls[0] == (10, [1] * 5 + [0] * 5)  # one 2B forward per guided evaluation
        assert len(model.calls) == 5
        v2, v4 = guided_velocity(model, z, t, 2.0), guided_velocity(model, z, t, 4.0)
        assert torch.allclose(v4 - v2, 2 * (v_cond - v_uncond), atol=1e-5)
        assert not torch.allclose(v_cond, v_uncond)


def test_scalar_time_and_per_sample_kwargs():
    seen = {}

    def model(z, t, indicator, extra=None, offset=0.0):
        seen["shapes"] = (tuple(t.shape), None if extra is None else tuple(extra.shape))
        return z * indicator[:, None] + offset + (0 if extra is None else extra)

    z = torch.randn(3, 2)
    v = guided_velocity(model, z, torch.tensor(0.5), 3.0, extra=torch.ones(3, 2), offset=1.0)
    assert seen["shapes"] == ((6,), (6, 2))
    assert torch.allclose(v, (1 + 1) + 3.0 * z)  # v_uncond = 2, v_cond = z + 2
    with pytest.raises(ValueError, match="per-sample"):
        guided_velocity(model, z, torch.tensor(0.5), 3.0, extra=torch.ones(2, 2))


def test_works_with_the_euler_and_heun_samplers():
    a, b = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 0.5])

    def constant_field(z, t, indicator):  # conditional velocity a, unconditional b
        ind = indicator[:, None].float()
        return ind * a + (1 - ind) * b

    z0 = torch.randn(4, 2)
    for w in (0.0, 1.0, 3.0):
        for solver in (sampling.euler, sampling.heun):
            out = solver(make_guided(constant_field, w), z0, steps=10)
            assert torch.allclose(out.sample, z0 + b + w * (a - b), atol=1e-5)
    model = ToyVelocity()
    res = sampling.euler(make_guided(model, 4.0), torch.randn(3, 6), steps=7)
    assert res.sample.shape == (3, 6) and len(model.calls) == 7 and model.calls[0][0] == 6

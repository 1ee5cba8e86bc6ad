"""Tests of the flow-matching math (crossflow_mini.flow), the ODE samplers (crossflow_mini.sampling), the 2-D toy
data (crossflow_mini.datasets.toy2d) and the 2-D recipe of notebook 01 (crossflow_mini.recipes.flow2d).

Convention under test: t = 0 is the source, t = 1 the target;
z_t = (1 - (1 - s) t) z0 + t z1 and u = z1 - (1 - s) z0 with s = sigma_min.
The expected values are written out in closed form (numbers, or formulas other than the library's)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from crossflow_mini.core import path as flow

from crossflow_mini.core import sampling
from crossflow_mini.profiles import get_profile
from crossflow_mini.datasets import toy2d
from crossflow_mini.nn.mlp import MLPVelocity
from crossflow_mini.tasks import flow2d

F64 = torch.float64


def _pairs(shape=(5, 2), seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype), torch.randn(*shape, generator=g, dtype=dtype)


# ------------------------------------------------------------------------------------------------------ path
def test_sigma_min_is_the_crossflow_value():
    assert flow.SIGMA_MIN == 1e-5


def test_path_starts_exactly_at_the_source():
    z0, z1 = _pairs()
    assert torch.equal(flow.interpolate(z0, z1, torch.zeros(5, dtype=F64)), z0)
    z0, z1 = _pairs(dtype=torch.float32)
    assert torch.equal(flow.interpolate(z0, z1, torch.zeros(5)), z0)


@pytest.mark.parametrize("sigma_min", [flow.SIGMA_MIN, 0.0, 0.1])
def test_path_ends_at_target_plus_sigma_min_source(sigma_min):
    z0, z1 = _pairs()
    end = flow.interpolate(z0, z1, torch.ones(5, dtype=F64), sigma_min=sigma_min)
    torch.testing.assert_close(end, z1 + sigma_min * z0, rtol=0, atol=1e-15)
    if sigma_min > 0:  # the source trace really is there (not just z1)
        assert not torch.allclose(end, z1, rtol=0, atol=1e-3 * sigma_min)


def test_path_midpoint_in_numbers():
    z0 = torch.tensor([[1.0, -2.0]], dtype=F64)
    z1 = torch.tensor([[3.0, 4.0]], dtype=F64)
    # s = 0.1, t = 0.5: (1 - 0.9 * 0.5) z0 + 0.5 z1 = 0.55 z0 + 0.5 z1
    mid = flow.interpolate(z0, z1, torch.tensor([0.5], dtype=F64), sigma_min=0.1)
    torch.testing.assert_close(mid, torch.tensor([[2.05, 0.9]], dtype=F64))
    # default sigma_min: (1 - (1 - 1e-5) / 2) z0 + z1 / 2
    mid = flow.interpolate(z0, z1, torch.tensor([0.5], dtype=F64))
    torch.testing.assert_close(mid, torch.tensor([[2.000005, 0.99999]], dtype=F64), rtol=0, atol=1e-12)


def test_path_is_the_straight_line_blend_for_any_t():
    z0, z1 = _pairs(seed=1)
    t = torch.linspace(0, 1, 5, dtype=F64)
    s = 0.01
    expected = torch.stack([(1 - ti) * a + ti * b + s * ti * a for ti, a, b in zip(t.tolist(), z0, z1)])
    torch.testing.assert_close(flow.interpolate(z0, z1, t, sigma_min=s), expected)


def test_target_velocity_closed_form_in_numbers():
    z0 = torch.tensor([[1.0, -2.0]], dtype=F64)
    z1 = torch.tensor([[3.0, 4.0]], dtype=F64)
    torch.testing.assert_close(flow.target_velocity(z0, z1, sigma_min=0.1), torch.tensor([[2.1, 5.8]], dtype=F64))
    torch.testing.assert_close(flow.target_velocity(z0, z1, sigma_min=0.0), torch.tensor([[2.0, 6.0]], dtype=F64))


@pytest.mark.parametrize("t0", [0.1, 0.5, 0.9])
def test_target_velocity_is_the_time_derivative_of_the_path(t0):
    z0, z1 = _pairs((4, 3), seed=2)
    h = 1e-5
    t = torch.full((4,), t0, dtype=F64)
    fd = (flow.interpolate(z0, z1, t + h) - flow.interpolate(z0, z1, t - h)) / (2 * h)
    torch.testing.assert_close(fd, flow.target_velocity(z0, z1), rtol=0, atol=1e-8)
    torch.testing.assert_close(flow.target_velocity(z0, z1), z1 - (1 - 1e-5) * z0)


def test_per_sample_time_broadcasts_over_image_shaped_latents():
    z0, z1 = _pairs((3, 2, 4, 4), seed=3)
    t = torch.tensor([0.0, 0.25, 1.0], dtype=F64)
    zt = flow.interpolate(z0, z1, t, sigma_min=0.0)
    assert zt.shape == (3, 2, 4, 4)
    torch.testing.assert_close(zt[0], z0[0])
    torch.testing.assert_close(zt[1], 0.75 * z0[1] + 0.25 * z1[1])
    torch.testing.assert_close(zt[2], z1[2])


def test_scalar_time_applies_to_every_sample():
    z0, z1 = _pairs((3, 2, 4, 4), seed=4)
    zt = flow.interpolate(z0, z1, torch.tensor(0.5, dtype=F64), sigma_min=0.0)
    torch.testing.assert_close(zt, 0.5 * (z0 + z1))


def test_shape_mismatches_raise():
    z0, z1 = _pairs((4, 2))
    with pytest.raises(ValueError):
        flow.interpolate(z0, z1[:3], torch.zeros(4))
    with pytest.raises(ValueError):
        flow.interpolate(z0, z1, torch.zeros(3))  # one time per sample, or a scalar
    with pytest.raises(ValueError):
        flow.target_velocity(z0, z1[:, :1])
    with pytest.raises(ValueError):
        flow.fm_loss(torch.zeros(4, 3), z0, z1)


# ------------------------------------------------------------------------------------------- time samplers
N_TIMES = 200_000


def test_uniform_time_moments():
    t = flow.sample_time_uniform(N_TIMES, generator=torch.Generator().manual_seed(0))
    assert t.shape == (N_TIMES,)
    assert float(t.min()) >= 0.0 and float(t.max()) < 1.0
    assert abs(float(t.mean()) - 0.5) < 0.005
    assert abs(float(t.var()) - 1 / 12) < 0.002


def test_logit_normal_time_is_sigmoid_of_a_standard_normal():
    t = flow.sample_time_logit_normal(N_TIMES, generator=torch.Generator().manual_seed(0)).double()
    assert float(t.min()) > 0.0 and float(t.max()) < 1.0
    assert abs(float(t.median()) - 0.5) < 0.01
    logit = torch.log(t / (1 - t))
    assert abs(float(logit.mean())) < 0.01
    assert abs(float(logit.std()) - 1.0) < 0.01
    # more mass in the middle than uniform: P(0.25 < t < 0.75) = erf(ln 3 / sqrt 2) ~ 0.728 (uniform: 0.5)
    middle = float(((t > 0.25) & (t < 0.75)).double().mean())
    assert abs(middle - math.erf(math.log(3) / math.sqrt(2))) < 0.01


@pytest.mark.parametrize("kind", ["uniform", "logit_normal"])
def test_time_samplers_are_reproducible_from_the_generator(kind):
    a = flow.sample_time(kind, 1000, generator=torch.Generator().manual_seed(7))
    b = flow.sample_time(kind, 1000, generator=torch.Generator().manual_seed(7))
    c = flow.sample_time(kind, 1000, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_sample_time_dispatches_to_the_named_sampler():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(flow.sample_time("logit_normal", 64, generator=g1),
                       torch.sigmoid(torch.randn(64, generator=g2)))


def test_unknown_time_sampler_raises():
    with pytest.raises(ValueError, match="unknown time sampler"):
        flow.sample_time("cosine", 10)


# ---------------------------------------------------------------------------------------------------- loss
def test_fm_loss_is_zero_for_the_exact_velocity():
    z0, z1 = _pairs((8, 2, 3, 3), seed=5)
    assert float(flow.fm_loss(z1 - (1 - flow.SIGMA_MIN) * z0, z0, z1)) == pytest.approx(0.0, abs=1e-20)


def test_fm_loss_is_the_mean_squared_error_in_numbers():
    z0 = torch.tensor([[1.0, -2.0]], dtype=F64)
    z1 = torch.tensor([[3.0, 4.0]], dtype=F64)
    # u = (2, 6) with sigma_min = 0; predicting (0, 0) costs (4 + 36) / 2 = 20, predicting (1, 6) costs 1 / 2
    assert float(flow.fm_loss(torch.zeros(1, 2, dtype=F64), z0, z1, sigma_min=0.0)) == pytest.approx(20.0)
    assert float(flow.fm_loss(torch.tensor([[1.0, 6.0]], dtype=F64), z0, z1, sigma_min=0.0)) == pytest.approx(0.5)


def test_flow_matching_loss_queries_the_model_on_the_path():
    z0, z1 = _pairs((16, 2), seed=6, dtype=torch.float32)
    seen = {}

    def model(zt, t):
        seen["zt"], seen["t"] = zt, t
        return torch.zeros_like(zt)

    loss = flow.flow_matching_loss(model, z0, z1, time_sampler="logit_normal",
                                   generator=torch.Generator().manual_seed(11))
    t = torch.sigmoid(torch.randn(16, generator=torch.Generator().manual_seed(11)))
    torch.testing.assert_close(seen["t"], t)
    torch.testing.assert_close(seen["zt"], (1 - (1 - 1e-5) * t[:, None]) * z0 + t[:, None] * z1)
    torch.testing.assert_close(loss, ((z1 - (1 - 1e-5) * z0) ** 2).mean())


def test_flow_matching_loss_is_zero_for_a_model_that_knows_the_field():
    # source at the origin: z_t = t z1 and u = z1, so v(z, t) = z / t is exact
    z1 = _pairs((32, 2), seed=7, dtype=torch.float32)[1]
    z0 = torch.zeros_like(z1)
    loss = flow.flow_matching_loss(lambda z, t: z / t[:, None], z0, z1, time_sampler="uniform",
                                   generator=torch.Generator().manual_seed(0))
    assert float(loss) < 1e-10


# ----------------------------------------------------------------------------------------------- samplers
def test_euler_integrates_a_constant_field_exactly_in_one_step():
    z0 = torch.tensor([[0.5, -1.0], [2.0, 3.0]], dtype=F64)
    u = torch.tensor([1.5, -0.25], dtype=F64)
    for solver in (sampling.euler, sampling.heun):
        out = solver(lambda z, t: u.expand_as(z), z0, 1)
        torch.testing.assert_close(out.sample, z0 + u, rtol=0, atol=1e-15)


def test_euler_on_a_linear_field_has_its_closed_form_first_order_error():
    a = 0.8
    z0 = torch.tensor([[1.0], [-2.0]], dtype=F64)
    errs = {}
    for n in (8, 16):
        out = sampling.euler(lambda z, t: a * z, z0, n)
        # Euler on dz/dt = a z is exactly z0 (1 + a/n)^n
        torch.testing.assert_close(out.sample, z0 * (1 + a / n) ** n)
        errs[n] = float((out.sample - z0 * math.exp(a)).abs().max())
    assert 1.8 < errs[8] / errs[16] < 2.2  # O(h): halving h halves the error


def test_heun_is_second_order_and_far_closer_than_euler_at_equal_nfe():
    a = 0.8
    z0 = torch.tensor([[1.0], [-2.0]], dtype=F64)
    exact = z0 * math.exp(a)
    heun_err = {n: float((sampling.heun(lambda z, t: a * z, z0, n).sample - exact).abs().max()) for n in (8, 16)}
    assert 3.6 < heun_err[8] / heun_err[16] < 4.4  # O(h^2)
    # per step Heun multiplies by 1 + h a + (h a)^2 / 2
    torch.testing.assert_close(sampling.heun(lambda z, t: a * z, z0, 4).sample, z0 * (1 + a / 4 + (a / 4) ** 2 / 2) ** 4)
    euler_err = float((sampling.euler(lambda z, t: a * z, z0, 16).sample - exact).abs().max())
    assert heun_err[8] < euler_err / 10  # both 16 NFE


def test_samplers_use_the_time_grid_from_0_to_1():
    # dz/dt = 2 t, so z(1) = z0 + 1. Euler (left end points t_k = k/n) gives z0 + (n - 1)/n; Heun is exact.
    z0 = torch.zeros(3, 1, dtype=F64)
    seen = []

    def field(z, t):
        assert t.shape == (z.shape[0],)
        seen.append(float(t[0]))
        return 2 * t.to(z.dtype)[:, None].expand_as(z)

    n = 4
    torch.testing.assert_close(sampling.euler(field, z0, n).sample, z0 + (n - 1) / n)
    assert seen == pytest.approx([0.0, 0.25, 0.5, 0.75])
    torch.testing.assert_close(sampling.heun(field, z0, n).sample, z0 + 1.0, rtol=0, atol=1e-6)


def test_nfe_counts_the_network_calls():
    calls = []

    def field(z, t):
        calls.append(1)
        return -z

    z0 = torch.ones(2, 2)
    for steps in (1, 3, 5):
        calls.clear()
        assert sampling.euler(field, z0, steps).nfe == steps == len(calls)
        calls.clear()
        assert sampling.heun(field, z0, steps).nfe == 2 * steps == len(calls)


@pytest.mark.parametrize("method", ["euler", "heun"])
def test_trajectory_shape_and_end_points(method):
    z0 = torch.randn(4, 2, 3, 3, generator=torch.Generator().manual_seed(0))
    out = sampling.sample(lambda z, t: torch.ones_like(z), z0, 5, method=method, return_trajectory=True)
    assert out.trajectory.shape == (6, 4, 2, 3, 3)
    assert torch.equal(out.trajectory[0], z0)
    assert torch.equal(out.trajectory[-1], out.sample)
    torch.testing.assert_close(out.sample, z0 + 1)
    torch.testing.assert_close(out.times, torch.linspace(0, 1, 6))
    assert sampling.sample(lambda z, t: z, z0, 5, method=method).trajectory is None


def test_a_time_grid_starts_and_ends_where_asked():
    # dz/dt = 2 t from t = 0.3 to 1 (Heun exact on a linear-in-t field): z(1) - z(0.3) = 1 - 0.09
    z0 = torch.zeros(2, 1, dtype=F64)
    field = lambda z, t: 2 * t.to(z.dtype)[:, None].expand_as(z)  # noqa: E731
    out = sampling.sample(field, z0, 7, "heun", t_start=0.3)
    torch.testing.assert_close(out.sample, z0 + 0.91, rtol=0, atol=1e-12)
    torch.testing.assert_close(out.times, torch.linspace(0.3, 1.0, 8))
    grid = [0.0, 0.1, 0.5, 1.0]  # an explicit, uneven grid: Euler evaluates at its left points
    seen = []
    sampling.sample(lambda z, t: seen.append(float(t[0])) or z * 0, z0, grid=grid)
    assert seen == pytest.approx([0.0, 0.1, 0.5])
    # finishing from the midpoint of a run equals the second half of the same run
    lin = lambda z, t: -z * (1 + t.to(z.dtype)[:, None])  # noqa: E731
    whole = sampling.sample(lin, torch.ones(3, 1, dtype=F64), 8, "euler", return_trajectory=True)
    half = sampling.sample(lin, whole.trajectory[4], 4, "euler", t_start=0.5)
    torch.testing.assert_close(half.sample, whole.sample)
    for bad in ([0.5, 0.2], [0.0], [0.0, 1.5]):
        with pytest.raises(ValueError, match="time grid"):
            sampling.sample(lin, z0, grid=bad)
    with pytest.raises(ValueError, match="t_start"):
        sampling.sample(lin, z0, 4, t_start=1.0)


def test_the_public_codes_euler_grid():
    """FlowMatchingSolver.sample_euler: N steps of (1 - 1e-5) / N, the network evaluated at linspace(0, 1 - 1e-5, N)."""
    n = 5
    seen = []

    def field(z, t):
        seen.append(float(t[0]))
        return torch.ones_like(z)

    out = sampling.sample(field, torch.zeros(1, 1, dtype=F64), n, method="euler_public")
    assert seen == pytest.approx([k * (1 - 1e-5) / (n - 1) for k in range(n)])
    torch.testing.assert_close(out.sample, torch.full((1, 1), 1 - 1e-5, dtype=F64))  # n steps of (1 - 1e-5) / n
    assert out.nfe == n


@pytest.mark.parametrize("steps", [0, -1, 2.0])
def test_non_positive_or_non_integer_steps_raise(steps):
    for solver in (sampling.euler, sampling.heun):
        with pytest.raises(ValueError):
            solver(lambda z, t: z, torch.zeros(1, 2), steps)


def test_sample_dispatches_and_rejects_unknown_methods():
    z0 = torch.ones(2, 1, dtype=F64)
    torch.testing.assert_close(sampling.sample(lambda z, t: z, z0, 3, method="heun").sample,
                               sampling.heun(lambda z, t: z, z0, 3).sample)
    with pytest.raises(ValueError, match="unknown sampler"):
        sampling.sample(lambda z, t: z, z0, 3, method="rk4")


# ------------------------------------------------------------------------------------------------- toy 2-D
def test_toy2d_rejects_unknown_distributions_and_empty_draws():
    with pytest.raises(ValueError, match="unknown 2-D distribution"):
        toy2d.sample_2d("spiral", 10)
    with pytest.raises(ValueError):
        toy2d.sample_2d("moons", 0)


@pytest.mark.parametrize("name", sorted(toy2d.DISTRIBUTIONS))
def test_toy2d_samples_are_finite_and_seeded(name):
    a = toy2d.sample_2d(name, 100, torch.Generator().manual_seed(1))
    b = toy2d.sample_2d(name, 100, torch.Generator().manual_seed(1))
    assert a.shape == (100, 2) and torch.isfinite(a).all() and torch.equal(a, b)


@pytest.mark.parametrize("crossed", [False, True])
def test_paired_sources_sit_in_the_blob_of_their_label(crossed):
    x0, x1, labels = toy2d.paired_blobs_to_moons(2000, torch.Generator().manual_seed(0), crossed=crossed)
    blob = 1 - labels if crossed else labels
    centres = torch.tensor(toy2d.BLOB_CENTRES)[blob]
    assert float((x0 - centres).norm(dim=1).max()) < 6 * toy2d.BLOB_STD
    # blob 0 lies above, blob 1 below: the sign of y tells the blob
    assert torch.equal((x0[:, 1] < 0).long(), blob)


def test_moon_label_recovers_the_labels_of_paired_targets():
    _, x1, labels = toy2d.paired_blobs_to_moons(2000, torch.Generator().manual_seed(5))
    acc = float((toy2d.moon_label(x1) == labels).float().mean())
    assert acc > 0.98
    assert flow2d.label_accuracy(x1, 1 - labels) < 0.02


# -------------------------------------------------------------------------------------------- 2-D recipe
def test_make_data_rejects_unknown_couplings():
    with pytest.raises(ValueError, match="unknown coupling"):
        flow2d.make_data("shuffled", 16)


def test_make_data_couplings_share_targets_and_differ_in_sources():
    paired, noise = flow2d.make_data("paired", 256, seed=3), flow2d.make_data("noise", 256, seed=3)
    assert torch.equal(paired.x1, noise.x1) and torch.equal(paired.labels, noise.labels)
    assert abs(float(noise.x0.mean())) < 0.2 and abs(float(noise.x0.std()) - 1) < 0.1   # N(0, I)
    assert float(paired.x0[:, 0].mean()) == pytest.approx(toy2d.BLOB_CENTRES[0][0], abs=0.1)


def test_mlp_velocity_checks_its_input():
    m = MLPVelocity(2, hidden=8, layers=1)
    assert m(torch.zeros(3, 2), torch.tensor(0.5)).shape == (3, 2)
    with pytest.raises(ValueError):
        m(torch.zeros(3, 3), torch.zeros(3))


def test_train_flow2d_on_the_smoke_profile_runs_and_learns(monkeypatch):
    monkeypatch.setenv("CROSSFLOW_PROGRESS", "0")
    cfg = get_profile("smoke").flow2d
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=150, log_every=1))
    steps_seen = []
    result = flow2d.train_flow2d("paired", cfg, callback=lambda step, logs: steps_seen.append(step))
    assert isinstance(result.model, MLPVelocity)
    assert steps_seen == list(range(cfg.train.steps))
    loss = torch.tensor(result.history["loss"])
    assert len(loss) == cfg.train.steps and torch.isfinite(loss).all()
    assert float(loss[-20:].mean()) < 0.5 * float(loss[:5].mean())   # it learns something
    data = flow2d.make_data("paired", 256, seed=1)
    out = flow2d.transport(result.model, data.x0, cfg.euler_steps)
    assert out.sample.shape == (256, 2) and torch.isfinite(out.sample).all()
    assert out.trajectory.shape == (cfg.euler_steps + 1, 256, 2) and out.nfe == cfg.euler_steps
    assert 0.0 <= flow2d.label_accuracy(out.sample, data.labels) <= 1.0

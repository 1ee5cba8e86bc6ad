"""Tests of the latent-patch transformers (crossflow_mini.core.transformer): the CrossFlow velocity model with its CFG
indicator (paper Sec. 4, 4.2) and the cross-attention baseline (standard flow matching, paper Table 1).

Small widths keep every test fast; the default configs are only built to report their parameter counts."""

from __future__ import annotations

import dataclasses
import inspect
import time

import pytest
import torch

from crossflow_mini.core import path as flow

from crossflow_mini.core import sampling
from crossflow_mini.configs import from_dict, to_dict
from crossflow_mini.core.transformer import (
    CONDITIONAL,
    UNCONDITIONAL,
    Attention,
    CrossAttentionTransformer,
    CrossAttentionTransformerConfig,
    VelocityTransformer,
    VelocityTransformerConfig,
    patchify,
    unpatchify,
)
from crossflow_mini.core.params import count_parameters, parameter_report

SMALL = dict(width=32, depth=2, heads=2, time_dim=32)
SHAPE = (4, 8, 8)
TOKEN_DIM = 384
B = 3


def _crossflow(seed: int = 0, **kw) -> VelocityTransformer:
    torch.manual_seed(seed)
    return VelocityTransformer(VelocityTransformerConfig(**{**SMALL, **kw}))


def _baseline(seed: int = 0, **kw) -> CrossAttentionTransformer:
    torch.manual_seed(seed)
    return CrossAttentionTransformer(CrossAttentionTransformerConfig(**{**SMALL, **kw}))


def _unzero(model: torch.nn.Module, seed: int = 1, std: float = 0.2) -> torch.nn.Module:
    """Give every all-zero parameter (adaLN-Zero maps, final projection, biases) small random values, as a few
    training steps would; otherwise gates are 0 and most of the network cannot influence the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * std)
    return model


def _latents(batch: int = B, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, *SHAPE, generator=torch.Generator().manual_seed(seed))


def _text(batch: int = B, length: int = 5, real: tuple[int, ...] = (5, 3, 1), seed: int = 0):
    """Token embeddings (B, L, 384) and a padding mask with ``real[i]`` leading real tokens in sample i."""
    tokens = torch.randn(batch, length, TOKEN_DIM, generator=torch.Generator().manual_seed(seed))
    mask = torch.arange(length)[None] < torch.tensor(real[:batch])[:, None]
    return tokens, mask


def _run(model, z, t, **kw):
    if isinstance(model, CrossAttentionTransformer):
        tokens, mask = _text(z.shape[0])
        return model(z, t, tokens, mask, **kw)
    return model(z, t, **kw)


MODELS = {
    "crossflow-token": lambda **kw: _crossflow(indicator="token", **kw),
    "crossflow-embedding": lambda **kw: _crossflow(indicator="embedding", **kw),
    "baseline": _baseline,
}


# ------------------------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("pos_embed", ["learned", "sincos"])
@pytest.mark.parametrize("t", [torch.tensor([0.0, 0.5, 1.0]), torch.tensor(0.3), 0.7], ids=["(B,)", "0-dim", "float"])
def test_output_shape_equals_input_shape(name, pos_embed, t):
    model = _unzero(MODELS[name](pos_embed=pos_embed))
    z = _latents()
    v = _run(model, z, t)
    assert v.shape == z.shape
    assert torch.isfinite(v).all()


def test_scalar_t_is_broadcast_to_the_batch():
    model = _unzero(_crossflow())
    z = _latents()
    torch.testing.assert_close(model(z, torch.tensor(0.3)), model(z, torch.full((B,), 0.3)))


@pytest.mark.parametrize("patch_size, shape", [(2, (4, 8, 8)), (4, (4, 8, 8)), (1, (3, 4, 6)), (2, (1, 6, 4))])
def test_patchify_unpatchify_round_trip(patch_size, shape):
    z = torch.randn(2, *shape)
    tokens = patchify(z, patch_size)
    c, h, w = shape
    assert tokens.shape == (2, (h // patch_size) * (w // patch_size), c * patch_size**2)
    assert torch.equal(unpatchify(tokens, patch_size, shape), z)
    # patch 0 is the top-left p x p corner, patch 1 the next one to the right (row-major order)
    p = patch_size
    assert torch.equal(tokens[:, 0], z[:, :, :p, :p].reshape(2, -1))
    assert torch.equal(tokens[:, 1], z[:, :, :p, p:2 * p].reshape(2, -1))


def test_samples_in_a_batch_do_not_mix():
    """A sample's velocity is the same alone or in a batch (catches reshape mistakes in the attention)."""
    z, t = _latents(4), torch.tensor([0.1, 0.4, 0.6, 0.9])
    model = _unzero(_crossflow())
    ind = torch.tensor([1, 0, 1, 0])
    torch.testing.assert_close(model(z, t, ind)[2:3], model(z[2:3], t[2:3], ind[2:3]), rtol=1e-5, atol=1e-6)
    base = _unzero(_baseline())
    tokens, mask = _text(4, real=(5, 3, 1, 2))
    full = base(z, t, tokens, mask)
    torch.testing.assert_close(full[1:2], base(z[1:2], t[1:2], tokens[1:2], mask[1:2]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cross", [False, True], ids=["self", "cross"])
def test_attention_matches_torch_multihead_attention(cross):
    """Our SDPA attention equals nn.MultiheadAttention with the same weights (and the same key padding)."""
    width, heads = 16, 4
    ours = Attention(width, heads)
    ref = torch.nn.MultiheadAttention(width, heads, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([ours.q.weight, ours.kv.weight]))
        ref.in_proj_bias.copy_(torch.cat([ours.q.bias, ours.kv.bias]))
        ref.out_proj.weight.copy_(ours.out.weight)
        ref.out_proj.bias.copy_(ours.out.bias)
    x = torch.randn(2, 5, width)
    if cross:
        ctx = torch.randn(2, 7, width)
        keep = torch.tensor([[True] * 7, [True] * 3 + [False] * 4])
        expected, _ = ref(x, ctx, ctx, key_padding_mask=~keep, need_weights=False)
        torch.testing.assert_close(ours(x, ctx, keep), expected, rtol=1e-5, atol=1e-6)
    else:
        expected, _ = ref(x, x, x, need_weights=False)
        torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_fresh_blocks_are_the_identity(name):
    """adaLN-Zero: untrained blocks pass tokens through unchanged, so with only the final layer perturbed the
    model maps each patch on its own: changing one input patch changes that output patch and no other
    (this also checks that the indicator token is the one dropped before the output)."""
    model = MODELS[name]()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.final.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    z, t = _latents(), torch.rand(B)
    z2 = z.clone()
    z2[:, :, 2:4, 4:6] += 1.0  # patch (row 1, column 2) of the 4 x 4 grid
    changed = (_run(model, z2, t) - _run(model, z, t)).abs().sum(dim=1) > 0  # (B, H, W)
    region = torch.zeros(8, 8, dtype=torch.bool)
    region[2:4, 4:6] = True
    assert torch.equal(changed, region.expand(B, 8, 8))


# ------------------------------------------------------------------------------------- zero-init + inputs
@pytest.mark.parametrize("name", MODELS)
def test_untrained_model_outputs_exactly_zero(name):
    """adaLN-Zero + zero-initialised final projection (DiT): v = 0 before training, whatever the input."""
    model = MODELS[name]()
    v = _run(model, _latents(), torch.rand(B))
    assert torch.equal(v, torch.zeros_like(v))


@pytest.mark.parametrize("name", MODELS)
def test_output_depends_on_t(name):
    model = _unzero(MODELS[name]())
    z = _latents()
    assert not torch.allclose(_run(model, z, torch.full((B,), 0.2)), _run(model, z, torch.full((B,), 0.8)), atol=1e-4)


@pytest.mark.parametrize("mode", ["token", "embedding"])
def test_output_depends_on_the_indicator(mode):
    model = _unzero(_crossflow(indicator=mode))
    z, t = _latents(), torch.rand(B)
    cond = model(z, t, torch.full((B,), CONDITIONAL))
    uncond = model(z, t, torch.full((B,), UNCONDITIONAL))
    assert not torch.allclose(cond, uncond, atol=1e-4)
    assert torch.equal(model(z, t), cond)  # None means all conditional
    assert torch.equal(model(z, t, torch.ones(B, dtype=torch.bool)), cond)  # bool indicators are accepted
    mixed = model(z, t, torch.tensor([1, 0, 1]))
    torch.testing.assert_close(mixed[[0, 2]], cond[[0, 2]])
    torch.testing.assert_close(mixed[1], uncond[1])


def test_crossflow_model_sees_no_text():
    """The point of CrossFlow: the velocity model takes only z_t, t and the indicator; no cross-attention."""
    assert list(inspect.signature(VelocityTransformer.forward).parameters) == ["self", "z_t", "t", "indicator"]
    model = _crossflow()
    assert not any("cross" in name for name, _ in model.named_modules())


def test_baseline_output_depends_on_text():
    model = _unzero(_baseline())
    z, t = _latents(), torch.rand(B)
    tokens, mask = _text()
    other, _ = _text(seed=1)
    assert not torch.allclose(model(z, t, tokens, mask), model(z, t, other, mask), atol=1e-4)


def test_baseline_ignores_padded_tokens():
    """Padding (mask False) with arbitrary values, even NaN or huge ones, changes nothing."""
    model = _unzero(_baseline())
    z, t = _latents(), torch.rand(B)
    tokens, mask = _text(length=5, real=(5, 3, 1))
    ref = model(z, t, tokens, mask)
    pad = 4
    junk = torch.randn(B, pad, TOKEN_DIM) * 1e4
    junk[0, 0, 0] = float("nan")
    longer = torch.cat([tokens, junk], dim=1)
    longer_mask = torch.cat([mask, torch.zeros(B, pad, dtype=torch.bool)], dim=1)
    torch.testing.assert_close(model(z, t, longer, longer_mask), ref, rtol=1e-5, atol=1e-6)
    scrambled = torch.where(mask[..., None], tokens, torch.randn_like(tokens) * 50)
    torch.testing.assert_close(model(z, t, scrambled, mask), ref, rtol=1e-5, atol=1e-6)


def test_baseline_drop_uses_the_null_token():
    """CFG for the baseline: drop=True (or an all-False mask) leaves only the learned null token."""
    model = _unzero(_baseline())
    z, t = _latents(), torch.rand(B)
    tokens, mask = _text()
    other, _ = _text(seed=2)
    dropped = model(z, t, tokens, mask, drop=True)
    torch.testing.assert_close(dropped, model(z, t, other, mask, drop=True))  # text no longer matters
    torch.testing.assert_close(dropped, model(z, t, tokens, torch.zeros_like(mask)))  # same as an empty mask
    assert not torch.allclose(dropped, model(z, t, tokens, mask), atol=1e-4)
    per_sample = model(z, t, tokens, mask, drop=torch.tensor([False, True, False]))
    torch.testing.assert_close(per_sample[1], dropped[1])
    torch.testing.assert_close(per_sample[[0, 2]], model(z, t, tokens, mask)[[0, 2]])


# ------------------------------------------------------------------------------------------- bad inputs
def _bad_inputs():
    z, t = _latents(), torch.rand(B)
    tokens, mask = _text()
    cf, base = _crossflow(), _baseline()
    return {
        "wrong latent shape": (lambda: cf(torch.randn(B, 4, 16, 16), t), "latent_shape"),
        "latent without channels": (lambda: cf(torch.randn(B, 8, 8), t), "expected z_t"),
        "t of wrong length": (lambda: cf(z, torch.rand(B + 1)), "t of shape"),
        "t of wrong rank": (lambda: cf(z, torch.rand(B, 1)), "t of shape"),
        "indicator value 2": (lambda: cf(z, t, torch.tensor([0, 1, 2])), "1 \\(conditional\\) or 0"),
        "negative indicator": (lambda: cf(z, t, torch.tensor([0, -1, 1])), "1 \\(conditional\\) or 0"),
        "float indicator": (lambda: cf(z, t, torch.tensor([0.0, 1.0, 1.0])), "integer or bool"),
        "indicator of wrong length": (lambda: cf(z, t, torch.tensor([0, 1])), "indicator of shape"),
        "text of wrong width": (lambda: base(z, t, torch.randn(B, 5, 100), mask), "384"),
        "mask of wrong shape": (lambda: base(z, t, tokens, mask[:, :4]), "text_mask of shape"),
        "float mask": (lambda: base(z, t, tokens, mask.float() * 0.5), "bool"),
        "text batch mismatch": (lambda: base(z, t, tokens[:2], mask[:2]), "samples but z_t has"),
        "drop of wrong length": (lambda: base(z, t, tokens, mask, drop=torch.tensor([True])), "drop"),
        "latent not divisible by patch": (
            lambda: VelocityTransformer(VelocityTransformerConfig(latent_shape=(4, 6, 6), patch_size=4)),
            "not divisible by patch_size"),
        "width not divisible by heads": (
            lambda: VelocityTransformer(VelocityTransformerConfig(width=30, heads=4)), "divisible by heads"),
        "unknown indicator mode": (
            lambda: VelocityTransformer(VelocityTransformerConfig(indicator="cross")), "indicator mode"),
        "unknown pos_embed": (
            lambda: CrossAttentionTransformer(CrossAttentionTransformerConfig(pos_embed="rope")), "pos_embed"),
    }


@pytest.mark.parametrize("case", list(_bad_inputs()))
def test_bad_inputs_raise_value_error(case):
    call, message = _bad_inputs()[case]
    with pytest.raises(ValueError, match=message):
        call()


# ----------------------------------------------------------------------------------- training readiness
@pytest.mark.parametrize("name", MODELS)
def test_gradients_reach_every_parameter(name):
    model = _unzero(MODELS[name]())
    z0, z1 = _latents(4, seed=0), _latents(4, seed=1)
    if isinstance(model, CrossAttentionTransformer):
        tokens, mask = _text(4, real=(5, 3, 1, 2))
        kwargs = dict(text_tokens=tokens, text_mask=mask, drop=torch.tensor([False, False, False, True]))
    else:
        kwargs = dict(indicator=torch.tensor([1, 0, 1, 0]))  # both indicator states are used
    loss = flow.flow_matching_loss(model, z0, z1, generator=torch.Generator().manual_seed(0), **kwargs)
    loss.backward()
    silent = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not silent, f"no gradient reaches {silent}"
    rows = getattr(model, "indicator_tokens", None)
    if rows is None and hasattr(model, "indicator_embed"):
        rows = model.indicator_embed.weight
    if rows is not None:  # each indicator state gets its own gradient
        assert (rows.grad.abs().sum(dim=1) > 0).all()


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_gives_identical_model_and_outputs(name):
    a, b, c = MODELS[name](seed=7), MODELS[name](seed=7), MODELS[name](seed=8)
    for x, y in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(x, y)
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values()))
    _unzero(a), _unzero(b)
    z, t = _latents(), torch.rand(B)
    assert torch.equal(_run(a, z, t), _run(b, z, t))


@pytest.mark.parametrize("name", MODELS)
def test_euler_sampler_drives_the_models(name):
    model = _unzero(MODELS[name]()).eval()
    z0 = _latents()
    if isinstance(model, CrossAttentionTransformer):
        tokens, mask = _text()
        velocity = lambda z, t: model(z, t, tokens, mask)  # noqa: E731
    else:
        velocity = lambda z, t: model(z, t, torch.full((z.shape[0],), CONDITIONAL))  # noqa: E731
    out = sampling.euler(velocity, z0, steps=4, return_trajectory=True)
    assert out.sample.shape == z0.shape and out.nfe == 4
    assert torch.isfinite(out.trajectory).all()
    assert not torch.allclose(out.sample, z0)


def test_velocity_transformer_overfits_a_few_pairs():
    """150 Adam steps on 16 fixed (z0, z1) pairs at least halve the flow-matching loss."""
    start = time.perf_counter()
    torch.manual_seed(0)
    model = VelocityTransformer(VelocityTransformerConfig(width=32, depth=2, heads=2, time_dim=32))
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(16, *SHAPE, generator=g), torch.randn(16, *SHAPE, generator=g)

    def eval_loss() -> float:
        eval_g = torch.Generator().manual_seed(123)
        with torch.no_grad():
            return sum(flow.flow_matching_loss(model, z0, z1, generator=eval_g).item() for _ in range(8)) / 8

    before = eval_loss()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        loss = flow.flow_matching_loss(model, z0, z1, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = eval_loss()
    print(f"\noverfit: loss {before:.3f} -> {after:.3f} in {time.perf_counter() - start:.1f} s")
    assert after < 0.5 * before


# ------------------------------------------------------------------------------------- configs + reports
@pytest.mark.parametrize("cls", [VelocityTransformerConfig, CrossAttentionTransformerConfig])
def test_configs_are_frozen_and_round_trip_through_json(cls):
    cfg = cls()
    assert cfg.num_patches == 16 and cfg.patch_dim == 16
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.width = 1  # type: ignore[misc]
    changed = dataclasses.replace(cfg, depth=2, latent_shape=(4, 16, 16))
    assert from_dict(cls, to_dict(changed)) == changed


def test_parameter_report_of_the_default_models():
    crossflow, baseline = VelocityTransformer(), CrossAttentionTransformer()
    reports = {"crossflow": parameter_report(crossflow), "baseline": parameter_report(baseline)}
    for name, model in (("crossflow", crossflow), ("baseline", baseline)):
        r = reports[name]
        print(f"\n{name}: {r['total']:,} parameters; " + ", ".join(f"{k} {v:,}" for k, v in r["by_module"].items()))
        assert r["total"] == r["trainable"] == count_parameters(model)
        assert sum(r["by_module"].values()) == r["total"]
        assert 0.5e6 < r["total"] < 3e6  # a ~1M-parameter model: trains on a laptop CPU
    assert set(reports["crossflow"]["by_module"]) >= {"blocks", "patch_embed", "time_embed", "final", "pos_embed"}
    assert "indicator_tokens" in reports["crossflow"]["by_module"]
    assert {"text_proj", "null_token"} <= set(reports["baseline"]["by_module"])
    # the cross-attention (and its text projection) is what makes the baseline bigger at equal width/depth
    assert reports["baseline"]["total"] > reports["crossflow"]["total"]


def test_sincos_positions_are_not_parameters():
    learned, fixed = _crossflow(pos_embed="learned"), _crossflow(pos_embed="sincos")
    assert "pos_embed" in parameter_report(learned)["by_module"]
    assert "pos_embed" not in parameter_report(fixed)["by_module"]
    assert "pos_embed" not in fixed.state_dict()  # recomputed from the config, not stored in checkpoints
    assert count_parameters(learned) - count_parameters(fixed) == 16 * SMALL["width"]

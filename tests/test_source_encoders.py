"""Tests of the source encoders (crossflow_mini.core.source, text_ve, image_ve; paper Sec. 4.1, Table 3a/3b).

Expected values are computed independently: the reparameterisation by hand with the same generator, the KL in
closed form and with torch.distributions, InfoNCE in its closed forms (log B for equal similarities,
log(1 + (B - 1) e^{-s}) for orthonormal perfect matches)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from crossflow_mini.configs import from_dict, to_dict
from crossflow_mini.core.image_ve import ImageVE, ImageVEConfig
from crossflow_mini.core.params import count_parameters
from crossflow_mini.core.source import (KL_WEIGHT_CODE, KL_WEIGHT_PAPER, IdentitySource, IdentitySourceConfig,
                                        TokenBatch, TowerConfig, info_nce, kl_divergence)
from crossflow_mini.core.text_ve import TextVE, TextVEConfig

TB = TokenBatch

F64 = torch.float64
TINY = TextVEConfig(width=32, depth=1, heads=2, reduction_layers=1, max_tokens=8)


def _batch(b=4, length=6, dim=384, seed=0, lengths=None):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(b, length, dim, generator=g)
    lengths = lengths or [length - (i % 3) for i in range(b)]
    mask = torch.arange(length)[None, :] < torch.tensor(lengths)[:, None]
    return tokens, mask


def _ve(cfg=TINY, seed=0):
    torch.manual_seed(seed)
    return TextVE(cfg).eval()


# ----------------------------------------------------------------------------------------------- config
def test_config_defaults_and_roundtrip():
    cfg = TextVEConfig()
    assert (cfg.token_dim, cfg.max_tokens, cfg.latent_shape, cfg.variant) == (384, 32, (4, 8, 8), "ve")
    assert cfg.resolved_kl_weight == KL_WEIGHT_PAPER == 1e-4
    assert TextVEConfig(kl_form="code").resolved_kl_weight == KL_WEIGHT_CODE == 1e-2
    assert TextVEConfig(kl_form="code", kl_weight=0.5).resolved_kl_weight == 0.5
    assert from_dict(TextVEConfig, to_dict(cfg)) == cfg
    with pytest.raises(ValueError, match="variant"):
        TextVEConfig(variant="vae")
    with pytest.raises(ValueError, match="reduction_layers"):
        TextVEConfig(width=36, heads=4, reduction_layers=3)


# ----------------------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("variant", ["ve", "plain", "noise"])
def test_output_shapes(variant):
    ve = _ve(dataclasses.replace(TINY, variant=variant))
    tokens, mask = _batch()
    out = ve(TB(tokens, mask))
    assert out.z0.shape == out.mu.shape == (4, 4, 8, 8)
    assert (out.logvar is not None) == (variant == "ve")
    if out.logvar is not None:
        assert out.logvar.shape == (4, 4, 8, 8)
    assert ve.encode_mean(TB(tokens, mask)).shape == (4, 4, 8, 8)
    assert ve.tower(torch.randn(3, 4, 8, 8)).shape == (3, 256)


def test_default_size_is_small():
    n = count_parameters(TextVE(TextVEConfig()))  # the image tower included
    assert 0.1e6 < n < 2e6


# ---------------------------------------------------------------------------------------- reparameterising
def test_reparameterisation_by_hand():
    ve = _ve()
    tokens, mask = _batch()
    out = ve(TB(tokens, mask), generator=torch.Generator().manual_seed(7))
    eps = torch.randn(out.mu.shape, generator=torch.Generator().manual_seed(7))
    assert torch.allclose(out.z0, out.mu + torch.exp(out.logvar / 2) * eps, atol=1e-6)
    assert torch.equal(out.mu, ve.encode_mean(TB(tokens, mask)))
    again = ve(TB(tokens, mask), generator=torch.Generator().manual_seed(7))
    assert torch.equal(out.z0, again.z0)
    other = ve(TB(tokens, mask), generator=torch.Generator().manual_seed(8))
    assert not torch.allclose(out.z0, other.z0)


def test_plain_is_deterministic_and_noise_has_fixed_std():
    tokens, mask = _batch()
    plain = _ve(dataclasses.replace(TINY, variant="plain"))
    a, b = plain(TB(tokens, mask)), plain(TB(tokens, mask))
    assert torch.equal(a.z0, a.mu) and torch.equal(a.z0, b.z0)

    std = 0.3
    noisy = _ve(dataclasses.replace(TINY, variant="noise", fixed_noise_std=std))
    out = noisy(TB(tokens, mask), generator=torch.Generator().manual_seed(3))
    eps = torch.randn(out.mu.shape, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(out.z0, out.mu + std * eps, atol=1e-6)
    big = noisy(TB(tokens[:1].expand(2000, -1, -1), mask[:1].expand(2000, -1)))  # one text, many draws
    assert abs((big.z0 - big.mu).std().item() - std) < 0.01


# ------------------------------------------------------------------------------------------------- padding
def test_padding_does_not_change_the_output():
    """Padding is neutralised three ways (zeroed on input, masked as attention keys, zeroed before flattening);
    this test fails when the input zeroing and either other guard are removed."""
    ve = _ve()
    tokens, mask = _batch(length=6, lengths=[6, 4, 2, 5])
    mu = ve.encode_mean(TB(tokens, mask))
    garbage = tokens.clone()
    garbage[~mask] = 1e4 * torch.randn(int((~mask).sum()), 384)  # anything in the padded slots
    extra = torch.cat([garbage, 50 * torch.randn(4, 2, 384)], dim=1)  # two more padding positions
    extra_mask = torch.cat([mask, torch.zeros(4, 2, dtype=torch.bool)], dim=1)
    assert torch.allclose(ve.encode_mean(TB(extra, extra_mask)), mu, atol=1e-5)
    assert torch.allclose(ve.encode_mean(TB(garbage, mask.long())), mu, atol=1e-5)  # 0/1 integer masks work
    # ... but real tokens do matter
    changed = tokens.clone()
    changed[1, 0] += 1.0
    assert not torch.allclose(ve.encode_mean(TB(changed, mask))[1], mu[1], atol=1e-4)


def test_long_sequences_are_truncated_with_a_warning():
    ve = _ve()
    tokens, mask = _batch(length=10, lengths=[10, 3, 3, 3])
    with pytest.warns(UserWarning, match="truncated"):
        mu = ve.encode_mean(TB(tokens, mask))
    assert torch.allclose(mu, ve.encode_mean(TB(tokens[:, :8], mask[:, :8])), atol=1e-6)


def test_bad_inputs_raise_clear_errors():
    ve = _ve()
    tokens, mask = _batch()
    with pytest.raises(ValueError, match="dimension 100 .* expects 384"):
        ve(TB(torch.randn(4, 6, 100), mask))
    with pytest.raises(ValueError, match="mask must have shape"):
        ve(TB(tokens, mask[:, :5]))
    with pytest.raises(ValueError, match=r"tokens must be a \(B, L, D\)"):
        ve(TB(tokens[0], mask[0]))
    empty = mask.clone()
    empty[2] = False
    with pytest.raises(ValueError, match=r"sample\(s\) \[2\] have no real token"):
        ve(TB(tokens, empty))
    with pytest.raises(ValueError, match="not floats"):
        ve(TB(tokens, mask.float()))
    with pytest.raises(ValueError, match="target tower expects"):
        ve.tower(torch.randn(2, 3, 32, 32))


# ------------------------------------------------------------------------------------------------------ KL
def test_kl_paper_form_closed_form_and_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(3, 4, 2, 2, generator=g, dtype=F64), torch.randn(3, 4, 2, 2, generator=g, dtype=F64)
    kl = kl_divergence(mu, logvar, "paper")
    assert kl.shape == (3,)
    sigma2 = logvar.exp()
    hand = torch.stack([0.5 * (m ** 2 + s - 1 - torch.log(s)).sum() for m, s in zip(mu, sigma2)])
    assert torch.allclose(kl, hand)
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mu, sigma2.sqrt()),
                                            torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu)))
    assert torch.allclose(kl, ref.flatten(1).sum(1))
    # one number by hand: mu = 1, logvar = 0 in 16 dims -> 16 * 0.5
    assert kl_divergence(torch.ones(1, 16, dtype=F64), torch.zeros(1, 16, dtype=F64)).item() == pytest.approx(8.0)


def test_kl_code_form_and_zero_at_the_prior():
    zeros = torch.zeros(2, 4, 8, 8)
    for form in ("paper", "code"):
        assert torch.equal(kl_divergence(zeros, zeros, form), torch.zeros(2))
    mu = torch.full((1, 10), 2.0, dtype=F64)
    lv = torch.zeros(1, 10, dtype=F64)
    assert kl_divergence(mu, lv, "paper").item() == pytest.approx(10 * 0.5 * 4.0)
    assert kl_divergence(mu, lv, "code").item() == pytest.approx(10 * 0.5 * 0.6 ** 6)
    lv2 = torch.full((1, 10), -1.0, dtype=F64)  # the variance part is the same in both forms
    diff = kl_divergence(mu, lv2, "paper") - kl_divergence(mu, lv2, "code")
    assert diff.item() == pytest.approx(10 * 0.5 * (4.0 - 0.6 ** 6))
    with pytest.raises(ValueError, match="unknown KL form"):
        kl_divergence(mu, lv, "vae")


# ------------------------------------------------------------------------------------------------ InfoNCE
def test_info_nce_closed_forms_and_symmetry():
    b = 8
    const = torch.ones(b, 5)
    assert info_nce(const, const, 10.0).item() == pytest.approx(math.log(b), abs=1e-6)  # uniform -> log B
    eye = torch.eye(b, 16, dtype=F64)
    for s in (1.0, 5.0, 30.0):  # orthonormal perfect matches: log(1 + (B - 1) e^{-s})
        assert info_nce(eye, 3 * eye, s).item() == pytest.approx(math.log(1 + (b - 1) * math.exp(-s)), rel=1e-9)
    assert info_nce(eye, eye, 100.0).item() < 1e-30
    g = torch.Generator().manual_seed(0)
    a, c = torch.randn(b, 2, 4, 4, generator=g), torch.randn(b, 32, generator=g)
    assert info_nce(a, c, 3.0).item() == pytest.approx(info_nce(c, a, 3.0).item(), rel=1e-6)
    # not symmetric-by-accident: the one-directional CE differs in each direction
    na, nc = torch.nn.functional.normalize(a.flatten(1), dim=1), torch.nn.functional.normalize(c, dim=1)
    logits = 3.0 * na @ nc.T
    one_way = torch.nn.functional.cross_entropy(logits, torch.arange(b))
    other_way = torch.nn.functional.cross_entropy(logits.T, torch.arange(b))
    assert not torch.isclose(one_way, other_way)
    assert info_nce(a, c, 3.0).item() == pytest.approx(0.5 * (one_way + other_way).item(), rel=1e-6)


# ----------------------------------------------------------------------------------------------- losses
def test_losses_weights_and_gradients():
    ve = _ve().train()
    tower = ve.tower
    tokens, mask = _batch()
    latents = torch.randn(4, 4, 8, 8)
    out = ve(TB(tokens, mask))
    losses = ve.losses(out, TB(tokens, mask), latents)
    assert set(losses) >= {"kl", "enc", "align", "total"}
    expected = TINY.enc_weight * losses["enc"] + KL_WEIGHT_PAPER * losses["kl"]
    assert torch.allclose(losses["total"], expected)
    assert torch.allclose(losses["kl"], kl_divergence(out.mu, out.logvar).mean())
    assert torch.allclose(losses["enc"], info_nce(out.z0, tower(latents), ve.logit_scale()))
    assert ve.logit_scale().item() == pytest.approx(1 / 0.07, rel=1e-5)
    losses["total"].backward()
    for name, p in [("proj", ve.proj.weight), ("tower", tower.head.weight), ("tower conv", tower.convs[0].weight),
                    ("logit scale", ve.logit_scale_param)]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("enc_loss", ["text_text", "text_recon", "none"])
def test_other_encoder_losses(enc_loss):
    cfg = dataclasses.replace(TINY, enc_loss=enc_loss)
    ve = _ve(cfg).train()
    tokens, mask = _batch()
    losses = ve.losses(ve(TB(tokens, mask)), TB(tokens, mask), None)
    if enc_loss == "none":
        assert losses["enc"].item() == 0.0
        return
    assert losses["enc"].item() > 0
    losses["total"].backward()
    head = ve.text_head if enc_loss == "text_text" else ve.recon_head
    assert ve.proj.weight.grad.abs().sum() > 0 and head.weight.grad.abs().sum() > 0


def test_raw_temperature_quirk_and_no_kl_without_variance():
    ve = _ve(dataclasses.replace(TINY, temperature_param="raw"))
    assert ve.logit_scale().item() == pytest.approx(math.log(1 / 0.07), rel=1e-6)  # used without exp
    for variant in ("plain", "noise"):
        ve = _ve(dataclasses.replace(TINY, variant=variant))
        tokens, mask = _batch()
        losses = ve.losses(ve(TB(tokens, mask)), TB(tokens, mask), torch.randn(4, 4, 8, 8))
        assert losses["kl"].item() == 0.0
    with pytest.raises(ValueError, match="needs a target tower and the paired targets"):
        ve.losses(ve(TB(tokens, mask)), TB(tokens, mask), None)


# ------------------------------------------------------------------------------------------------ training
def test_contrastive_training_learns_the_pairs():
    """32 random token sequences paired with 32 random latents: InfoNCE drops far below log B (~1.5 s)."""
    torch.manual_seed(0)
    n = 32
    tokens, mask = _batch(b=n, length=8, lengths=[3 + i % 6 for i in range(n)], seed=1)
    latents = torch.randn(n, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    ve = TextVE(TINY).train()
    opt = torch.optim.Adam(ve.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(3)
    source = TB(tokens, mask)
    for _ in range(80):
        losses = ve.losses(ve(source, generator=g), source, latents)
        opt.zero_grad()
        losses["total"].backward()
        opt.step()
    with torch.no_grad():
        final = info_nce(ve(source, generator=g).z0, ve.tower(latents), ve.logit_scale()).item()
    assert final < 0.2 * math.log(n), final


# ------------------------------------------------------------------------------------ the patch-query head
def test_patch_query_head_shapes_padding_and_locality():
    cfg = dataclasses.replace(TINY, head="patch_queries", head_depth=1)
    ve = _ve(cfg)
    tokens, mask = _batch(length=6, lengths=[6, 4, 2, 5])
    out = ve(TB(tokens, mask), generator=torch.Generator().manual_seed(0))
    assert out.z0.shape == out.mu.shape == out.logvar.shape == (4, 4, 8, 8)
    garbage = tokens.clone()
    garbage[~mask] = 1e4
    assert torch.allclose(ve.encode_mean(TB(garbage, mask)), out.mu, atol=1e-5)
    # query k gives patch k (row-major over the 4 x 4 grid of 2 x 2 patches): nudge query 5's final state only
    def nudge(module, inputs, output):
        output = output.clone()
        output[:, 5] += 1.0
        return output

    handle = ve.query_norm.register_forward_hook(nudge)
    changed = (ve.encode_mean(TB(tokens, mask)) - out.mu).abs().sum(dim=(0, 1)) > 1e-6  # (8, 8) map
    handle.remove()
    row, col = divmod(5, 4)
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[2 * row:2 * row + 2, 2 * col:2 * col + 2] = True
    assert torch.equal(changed, expected)
    with pytest.raises(ValueError, match="head_patch"):
        TextVEConfig(head="patch_queries", head_patch=3)


# ------------------------------------------------------------------------------------ alignment and negatives
def test_alignment_loss_is_the_squared_distance_of_mu_to_the_target():
    cfg = dataclasses.replace(TINY, align_weight=0.5, enc_loss="none")
    ve = _ve(cfg)
    tokens, mask = _batch()
    target = torch.randn(4, 4, 8, 8)
    out = ve(TB(tokens, mask))
    losses = ve.losses(out, TB(tokens, mask), target)
    assert torch.allclose(losses["align"], ((out.mu - target) ** 2).mean())
    assert torch.allclose(losses["total"], 0.5 * losses["align"] + KL_WEIGHT_PAPER * losses["kl"])
    assert TextVEConfig() == TextVEConfig(align_weight=0.0)  # a new field, absent from older configs' hashes
    from crossflow_mini.configs import to_dict as as_dict
    assert "align_weight" not in as_dict(TextVEConfig()) and "align_weight" in as_dict(cfg)


def test_hard_negatives_only_compete_for_the_sources():
    """Orthonormal perfect matches a_i = b_i = e_i (B of them), plus K negatives for the a -> b direction only.
    Without negatives: L = log(1 + (B - 1) e^{-s}). Negatives orthogonal to every a add K terms e^0 to each row of
    the a -> b direction; negatives equal to each row's own partner add one more e^{s} term to that row."""
    bsz, k, s = 4, 3, 5.0
    eye = torch.eye(bsz + k, dtype=F64)
    a, b = eye[:bsz], eye[:bsz]
    plain = math.log(1 + (bsz - 1) * math.exp(-s))
    assert info_nce(a, b, s).item() == pytest.approx(plain, rel=1e-9)
    ortho = eye[bsz:]
    want = 0.5 * (math.log(1 + (bsz - 1 + k) * math.exp(-s)) + plain)
    assert info_nce(a, torch.cat([b, ortho]), s).item() == pytest.approx(want, rel=1e-9)
    twins = eye[:bsz]  # one negative per row, identical to that row's partner
    want = 0.5 * (math.log(2 + (2 * bsz - 2) * math.exp(-s)) + plain)
    assert info_nce(a, torch.cat([b, twins]), s).item() == pytest.approx(want, rel=1e-9)
    with pytest.raises(ValueError, match="paired rows"):
        info_nce(a, b[:2], s)


# ------------------------------------------------------------------------------------ image VE and identity
@pytest.mark.parametrize("in_shape,out_shape,head", [((3, 32, 32), (1, 32, 32), "conv"),
                                                     ((3, 32, 32), (1, 16, 16), "conv"),
                                                     ((4, 8, 8), (4, 4, 4), "linear"),
                                                     ((1, 8, 8), (1, 32, 32), "conv")])
def test_image_ve_maps_any_image_to_any_target_shape(in_shape, out_shape, head):
    cfg = ImageVEConfig(in_shape=in_shape, latent_shape=out_shape, width=8, head=head, enc_loss="contrastive",
                        tower=TowerConfig(in_shape=out_shape, channels=(8,)))
    torch.manual_seed(0)
    ve = ImageVE(cfg)
    x = torch.randn(3, *in_shape)
    out = ve(x, generator=torch.Generator().manual_seed(1))
    assert out.z0.shape == out.mu.shape == out.logvar.shape == (3, *out_shape)
    losses = ve.losses(out, x, torch.randn(3, *out_shape))
    assert losses["enc"] > 0 and losses["kl"] > 0
    losses["total"].backward()
    assert ve.to_stats.weight.grad.abs().sum() > 0 and ve.tower.head.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="reads images of shape"):
        ve(torch.randn(3, 3, 16, 16))


def test_residual_image_ve_starts_as_the_identity_plus_unit_noise():
    cfg = ImageVEConfig(in_shape=(3, 16, 16), latent_shape=(3, 16, 16), width=8, residual=True)
    ve = ImageVE(cfg)
    x = torch.randn(2, 3, 16, 16)
    out = ve(x)
    assert torch.equal(out.mu, x) and torch.equal(out.logvar, torch.zeros_like(x))
    with pytest.raises(ValueError, match="residual"):
        ImageVEConfig(in_shape=(3, 16, 16), latent_shape=(1, 16, 16), residual=True)


def test_identity_source_is_the_source_plus_fixed_noise():
    x = torch.randn(2, 3, 8, 8)
    clean = IdentitySource(IdentitySourceConfig(latent_shape=(3, 8, 8)))
    assert torch.equal(clean(x).z0, x) and count_parameters(clean) == 0
    noisy = IdentitySource(IdentitySourceConfig(latent_shape=(3, 8, 8), noise_std=0.1))
    out = noisy(x, generator=torch.Generator().manual_seed(0))
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out.z0, x + 0.1 * eps)
    assert all(v.item() == 0 for v in noisy.losses(out, x, x).values())
    with pytest.raises(ValueError, match="shaped like the target"):
        clean(torch.randn(2, 1, 8, 8))

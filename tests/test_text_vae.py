"""Tests of the Text Variational Encoder (crossflow_mini.text_vae; paper Sec. 4.1, Table 3a/3b).

Expected values are computed independently: the reparameterisation by hand with the same generator, the KL in
closed form and with torch.distributions, InfoNCE in its closed forms (log B for equal similarities,
log(1 + (B - 1) e^{-s}) for orthonormal perfect matches)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from crossflow_mini.configs import from_dict, to_dict
from crossflow_mini.core.text_ve import (KL_WEIGHT_CODE, KL_WEIGHT_PAPER, ImageTower, TextVE, TextVEConfig,
                                     info_nce, kl_divergence, text_ve_losses)
from crossflow_mini.utils import count_parameters

F64 = torch.float64
TINY = TextVEConfig(width=32, n_layers=1, n_heads=2, reduction_layers=1, max_tokens=8)


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
        TextVEConfig(width=36, n_heads=4, reduction_layers=3)


# ----------------------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("variant", ["ve", "plain", "noise"])
def test_output_shapes(variant):
    ve = _ve(dataclasses.replace(TINY, variant=variant))
    tokens, mask = _batch()
    out = ve(tokens, mask)
    assert out.z0.shape == out.mu.shape == (4, 4, 8, 8)
    assert (out.logvar is not None) == (variant == "ve")
    if out.logvar is not None:
        assert out.logvar.shape == (4, 4, 8, 8)
    assert ve.encode_mean(tokens, mask).shape == (4, 4, 8, 8)
    assert ImageTower.for_text_ve(TINY)(torch.randn(3, 4, 8, 8)).shape == (3, 256)


def test_default_size_is_small():
    n = count_parameters(TextVE(TextVEConfig())) + count_parameters(ImageTower.for_text_ve(TextVEConfig()))
    assert 0.1e6 < n < 2e6


# ---------------------------------------------------------------------------------------- reparameterising
def test_reparameterisation_by_hand():
    ve = _ve()
    tokens, mask = _batch()
    out = ve(tokens, mask, generator=torch.Generator().manual_seed(7))
    eps = torch.randn(out.mu.shape, generator=torch.Generator().manual_seed(7))
    assert torch.allclose(out.z0, out.mu + torch.exp(out.logvar / 2) * eps, atol=1e-6)
    assert torch.equal(out.mu, ve.encode_mean(tokens, mask))
    again = ve(tokens, mask, generator=torch.Generator().manual_seed(7))
    assert torch.equal(out.z0, again.z0)
    other = ve(tokens, mask, generator=torch.Generator().manual_seed(8))
    assert not torch.allclose(out.z0, other.z0)


def test_plain_is_deterministic_and_noise_has_fixed_std():
    tokens, mask = _batch()
    plain = _ve(dataclasses.replace(TINY, variant="plain"))
    a, b = plain(tokens, mask), plain(tokens, mask)
    assert torch.equal(a.z0, a.mu) and torch.equal(a.z0, b.z0)

    std = 0.3
    noisy = _ve(dataclasses.replace(TINY, variant="noise", fixed_noise_std=std))
    out = noisy(tokens, mask, generator=torch.Generator().manual_seed(3))
    eps = torch.randn(out.mu.shape, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(out.z0, out.mu + std * eps, atol=1e-6)
    big = noisy(tokens[:1].expand(2000, -1, -1), mask[:1].expand(2000, -1))  # one text, many draws
    assert abs((big.z0 - big.mu).std().item() - std) < 0.01


# ------------------------------------------------------------------------------------------------- padding
def test_padding_does_not_change_the_output():
    """Padding is neutralised three ways (zeroed on input, masked as attention keys, zeroed before flattening);
    this test fails when the input zeroing and either other guard are removed."""
    ve = _ve()
    tokens, mask = _batch(length=6, lengths=[6, 4, 2, 5])
    mu = ve.encode_mean(tokens, mask)
    garbage = tokens.clone()
    garbage[~mask] = 1e4 * torch.randn(int((~mask).sum()), 384)  # anything in the padded slots
    extra = torch.cat([garbage, 50 * torch.randn(4, 2, 384)], dim=1)  # two more padding positions
    extra_mask = torch.cat([mask, torch.zeros(4, 2, dtype=torch.bool)], dim=1)
    assert torch.allclose(ve.encode_mean(extra, extra_mask), mu, atol=1e-5)
    assert torch.allclose(ve.encode_mean(garbage, mask.long()), mu, atol=1e-5)  # 0/1 integer masks work
    # ... but real tokens do matter
    changed = tokens.clone()
    changed[1, 0] += 1.0
    assert not torch.allclose(ve.encode_mean(changed, mask)[1], mu[1], atol=1e-4)


def test_long_sequences_are_truncated_with_a_warning():
    ve = _ve()
    tokens, mask = _batch(length=10, lengths=[10, 3, 3, 3])
    with pytest.warns(UserWarning, match="truncated"):
        mu = ve.encode_mean(tokens, mask)
    assert torch.allclose(mu, ve.encode_mean(tokens[:, :8], mask[:, :8]), atol=1e-6)


def test_bad_inputs_raise_clear_errors():
    ve = _ve()
    tokens, mask = _batch()
    with pytest.raises(ValueError, match="dimension 100 .* expects 384"):
        ve(torch.randn(4, 6, 100), mask)
    with pytest.raises(ValueError, match="mask must have shape"):
        ve(tokens, mask[:, :5])
    with pytest.raises(ValueError, match=r"tokens must be a \(B, L, 384\)"):
        ve(tokens[0], mask[0])
    empty = mask.clone()
    empty[2] = False
    with pytest.raises(ValueError, match=r"sample\(s\) \[2\] have no real token"):
        ve(tokens, empty)
    with pytest.raises(ValueError, match="not floats"):
        ve(tokens, mask.float())
    with pytest.raises(ValueError, match="ImageTower expects"):
        ImageTower.for_text_ve(TINY)(torch.randn(2, 3, 32, 32))


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
    tower = ImageTower.for_text_ve(TINY)
    tokens, mask = _batch()
    latents = torch.randn(4, 4, 8, 8)
    out = ve(tokens, mask)
    losses = text_ve_losses(out, latents, tokens, mask, ve, tower)
    assert set(losses) >= {"kl", "enc", "total_ve"}
    expected = TINY.enc_weight * losses["enc"] + KL_WEIGHT_PAPER * losses["kl"]
    assert torch.allclose(losses["total_ve"], expected)
    assert torch.allclose(losses["kl"], kl_divergence(out.mu, out.logvar).mean())
    assert losses["logit_scale"].item() == pytest.approx(1 / 0.07, rel=1e-5)
    losses["total_ve"].backward()
    for name, p in [("proj", ve.proj.weight), ("tower", tower.head.weight), ("tower conv", tower.convs[0].weight),
                    ("logit scale", ve.logit_scale_param)]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("enc_loss", ["text_text", "text_recon", "none"])
def test_other_encoder_losses(enc_loss):
    cfg = dataclasses.replace(TINY, enc_loss=enc_loss)
    ve = _ve(cfg).train()
    tokens, mask = _batch()
    losses = text_ve_losses(ve(tokens, mask), None, tokens, mask, ve)
    if enc_loss == "none":
        assert losses["enc"].item() == 0.0
        return
    assert losses["enc"].item() > 0
    losses["total_ve"].backward()
    head = ve.text_head if enc_loss == "text_text" else ve.recon_head
    assert ve.proj.weight.grad.abs().sum() > 0 and head.weight.grad.abs().sum() > 0


def test_raw_temperature_quirk_and_no_kl_without_variance():
    ve = _ve(dataclasses.replace(TINY, temperature_param="raw"))
    assert ve.logit_scale().item() == pytest.approx(math.log(1 / 0.07), rel=1e-6)  # used without exp
    for variant in ("plain", "noise"):
        ve = _ve(dataclasses.replace(TINY, variant=variant))
        tokens, mask = _batch()
        losses = text_ve_losses(ve(tokens, mask), torch.randn(4, 4, 8, 8), tokens, mask, ve,
                                ImageTower.for_text_ve(TINY))
        assert losses["kl"].item() == 0.0
    with pytest.raises(ValueError, match="needs image_latents and an image_tower"):
        text_ve_losses(ve(tokens, mask), None, tokens, mask, ve)


# ------------------------------------------------------------------------------------------------ training
def test_contrastive_training_learns_the_pairs():
    """32 random token sequences paired with 32 random latents: InfoNCE drops far below log B (~1.5 s)."""
    torch.manual_seed(0)
    n = 32
    tokens, mask = _batch(b=n, length=8, lengths=[3 + i % 6 for i in range(n)], seed=1)
    latents = torch.randn(n, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    ve, tower = TextVE(TINY).train(), ImageTower.for_text_ve(TINY)
    opt = torch.optim.Adam([*ve.parameters(), *tower.parameters()], lr=1e-3)
    g = torch.Generator().manual_seed(3)
    for _ in range(80):
        losses = text_ve_losses(ve(tokens, mask, generator=g), latents, tokens, mask, ve, tower)
        opt.zero_grad()
        losses["total_ve"].backward()
        opt.step()
    with torch.no_grad():
        final = info_nce(ve(tokens, mask, generator=g).z0, tower(latents), ve.logit_scale()).item()
    assert final < 0.2 * math.log(n), final

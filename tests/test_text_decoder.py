"""The caption models of the core: the non-autoregressive text decoder and its loss, the text autoencoder (scale,
loss replay, learning to reconstruct), the image tokens of the cross-attention baseline, and the direct and
autoregressive captioners (causality, greedy decoding)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from crossflow_mini.tasks.captioning.captioners import (AutoregressiveCaptioner, AutoregressiveCaptionerConfig,
                                                        DirectCaptioner, DirectCaptionerConfig, image_token_batch,
                                                        image_token_dim)
from crossflow_mini.core.image_ve import ImageVEConfig
from crossflow_mini.core.source import TokenBatch, kl_divergence
from crossflow_mini.nn.text_autoencoder import TextAutoencoder, TextAutoencoderConfig
from crossflow_mini.nn.text_decoder import (PAD_ID, TextDecoder, TextDecoderConfig, greedy_ids, reconstruction_loss,
                                            token_accuracy)
from crossflow_mini.core.text_ve import TextVEConfig
from crossflow_mini.core.transformer import patchify
from crossflow_mini.training import TrainConfig, train

SHAPE = (8, 4, 4)
VOCAB, LEN = 20, 6


def _decoder(**kw) -> TextDecoder:
    return TextDecoder(TextDecoderConfig(latent_shape=SHAPE, vocab_size=VOCAB, max_len=LEN, width=32, depth=1,
                                         heads=2, **kw))


def _tiny_autoencoder(kl_weight: float = 1e-4) -> TextAutoencoder:
    return TextAutoencoder(TextAutoencoderConfig(
        encoder=TextVEConfig(token_dim=12, width=32, depth=1, heads=2, max_tokens=5, latent_shape=SHAPE,
                             enc_loss="none", kl_weight=kl_weight),
        decoder=TextDecoderConfig(latent_shape=SHAPE, vocab_size=VOCAB, max_len=LEN, width=32, depth=1, heads=2)))


def _targets() -> torch.Tensor:
    """Four different captions: words (ids >= 4), <eos> (2), then padding (0)."""
    return torch.tensor([[5, 6, 7, 2, 0, 0], [8, 9, 2, 0, 0, 0], [10, 11, 12, 13, 2, 0], [7, 6, 5, 2, 0, 0]])


def test_decoder_gives_logits_for_every_position_at_once():
    dec = _decoder()
    logits = dec(torch.randn(3, *SHAPE))
    assert logits.shape == (3, LEN, VOCAB)
    z = torch.randn(2, *SHAPE)
    assert not torch.allclose(dec(z)[0], dec(z)[1])  # it reads the latent
    with pytest.raises(ValueError, match="latent_shape"):
        dec(torch.randn(2, 4, 8, 8))


def test_reconstruction_loss_by_hand_ignores_padding():
    logits = torch.randn(4, LEN, VOCAB)
    targets = _targets()
    keep = targets != PAD_ID
    by_hand = -(logits.log_softmax(-1).gather(-1, targets[..., None])[..., 0][keep]).mean()
    assert torch.allclose(reconstruction_loss(logits, targets), by_hand)
    changed = logits.clone()
    changed[~keep] = torch.randn_like(changed[~keep]) * 10  # what comes after <eos> is free
    assert torch.allclose(reconstruction_loss(changed, targets), by_hand)
    perfect = F.one_hot(targets, VOCAB).float() * 50
    assert reconstruction_loss(perfect, targets) < 1e-6 and token_accuracy(perfect, targets) == 1
    assert torch.equal(greedy_ids(perfect), targets)


def test_decoder_config_errors_say_what_to_do():
    with pytest.raises(ValueError, match="latent_patch"):
        TextDecoderConfig(latent_shape=(8, 4, 4), latent_patch=3)
    with pytest.raises(ValueError, match="divisible by heads"):
        TextDecoderConfig(width=30, heads=4)
    with pytest.raises(ValueError, match="same value"):
        TextAutoencoderConfig(encoder=TextVEConfig(latent_shape=(4, 8, 8), enc_loss="none"),
                              decoder=TextDecoderConfig(latent_shape=SHAPE))
    with pytest.raises(ValueError, match="no image"):
        TextAutoencoderConfig(encoder=TextVEConfig(latent_shape=SHAPE, tower=TextVEConfig().tower.__class__(
            in_shape=SHAPE)), decoder=TextDecoderConfig(latent_shape=SHAPE))


def _tokens(n: int = 4, seed: int = 0) -> TokenBatch:
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(n, 5, dtype=torch.bool)
    mask[:, 4] = False
    return TokenBatch(torch.randn(n, 5, 12, generator=g), mask)


def test_autoencoder_loss_replays_by_hand():
    ae = _tiny_autoencoder(kl_weight=0.01)
    tokens, targets = _tokens(), _targets()
    out = ae.loss(tokens, targets, generator=torch.Generator().manual_seed(3))
    mu, logvar = ae.encoder.stats(tokens)
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(3))
    z = mu + torch.exp(0.5 * logvar) * eps
    assert torch.allclose(out.z, z, atol=1e-6)
    rec = reconstruction_loss(ae.decoder(z), targets)
    kl = kl_divergence(mu, logvar, "paper").mean()
    assert torch.allclose(out.total, rec + 0.01 * kl, atol=1e-5)
    assert set(out.logs) >= {"rec", "kl", "token_acc"}


def test_latent_scale_is_applied_on_both_sides():
    ae = _tiny_autoencoder().eval()
    tokens = _tokens(64, seed=1)
    scale = ae.fit_latent_scale(tokens)
    z = ae.latents(tokens, sample=True, generator=torch.Generator().manual_seed(0))
    assert abs(float(z.detach().std()) - 1.0) < 0.1  # unit-variance targets for the flow (up to the sample's noise)
    mean, std = ae.stats(tokens)
    assert torch.allclose(mean, ae.encoder.encode_mean(tokens) * scale, atol=1e-5)
    assert torch.allclose(ae.logits(mean), ae.decoder(ae.encoder.encode_mean(tokens)), atol=1e-5)
    assert (std > 0).all()


def test_text_autoencoder_learns_to_reconstruct_different_captions():
    """A few hundred steps on four captions: every word back, from the mean and from a sample. (Broken on purpose -
    a decoder that ignores its latent - this fails: the four captions cannot all be reproduced.)"""
    torch.manual_seed(0)
    ae = _tiny_autoencoder()
    tokens, targets = _tokens(), _targets()
    cfg = TrainConfig(steps=150, batch_size=4, lr=3e-3, warmup_steps=10, ema_decay=0.0, ckpt_every=0, log_every=50)
    res = train(ae, lambda m, b: (lambda o: (o.total, o.logs))(m.loss(*b)), lambda step: (tokens, targets), cfg)
    model = res.model.eval()
    with torch.no_grad():
        for sample in (False, True):
            z = model.latents(tokens, sample=sample, generator=torch.Generator().manual_seed(0))
            ids = model.decode(z)
            keep = targets != PAD_ID
            assert torch.equal(ids[keep], targets[keep]), (sample, ids, targets)


def test_image_tokens_carry_patch_values_and_position():
    latents = torch.randn(2, 4, 8, 8)
    batch = image_token_batch(latents, 2)
    assert batch.tokens.shape == (2, 16, image_token_dim((4, 8, 8), 2)) == (2, 16, 32)
    assert torch.equal(batch.tokens[..., :16], patchify(latents, 2))
    assert torch.equal(batch.tokens[0, :, 16:], torch.eye(16)) and batch.mask.all()
    with pytest.raises(ValueError, match="divisible"):
        image_token_batch(torch.randn(1, 4, 7, 7), 2)


def _ar() -> AutoregressiveCaptioner:
    return AutoregressiveCaptioner(AutoregressiveCaptionerConfig(vocab_size=VOCAB, max_len=LEN, width=32, depth=1,
                                                                 heads=2)).eval()


def test_autoregressive_captioner_is_causal_and_teacher_forced():
    model = _ar()
    images = torch.randn(2, 4, 8, 8)
    targets = _targets()[:2]
    inputs = model.teacher_inputs(targets)
    assert torch.equal(inputs[:, 0], torch.ones(2, dtype=torch.long)) and torch.equal(inputs[:, 1:], targets[:, :-1])
    with torch.no_grad():
        full = model(images, inputs)
        changed = inputs.clone()
        changed[:, 3:] = 7  # later words must not change earlier predictions
        assert torch.allclose(model(images, changed)[:, :3], full[:, :3], atol=1e-5)
        loss, logs = model.loss(images, targets)
        assert torch.allclose(loss, reconstruction_loss(full, targets))


def test_greedy_decoding_follows_the_argmax_and_pads_after_eos():
    model = _ar()
    images = torch.randn(3, 4, 8, 8)
    ids = model.caption_ids(images)
    assert ids.shape == (3, LEN)
    inputs = torch.ones(3, 1, dtype=torch.long)
    with torch.no_grad():
        for k in range(LEN):
            nxt = model(images, inputs)[:, -1].argmax(-1)
            for b in range(3):
                if model.cfg.eos_id in ids[b, :k].tolist():
                    assert ids[b, k] == PAD_ID
                else:
                    assert ids[b, k] == nxt[b]
            inputs = torch.cat([inputs, ids[:, k:k + 1]], dim=1)


def test_direct_captioner_reads_the_image_and_trains_on_the_decoder_loss():
    cfg = DirectCaptionerConfig(ImageVEConfig(in_shape=(4, 8, 8), latent_shape=SHAPE, width=16, head="linear",
                                              variant="plain"),
                                TextDecoderConfig(latent_shape=SHAPE, vocab_size=VOCAB, max_len=LEN, width=32,
                                                  depth=1, heads=2))
    model = DirectCaptioner(cfg)
    images = torch.randn(4, 4, 8, 8)
    loss, _ = model.loss(images, _targets())
    assert torch.allclose(loss, reconstruction_loss(model(images), _targets()))
    assert model.caption_ids(images).shape == (4, LEN)
    with pytest.raises(ValueError, match="deterministic"):
        DirectCaptionerConfig(ImageVEConfig(in_shape=(4, 8, 8), latent_shape=SHAPE, head="linear"), cfg.decoder)

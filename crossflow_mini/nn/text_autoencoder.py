"""The text autoencoder of captioning: Text VE (caption tokens -> Gaussian text latent) + text decoder (latent -> words).

For image-to-text CrossFlow flows from an image to a TEXT latent, so captions need a latent space with a way back
to words (paper Sec. 5.4; docs/METHOD.md Sec. 7: "a text decoder ... trained with a reconstruction loss from the
Text VE latent"). The encoder is the Text VE of text-to-image (:class:`~crossflow_mini.core.text_ve.TextVE`, frozen
MiniLM tokens in) with a latent shape of our choosing, and the decoder is :class:`~.text_decoder.TextDecoder`:

    z = mu + sigma * eps = TextVE(tokens)                         (the reparameterised sample)
    L = L_rec(TextDecoder(z), words)  +  lambda KL(N(mu, sigma^2) || N(0, I))  (+ the Text VE's own L_Enc, if any)

``L_rec`` is the token cross-entropy of :func:`~.text_decoder.reconstruction_loss`; the KL and its weight come from
the Text VE's config (:meth:`~crossflow_mini.core.source.SourceEncoder.losses`; paper lambda 1e-4). The decoder is
trained on SAMPLES z, so it reads every point of each caption's Gaussian, not only its mean: the points a flow lands
on need not be exact means.

Like the image autoencoder's latents (the paper's SD-VAE scale factor), text latents are multiplied by a
``latent_scale`` fitted after training (1 / std of posterior samples, :meth:`TextAutoencoder.fit_latent_scale`), so
the flow sees unit-variance targets; :meth:`TextAutoencoder.latents` and :meth:`TextAutoencoder.decode` take care of
it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..core.source import TokenBatch
from .text_decoder import TextDecoder, TextDecoderConfig, greedy_ids, reconstruction_loss, token_accuracy
from ..core.text_ve import TextVE, TextVEConfig

TEXT_LATENT_SHAPE = (8, 4, 4)


@dataclass(frozen=True)
class TextAutoencoderConfig:
    """Text VE + text decoder. ``encoder.enc_loss`` is usually ``"none"`` (the decoder's reconstruction is the loss
    that shapes the latent); the image-text loss is refused (a text autoencoder has no image)."""

    encoder: TextVEConfig = TextVEConfig(latent_shape=TEXT_LATENT_SHAPE, enc_loss="none", max_tokens=16)
    decoder: TextDecoderConfig = TextDecoderConfig(latent_shape=TEXT_LATENT_SHAPE)

    def __post_init__(self) -> None:
        if tuple(self.encoder.latent_shape) != tuple(self.decoder.latent_shape):
            raise ValueError(f"the Text VE makes latents of shape {self.encoder.latent_shape} but the decoder reads "
                             f"{self.decoder.latent_shape}: set both latent_shape fields to the same value")
        if self.encoder.enc_loss == "image_text":
            raise ValueError("a text autoencoder has no image for the image-text loss: use enc_loss='none' (or "
                             "'text_text' / 'text_recon')")

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return tuple(self.encoder.latent_shape)


@dataclass
class ReconstructionLoss:
    """One batch of the text autoencoder: ``total`` (back-propagated), ``parts`` (``rec``, ``kl``, ``enc``),
    ``logs`` (floats: the parts and the token accuracy), and the sample ``z`` and ``logits`` (for replaying)."""

    total: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)
    logs: dict[str, float] = field(default_factory=dict)
    z: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class TextAutoencoder(nn.Module):
    """Caption tokens -> (scaled) text latents -> word logits (see the module docstring)."""

    def __init__(self, cfg: TextAutoencoderConfig = TextAutoencoderConfig()):
        super().__init__()
        self.cfg = cfg
        self.encoder = TextVE(cfg.encoder)
        self.decoder = TextDecoder(cfg.decoder)
        self.register_buffer("latent_scale", torch.tensor(1.0))

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return self.cfg.latent_shape

    # ------------------------------------------------------------------------------------------ training
    def loss(self, tokens: TokenBatch, targets: torch.Tensor,
             generator: torch.Generator | None = None) -> ReconstructionLoss:
        """L_rec + lambda KL (+ L_Enc) on a batch of caption tokens and their target word ids ``(B, max_len)``
        (words, ``<eos>``, padding; no ``<bos>``). Unscaled latents: the scale is fitted after training."""
        out = self.encoder(tokens, generator)
        logits = self.decoder(out.z0)
        rec = reconstruction_loss(logits, targets, self.cfg.decoder.pad_id)
        enc = self.encoder.losses(out, tokens, None)
        parts = {"rec": rec, "kl": enc["kl"], "enc": enc["enc"]}
        logs = {k: float(v.detach()) for k, v in parts.items()}
        logs["token_acc"] = float(token_accuracy(logits.detach(), targets, self.cfg.decoder.pad_id))
        return ReconstructionLoss(rec + enc["total"], parts, logs, out.z0, logits)

    @torch.no_grad()
    def fit_latent_scale(self, tokens: TokenBatch, batch_size: int = 512) -> float:
        """Set ``latent_scale`` to 1 / std of posterior samples of ``tokens`` (as the image autoencoder does);
        return it."""
        self.latent_scale.fill_(1.0)
        zs = [self.encoder(tokens[i:i + batch_size]).z0 for i in range(0, len(tokens), batch_size)]
        scale = 1.0 / torch.cat(zs).std().item()
        self.latent_scale.fill_(scale)
        return scale

    # ------------------------------------------------------------------------------------------ using it
    def stats(self, tokens: TokenBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled posterior mean and std ``(B, *latent_shape)`` of caption tokens (the flow's target statistics)."""
        mu, logvar = self.encoder.stats(tokens)
        std = torch.zeros_like(mu) if logvar is None else torch.exp(0.5 * logvar)
        return mu * self.latent_scale, std * self.latent_scale

    def latents(self, tokens: TokenBatch, sample: bool = False,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Scaled text latents: the posterior mean, or (``sample=True``) a draw from it with ``generator``."""
        if not sample:
            return self.stats(tokens)[0]
        return self.encoder(tokens, generator).z0 * self.latent_scale

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """Word logits ``(B, max_len, vocab)`` of scaled text latents."""
        return self.decoder(z / self.latent_scale)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Scaled text latents -> word ids ``(B, max_len)`` (the most likely word at each position)."""
        return greedy_ids(self.logits(z))


__all__ = ["TEXT_LATENT_SHAPE", "TextAutoencoderConfig", "ReconstructionLoss", "TextAutoencoder"]

"""Checks for the exercises of notebook 02 (the image autoencoder; paper Sec. 4, docs/METHOD.md "Image latents").

Each check recomputes the expected value from the library at run time, so it holds under every profile.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from ..datasets import shapes as sw
from ..nn import autoencoder
from ..training import TrainResult
from . import close, verdict

#: The KL weight exercise 1 asks about (the value the notebook's exercise text names).
EXERCISE_1_KL_WEIGHT = 1e-2


@torch.no_grad()
def kl_to_mse(ae: autoencoder.ImageAutoencoder, images: torch.Tensor, kl_weight: float) -> float:
    """``kl_weight`` x KL per latent dimension (as :meth:`ImageAutoencoder.loss` weighs it) over the MSE of the
    deterministic reconstructions of ``images``."""
    post = ae.posterior(images)
    kl = float(post.kl().mean()) / post.mean[0].numel()
    mse = float(((ae.reconstruct(images) - images) ** 2).mean())
    return kl_weight * kl / mse


def exercise_1(ratio: float, ae: autoencoder.ImageAutoencoder, images: torch.Tensor) -> bool:
    """The KL weight: beta x KL / MSE at beta = 1e-2 for the shipped autoencoder on ``images``."""
    expected = kl_to_mse(ae, images, EXERCISE_1_KL_WEIGHT)
    return verdict(close(ratio, expected, rtol=1e-3, atol=0),
                   f"at beta = {EXERCISE_1_KL_WEIGHT:g} the KL term is {expected:.3g} times the reconstruction MSE",
                   "KL per latent dimension (post.kl() sums over the latent: divide by its size), MSE of "
                   "ae.reconstruct(images) against images, both averaged over the images")


def exercise_2(numbers_ratio: float, cfg: autoencoder.AutoencoderConfig) -> bool:
    """Latent size: how many times more numbers the latent holds with one down-sampling block fewer."""
    fewer = dataclasses.replace(cfg, block_out_channels=tuple(cfg.block_out_channels[:-1]))
    expected = math.prod(fewer.latent_shape) / math.prod(cfg.latent_shape)
    return verdict(close(numbers_ratio, expected, rtol=1e-6), f"{fewer.latent_shape} holds {expected:g}x the numbers "
                   f"of {cfg.latent_shape}", "each block fewer doubles the latent's height and width")


@torch.no_grad()
def psnr_by_kind(ae: autoencoder.ImageAutoencoder, images: torch.Tensor, kinds: np.ndarray) -> dict[str, float]:
    """Mean PSNR of the reconstructions of ``images`` per scene kind (``kinds``: index into SCENE_KINDS)."""
    values = torch.cat([autoencoder.psnr(images[i:i + 256], ae.reconstruct(images[i:i + 256]))
                        for i in range(0, len(images), 256)])
    kinds = np.asarray(kinds)[:len(values)]
    return {k: float(values[torch.from_numpy(kinds == j)].mean()) for j, k in enumerate(sw.SCENE_KINDS)
            if (kinds == j).any()}


def exercise_3(worst_kind: str, ae: autoencoder.ImageAutoencoder, images: torch.Tensor, kinds: np.ndarray) -> bool:
    """Where are the errors: the scene kind with the lowest mean reconstruction PSNR."""
    by_kind = psnr_by_kind(ae, images, kinds)
    expected = min(by_kind, key=by_kind.get)
    return verdict(worst_kind == expected, f"worst scene kind: {expected} ("
                   + ", ".join(f"{k} {v:.2f} dB" for k, v in by_kind.items()) + ")",
                   "mean PSNR per scene kind (test.kinds), the name of the lowest, e.g. 'pair'")


@torch.no_grad()
def sigma_to_spread(ae: autoencoder.ImageAutoencoder, images: torch.Tensor) -> float:
    """Mean posterior standard deviation sigma over the standard deviation of the posterior means across images,
    both per latent entry and averaged."""
    post = ae.posterior(images)
    sigma = float((0.5 * post.logvar).exp().mean())
    spread = float(post.mean.std(dim=0).mean())
    return sigma / spread


def exercise_4(ratio: float, ae: autoencoder.ImageAutoencoder, images: torch.Tensor) -> bool:
    """Posterior sample vs mean: sigma of q(z|x) against the spread of the means across images."""
    expected = sigma_to_spread(ae, images)
    return verdict(close(ratio, expected, rtol=1e-3, atol=1e-6),
                   f"the posterior's sigma is {expected:.3g} of the spread of the means across images",
                   "sigma = exp(logvar / 2) averaged over entries and images; spread = std over the images of "
                   "each entry of the mean, averaged over entries")


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def exercise_5(resumed: TrainResult, uninterrupted: TrainResult) -> bool:
    """Resume: a run interrupted after a checkpoint and called again ends with exactly the weights of an
    uninterrupted run."""
    if not isinstance(resumed, TrainResult) or not isinstance(uninterrupted, TrainResult):
        return verdict(False, "two training results", "pass what fit returned for both runs")
    if resumed.resumed_from <= 0:
        return verdict(False, "the second call resumed", "give the run a name, interrupt it after its first "
                       "checkpoint (ckpt_every) and call fit again with the same name")
    same = _same_weights(resumed.model, uninterrupted.model) and _same_weights(resumed.ema, uninterrupted.ema)
    return verdict(same, f"resumed at step {resumed.resumed_from}: weights and EMA identical to the uninterrupted "
                   "run", "both runs need the same recipe (and TrainConfig) and the same number of steps")


__all__ = ["EXERCISE_1_KL_WEIGHT", "kl_to_mse", "psnr_by_kind", "sigma_to_spread", "exercise_1", "exercise_2",
           "exercise_3", "exercise_4", "exercise_5"]

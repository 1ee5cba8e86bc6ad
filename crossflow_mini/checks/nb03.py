"""Checks for the exercises of notebook 03 (the Text Variational Encoder; paper Sec. 4.1, docs/METHOD.md Sec. 2).

Each check recomputes the expected value from the library or the model at run time, so it holds under every
profile.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch

from ..core import source as ve_losses
from . import close, verdict

#: The posterior exercise 1 asks about: mu = 0 and log sigma^2 = -4 in every dimension.
EXERCISE_1_LOGVAR = -4.0


def exercise_1(kl_per_dim: Sequence[float]) -> bool:
    """The KL form: the KL per dimension of N(0, e^-4) from N(0, 1), in the paper's form and the code's form."""
    mu, logvar = torch.zeros(1, 1), torch.full((1, 1), EXERCISE_1_LOGVAR)
    expected = [float(ve_losses.kl_divergence(mu, logvar, form=form)) for form in ("paper", "code")]
    by_hand = 0.5 * (math.exp(EXERCISE_1_LOGVAR) - 1 - EXERCISE_1_LOGVAR)   # both forms agree where mu = 0
    ok = close(kl_per_dim, expected, rtol=1e-4) and close(expected, [by_hand, by_hand], rtol=1e-5)
    return verdict(ok, f"KL per dimension (paper form, code form) = ({expected[0]:.4f}, {expected[1]:.4f})",
                   "a pair (paper, code) for one dimension with mu = 0, log sigma^2 = -4: "
                   "ve_losses.kl_divergence(mu, logvar, form=...)")


def exercise_2(spread_mean: float, spread_sampled: float, pipe: Any, prompt: str, n: int) -> bool:
    """Plain vs VE at sampling time: the mean of the Text VE gives ``n`` identical images, its samples do not."""
    with torch.no_grad():
        images = pipe.from_text_latents(pipe.encode_text([prompt] * n, sample=False), output_type="pt").images
    expected = float(images.std(dim=0).mean())
    ok = close(spread_mean, expected, rtol=0, atol=1e-4) and float(spread_sampled) > expected + 1e-3
    return verdict(ok, f"z0 = mu: {n} identical images (spread {expected:.1e}); sampled z0: spread "
                       f"{float(spread_sampled):.3f}",
                   "spread = per-pixel std over the images of one prompt (images.std(dim=0).mean()); draw the "
                   "sampled z0 with encode_text(..., sample=True)")


def exercise_3(temperature: float, model: Any) -> bool:
    """Temperature: 1 / the learned contrastive logit scale of ``model``'s Text VE."""
    with torch.no_grad():
        expected = 1.0 / float(model.source.logit_scale())
    return verdict(close(temperature, expected, rtol=1e-4), f"learned temperature {expected:.4f} (CLIP starts at 0.07)",
                   "the logit scale s is 1 / temperature")


def probe_accuracy(features: torch.Tensor, labels: torch.Tensor, n_classes: int) -> float:
    """Least-squares linear probe: fit one-hot ``labels`` from ``features`` (with a bias) on the first half of the
    rows, report the accuracy of the argmax on the second half."""
    x = torch.cat([features.double(), torch.ones(len(features), 1, dtype=torch.float64)], dim=1)
    y = torch.nn.functional.one_hot(torch.as_tensor(labels).long(), n_classes).double()
    half = len(x) // 2
    w = torch.linalg.lstsq(x[:half], y[:half]).solution
    return float(((x[half:] @ w).argmax(1) == y[half:].argmax(1)).double().mean())


def exercise_4(accuracy: float, mu: torch.Tensor, labels: Any, n_classes: int) -> bool:
    """What the projection hides: the held-out accuracy of a least-squares probe from mu to the shape."""
    mu = torch.as_tensor(mu).flatten(1)
    expected = probe_accuracy(mu, torch.as_tensor(labels), n_classes)
    tolerance = 2.0 / (len(mu) - len(mu) // 2)   # two held-out captions: float32 against float64 round-off
    return verdict(close(accuracy, expected, rtol=0, atol=tolerance),
                   f"linear probe mu -> shape: {expected:.3f} on the held-out half (chance {1 / n_classes:.2f})",
                   "fit on the first half of the captions, score the second half; add a bias column; "
                   "torch.linalg.lstsq on one-hot labels, argmax to predict")


@torch.no_grad()
def last_layer_attention(ve: Any, tokens: Any) -> torch.Tensor:
    """The head-averaged cross-attention weights of the Text VE's last patch-query decoder layer,
    ``(B, queries, max_tokens)``."""
    store: dict[str, torch.Tensor] = {}
    attn = ve.decoder[-1].multihead_attn
    pre = attn.register_forward_pre_hook(
        lambda module, args, kwargs: (args, {**kwargs, "need_weights": True, "average_attn_weights": True}),
        with_kwargs=True)
    post = attn.register_forward_hook(lambda module, args, out: store.__setitem__("weights", out[1]))
    try:
        ve.stats(tokens)
    finally:
        pre.remove()
        post.remove()
    return store["weights"]


def exercise_5(attention: torch.Tensor, pipe: Any, caption: str) -> bool:
    """Where does each patch look: the last decoder layer's head-averaged attention of each query over the
    caption's real tokens, ``(queries, tokens)``."""
    tokens = pipe.tokenize([caption])
    n_real = int(tokens.mask.sum())
    expected = last_layer_attention(pipe.model.source, tokens)[0]
    got = torch.as_tensor(attention).detach().cpu().float()
    while got.ndim > 2 and got.shape[0] == 1:
        got = got[0]
    if got.ndim == 2 and got.shape[-1] > n_real:
        if float(got[:, n_real:].abs().max()) > 1e-6:
            return verdict(False, "attention over the real tokens", "padding must get no attention")
        got = got[:, :n_real]
    ok = close(got, expected[:, :n_real], rtol=1e-3, atol=1e-5)
    return verdict(ok, f"{expected.shape[0]} queries x {n_real} tokens of {caption!r}, each row summing to 1",
                   "hook the last decoder layer's multihead_attn with need_weights=True (head-averaged) and run "
                   "the Text VE on the caption's tokens (pipe.tokenize)")


__all__ = ["EXERCISE_1_LOGVAR", "probe_accuracy", "last_layer_attention", "exercise_1", "exercise_2", "exercise_3",
           "exercise_4", "exercise_5"]

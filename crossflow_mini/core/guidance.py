"""Classifier-free guidance with an indicator (CrossFlow paper Sec. 4.2, Table 3c; docs/METHOD.md Sec. 4).

CrossFlow's source is the text latent itself, so there is no "empty prompt" to drop to. Instead a binary
indicator 1_c tells the velocity model which map to learn:

* conditional (indicator 1): carry the text latent z0 to ITS image latent z1;
* unconditional (indicator 0): carry z0 to ANOTHER sample's image latent, i.e. to the image distribution
  regardless of the text.

Training (:func:`unconditional_mask`, :func:`derangement_within`, :func:`swap_targets`): each sample is
unconditional with probability p (0.1; some public configs 0.15); the targets of the unconditional samples are
permuted among themselves with no fixed point, while every sample keeps its own source z0 (the caller keeps z0;
only targets are touched). The Text VE's contrastive loss must see the TRUE pairs: give it the unswapped latents.

Sampling (:func:`guided_velocity`, :func:`make_guided`). Convention, stated once and tested:

    v = v_uncond + w (v_cond - v_uncond),         both at the same z_t and t,

so **w = 1 is the plain conditional model** and w = 0 the unconditional one. (A codebase that writes
v_cond + s (v_cond - v_uncond) has s = w - 1.) Paper figures use w in 2..6; public configs use 7.

Model calling convention: ``model(z_t, t, indicator)`` with ``indicator`` a ``(B,)`` long tensor,
1 = conditional, 0 = unconditional.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import torch

from .source import TokenBatch

#: Values of the CFG indicator 1_c (docs/METHOD.md Sec. 4): the velocity networks understand exactly these two.
CONDITIONAL, UNCONDITIONAL = 1, 0
NUM_INDICATOR_STATES = 2
SWAP_METHODS = ("roll", "random")
#: Guidance weights beyond this size (either sign) are far outside anything a model is tuned on (the paper uses 2 to
#: 7): they run, with a warning, because they usually mean a typo.
LARGE_SCALE = 20.0
#: Rejection sampling of a uniform derangement accepts with probability ~1/e; give up (and roll) after this.
MAX_DERANGEMENT_TRIES = 1000


@dataclass(frozen=True)
class GuidanceConfig:
    """CFG-with-indicator training settings (the guidance weight w used at sampling time is not one of them: it is a
    sampling setting, :class:`~crossflow_mini.core.sampling.SamplingConfig`, stored beside a checkpoint's weights).

    ``p_uncond``: probability that a training sample is unconditional (paper: 0.1).
    ``swap``: how the unconditional targets are permuted: ``"roll"`` (the public code's
    ``cat(target[1:], target[:1])`` within the unconditional subset: each takes the NEXT one's target, the last
    the first's) or ``"random"`` (a uniformly random derangement of the subset)."""

    p_uncond: float = 0.1
    swap: str = "roll"

    def __post_init__(self) -> None:
        if not 0.0 <= self.p_uncond <= 1.0:
            raise ValueError(f"GuidanceConfig.p_uncond must be in [0, 1], got {self.p_uncond}")
        if self.swap not in SWAP_METHODS:
            raise ValueError(f"GuidanceConfig.swap={self.swap!r} is not one of {SWAP_METHODS}")


# ---------------------------------------------------------------------------------------------- training
def unconditional_mask(batch_size: int, p: float = 0.1, generator: torch.Generator | None = None,
                       device: torch.device | str | None = None) -> torch.Tensor:
    """A bool ``(B,)`` mask: each sample independently unconditional (True) with probability ``p``."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"the unconditional probability p must be in [0, 1], got {p}")
    if batch_size < 0:
        raise ValueError(f"batch_size must be >= 0, got {batch_size}")
    draw_on = generator.device if generator is not None else device
    return (torch.rand(batch_size, generator=generator, device=draw_on) < p).to(device)


def _random_derangement(n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """A uniformly random permutation of range(n) (n >= 2) with no fixed point, by rejection sampling."""
    ar = torch.arange(n, device=device)
    for _ in range(MAX_DERANGEMENT_TRIES):
        perm = torch.randperm(n, generator=generator, device=generator.device if generator else device).to(device)
        if not (perm == ar).any():
            return perm
    return ar.roll(1)  # pragma: no cover - probability ~ (1 - 1/e) ** 1000


def derangement_within(mask: torch.Tensor, generator: torch.Generator | None = None,
                       method: str = "roll") -> torch.Tensor:
    """A permutation ``perm`` ``(B,)`` of the batch indices for ``z1[perm]``: derangement on the True subset.

    * Conditional samples (``mask`` False) map to themselves.
    * Unconditional samples (``mask`` True) map to ANOTHER unconditional sample, every one used once (a
      permutation of the subset with no fixed point).
      ``"roll"`` (public code, default): with idx the unconditional indices in batch order,
      ``perm[idx] = idx.roll(-1)``, i.e. ``z1[perm][idx] == cat(z1[idx][1:], z1[idx][:1])`` - the public code's
      ``cat(target_null[1:], target_null[:1])``; a roll by one of >= 2 elements has no fixed point. ``"random"``: a uniformly random derangement of the subset drawn from ``generator``.
    * Fewer than 2 unconditional samples: no derangement exists; the identity is returned (like the public
      code, which skips the swap). :func:`swap_targets` then turns such a lone sample back to conditional."""
    if mask.ndim != 1 or mask.dtype != torch.bool:
        raise ValueError(f"mask must be a (B,) bool tensor (True = unconditional), got {mask.dtype} "
                         f"{tuple(mask.shape)}")
    if method not in SWAP_METHODS:
        raise ValueError(f"unknown swap method {method!r}; choose one of {SWAP_METHODS}")
    perm = torch.arange(mask.shape[0], device=mask.device)
    idx = mask.nonzero().flatten()
    if len(idx) < 2:
        return perm
    if method == "roll":
        perm[idx] = idx.roll(-1)
    else:
        perm[idx] = idx[_random_derangement(len(idx), generator, mask.device)]
    return perm


def permute_targets(z1: torch.Tensor, perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(z1[perm], indicator)``: the targets after a permutation of the batch, and the CFG indicator it implies -
    1 (conditional) where a sample keeps its own target, 0 (unconditional) where it takes another's."""
    if perm.ndim != 1 or perm.shape[0] != z1.shape[0]:
        raise ValueError(f"perm must be a ({z1.shape[0]},) permutation of the batch, got shape {tuple(perm.shape)}")
    perm = perm.to(z1.device)
    swapped = perm != torch.arange(len(perm), device=perm.device)
    indicator = torch.where(swapped, UNCONDITIONAL, CONDITIONAL).long()
    return z1[perm], indicator


def swap_targets(z1: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None,
                 method: str = "roll") -> tuple[torch.Tensor, torch.Tensor]:
    """Replace the unconditional samples' targets by other unconditional samples' targets.

    Returns ``(z1_swapped, indicator)``: ``z1_swapped = z1[perm]`` with ``perm`` from :func:`derangement_within`
    and ``indicator`` a ``(B,)`` long tensor, 1 = conditional (own target), 0 = unconditional (swapped target).
    The indicator always tells the truth: when fewer than 2 samples are unconditional nothing can be swapped,
    so they are turned back to conditional (indicator 1) and ``z1_swapped`` equals ``z1``.

    Only the targets change: the caller keeps each sample's own source z0, and passes the UNSWAPPED ``z1`` to
    the Text VE's contrastive loss (it needs the true text-image pairs)."""
    if z1.ndim < 1 or z1.shape[0] != mask.shape[0]:
        raise ValueError(f"z1 has {z1.shape[0] if z1.ndim else 0} samples but the mask has {mask.shape[0]}")
    return permute_targets(z1, derangement_within(mask, generator, method))


# ---------------------------------------------------------------------------------------------- sampling
def check_scale(scale: float, warn: bool = True) -> float:
    """A guidance scale must be a finite real number; a clear error beats NaN images. A negative scale, or one far
    outside the tuned range (:data:`LARGE_SCALE`), is allowed (w < 0 pushes the sample away from the condition, an
    experiment some readers want) but said with a warning (``warn``: once per call, by the caller facing the user),
    since it is more often a typo."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) and not (
            torch.is_tensor(scale) and scale.numel() == 1):
        raise TypeError(f"guidance_scale must be a number, got {type(scale).__name__} {scale!r}")
    value = float(scale)
    if not math.isfinite(value):
        raise ValueError(f"guidance_scale must be finite, got {value}; w = 1 is the plain conditional model, "
                         f"the paper uses 2 to 7")
    if warn and value < 0:
        warnings.warn(f"guidance_scale {value:g} < 0 pushes the sample away from the condition; w = 0 is the "
                      f"unconditional model, w = 1 the plain conditional one, the paper uses 2 to 7", stacklevel=3)
    if warn and abs(value) > LARGE_SCALE:
        warnings.warn(f"guidance_scale {value:g} is far outside the range models are tuned on (|w| <= "
                      f"{LARGE_SCALE:g}; the paper uses 2 to 7): expect saturated or meaningless outputs", stacklevel=3)
    return value


def _indicator(value: int, n: int, device: torch.device) -> torch.Tensor:
    return torch.full((n,), value, dtype=torch.long, device=device)


def guided_velocity(model: Callable[..., torch.Tensor], z: torch.Tensor, t: torch.Tensor, scale: float,
                    **kwargs) -> torch.Tensor:
    """v = v_uncond + w (v_cond - v_uncond) with w = ``scale`` (see the module docstring for the convention).

    * w = 1: exactly ``model(z, t, indicator=1)``, one call of batch B (no unconditional call).
    * w = 0: exactly ``model(z, t, indicator=0)``, one call of batch B.
    * otherwise: ONE call of batch 2B on ``[z, z]`` with indicators ``[1..1, 0..0]``, split in halves.

    ``t`` may be a scalar or ``(B,)``. Extra ``kwargs`` go to the model; tensor kwargs must be per-sample
    (first dimension B) and are duplicated for the 2B call; pass non-per-sample settings as non-tensors."""
    scale = check_scale(scale, warn=False)  # the caller (FlowModel.flow) warned once already
    b = z.shape[0]
    t = t.expand(b) if t.ndim == 0 else t
    if t.shape != (b,):
        raise ValueError(f"t must be a scalar or have shape ({b},), got {tuple(t.shape)}")
    if scale == 1:
        return model(z, t, _indicator(CONDITIONAL, b, z.device), **kwargs)
    if scale == 0:
        return model(z, t, _indicator(UNCONDITIONAL, b, z.device), **kwargs)
    doubled = {}
    for name, value in kwargs.items():
        if isinstance(value, TokenBatch):
            if len(value) != b:
                raise ValueError(f"token batch {name!r} has {len(value)} samples, the batch has {b}")
            value = TokenBatch.cat([value, value])
        elif torch.is_tensor(value):
            if value.ndim == 0 or value.shape[0] != b:
                raise ValueError(f"tensor kwarg {name!r} must be per-sample with first dimension {b}, got "
                                 f"{tuple(value.shape)}; pass batch-independent settings as Python values")
            value = torch.cat([value, value])
        doubled[name] = value
    indicator = torch.cat([_indicator(CONDITIONAL, b, z.device), _indicator(UNCONDITIONAL, b, z.device)])
    v = model(torch.cat([z, z]), torch.cat([t, t]), indicator, **doubled)
    v_cond, v_uncond = v[:b], v[b:]
    return v_uncond + scale * (v_cond - v_uncond)


def make_guided(model: Callable[..., torch.Tensor], scale: float,
                **kwargs) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A ``velocity(z, t)`` callable for :func:`crossflow_mini.sampling.euler` / ``heun`` that applies
    :func:`guided_velocity` with weight ``scale``. Each call is one (w in {0, 1}) or one double-batch forward."""

    def velocity(z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return guided_velocity(model, z, t, scale, **kwargs)

    return velocity


__all__ = [
    "CONDITIONAL", "UNCONDITIONAL", "NUM_INDICATOR_STATES", "SWAP_METHODS", "LARGE_SCALE", "check_scale", "GuidanceConfig", "unconditional_mask",
    "derangement_within", "permute_targets", "swap_targets", "guided_velocity", "make_guided",
]

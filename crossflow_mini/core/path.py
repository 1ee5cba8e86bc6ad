"""The flow-matching path: its points, its target velocity, time samplers and the loss (docs/METHOD.md Sec. 3).

Convention used everywhere in this project: **t = 0 is the source, t = 1 the target.** For CrossFlow the
source z0 is the text latent and the target z1 the image latent; for standard flow matching z0 is Gaussian
noise. The path is the rectified / optimal-transport path with a small ``sigma_min`` (Lipman et al. 2023),
as in the CrossFlow public code:

    z_t = (1 - (1 - sigma_min) t) z0 + t z1                      (path)
    u_t = d z_t / dt = z1 - (1 - sigma_min) z0                   (target velocity, constant in t)
    L_FM = E_t || v_theta(z_t, t) - u_t ||^2                     (loss)
"""

from __future__ import annotations

import torch

SIGMA_MIN = 1e-5


def _expand(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape a per-sample time ``(B,)`` so it broadcasts against ``like`` ``(B, ...)``."""
    if t.ndim == 0:
        return t
    if t.shape[0] != like.shape[0]:
        raise ValueError(f"t has {t.shape[0]} entries but the batch has {like.shape[0]} samples")
    return t.reshape(-1, *([1] * (like.ndim - 1)))


def interpolate(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor, sigma_min: float = SIGMA_MIN) -> torch.Tensor:
    """The point z_t on the straight path from source ``z0`` (t = 0) to target ``z1`` (t = 1)."""
    if z0.shape != z1.shape:
        raise ValueError(f"source {tuple(z0.shape)} and target {tuple(z1.shape)} must have the same shape")
    t = _expand(t, z0)
    return (1 - (1 - sigma_min) * t) * z0 + t * z1


def target_velocity(z0: torch.Tensor, z1: torch.Tensor, sigma_min: float = SIGMA_MIN) -> torch.Tensor:
    """u = z1 - (1 - sigma_min) z0, the time derivative of :func:`interpolate`."""
    if z0.shape != z1.shape:
        raise ValueError(f"source {tuple(z0.shape)} and target {tuple(z1.shape)} must have the same shape")
    return z1 - (1 - sigma_min) * z0


def _draw_device(generator: torch.Generator | None, device: torch.device | str | None):
    """Draw where the generator lives (so a CPU generator gives the same times on any device)."""
    return generator.device if generator is not None else device


def sample_time_uniform(n: int, generator: torch.Generator | None = None,
                        device: torch.device | str | None = None) -> torch.Tensor:
    """t ~ U[0, 1]."""
    return torch.rand(n, generator=generator, device=_draw_device(generator, device)).to(device)


def sample_time_logit_normal(n: int, mean: float = 0.0, std: float = 1.0, generator: torch.Generator | None = None,
                             device: torch.device | str | None = None) -> torch.Tensor:
    """t = sigmoid(n), n ~ N(mean, std^2): the logit-normal sampler of the CrossFlow code (mean 0, std 1),
    which puts more training weight on the middle of the path than on its ends."""
    n01 = torch.randn(n, generator=generator, device=_draw_device(generator, device)).to(device)
    return torch.sigmoid(mean + std * n01)


TIME_SAMPLERS = {"uniform": sample_time_uniform, "logit_normal": sample_time_logit_normal}


def sample_time(kind: str, n: int, generator: torch.Generator | None = None,
                device: torch.device | str | None = None) -> torch.Tensor:
    """Draw ``n`` times with the sampler named ``kind`` (``"uniform"`` or ``"logit_normal"``)."""
    if kind not in TIME_SAMPLERS:
        raise ValueError(f"unknown time sampler {kind!r}; choose one of {sorted(TIME_SAMPLERS)}")
    return TIME_SAMPLERS[kind](n, generator=generator, device=device)


def fm_loss(v_pred: torch.Tensor, z0: torch.Tensor, z1: torch.Tensor, sigma_min: float = SIGMA_MIN) -> torch.Tensor:
    """Mean squared error between the predicted velocity and :func:`target_velocity` (a scalar)."""
    target = target_velocity(z0, z1, sigma_min)
    if v_pred.shape != target.shape:
        raise ValueError(f"predicted velocity {tuple(v_pred.shape)} does not match target {tuple(target.shape)}")
    return torch.mean((v_pred - target) ** 2)


def flow_matching_loss(model, z0: torch.Tensor, z1: torch.Tensor, time_sampler: str = "uniform",
                       generator: torch.Generator | None = None, sigma_min: float = SIGMA_MIN,
                       **model_kwargs) -> torch.Tensor:
    """One Monte-Carlo estimate of L_FM: draw t (uniform, as every recipe here; ``"logit_normal"`` is the public
    code's), build z_t, ask ``model(z_t, t, **model_kwargs)``."""
    t = sample_time(time_sampler, z0.shape[0], generator=generator, device=z0.device)
    zt = interpolate(z0, z1, t, sigma_min)
    return fm_loss(model(zt, t, **model_kwargs), z0, z1, sigma_min)

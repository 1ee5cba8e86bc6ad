"""ODE samplers that carry a source sample along a learned velocity field from t = 0 to t = 1.

``velocity(z, t)`` is any callable returning dz/dt with the shape of ``z`` (``t`` is a ``(B,)`` tensor). The
CrossFlow code uses 50 Euler steps (CROSSFLOW_NOTES Sec. 5); Heun (explicit trapezoid) is the second-order
extension. Both count the network evaluations (NFE) they spend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class SampleResult:
    """The end point, optionally the whole trajectory (``(steps + 1, B, ...)`` at ``times``), and the NFE."""

    sample: torch.Tensor
    nfe: int
    times: torch.Tensor
    trajectory: torch.Tensor | None = field(default=None, repr=False)


def _check(steps: int) -> None:
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")


def _time(t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    return t.expand(z.shape[0]).to(z.device)


def _euler_step(velocity: Velocity, z: torch.Tensor, t0: torch.Tensor, t1: torch.Tensor) -> torch.Tensor:
    return z + (t1 - t0) * velocity(z, _time(t0, z))


def _heun_step(velocity: Velocity, z: torch.Tensor, t0: torch.Tensor, t1: torch.Tensor) -> torch.Tensor:
    h = t1 - t0
    v0 = velocity(z, _time(t0, z))
    v1 = velocity(z + h * v0, _time(t1, z))  # the velocity at the Euler prediction
    return z + h * 0.5 * (v0 + v1)


@torch.no_grad()
def _integrate(step: Callable, nfe_per_step: int, velocity: Velocity, z0: torch.Tensor, steps: int,
               return_trajectory: bool) -> SampleResult:
    """March ``steps`` equal steps from t = 0 to t = 1 with the one-step rule ``step``."""
    _check(steps)
    times = torch.linspace(0.0, 1.0, steps + 1)
    z = z0
    traj = [z0] if return_trajectory else None
    for k in range(steps):
        z = step(velocity, z, times[k], times[k + 1])
        if traj is not None:
            traj.append(z)
    return SampleResult(z, nfe_per_step * steps, times, torch.stack(traj) if traj is not None else None)


def euler(velocity: Velocity, z0: torch.Tensor, steps: int, return_trajectory: bool = False) -> SampleResult:
    """z_{k+1} = z_k + h v(z_k, t_k) with h = 1 / steps: one NFE per step."""
    return _integrate(_euler_step, 1, velocity, z0, steps, return_trajectory)


def heun(velocity: Velocity, z0: torch.Tensor, steps: int, return_trajectory: bool = False) -> SampleResult:
    """Heun's method (explicit trapezoid): two NFE per step, second-order accurate."""
    return _integrate(_heun_step, 2, velocity, z0, steps, return_trajectory)


SAMPLERS = {"euler": euler, "heun": heun}


def sample(velocity: Velocity, z0: torch.Tensor, steps: int, method: str = "euler",
           return_trajectory: bool = False) -> SampleResult:
    """Integrate with the solver named ``method`` (``"euler"`` or ``"heun"``)."""
    if method not in SAMPLERS:
        raise ValueError(f"unknown sampler {method!r}; choose one of {sorted(SAMPLERS)}")
    return SAMPLERS[method](velocity, z0, steps, return_trajectory)

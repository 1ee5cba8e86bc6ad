"""ODE samplers that carry a source sample along a learned velocity field over a time grid.

``velocity(z, t)`` is any callable returning dz/dt with the shape of ``z`` (``t`` is a ``(B,)`` tensor). The flow
is integrated over a **time grid** t_0 < t_1 < ... < t_N (as ``flow_matching``'s ``ODESolver.sample(time_grid=...)``
takes one): by default ``N`` equal steps from ``t_start = 0`` (the source) to ``t_end = 1`` (the target), and any
sub-interval or explicit grid for "finish the flow from t = 0.3" or for stopping early. Solvers:

* ``"euler"``: z_{k+1} = z_k + (t_{k+1} - t_k) v(z_k, t_k) - one network evaluation (NFE) per step. The default.
* ``"heun"``: the explicit trapezoid rule, two NFE per step, second-order accurate.
* ``"euler_public"``: the public CrossFlow code's Euler loop (``FlowMatchingSolver.sample_euler``): N equal steps of
  size (1 - 1e-5) / N, but the network is evaluated at ``linspace(0, 1 - 1e-5, N)`` - the k-th evaluation sits at
  k (1 - 1e-5) / (N - 1), a little AHEAD of the state's own time k (1 - 1e-5) / N (the last one at t ~ 1). We keep
  the textbook grid as the default because it evaluates the field where the state is (so Euler and Heun share one
  grid and the error shrinks as 1 / N); the public grid is an option for comparison (notebook 05's exercise).

Every solver returns a :class:`SampleResult` with the end point, the NFE spent and, on request, the trajectory at
the grid times.

A trained model's default sampling settings - guidance weight w, steps, solver, and how many flows a dense prediction
averages - are one :class:`SamplingConfig`. It is not part of the model's config (no weight depends on it): a
checkpoint stores it beside its weights (``sampling.json``, the values chosen on validation data when it was trained),
as diffusers keeps a scheduler's config apart from the model's, and every caller can override it per call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: The public code's time scale: it integrates to 1 - 1e-5 rather than 1 (``sample_timescale``).
PUBLIC_TIMESCALE = 1.0 - 1e-5
METHODS = ("euler", "heun", "euler_public")
#: How the flows of a dense prediction are combined (Marigold averages ten depth samples; a median is robust to one
#: stray sample).
ENSEMBLES = ("mean", "median")


@dataclass(frozen=True)
class SamplingConfig:
    """A model's default sampling settings (docs/METHOD.md Sec. 4-5).

    ``guidance_scale``: w in v = v_uncond + w (v_cond - v_uncond) - w = 1 is the plain conditional model (one
    network call per step), any other w costs two; ``steps``: solver steps from t = 0 to t = 1 (the public code uses
    50 Euler steps); ``sampler``: one of :data:`METHODS`; ``n_samples``: flows combined into one prediction (dense
    tasks such as depth; 1 elsewhere), by their ``ensemble`` (:data:`ENSEMBLES`: per-pixel mean or median)."""

    guidance_scale: float = 1.0
    steps: int = 20
    sampler: str = "euler"
    n_samples: int = 1
    ensemble: str = "mean"

    def __post_init__(self) -> None:
        import math

        if isinstance(self.guidance_scale, bool) or not isinstance(self.guidance_scale, (int, float)) or \
                not math.isfinite(self.guidance_scale):
            raise ValueError(f"SamplingConfig.guidance_scale must be a finite number, got {self.guidance_scale!r}")
        check_steps(self.steps)
        if self.sampler not in METHODS:
            raise ValueError(f"unknown sampler {self.sampler!r}; choose one of {METHODS}")
        if isinstance(self.n_samples, bool) or not isinstance(self.n_samples, int) or self.n_samples < 1:
            raise ValueError(f"SamplingConfig.n_samples must be a positive integer, got {self.n_samples!r}")
        if self.ensemble not in ENSEMBLES:
            raise ValueError(f"unknown ensemble {self.ensemble!r}; choose one of {ENSEMBLES}")


@dataclass
class SampleResult:
    """The end point, optionally the whole trajectory (``(steps + 1, B, ...)`` at ``times``), and the NFE."""

    sample: torch.Tensor
    nfe: int
    times: torch.Tensor
    trajectory: torch.Tensor | None = field(default=None, repr=False)
    z0: torch.Tensor | None = field(default=None, repr=False)  # the starting points (set by FlowModel.flow)


def check_steps(steps: object) -> int:
    """A step count must be a positive integer (``2.7`` is refused, not silently rounded)."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"the number of steps must be a positive integer, got {steps!r}")
    return steps


def time_grid(steps: int, t_start: float = 0.0, t_end: float = 1.0) -> torch.Tensor:
    """``steps + 1`` equally spaced times from ``t_start`` to ``t_end`` (float64 for exact spacing)."""
    check_steps(steps)
    if not 0.0 <= t_start < t_end <= 1.0:
        raise ValueError(f"need 0 <= t_start < t_end <= 1 (t = 0 is the source, t = 1 the target), got "
                         f"t_start={t_start}, t_end={t_end}")
    return torch.linspace(t_start, t_end, steps + 1, dtype=torch.float64)


def _check_grid(grid: torch.Tensor | Sequence[float]) -> torch.Tensor:
    grid = torch.as_tensor(grid, dtype=torch.float64).flatten()
    if len(grid) < 2 or not bool((grid[1:] > grid[:-1]).all()) or grid[0] < 0 or grid[-1] > 1:
        raise ValueError(f"a time grid needs at least two strictly increasing times in [0, 1], got {grid.tolist()}")
    return grid


def _times(t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    return t.to(device=z.device, dtype=z.dtype).expand(z.shape[0])


@torch.no_grad()
def integrate(velocity: Velocity, z0: torch.Tensor, grid: torch.Tensor | Sequence[float], method: str = "euler",
              return_trajectory: bool = False) -> SampleResult:
    """Carry ``z0`` (at ``grid[0]``) along ``velocity`` over the time grid with the solver ``method``."""
    if method not in METHODS:
        raise ValueError(f"unknown sampler {method!r}; choose one of {METHODS}")
    grid = _check_grid(grid)
    n = len(grid) - 1
    if method == "euler_public":  # equal steps, evaluations at linspace(t0, t0 + (t_N - t0)(1 - 1e-5), N)
        span = (grid[-1] - grid[0]) * PUBLIC_TIMESCALE
        evals = torch.linspace(float(grid[0]), float(grid[0] + span), n, dtype=torch.float64)
        steps_h = torch.full((n,), float(span) / n, dtype=torch.float64)
    else:
        evals, steps_h = grid[:-1], grid[1:] - grid[:-1]
    z = z0
    traj = [z0] if return_trajectory else None
    for k in range(n):
        h = float(steps_h[k])
        v0 = velocity(z, _times(evals[k], z))
        if method == "heun":
            v1 = velocity(z + h * v0, _times(grid[k + 1], z))  # the velocity at the Euler prediction
            z = z + h * 0.5 * (v0 + v1)
        else:
            z = z + h * v0
        if traj is not None:
            traj.append(z)
    nfe = (2 if method == "heun" else 1) * n
    return SampleResult(z, nfe, grid.float(), torch.stack(traj) if traj is not None else None)


def sample(velocity: Velocity, z0: torch.Tensor, steps: int | None = None, method: str = "euler",
           return_trajectory: bool = False, *, t_start: float = 0.0, t_end: float = 1.0,
           grid: torch.Tensor | Sequence[float] | None = None) -> SampleResult:
    """Integrate from ``t_start`` to ``t_end`` in ``steps`` equal steps, or over an explicit ``grid``."""
    if grid is None:
        if steps is None:
            raise ValueError("give the number of steps or an explicit time grid")
        grid = time_grid(steps, t_start, t_end)
    elif steps is not None and steps != len(grid) - 1:
        raise ValueError(f"steps={steps} disagrees with a grid of {len(grid)} times; give one or the other")
    return integrate(velocity, z0, grid, method, return_trajectory)


def euler(velocity: Velocity, z0: torch.Tensor, steps: int, return_trajectory: bool = False) -> SampleResult:
    """``steps`` equal Euler steps from t = 0 to t = 1: one NFE per step."""
    return sample(velocity, z0, steps, "euler", return_trajectory)


def heun(velocity: Velocity, z0: torch.Tensor, steps: int, return_trajectory: bool = False) -> SampleResult:
    """``steps`` equal Heun steps from t = 0 to t = 1: two NFE per step, second-order accurate."""
    return sample(velocity, z0, steps, "heun", return_trajectory)


__all__ = ["ENSEMBLES", "Velocity", "METHODS", "SamplingConfig", "PUBLIC_TIMESCALE", "SampleResult", "check_steps", "time_grid", "integrate",
           "sample", "euler", "heun"]

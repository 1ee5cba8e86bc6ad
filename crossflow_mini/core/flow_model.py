"""What CrossFlow and the standard flow-matching baseline share: one interface, one guided sampler.

Both models learn a velocity field on the straight path from a source z0 (t = 0) to the target z1 (t = 1). They
differ only in where z0 comes from and how the task's input reaches the network:

=====================  ==========================================  ==========================================
                       CrossFlow (:mod:`.crossflow`)               baseline (:mod:`.baseline`)
=====================  ==========================================  ==========================================
z0                     the source encoder's sample (text, image)    Gaussian noise
the input reaches v    only through z0                              as a condition (cross-attention / concat)
CFG's unconditional    indicator 0 + another sample's target        indicator 0 = the condition dropped
=====================  ==========================================  ==========================================

So both have the same ``loss(source, target, *, t, uncond, perm, generator)``,
``generate(source, *, guidance_scale, steps, method, generator, grid, ...)`` and
``flow(z0, condition, *, guidance_scale, steps, method, t_start, t_end, grid, ...)``: every task compares them
through one code path. Subclasses say how to :meth:`FlowModel.encode` a source into z0, what
:meth:`FlowModel.condition` the network reads, and how to call the network (:meth:`FlowModel.velocity_at`, in the
calling convention of :mod:`.guidance`: ``v(z, t, indicator, **kwargs)``).

``generate`` and ``flow`` run the network in eval mode and put the model back in the mode it was in (a notebook that
samples between training steps keeps training). Their defaults - guidance weight, steps, solver - are the model's
:attr:`FlowModel.sampling` (a :class:`~crossflow_mini.core.sampling.SamplingConfig`): for a loaded checkpoint, the
settings chosen on validation data and stored beside its weights; for a new model, ``SamplingConfig()`` (w = 1,
20 Euler steps). Every call can override any of them.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from .guidance import check_scale, make_guided
from .sampling import SampleResult, SamplingConfig, check_steps, sample
from .source import Source, SourceOutput, batch_size


@dataclass
class FlowLoss:
    """One training batch's loss: ``total`` (what is back-propagated), ``parts`` (the loss terms as tensors:
    ``fm``, and for CrossFlow ``enc`` and ``kl``), ``logs`` (floats for the history) and what the batch drew (``z0``,
    ``t``, ``indicator``), so a notebook or test can replay it by hand."""

    total: torch.Tensor
    parts: dict[str, torch.Tensor] = field(default_factory=dict)
    logs: dict[str, float] = field(default_factory=dict)
    z0: torch.Tensor | None = None
    t: torch.Tensor | None = None
    indicator: torch.Tensor | None = None


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Run ``model`` in eval mode inside the block and restore its mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


class FlowModel(nn.Module):
    """Base class of :class:`~crossflow_mini.core.crossflow.CrossFlowModel` and
    :class:`~crossflow_mini.core.baseline.BaselineModel` (see the module docstring)."""

    cfg: Any
    velocity: nn.Module
    #: The default sampling settings of :meth:`flow` and :meth:`generate` (a checkpoint's ``sampling.json`` when
    #: loaded through the registry or a pipeline). Not a parameter or buffer: the weights do not depend on it.
    sampling: SamplingConfig = SamplingConfig()

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return tuple(self.cfg.velocity.latent_shape)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # -- what subclasses define
    def encode(self, source: Source, generator: torch.Generator | None = None) -> SourceOutput:  # pragma: no cover
        raise NotImplementedError

    def condition(self, source: Source) -> Source | None:  # pragma: no cover
        raise NotImplementedError

    def velocity_at(self, z: torch.Tensor, t: torch.Tensor, indicator: torch.Tensor,
                    condition: Source | None = None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def loss(self, source: Source, target: torch.Tensor, **kw) -> FlowLoss:  # pragma: no cover
        raise NotImplementedError

    def training_only(self) -> list[nn.Module]:
        """Submodules used only by the training loss (left out of the parameters a model samples with)."""
        return []

    # -- sampling, shared
    def _check_condition(self, condition: Source | None, n: int) -> None:
        if condition is not None and batch_size(condition) != n:
            raise ValueError(f"{batch_size(condition)} conditions for {n} starting points: give one of each")

    @torch.no_grad()
    def flow(self, z0: torch.Tensor, condition: Source | None = None, *, guidance_scale: float | None = None,
             steps: int | None = None, method: str | None = None, t_start: float = 0.0, t_end: float = 1.0,
             grid: torch.Tensor | Sequence[float] | None = None, return_trajectory: bool = False) -> SampleResult:
        """The guided ODE from given starting points ``z0`` (at ``t_start``, default the source t = 0) to
        ``t_end`` (default the target t = 1). ``guidance_scale``, ``steps`` and ``method`` default to
        :attr:`sampling`'s; w = 1 is the plain conditional model. ``condition``: what the network reads besides z_t
        (the baseline's text or image; ``None`` for CrossFlow)."""
        scale = check_scale(self.sampling.guidance_scale if guidance_scale is None else guidance_scale)  # warns once
        method = self.sampling.sampler if method is None else method
        if grid is None:
            steps = self.sampling.steps if steps is None else steps
            check_steps(steps)
        if z0.ndim != 4 or tuple(z0.shape[1:]) != self.latent_shape:
            raise ValueError(f"starting points must have shape (B, {', '.join(map(str, self.latent_shape))}), got "
                             f"{tuple(z0.shape)}")
        self._check_condition(condition, z0.shape[0])
        device = self.device
        z0 = z0.to(device)
        kwargs = {} if condition is None else {"condition": condition.to(device)}
        with eval_mode(self):
            res = sample(make_guided(self.velocity_at, scale, **kwargs), z0, None if grid is not None else steps,
                         method, return_trajectory, t_start=t_start, t_end=t_end, grid=grid)
        res.z0 = z0
        return res

    @torch.no_grad()
    def generate(self, source: Source, *, guidance_scale: float | None = None, steps: int | None = None,
                 method: str | None = None, generator: torch.Generator | None = None,
                 grid: torch.Tensor | Sequence[float] | None = None, return_trajectory: bool = False) -> SampleResult:
        """Targets for a batch of sources: z0 from :meth:`encode` (drawn with ``generator``), then :meth:`flow`
        (``guidance_scale``, ``steps``, ``method``: :attr:`sampling`'s unless given)."""
        source = source.to(self.device)
        with eval_mode(self):
            z0 = self.encode(source, generator).z0
        return self.flow(z0, self.condition(source), guidance_scale=guidance_scale, steps=steps, method=method,
                         grid=grid, return_trajectory=return_trajectory)


__all__ = ["FlowLoss", "FlowModel", "eval_mode"]

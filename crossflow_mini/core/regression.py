"""The regression baseline: the same network, trained to predict the target directly (paper Table 5, 6).

For dense tasks the paper compares CrossFlow with a model that regresses the target from the input (depth: a
regression head; super-resolution: "regression" in Table 6, best in PSNR, worst in FID). To compare fairly we use the
very network the flow models use - a :class:`~crossflow_mini.core.unet.UNetVelocity` whose condition channels carry
the input - called at one fixed point (z_t = 0, t = 0, conditional), and train it with an L1 or L2 loss:

    y_hat = f(0, 0, 1_c = 1, cond = x)          L = || y_hat - y ||_1   or   || y_hat - y ||^2

``residual=True`` (input and target of one shape, e.g. super-resolution from the upsampled image) predicts the
correction instead: y_hat = x + f(...). The model has the flow models' ``loss`` / ``generate`` interface, so a task
trains and measures all three methods through one code path; ``generate`` is deterministic (one "step").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .flow_model import FlowLoss, eval_mode
from .guidance import CONDITIONAL
from .sampling import SampleResult, SamplingConfig
from .source import Source
from .unet import UNetVelocity, UNetVelocityConfig

LOSSES = ("l1", "l2")


@dataclass(frozen=True)
class RegressionConfig:
    """``network``: the UNet (``cond_channels`` = the input's channels, ``latent_shape`` = the target's);
    ``loss``: ``"l1"`` or ``"l2"``; ``residual``: predict target - input (shapes must agree)."""

    method: ClassVar[str] = "regression"  # the method's name in tables (tasks.common.method_of)

    network: UNetVelocityConfig = UNetVelocityConfig(cond_channels=3)
    loss: str = "l2"
    residual: bool = False

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"RegressionConfig.loss={self.loss!r} is not one of {LOSSES}")
        if self.network.cond_channels < 1:
            raise ValueError("the regression network reads its input through cond_channels > 0")
        if self.residual and self.network.cond_channels != self.network.latent_shape[0]:
            raise ValueError("residual=True adds the input to the prediction: input and target need the same channels")


class RegressionModel(nn.Module):
    """Input -> target in one forward pass of the flow models' network (see the module docstring)."""

    #: One deterministic evaluation: no guidance, one "step" (kept so every model of a task answers the same way).
    sampling: SamplingConfig = SamplingConfig(guidance_scale=1.0, steps=1)

    def __init__(self, cfg: RegressionConfig = RegressionConfig()):
        super().__init__()
        self.cfg = cfg
        self.velocity = UNetVelocity(cfg.network)  # the same module name as the flow models' network

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return tuple(self.cfg.network.latent_shape)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def predict(self, source: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(source) or source.ndim != 4:
            raise ValueError(f"the regression model reads image batches (B, C, H, W), got {type(source).__name__}")
        b = source.shape[0]
        zeros = source.new_zeros((b, *self.latent_shape))
        t = source.new_zeros(b)
        indicator = torch.full((b,), CONDITIONAL, dtype=torch.long, device=source.device)
        out = self.velocity(zeros, t, indicator, source)
        return source + out if self.cfg.residual else out

    def loss(self, source: torch.Tensor, target: torch.Tensor, **_: object) -> FlowLoss:
        """L1 or L2 between the prediction and the target (the flow models' keyword arguments are ignored)."""
        pred = self.predict(source)
        if pred.shape != target.shape:
            raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        loss = F.l1_loss(pred, target) if self.cfg.loss == "l1" else F.mse_loss(pred, target)
        return FlowLoss(loss, {self.cfg.loss: loss}, {self.cfg.loss: float(loss.detach())})

    @torch.no_grad()
    def generate(self, source: Source, **_: object) -> SampleResult:
        """The prediction, as a one-evaluation "sample" (``guidance_scale``, ``steps``, ``generator`` are ignored)."""
        source = source.to(self.device)
        with eval_mode(self):
            pred = self.predict(source)
        return SampleResult(pred, 1, torch.tensor([0.0, 1.0]), z0=None)

    def training_only(self) -> list[nn.Module]:
        return []


__all__ = ["RegressionConfig", "RegressionModel", "LOSSES"]

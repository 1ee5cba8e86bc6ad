"""The depth pipeline: RGB image in, depth map out (paper Sec. 5.5)::

    pipe = DepthPipeline.from_pretrained("depth_crossflow")
    out = pipe(image, generator=torch.Generator().manual_seed(0))
    out.depth                       # metres, (B, H, W)

Serves the three depth checkpoints: ``depth_crossflow`` (Image VE -> z0 -> guided ODE, no condition input),
``depth_baseline`` (noise -> ODE reading the concatenated image) and ``depth_regression`` (one forward pass).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ...core.build import build_model
from ...datasets.depthworld import target_to_depth
from ..common import is_flow
from ..pipeline import Component, FlowPipeline, PipelineOutput, check_output_type, image_tensor, to_output
from .evaluate import combine
from .recipe import RGB_CHANNELS, DepthRecipe


@dataclass
class DepthPipelineOutput(PipelineOutput):
    """:class:`~crossflow_mini.tasks.pipeline.PipelineOutput` of :class:`DepthPipeline`. ``images``: the normalised
    log depth in [0, 1] (0 = 0.5 m, 1 = 20 m; diffusers' output types: PIL grey images, ``(B, H, W, 1)`` array,
    ``(B, 1, H, W)`` tensor, or the targets in [-1, 1] for ``"latent"``); ``depth``: metres, ``(B, H, W)`` float32
    array (``"np"``, ``"pil"``) or ``(B, 1, H, W)`` tensor (``"pt"``, ``"latent"``); ``latents``: the predicted
    targets; ``z0``: where the (last) flow started (None for the regression model); ``nfe``: network evaluations per
    image, all samples counted."""

    depth: Any = None


class DepthPipeline(FlowPipeline):
    """RGB image -> depth map (see the module docstring).

    Inputs (:meth:`preprocess`): a tensor ``(3, H, W)`` / ``(B, 3, H, W)`` in [-1, 1] (the project's convention), a
    PIL image or a list of them, or a numpy array ``(H, W, 3)`` / ``(B, H, W, 3)`` (uint8 0..255, or float in [0, 1]
    as diffusers' ``"np"`` images). An image of another size is cut to its centre square and area-averaged to the
    model's size (as :func:`crossflow_mini.datasets.stereo.model_input` does). ``num_samples`` flows are combined
    in log depth by the checkpoint's ``sampling.ensemble`` (mean or median; default count: its
    ``sampling.n_samples``, both chosen on validation images)."""

    TASK = "depth-estimation"
    EXAMPLE = "depth_crossflow"
    COMPONENTS = {"flow": Component(DepthRecipe, lambda r: build_model(r.model))}

    def __init__(self, flow: torch.nn.Module, recipe: DepthRecipe, device: str | torch.device | None = None):
        if not isinstance(recipe, DepthRecipe):
            raise TypeError(f"DepthPipeline needs a DepthRecipe, got {type(recipe).__name__}")
        super().__init__(flow, device)
        self.recipe = recipe

    @property
    def image_size(self) -> int:
        return self.recipe.data.image_size

    @property
    def is_flow(self) -> bool:
        return is_flow(self.recipe.model)

    def preprocess(self, image: Any) -> torch.Tensor:
        """Any accepted image input (see the class docstring) -> float32 ``(B, 3, S, S)`` in [-1, 1] on the CPU."""
        return image_tensor(image, self.image_size, RGB_CHANNELS)

    @torch.no_grad()
    def __call__(self, image: Any, num_inference_steps: int | None = None, guidance_scale: float | None = None,
                 generator: torch.Generator | None = None, num_samples: int | None = None, output_type: str = "np",
                 return_dict: bool = True, sampler: str | None = None, return_trajectory: bool = False,
                 ensemble: str | None = None) -> Any:
        """Depth maps for RGB images. Flow models: ``num_samples`` flows from z0 (CrossFlow: Image VE samples; the
        baseline: noise), each drawn with ``generator``, combined in log depth by ``ensemble`` ("mean" or "median";
        default: the checkpoint's); the regression model predicts once.
        ``output_type`` as in diffusers ("np" by default, as Marigold's pipeline); the metres are in ``.depth``."""
        check_output_type(output_type)
        self._check_call(num_inference_steps, guidance_scale, generator)
        n = (self.sampling.n_samples if self.is_flow else 1) if num_samples is None else num_samples
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
        x = self.preprocess(image).to(self.device)
        if not self.is_flow:
            target, z0, nfe, traj = self.model.predict(x), None, 1, None
        else:
            draws, nfe, traj = [], 0, None
            for _ in range(n):
                z0 = self.model.encode(x, generator).z0
                res = self._run(z0, self.model.condition(x), guidance_scale, num_inference_steps, sampler,
                                return_trajectory)
                draws.append(res.sample)
                nfe += res.nfe
                traj = res.trajectory
            target = combine(torch.stack(draws), self.sampling.ensemble if ensemble is None else ensemble)
        depth = target_to_depth(target).cpu()
        images = target if output_type == "latent" else to_output(target, output_type)
        if output_type in ("np", "pil"):
            depth = depth[:, 0].numpy()
        out = DepthPipelineOutput(images, target, z0, nfe, traj, depth=depth)
        return out if return_dict else (images,)


__all__ = ["DepthPipeline", "DepthPipelineOutput"]

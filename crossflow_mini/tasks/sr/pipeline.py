"""The super-resolution pipeline: low-resolution image in, 4x high-resolution image out (paper Sec. 5.6)::

    pipe = SuperResolutionPipeline.from_pretrained("sr_crossflow")
    out = pipe(low_res, generator=torch.Generator().manual_seed(0))
    out.images                       # PIL images, 4x larger (diffusers' default output type)
    out.upsampled                    # the bicubic upsampling the flow started from, in [-1, 1]

Serves the three super-resolution checkpoints: ``sr_crossflow`` (the bicubic upsampling IS the source: z0 -> guided
ODE, no condition input), ``sr_baseline`` (noise -> ODE reading the concatenated upsampled image) and
``sr_regression`` (one forward pass).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ...core.build import build_model
from ...core.regression import RegressionModel
from ...datasets.superres import upsample as upsample_bicubic
from ..pipeline import Component, FlowPipeline, PipelineOutput, check_output_type, image_batch, to_output
from .recipe import SRRecipe


@dataclass
class SuperResolutionPipelineOutput(PipelineOutput):
    """:class:`~crossflow_mini.tasks.pipeline.PipelineOutput` of :class:`SuperResolutionPipeline`: ``latents`` are
    the high-resolution images in [-1, 1] ``(B, C, H, W)`` (pixel space: the "latent" is the image), ``z0`` where the
    flow started (CrossFlow: the upsampling, plus its source noise; the baseline: noise; regression: the upsampling),
    ``upsampled`` the bicubic upsampling of the input in [-1, 1]."""

    upsampled: torch.Tensor | None = None


class SuperResolutionPipeline(FlowPipeline):
    """Low-resolution image -> 4x high-resolution image (see the module docstring).

    Inputs (:meth:`preprocess`): a tensor ``(C, h, w)`` / ``(B, C, h, w)`` in [-1, 1] (the project's convention), a PIL
    image or a list of them, or a numpy array ``(h, w, C)`` / ``(B, h, w, C)`` (uint8 0..255, or float in [0, 1] as
    diffusers' ``"np"`` images). The networks work on patches of the recipe's size (``lr_size`` -> ``hr_size``); a
    larger input whose sides are multiples of ``lr_size`` is upsampled whole (so the source is the image's own bicubic
    upsampling) and then super-resolved tile by tile."""

    TASK = "super-resolution"
    EXAMPLE = "sr_crossflow"
    COMPONENTS = {"flow": Component(SRRecipe, lambda r: build_model(r.model))}

    def __init__(self, flow: torch.nn.Module, recipe: SRRecipe, device: str | torch.device | None = None):
        if not isinstance(recipe, SRRecipe):
            raise TypeError(f"SuperResolutionPipeline needs an SRRecipe, got {type(recipe).__name__}")
        super().__init__(flow, device)
        self.is_regression = isinstance(flow, RegressionModel)
        self.recipe = recipe

    @property
    def scale_factor(self) -> int:
        return self.recipe.data.scale

    @property
    def lr_size(self) -> int:
        return self.recipe.data.lr_size

    @property
    def hr_size(self) -> int:
        return self.recipe.data.hr_size

    @property
    def channels(self) -> int:
        return self.recipe.data.channels

    # ------------------------------------------------------------------------------------------- input
    def preprocess(self, image: Any) -> torch.Tensor:
        """Any accepted low-resolution input (see the class docstring) -> float32 ``(B, C, h, w)`` in [-1, 1] on the
        CPU, with h and w multiples of :attr:`lr_size`."""
        x = image_batch(image, self.channels)
        h, w = x.shape[-2:]
        if h < self.lr_size or w < self.lr_size or h % self.lr_size or w % self.lr_size:
            raise ValueError(f"the low-resolution image is {h} x {w}; the model super-resolves {self.lr_size} x "
                             f"{self.lr_size} tiles, so both sides must be multiples of {self.lr_size} (crop it)")
        return x.clamp(-1.0, 1.0)

    def upsample(self, low_res: torch.Tensor) -> torch.Tensor:
        """The source: the bicubic upsampling of ``low_res (B, C, h, w)`` in [-1, 1] by :attr:`scale_factor`."""
        h, w = low_res.shape[-2:]
        return upsample_bicubic(low_res, (h * self.scale_factor, w * self.scale_factor))

    def _tiles(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> ``(B * nh * nw, C, s, s)`` non-overlapping tiles, row by row (s = :attr:`hr_size`)."""
        b, c, h, w = x.shape
        s = self.hr_size
        return x.reshape(b, c, h // s, s, w // s, s).permute(0, 2, 4, 1, 3, 5).reshape(-1, c, s, s)

    def _untile(self, tiles: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        """The inverse of :meth:`_tiles` for images of ``shape`` ``(B, C, H, W)`` (leading dims kept)."""
        b, c, h, w = shape
        s = self.hr_size
        lead = tiles.shape[:-4]
        x = tiles.reshape(*lead, b, h // s, w // s, c, s, s)
        n = len(lead)
        x = x.permute(*range(n), n, n + 3, n + 1, n + 4, n + 2, n + 5)
        return x.reshape(*lead, b, c, h, w)

    # ------------------------------------------------------------------------------------- generating
    @torch.no_grad()
    def __call__(self, image: Any, num_inference_steps: int | None = None, guidance_scale: float | None = None,
                 generator: torch.Generator | None = None, output_type: str = "pil", return_dict: bool = True,
                 sampler: str | None = None, return_trajectory: bool = False) -> Any:
        """High-resolution images for low-resolution ones. CrossFlow: z0 = the source encoder's sample of the bicubic
        upsampling (drawn with ``generator`` where the source has noise); the baseline: z0 ~ N(0, I) with the
        upsampling as its condition; regression: one forward pass (``num_inference_steps`` and ``guidance_scale``
        unused). ``output_type`` as in diffusers ("pt" / "np" in [0, 1]; "latent": the [-1, 1] tensor, here the
        image itself)."""
        check_output_type(output_type)
        self._check_call(num_inference_steps, guidance_scale, generator)
        up = self.upsample(self.preprocess(image))
        tiles = self._tiles(up).to(self.device)
        if self.is_regression:
            hr, z0, nfe, traj = self.model.predict(tiles), tiles, 1, None
        else:
            z0 = self.model.encode(tiles, generator).z0
            res = self._run(z0, self.model.condition(tiles), guidance_scale, num_inference_steps, sampler,
                            return_trajectory)
            hr, nfe, traj = res.sample, res.nfe, res.trajectory
        hr = self._untile(hr.clamp(-1, 1).cpu(), up.shape)
        z0 = self._untile(z0.cpu(), up.shape)
        traj = None if traj is None else self._untile(traj.cpu(), up.shape)
        images = hr if output_type == "latent" else to_output(hr, output_type)
        out = SuperResolutionPipelineOutput(images, hr, z0, nfe, traj, upsampled=up)
        return out if return_dict else (images,)


__all__ = ["SuperResolutionPipeline", "SuperResolutionPipelineOutput"]

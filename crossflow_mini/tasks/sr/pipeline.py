"""The super-resolution pipeline: low-resolution image in, 4x high-resolution image out (paper Sec. 5.6)::

    pipe = SuperResolutionPipeline.from_pretrained("sr_crossflow")
    out = pipe(low_res, generator=torch.Generator().manual_seed(0))
    out.images                       # PIL images, 4x larger (diffusers' default output type)
    out.upsampled                    # the bicubic upsampling the flow started from, in [-1, 1]

Serves the three super-resolution checkpoints: ``sr_crossflow`` (the bicubic upsampling IS the source: z0 -> guided
ODE, no condition input), ``sr_baseline`` (noise -> ODE reading the concatenated upsampled image) and
``sr_regression`` (one forward pass).

The networks work on tiles of the recipe's size (32 x 32 high-resolution pixels). An image of any size (at least one
low-resolution tile on a side) is upsampled whole - so the source of every tile is the image's own bicubic
upsampling - and super-resolved in overlapping tiles whose outputs are blended with a smooth window: no seams at tile
borders. Memory is bounded by the tiles processed at once (``tile_batch``) plus the output image itself; an image whose
output would exceed ``max_output_pixels`` is refused before any work starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from ...core.build import build_model
from ...core.regression import RegressionModel
from ...datasets.superres import upsample as upsample_bicubic
from ...utils import progress
from ..pipeline import Component, FlowPipeline, PipelineOutput, check_output_type, image_batch, to_output
from .recipe import SRRecipe


@dataclass
class SuperResolutionPipelineOutput(PipelineOutput):
    """:class:`~crossflow_mini.tasks.pipeline.PipelineOutput` of :class:`SuperResolutionPipeline`: ``latents`` are
    the high-resolution images in [-1, 1] ``(B, C, H, W)`` (pixel space: the "latent" is the image), ``z0`` where the
    flow started (CrossFlow: the upsampling, plus its source noise; the baseline: noise; regression: the upsampling),
    ``upsampled`` the bicubic upsampling of the input in [-1, 1]."""

    upsampled: torch.Tensor | None = None


#: The largest output (in megapixels) the pipeline builds by default: the upsampled source, the blended output and
#: its weights are each 12 bytes a pixel, so 16 MP is about 0.6 GB. Larger outputs are refused before any work.
MAX_OUTPUT_MEGAPIXELS = 16.0


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Start positions of tiles of size ``tile`` covering ``[0, length)`` with at most ``stride`` between starts; the
    last tile ends exactly at ``length``."""
    if length <= tile:
        return [0]
    n = math.ceil((length - tile) / stride) + 1
    return sorted({round(i * (length - tile) / (n - 1)) for i in range(n)})


def _ramp(tile: int, overlap: int, start: bool, end: bool) -> torch.Tensor:
    ramp = torch.ones(tile)
    if overlap > 0:
        x = (torch.arange(overlap, dtype=torch.float32) + 0.5) / overlap
        edge = 0.5 - 0.5 * torch.cos(math.pi * x)  # a raised cosine: edge[k] + edge[overlap - 1 - k] = 1
        if start:
            ramp[:overlap] = edge
        if end:
            ramp[tile - overlap:] = edge.flip(0)
    return ramp


def blend_window(tile: int, overlap: int, top: bool = True, bottom: bool = True, left: bool = True,
                 right: bool = True) -> torch.Tensor:
    """``(tile, tile)`` weights that fall smoothly to nearly zero over ``overlap`` pixels at each border that meets a
    neighbouring tile (``top``, ...), and are 1 elsewhere: overlapping tiles fade into each other instead of meeting
    at a seam, and a tile alone is kept exactly as it is."""
    return _ramp(tile, overlap, top, bottom)[:, None] * _ramp(tile, overlap, left, right)[None, :]


class SuperResolutionPipeline(FlowPipeline):
    """Low-resolution image -> 4x high-resolution image (see the module docstring).

    Inputs (:meth:`preprocess`): a tensor ``(C, h, w)`` / ``(B, C, h, w)`` in [-1, 1] (the project's convention), a PIL
    image or a list of them, or a numpy array ``(h, w, C)`` / ``(B, h, w, C)`` (uint8 0..255, or float in [0, 1] as
    diffusers' ``"np"`` images), of any size of at least :attr:`lr_size` on a side. ``overlap``: high-resolution
    pixels shared by neighbouring tiles (0: no blending, for a study of the seams)."""

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
        CPU, at least :attr:`lr_size` on each side."""
        x = image_batch(image, self.channels)
        h, w = x.shape[-2:]
        if h < self.lr_size or w < self.lr_size:
            raise ValueError(f"the low-resolution image is {h} x {w}; the model super-resolves {self.lr_size} x "
                             f"{self.lr_size} tiles, so each side must be at least {self.lr_size} pixels")
        return x.clamp(-1.0, 1.0)

    def upsample(self, low_res: torch.Tensor) -> torch.Tensor:
        """The source: the bicubic upsampling of ``low_res (B, C, h, w)`` in [-1, 1] by :attr:`scale_factor`."""
        h, w = low_res.shape[-2:]
        return upsample_bicubic(low_res, (h * self.scale_factor, w * self.scale_factor))

    def check_size(self, shape: tuple[int, ...], max_output_pixels: float | None = None,
                   trajectory_steps: int = 0) -> None:
        """Refuse, before any work, an output larger than ``max_output_pixels`` (default
        :data:`MAX_OUTPUT_MEGAPIXELS` million; a trajectory multiplies the images kept by its steps)."""
        b, _, h, w = shape
        pixels = b * h * w * self.scale_factor ** 2 * (1 + trajectory_steps)
        limit = MAX_OUTPUT_MEGAPIXELS * 1e6 if max_output_pixels is None else max_output_pixels
        if pixels > limit:
            raise ValueError(
                f"a {h} x {w} input makes a {h * self.scale_factor} x {w * self.scale_factor} output"
                f"{f' x {b} images' if b > 1 else ''}{f' x {trajectory_steps + 1} trajectory steps' if trajectory_steps else ''}"
                f" = {pixels / 1e6:.0f} megapixels (about {12 * pixels / 1e9:.1f} GB of working memory), over the "
                f"limit of {limit / 1e6:.0f}; crop the image, or pass a larger max_output_pixels if this machine has "
                f"the memory")

    # ------------------------------------------------------------------------------------- generating
    @torch.no_grad()
    def __call__(self, image: Any, num_inference_steps: int | None = None, guidance_scale: float | None = None,
                 generator: torch.Generator | None = None, output_type: str = "pil", return_dict: bool = True,
                 sampler: str | None = None, return_trajectory: bool = False, overlap: int | None = None,
                 tile_batch: int = 64, max_output_pixels: float | None = None) -> Any:
        """High-resolution images for low-resolution ones. CrossFlow: z0 = the source encoder's sample of the bicubic
        upsampling (drawn with ``generator`` where the source has noise); the baseline: z0 ~ N(0, I) with the
        upsampling as its condition; regression: one forward pass (``num_inference_steps`` and ``guidance_scale``
        unused). Tiles of :attr:`hr_size` overlap by ``overlap`` pixels (default: a quarter tile) and are blended;
        ``tile_batch`` tiles run at once. ``output_type`` as in diffusers ("pt" / "np" in [0, 1]; "latent": the
        [-1, 1] tensor, here the image itself)."""
        check_output_type(output_type)
        self._check_call(num_inference_steps, guidance_scale, generator)
        if isinstance(tile_batch, bool) or not isinstance(tile_batch, int) or tile_batch < 1:
            raise ValueError(f"tile_batch must be a positive integer, got {tile_batch!r}")
        s = self.hr_size
        overlap = s // 4 if overlap is None else overlap
        if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < s:
            raise ValueError(f"overlap must be an integer in [0, {s}), got {overlap!r}")
        low = self.preprocess(image)
        steps = 0
        if return_trajectory and not self.is_regression:
            steps = self.sampling.steps if num_inference_steps is None else int(num_inference_steps)
        self.check_size(tuple(low.shape), max_output_pixels, steps)
        up = self.upsample(low)
        b, c, h, w = up.shape
        rows, cols = tile_starts(h, s, s - overlap), tile_starts(w, s, s - overlap)
        boxes = [(i, y, x) for i in range(b) for y in rows for x in cols]
        windows = {(y, x): blend_window(s, overlap, y > 0, y + s < h, x > 0, x + s < w) for y in rows for x in cols}
        hr_sum = torch.zeros_like(up)
        z0_sum = torch.zeros_like(up)
        weight = torch.zeros(b, 1, h, w)
        traj_sum = None
        nfe = 1
        chunks = range(0, len(boxes), tile_batch)
        for k in progress(chunks, desc="tiles", total=len(chunks), disable=len(chunks) < 4, leave=False):
            batch = boxes[k:k + tile_batch]
            tiles = torch.stack([up[i, :, y:y + s, x:x + s] for i, y, x in batch]).to(self.device)
            if self.is_regression:
                hr, z0, traj = self.model.predict(tiles), tiles, None
            else:
                z0 = self.model.encode(tiles, generator).z0
                res = self._run(z0, self.model.condition(tiles), guidance_scale, num_inference_steps, sampler,
                                return_trajectory)
                hr, nfe, traj = res.sample, res.nfe, res.trajectory
            hr, z0 = hr.clamp(-1, 1).cpu(), z0.cpu()
            if traj is not None and traj_sum is None:
                traj_sum = torch.zeros(traj.shape[0], *up.shape)
            for j, (i, y, x) in enumerate(batch):
                window = windows[y, x]
                hr_sum[i, :, y:y + s, x:x + s] += window * hr[j]
                z0_sum[i, :, y:y + s, x:x + s] += window * z0[j]
                weight[i, :, y:y + s, x:x + s] += window
                if traj is not None:
                    traj_sum[:, i, :, y:y + s, x:x + s] += window * traj[:, j].cpu()
        hr = hr_sum / weight
        z0 = z0_sum / weight
        traj = None if traj_sum is None else traj_sum / weight
        images = hr if output_type == "latent" else to_output(hr, output_type)
        out = SuperResolutionPipelineOutput(images, hr, z0, nfe, traj, upsampled=up)
        return out if return_dict else (images,)


__all__ = ["SuperResolutionPipeline", "SuperResolutionPipelineOutput", "MAX_OUTPUT_MEGAPIXELS", "tile_starts",
           "blend_window"]

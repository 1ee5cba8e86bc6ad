"""The captioning pipeline: image in, caption out (paper Sec. 5.4)::

    pipe = CaptioningPipeline.from_pretrained("caption_crossflow")
    out = pipe(images, generator=torch.Generator().manual_seed(0))
    out.captions                        # ["a large red circle on the left", ...]

Serves the two flow captioners: ``caption_crossflow`` (Image VE -> z0 -> guided ODE with no cross-attention -> text
latent) and ``caption_baseline`` (noise -> guided ODE reading the image's patches through cross-attention -> text
latent); both decoded by the frozen text decoder of ``text_autoencoder_shapes``. The direct and autoregressive
captioners have no flow: caption with them through :func:`crossflow_mini.tasks.captioning.evaluate.captions_of`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ...core.build import build_model
from ...core.flow_model import FlowModel
from ...nn.autoencoder import ImageAutoencoder
from ...nn.text_autoencoder import TextAutoencoder
from ..autoencoder import AutoencoderRecipe
from ..pipeline import Component, FlowPipeline, image_tensor
from .data import flow_source
from .recipe import CaptionRecipe, TextAutoencoderRecipe, caption_vocab

CAPTION_OUTPUT_TYPES = ("text", "ids", "latent")


@dataclass
class CaptioningPipelineOutput:
    """What :class:`CaptioningPipeline` returns. ``captions``: per ``output_type`` - a list of strings (``"text"``,
    the default), the word ids ``(B, max_len)`` (``"ids"``), or the text latents (``"latent"``); ``latents``: the
    text latents the flow reached; ``z0``: where it started (CrossFlow: the Image VE's sample; the baseline: noise);
    ``nfe``: network evaluations per image (a guided step counts once); ``trajectory``: ``(steps + 1, B, *latent)``
    when asked for (decode any step with :meth:`CaptioningPipeline.decode_text`)."""

    captions: Any
    latents: torch.Tensor
    z0: torch.Tensor
    nfe: int
    trajectory: torch.Tensor | None = None


class CaptioningPipeline(FlowPipeline):
    """Image -> caption (see the module docstring). Images (:func:`~crossflow_mini.tasks.pipeline.image_tensor`):
    tensors in [-1, 1], PIL images, numpy arrays (uint8, or float in [0, 1] - the text-to-image pipeline's
    ``output_type="np"`` images go straight in)."""

    TASK = "image-to-text"
    EXAMPLE = "caption_crossflow"
    COMPONENTS = {"flow": Component(CaptionRecipe, lambda r: build_model(r.model)),
                  "autoencoder": Component(AutoencoderRecipe, lambda r: ImageAutoencoder(r.model)),
                  "text_autoencoder": Component(TextAutoencoderRecipe, lambda r: TextAutoencoder(r.model))}

    def __init__(self, flow: FlowModel, autoencoder: ImageAutoencoder, text_autoencoder: TextAutoencoder,
                 recipe: CaptionRecipe, device: str | torch.device | None = None):
        if not isinstance(recipe, CaptionRecipe) or not recipe.is_flow:
            raise ValueError(f"the captioning pipeline serves the flow captioners (a CaptionRecipe with a CrossFlowConfig "
                             f"or a BaselineConfig)")
        if tuple(autoencoder.latent_shape) != tuple(recipe.autoencoder.model.latent_shape):
            raise ValueError(f"the autoencoder's latents {autoencoder.latent_shape} do not match the recipe's "
                             f"{recipe.autoencoder.model.latent_shape}")
        if tuple(text_autoencoder.latent_shape) != tuple(flow.latent_shape):
            raise ValueError(f"the text autoencoder's latents {text_autoencoder.latent_shape} are not the flow's "
                             f"targets {flow.latent_shape}")
        super().__init__(flow, device)
        self.autoencoder = autoencoder.to(self.device).eval()
        self.text_autoencoder = text_autoencoder.to(self.device).eval()
        self.recipe = recipe
        self.vocab = caption_vocab()

    @property
    def autoencoder_recipe(self) -> AutoencoderRecipe:
        return self.recipe.autoencoder

    @property
    def text_autoencoder_recipe(self) -> TextAutoencoderRecipe:
        return self.recipe.text_autoencoder

    # -------------------------------------------------------------------------------------- the two ends
    @torch.no_grad()
    def encode_images(self, image: Any) -> torch.Tensor:
        """Images (any input :func:`~crossflow_mini.tasks.pipeline.image_tensor` accepts) -> image latents
        ``(B, 4, 8, 8)``: the autoencoder's scaled posterior mean, what the captioners read."""
        x = image_tensor(image, self.recipe.autoencoder.model.image_size, self.recipe.autoencoder.model.in_channels)
        return self.autoencoder.encode(x.to(self.device))

    @torch.no_grad()
    def decode_text(self, latents: torch.Tensor) -> list[str]:
        """Text latents ``(B, *latent_shape)`` -> captions (the frozen text decoder, all words at once)."""
        return self.vocab.decode(self.text_autoencoder.decode(latents.to(self.device)).cpu())

    # -------------------------------------------------------------------------------------- captioning
    @torch.no_grad()
    def __call__(self, image: Any, num_inference_steps: int | None = None, guidance_scale: float | None = None,
                 generator: torch.Generator | None = None, output_type: str = "text", return_dict: bool = True,
                 sampler: str | None = None, return_trajectory: bool = False) -> Any:
        """Captions for images. CrossFlow: z0 ~ Image VE(image latent) (drawn with ``generator``); the baseline:
        z0 ~ N(0, I); then the guided ODE to a text latent and the decoder. Defaults: :attr:`sampling` (the
        checkpoint's, chosen on validation images). ``output_type``: ``"text"`` (strings), ``"ids"`` or ``"latent"``."""
        if output_type not in CAPTION_OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {CAPTION_OUTPUT_TYPES}, got {output_type!r}")
        self._check_call(num_inference_steps, guidance_scale, generator)
        latents = self.encode_images(image)
        source = flow_source(self.recipe, latents)
        z0 = self.model.encode(source, generator).z0
        res = self._run(z0, self.model.condition(source), guidance_scale, num_inference_steps, sampler,
                        return_trajectory)
        z1 = res.sample
        if output_type == "latent":
            captions: Any = z1
        else:
            ids = self.text_autoencoder.decode(z1).cpu()
            captions = ids if output_type == "ids" else self.vocab.decode(ids)
        out = CaptioningPipelineOutput(captions, z1, res.z0, res.nfe, res.trajectory)
        return out if return_dict else (captions,)


__all__ = ["CaptioningPipeline", "CaptioningPipelineOutput", "CAPTION_OUTPUT_TYPES"]

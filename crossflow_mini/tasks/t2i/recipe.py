"""Text to image: what determines each checkpoint, and the shipped values, written out.

A *recipe* is everything a checkpoint's weights depend on: the model, the training run, the data, the frozen text
encoder and the autoencoder whose latents it learns (the autoencoder's own recipe is part of it, so a new
autoencoder invalidates the flow model). Its hash names the checkpoint. ``sampling`` (guidance weight, steps,
solver) is part of the recipe but not of its hash: no weight depends on it, and the checkpoint stores the values
chosen on validation data beside its weights (``sampling.json``).

The shipped recipes, one constant each:

=======================  ==========================================================================================
``T2I_SHAPES``           CrossFlow on ShapesWorld, the shipped design: the Text VE with patch queries (one learned
                         query per latent patch reads the caption, so the source is laid out like the image), its
                         mean pulled towards the image latent (``align_weight``), KL weight 1e-3
``T2I_SHAPES_FLATTEN``   the same with the paper's Text VE head (flatten + linear, the public code's KL): the
                         reference row of the comparison and the base of the variants and ablation studies
``T2I_BASELINE_SHAPES``  standard flow matching (noise source, cross-attention to the tokens) at CrossFlow's size
``T2I_FASHION``          CrossFlow on Fashion-MNIST (the paper's head: its prompts name one class, nothing to compose)
``T2I_BASELINE_FASHION`` the baseline on Fashion-MNIST
``CLASSIFIER_FASHION``   the Fashion-MNIST classifier that referees the Fashion models
``T2I_FOLDER``           CrossFlow on your own image-caption folder with local pretrained parts (laptop size);
                         ``T2I_FOLDER_PAPER`` is the paper's size for a GPU (docs/SCALING_UP.md)
=======================  ==========================================================================================

To change a value without editing this file, override it by dot-path: ``python -m crossflow_mini train t2i_shapes
--set source.kl_weight=1e-2 --name my_run`` or ``registry.recipe("t2i_shapes").with_overrides(...)``
(:func:`crossflow_mini.configs.with_overrides`). Why each shipped value is what it is: docs/MEASUREMENTS.md.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from ...configs import unhashed_field
from ...core.baseline import BaselineConfig
from ...core.crossflow import CrossFlowConfig
from ...core.guidance import GuidanceConfig
from ...core.sampling import SamplingConfig
from ...core.source import TowerConfig
from ...core.text_ve import TextVEConfig
from ...core.transformer import CrossAttentionTransformerConfig, VelocityTransformerConfig
from ...datasets.captioned import CaptionedImagesConfig
from ...datasets.fashion import FashionDataConfig
from ...datasets.shapes import ShapesDataConfig
from ...eval.classifier import ClassifierConfig
from ...nn.text_encoder import TextEncoderConfig, text_model_info, text_ve_for
from ...training import TrainConfig
from ..autoencoder import AUTOENCODER_FASHION, AUTOENCODER_SHAPES, AutoencoderRecipe

#: ShapesWorld captions are at most 15 MiniLM tokens long (CLS and SEP included): 16 token slots lose nothing.
T2I_TOKENS = 16


@dataclass(frozen=True)
class T2IRecipe:
    """Everything that determines a text-to-image checkpoint (CrossFlow or the baseline): the model, the training
    run, the data (the autoencoder's data set: ``autoencoder.dataset`` is ``"shapes"`` or ``"fashion"``), the frozen
    text encoder and the autoencoder. ``sampling``: the default sampling settings (not hashed; the guidance weight is
    chosen on validation prompts when the checkpoint is trained)."""

    model: CrossFlowConfig | BaselineConfig = CrossFlowConfig()
    train: TrainConfig = TrainConfig()
    shapes: ShapesDataConfig = ShapesDataConfig()
    text: TextEncoderConfig = TextEncoderConfig()
    autoencoder: AutoencoderRecipe = AutoencoderRecipe()
    sampling: SamplingConfig = unhashed_field(SamplingConfig(steps=20))

    def __post_init__(self) -> None:
        source = getattr(self.model, "source", None)  # the baseline has no source encoder
        if isinstance(source, TextVEConfig) and self.text.max_tokens != source.max_tokens:
            raise ValueError(f"the text encoder keeps {self.text.max_tokens} tokens but the Text VE expects "
                             f"{source.max_tokens}: set both max_tokens to the same value")
        if getattr(source, "hard_negatives", 0) and (self.autoencoder.dataset != "shapes" or source.hard_negatives > 1):
            raise ValueError("hard negatives exist for ShapesWorld only, one per two-object scene (the swapped scene, "
                             "datasets.shapes.swapped_pairs): set TextVEConfig.hard_negatives to 0 or 1")
        if tuple(self.autoencoder.model.latent_shape) != tuple(self.model.velocity.latent_shape):
            raise ValueError(f"the autoencoder makes latents of shape {self.autoencoder.model.latent_shape} but "
                             f"the flow model expects {self.model.velocity.latent_shape}")

    @property
    def dataset(self) -> str:
        return self.autoencoder.dataset

    def with_overrides(self, overrides: dict | None = None, **kwargs) -> "T2IRecipe":
        """This recipe with settings changed by dot-path (:func:`crossflow_mini.configs.with_overrides`)."""
        from ...configs import with_overrides

        return with_overrides(self, overrides, **kwargs)


@dataclass(frozen=True)
class ClassifierRecipe:
    """Everything that determines the Fashion-MNIST classifier checkpoint."""

    model: ClassifierConfig = ClassifierConfig()
    train: TrainConfig = TrainConfig()
    fashion: FashionDataConfig = FashionDataConfig()


# ------------------------------------------------------------------------------------------------ shipped recipes
#: The training run of the ShapesWorld models: 9,000 steps of 128 pairs, AdamW 1e-3 after 200 warm-up steps,
#: EMA weights (decay 0.995) for sampling.
T2I_TRAIN = TrainConfig(steps=9000, batch_size=128, lr=1e-3, warmup_steps=200, ema_decay=0.995, ckpt_every=250,
                        log_every=25)
#: Sampling: 20 Euler steps; the guidance weight is chosen on validation prompts when a model is trained.
T2I_SAMPLING = SamplingConfig(guidance_scale=1.0, steps=20, sampler="euler")

#: CrossFlow with the paper's Text VE as its public code builds it: two transformer layers of width 128 over the 16
#: MiniLM tokens, flatten + one linear map to (mu, logvar) of the 4 x 8 x 8 image latent, the contrastive loss
#: against a small image tower, the code's KL form with its weight (kl_weight None: the form's own, 1e-2 for "code";
#: the variants study switches the form and keeps that rule); a velocity transformer of width 128, depth 4 over 2 x 2
#: latent patches; CFG through the indicator (10 % unconditional, targets rolled); t uniform.
T2I_SHAPES_FLATTEN = T2IRecipe(
    model=CrossFlowConfig(
        source=TextVEConfig(width=128, depth=2, max_tokens=T2I_TOKENS, head="flatten", kl_form="code",
                            kl_weight=None, align_weight=0.0),
        velocity=VelocityTransformerConfig(width=128, depth=4, heads=4),
        guidance=GuidanceConfig(p_uncond=0.1, swap="roll"),
        time_sampler="uniform"),
    train=T2I_TRAIN, shapes=ShapesDataConfig(), text=TextEncoderConfig(max_tokens=T2I_TOKENS),
    autoencoder=AUTOENCODER_SHAPES, sampling=T2I_SAMPLING)

#: The shipped ShapesWorld CrossFlow: the flatten recipe above with another Text VE head - patch queries (one learned
#: query per latent patch attends to the caption tokens), the source's mean pulled towards the image latent
#: (align_weight 1: ||mu - z1||^2) and a ten times lower KL weight (1e-3: less noise around mu). Chosen on VALIDATION
#: prompts in the variants study (``reproduce t2i_variants``; docs/MEASUREMENTS.md, "Compositional prompts").
T2I_SHAPES = T2IRecipe(
    model=CrossFlowConfig(
        source=TextVEConfig(width=128, depth=2, max_tokens=T2I_TOKENS, head="patch_queries", kl_form="code",
                            kl_weight=1e-3, align_weight=1.0),
        velocity=VelocityTransformerConfig(width=128, depth=4, heads=4),
        guidance=GuidanceConfig(p_uncond=0.1, swap="roll"),
        time_sampler="uniform"),
    train=T2I_TRAIN, shapes=ShapesDataConfig(), text=TextEncoderConfig(max_tokens=T2I_TOKENS),
    autoencoder=AUTOENCODER_SHAPES, sampling=T2I_SAMPLING)

#: Standard flow matching at CrossFlow's size (paper Table 1): the same transformer family with cross-attention to
#: the MiniLM tokens, width 144 so that its parameters match CrossFlow's (Text VE and image tower counted; within
#: 10 %, tested). Training run, data, text encoder, sampler and NFE are CrossFlow's.
T2I_BASELINE_SHAPES = T2IRecipe(
    model=BaselineConfig(velocity=CrossAttentionTransformerConfig(width=144, depth=4, heads=4), p_uncond=0.1,
                         time_sampler="uniform"),
    train=T2I_TRAIN, shapes=ShapesDataConfig(), text=TextEncoderConfig(max_tokens=T2I_TOKENS),
    autoencoder=AUTOENCODER_SHAPES, sampling=T2I_SAMPLING)

#: Fashion-MNIST: both methods at the ShapesWorld sizes on the Fashion autoencoder's latents, 3,000 steps each.
FASHION_TRAIN = dataclasses.replace(T2I_TRAIN, steps=3000)
T2I_FASHION = dataclasses.replace(T2I_SHAPES_FLATTEN, train=FASHION_TRAIN, autoencoder=AUTOENCODER_FASHION)
T2I_BASELINE_FASHION = dataclasses.replace(T2I_BASELINE_SHAPES, train=FASHION_TRAIN, autoencoder=AUTOENCODER_FASHION)

#: The referee of the Fashion models: a small CNN on the real training photos, 2,000 steps, no EMA.
CLASSIFIER_FASHION = ClassifierRecipe(
    model=ClassifierConfig(channels=(32, 64, 128)),
    train=TrainConfig(steps=2000, batch_size=128, lr=2e-3, betas=(0.9, 0.99), weight_decay=1e-4, warmup_steps=100,
                      lr_schedule="cosine", ema_decay=0.0, ckpt_every=500),
    fashion=FashionDataConfig())


# --------------------------------------------------------------------------------------- your own image folder
#: Environment variables naming the local parts of the folder recipes (docs/SCALING_UP.md).
TEXT_MODEL_ENV = "CROSSFLOW_TEXT_MODEL"
VAE_ENV = "CROSSFLOW_VAE"
IMAGES_ENV = "CROSSFLOW_IMAGE_FOLDER"


@dataclass(frozen=True)
class PretrainedVAEConfig:
    """A local diffusers ``AutoencoderKL`` folder (``None`` until set: ``CROSSFLOW_VAE``) and the factor its latents
    are scaled by (``None``: the folder's ``scaling_factor``)."""

    path: str | None = None
    scaling_factor: float | None = None


@dataclass(frozen=True)
class FolderT2IRecipe:
    """Everything that determines a CrossFlow checkpoint trained on an image-caption folder: model, training run,
    data, text encoder and autoencoder (their folders are part of the recipe, so of its hash)."""

    model: CrossFlowConfig = CrossFlowConfig()
    train: TrainConfig = TrainConfig()
    data: CaptionedImagesConfig = CaptionedImagesConfig()
    text: TextEncoderConfig = TextEncoderConfig()
    vae: PretrainedVAEConfig = PretrainedVAEConfig()
    eval_pairs: int = 256  # held-out pairs the validation loss is measured on
    sampling: SamplingConfig = unhashed_field(SamplingConfig(steps=50))  # the public code's 50 Euler steps

    def __post_init__(self) -> None:
        source = self.model.source
        if isinstance(source, TextVEConfig) and self.text.max_tokens != source.max_tokens:
            raise ValueError(f"the text encoder keeps {self.text.max_tokens} tokens but the Text VE expects "
                             f"{source.max_tokens}: set both max_tokens to the same value (with_local_parts does)")
        factor = self.data.image_size // self.model.velocity.latent_shape[1]
        if factor * self.model.velocity.latent_shape[1] != self.data.image_size:
            raise ValueError(f"images of {self.data.image_size} px cannot give latents of side "
                             f"{self.model.velocity.latent_shape[1]}")


@dataclass(frozen=True)
class LocalParts:
    """The folders a user pointed the environment at (``None`` where unset)."""

    text_model: str | None
    vae: str | None
    images: str | None


def local_parts() -> LocalParts:
    """``CROSSFLOW_TEXT_MODEL``, ``CROSSFLOW_VAE`` and ``CROSSFLOW_IMAGE_FOLDER`` (empty = unset)."""
    return LocalParts(*(os.environ.get(k, "").strip() or None for k in (TEXT_MODEL_ENV, VAE_ENV, IMAGES_ENV)))


def with_local_parts(recipe: FolderT2IRecipe, parts: LocalParts | None = None) -> FolderT2IRecipe:
    """``recipe`` with the user's folders in it, and its Text VE built for the text model found there: the token
    width, the token scale (T5 x 10) and the token length (at most the recipe's ``max_tokens``) come from the
    model's config. Unset folders leave the recipe's values (CLIP-sized tokens in ``T2I_FOLDER_PAPER``)."""
    parts = local_parts() if parts is None else parts
    text, source = recipe.text, recipe.model.source
    if parts.text_model is not None:
        info = text_model_info(parts.text_model)
        source = text_ve_for(info, source, max_tokens=source.max_tokens)
        text = dataclasses.replace(text, model_path=parts.text_model, max_tokens=source.max_tokens)
    vae = recipe.vae if parts.vae is None else dataclasses.replace(recipe.vae, path=parts.vae)
    data = recipe.data if parts.images is None else dataclasses.replace(recipe.data, path=parts.images)
    return dataclasses.replace(recipe, model=dataclasses.replace(recipe.model, source=source), text=text, vae=vae,
                               data=data)


#: Your own folder on a laptop: the ShapesWorld flatten model's sizes on SD-VAE latents of 64 px images (4 x 8 x 8),
#: 32 caption tokens (the text width follows the local text model: :func:`with_local_parts`), 3,000 steps.
T2I_FOLDER = FolderT2IRecipe(
    model=dataclasses.replace(T2I_SHAPES_FLATTEN.model,
                              source=dataclasses.replace(T2I_SHAPES_FLATTEN.model.source, max_tokens=32)),
    train=dataclasses.replace(T2I_TRAIN, steps=3000), data=CaptionedImagesConfig(image_size=64),
    text=TextEncoderConfig(max_tokens=32), vae=PretrainedVAEConfig())

#: The paper's optimiser (docs/METHOD.md Sec. 3: AdamW 1e-4, betas (0.9, 0.9), weight decay 0.03, EMA 0.9999) and
#: its 300K steps; the global batch of 256 (DiT's) and the 5,000 warm-up steps are ours.
PAPER_TRAIN = TrainConfig(steps=300_000, batch_size=256, lr=1e-4, betas=(0.9, 0.9), weight_decay=0.03,
                          warmup_steps=5000, ema_decay=0.9999, ckpt_every=2000, log_every=100)
_PAPER_LATENT = (4, 32, 32)
#: The paper's setting: 256 px images, SD-VAE latents 4 x 32 x 32, CLIP ViT-L/14 tokens 77 x 768, and a DiT-B/2
#: velocity transformer (width 768, depth 12, 12 heads, 2 x 2 patches: 256 tokens; sincos positions and the indicator
#: as a label embedding, as in the DiT backbone of the public code). The Text VE follows the public code's shape
#: (docs/METHOD.md Sec. 2): transformer layers at the token width, three halving reduction layers (768 -> 96),
#: flatten, one linear map to (mu, logvar); its depth (4) is ours, and so is the contrastive tower.
T2I_FOLDER_PAPER = FolderT2IRecipe(
    model=CrossFlowConfig(
        source=TextVEConfig(token_dim=768, width=768, depth=4, heads=12, max_tokens=77, latent_shape=_PAPER_LATENT,
                            reduction_layers=3, kl_form="code",
                            tower=TowerConfig(in_shape=_PAPER_LATENT, channels=(64, 128, 256))),
        velocity=VelocityTransformerConfig(latent_shape=_PAPER_LATENT, patch_size=2, width=768, depth=12, heads=12,
                                           time_dim=256, pos_embed="sincos", indicator="embedding")),
    train=PAPER_TRAIN, data=CaptionedImagesConfig(image_size=256), text=TextEncoderConfig(max_tokens=77),
    vae=PretrainedVAEConfig())

#: A recipe of either kind of text-to-image checkpoint.
AnyT2IRecipe = T2IRecipe | FolderT2IRecipe

__all__ = ["T2I_TOKENS", "T2IRecipe", "ClassifierRecipe", "T2I_TRAIN", "T2I_SAMPLING", "T2I_SHAPES_FLATTEN",
           "T2I_SHAPES", "T2I_BASELINE_SHAPES", "FASHION_TRAIN", "T2I_FASHION", "T2I_BASELINE_FASHION",
           "CLASSIFIER_FASHION", "TEXT_MODEL_ENV", "VAE_ENV", "IMAGES_ENV", "PretrainedVAEConfig", "FolderT2IRecipe",
           "LocalParts", "local_parts", "with_local_parts", "T2I_FOLDER", "PAPER_TRAIN", "T2I_FOLDER_PAPER",
           "AnyT2IRecipe"]

"""The one profile switch: every size, step count and batch size a notebook or command uses is chosen here.

The profile is read from the environment variable ``CROSSFLOW_PROFILE`` in :func:`profile_name` and nowhere else:

* ``smoke``  - seconds per notebook: tiny data, a handful of steps. CI runs every notebook this way.
* ``course`` - the default, what a student runs: loads the shipped checkpoints in ``data/checkpoints`` and
  trains short demonstration runs; a few minutes per notebook on 2 CPU cores.
* ``full``   - trains everything from scratch and reproduces ``data/results``.

A checkpoint is identified by the hash of its *recipe* (model + training + data config), so the ``course`` and
``full`` profiles share the recipes of shipped checkpoints, while ``smoke`` uses tiny recipes of its own that are
trained on the fly and cached under ``data/cache``. The config classes live beside the code they configure; this
module only chooses their values. Why each shipped value is what it is, with the measurements behind it:
``docs/MEASUREMENTS.md``.

The device (``Profile.device``) is not a profile choice but the machine's: ``CROSSFLOW_DEVICE`` or, by default,
CUDA where a GPU is and the CPU elsewhere (:func:`crossflow_mini.utils.get_device`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import torch

from .nn.autoencoder import AutoencoderConfig
from .core.baseline import BaselineConfig
from .core.crossflow import CrossFlowConfig
from .core.guidance import GuidanceConfig
from .core.regression import RegressionConfig
from .core.source import TowerConfig
from .core.text_ve import TextVEConfig
from .core.transformer import CrossAttentionTransformerConfig, VelocityTransformerConfig
from .core.unet import UNetVelocityConfig
from .datasets.depthworld import DepthWorldConfig
from .datasets.fashion import FashionDataConfig
from .datasets.photos import PhotoDataConfig
from .datasets.shapes import ShapesDataConfig
from .datasets.superres import SRDataConfig
from .eval.classifier import ClassifierConfig
from .eval.judge import JudgeConfig
from .studies.ablation import T2IAblationConfig
from .tasks.autoencoder import AutoencoderRecipe
from .studies.comparison import ComparisonConfig, ScalingConfig
from .tasks.depth.train import DepthEvalConfig, DepthRecipe, conditioned_unet, crossflow_depth_config
from .tasks.t2i.fashion import ClassifierRecipe
from .tasks.flow2d import Flow2DConfig
from .tasks.judge import JudgeRecipe
from .tasks.sr.train import SREvalConfig, SRRecipe, SRStudyConfig, model_configs as sr_model_configs
from .tasks.captioning.train import (RICH_SHAPES, CaptionEvalConfig, CaptionRecipe, TextAutoencoderRecipe,
                                     autoregressive_captioner, baseline_captioner, crossflow_captioner,
                                     direct_captioner, text_autoencoder_config)
from .studies.captioning import CaptioningStudyConfig
from .studies.captioning_schedule import ScheduleConfig
from .tasks.t2i.train import BaselineRecipe, T2IEvalConfig, T2IRecipe
from .tasks.t2i.arithmetic import ArithmeticConfig
from .studies.variants import VariantsConfig
from .tasks.t2i.folder import FolderT2IRecipe, PretrainedVAEConfig, paper_recipe, with_local_parts
from .datasets.captioned import CaptionedImagesConfig
from .nn.text_encoder import TextEncoderConfig
from .training import TrainConfig
from .utils import get_device

PROFILE_ENV = "CROSSFLOW_PROFILE"
PROFILES = ("smoke", "course", "full", "paper")
DEFAULT_PROFILE = "course"


@dataclass(frozen=True)
class Profile:
    """All sizes for one profile. Obtain it with :func:`get_profile`."""

    name: str
    shapes: ShapesDataConfig
    fashion: FashionDataConfig
    photos: PhotoDataConfig
    text: TextEncoderConfig
    autoencoder_shapes: AutoencoderRecipe
    autoencoder_fashion: AutoencoderRecipe
    autoencoder_demo: TrainConfig  # the short live training run in notebook 02
    flow2d: Flow2DConfig
    judge: JudgeRecipe
    t2i_shapes: T2IRecipe
    t2i_shapes_flatten: T2IRecipe  # the paper's Text VE head: the reference row (comparison, variants, ablation)
    t2i_eval: T2IEvalConfig
    t2i_demo: TrainConfig  # the short live training runs of notebooks 03-04
    t2i_ablation: T2IAblationConfig
    t2i_baseline_shapes: BaselineRecipe
    t2i_fashion: T2IRecipe
    t2i_baseline_fashion: BaselineRecipe
    classifier_fashion: ClassifierRecipe
    t2i_compare: ComparisonConfig
    t2i_scaling: ScalingConfig
    t2i_variants: VariantsConfig = VariantsConfig()  # the compositional variants table (tasks/variants.py)
    train_missing: bool = True  # may a notebook train a checkpoint that is neither shipped nor cached?
    n_preview: int = 8  # images per preview grid
    n_captions_demo: int = 512  # captions embedded in the notebook-00 text-encoder demo
    eval_images: int = 1000  # images used to measure reconstruction quality in a notebook
    device: torch.device = torch.device("cpu")  # set by get_profile from the machine (CROSSFLOW_DEVICE)
    # text to image on the user's own image-caption folder with local CLIP / SD-VAE (tasks/t2i_folder.py,
    # docs/SCALING_UP.md): the folders come from the environment; course/full are laptop-sized, paper is paper-sized
    t2i_folder: FolderT2IRecipe = field(default_factory=lambda: with_local_parts(_T2I_FOLDER))
    # monocular depth (notebook 09, tasks/depth.py); the defaults are the shipped recipes
    depth_crossflow: DepthRecipe = field(default_factory=lambda: _DEPTH_CROSSFLOW)
    depth_baseline: DepthRecipe = field(default_factory=lambda: _DEPTH_BASELINE)
    depth_regression: DepthRecipe = field(default_factory=lambda: _DEPTH_REGRESSION)
    depth_eval: DepthEvalConfig = field(default_factory=lambda: _DEPTH_EVAL)
    depth_demo: TrainConfig = field(default_factory=lambda: _DEPTH_DEMO)  # the live training run of notebook 09
    # super-resolution (notebook 10, tasks/sr.py); the defaults are the shipped recipes
    sr_crossflow: SRRecipe = field(default_factory=lambda: _SR_CROSSFLOW)
    sr_baseline: SRRecipe = field(default_factory=lambda: _SR_BASELINE)
    sr_regression: SRRecipe = field(default_factory=lambda: _SR_REGRESSION)
    sr_eval: SREvalConfig = field(default_factory=lambda: _SR_EVAL)
    sr_study: SRStudyConfig = field(default_factory=SRStudyConfig)
    sr_demo: TrainConfig = field(default_factory=lambda: _SR_DEMO)  # the live training run of notebook 10
    # image captioning (notebook 08, tasks/captioning.py); the defaults are the shipped recipes
    text_autoencoder_shapes: TextAutoencoderRecipe = field(default_factory=lambda: _TEXT_AE)
    caption_crossflow: CaptionRecipe = field(default_factory=lambda: _CAPTION_CROSSFLOW)
    caption_baseline: CaptionRecipe = field(default_factory=lambda: _CAPTION_BASELINE)
    caption_direct: CaptionRecipe = field(default_factory=lambda: _CAPTION_DIRECT)
    caption_autoregressive: CaptionRecipe = field(default_factory=lambda: _CAPTION_AUTOREGRESSIVE)
    caption_eval: CaptionEvalConfig = field(default_factory=lambda: _CAPTION_EVAL)  # what `train caption_*` measures
    caption_notebook: CaptionEvalConfig = field(default_factory=lambda: _CAPTION_NOTEBOOK)  # notebook 08's live runs
    caption_study: CaptioningStudyConfig = field(default_factory=CaptioningStudyConfig)
    caption_schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    # latent arithmetic and interpolation (notebook 07, tasks/arithmetic.py) with the shipped t2i_shapes model: the
    # study (`reproduce arithmetic`: 500 cases per kind, as the issue asks) and the notebook's live part
    arithmetic: ArithmeticConfig = field(default_factory=ArithmeticConfig)
    arithmetic_notebook: ArithmeticConfig = field(default_factory=lambda: _ARITHMETIC_NOTEBOOK)


# ------------------------------------------------------------------------------- shipped recipes (course, full)
_AE_TRAIN = TrainConfig(steps=3000, batch_size=32, lr=2e-3, betas=(0.9, 0.99), weight_decay=0.0, warmup_steps=100,
                        lr_schedule="cosine", ema_decay=0.999, ckpt_every=250)
_AE_SHAPES = AutoencoderRecipe(dataset="shapes", model=AutoencoderConfig(in_channels=3), train=_AE_TRAIN)
_AE_FASHION = AutoencoderRecipe(dataset="fashion", model=AutoencoderConfig(in_channels=1), train=_AE_TRAIN)
_JUDGE = JudgeRecipe(model=JudgeConfig(width=32),
                     train=TrainConfig(steps=1500, batch_size=64, lr=2e-3, betas=(0.9, 0.99), weight_decay=0.0,
                                       warmup_steps=100, lr_schedule="cosine", ema_decay=0.0, ckpt_every=250))
# ShapesWorld captions are at most 15 MiniLM tokens long (CLS and SEP included): 16 token slots lose nothing.
_T2I_TOKENS = 16
_T2I_TRAIN = TrainConfig(steps=9000, batch_size=128, lr=1e-3, warmup_steps=200, ema_decay=0.995, ckpt_every=250,
                         log_every=25)
# The paper's Text VE as its public code builds it (flatten + linear head, the code's KL): the reference row of the
# comparison and the base of the variants and ablation studies (`t2i_shapes_flatten`; it was the shipped t2i_shapes).
_T2I_FLATTEN = T2IRecipe(
    model=CrossFlowConfig(
        source=TextVEConfig(width=128, depth=2, max_tokens=_T2I_TOKENS, kl_form="code"),
        velocity=VelocityTransformerConfig(width=128, depth=4, heads=4),
        guidance=GuidanceConfig(),
    ),
    train=_T2I_TRAIN, shapes=ShapesDataConfig(), text=TextEncoderConfig(max_tokens=_T2I_TOKENS), autoencoder=_AE_SHAPES)
# The shipped t2i_shapes: the best design of the variants study (`reproduce t2i_variants`), chosen on VALIDATION
# prompts among the three best rows (mini-GenEval overall at w = 1, 200 prompts per kind: patch queries + alignment
# 0.337, + strong alignment 0.357, + low noise 0.377): one learned query per latent patch attends to the caption
# tokens (a source laid out like the image), the source's mean is pulled towards the image latent (align_weight)
# and the KL weight is ten times lower than the code's (1e-3: less noise around mu). Everything else is the paper
# design's, so the two differ only in the Text VE. Why: docs/MEASUREMENTS.md, "Compositional prompts".
_T2I = dataclasses.replace(_T2I_FLATTEN, model=dataclasses.replace(_T2I_FLATTEN.model, source=dataclasses.replace(
    _T2I_FLATTEN.model.source, head="patch_queries", align_weight=1.0, kl_weight=1e-3)))
_T2I_ABLATION = T2IAblationConfig(train=dataclasses.replace(_T2I_TRAIN, steps=1200, ema_decay=0.99))
_T2I_DEMO = dataclasses.replace(_T2I_TRAIN, steps=300, warmup_steps=50, ema_decay=0.99, ckpt_every=0, log_every=10)
# The standard flow-matching baseline at CrossFlow's size (paper Table 1): the same transformer family with
# cross-attention to the MiniLM tokens, width 144 so that its parameters match CrossFlow's (Text VE and image tower
# counted; within 10 %, tested). Training run, data, text encoder, sampler and NFE are CrossFlow's.
_BASELINE = BaselineRecipe(
    model=BaselineConfig(velocity=CrossAttentionTransformerConfig(width=144, depth=4, heads=4)),
    train=_T2I_TRAIN, shapes=_T2I.shapes, text=_T2I.text, autoencoder=_AE_SHAPES)
# Fashion-MNIST: both methods at the ShapesWorld sizes on the Fashion autoencoder's latents, 3,000 steps each.
_FASHION_TRAIN = dataclasses.replace(_T2I_TRAIN, steps=3000)
# Fashion-MNIST keeps the paper's Text VE: its prompts name one class, with nothing to compose.
_T2I_FASHION = dataclasses.replace(_T2I_FLATTEN, train=_FASHION_TRAIN, autoencoder=_AE_FASHION)
_BASELINE_FASHION = dataclasses.replace(_BASELINE, train=_FASHION_TRAIN, autoencoder=_AE_FASHION)
_CLASSIFIER = ClassifierRecipe(
    train=TrainConfig(steps=2000, batch_size=128, lr=2e-3, betas=(0.9, 0.99), weight_decay=1e-4, warmup_steps=100,
                      lr_schedule="cosine", ema_decay=0.0, ckpt_every=500))
# Mini Fig. 3: three sizes x three lengths x two methods, six runs of 2,000 steps (the longest length).
_SCALING = ScalingConfig(train=dataclasses.replace(_T2I_TRAIN, steps=2000, ckpt_every=500))
# Monocular depth on DepthWorld at 32 x 32 (paper Sec. 5.5, Table 5): three methods, one UNet size, one training run.
# CrossFlow: Image VE (width 32, 5 residual blocks) + UNet (32, 64, 64), 1.208M parameters. The two baselines share
# one UNet with the RGB image concatenated, (40, 64, 64): 1.208M too (within 0.1 %; tested within 10 %), and about
# the same cost per step. The Image VE adds the alignment loss ||mu - y||^2 (ours) and a weak KL (1e-6: the KL is
# summed over the 1,024 depth pixels, so the paper's 1e-4 holds sigma near 1 and the flow starts from noise). One flow
# per prediction (averaging buys little with sigma that small; the validation sweep shows it). 2,000 steps of batch
# 32 (batch 64 took 1.15 s per step on 2 cores, 38 min: over the 30-minute budget; the second core gives almost
# nothing at these sizes, so each checkpoint trains on one thread). Why each value: docs/MEASUREMENTS.md, "Depth".
_DEPTH_UNET = (32, 64, 64)
_DEPTH_BASELINE_UNET = (40, 64, 64)
_DEPTH_TRAIN = TrainConfig(steps=2000, batch_size=32, lr=1e-3, warmup_steps=100, lr_schedule="cosine",
                           ema_decay=0.995, ckpt_every=250, log_every=25)
_DEPTH_CROSSFLOW = DepthRecipe(
    model=crossflow_depth_config(32, ve_blocks=5, channels=_DEPTH_UNET, kl_weight=1e-6, align_weight=1.0),
    train=_DEPTH_TRAIN, data=DepthWorldConfig(), sample_steps=10, n_samples=1)
_DEPTH_BASELINE = dataclasses.replace(
    _DEPTH_CROSSFLOW, model=BaselineConfig(velocity=conditioned_unet(32, _DEPTH_BASELINE_UNET), scale=1.0))
_DEPTH_REGRESSION = dataclasses.replace(
    _DEPTH_CROSSFLOW, model=RegressionConfig(network=conditioned_unet(32, _DEPTH_BASELINE_UNET), loss="l1"))
_DEPTH_EVAL = DepthEvalConfig(scales=(0.0, 1.0, 2.0, 3.0), val_images=500, sample_counts=(1, 2, 4),
                              step_counts=(1, 2, 5, 10, 20))
_DEPTH_DEMO = dataclasses.replace(_DEPTH_TRAIN, steps=100, batch_size=32, warmup_steps=20, lr_schedule="constant",
                                  ema_decay=0.9, ckpt_every=0, log_every=5)
# 4x super-resolution of photo patches (paper Sec. 5.6, Table 6): 8 x 8 -> 32 x 32 RGB, three methods on one UNet
# (tasks/sr.py, model_configs): CrossFlow from the upsampled image, standard flow matching and regression with the
# upsampled image concatenated; parameters within 1 % (tested). 1,200 steps of batch 32 on one thread (about 2.4
# steps/s: about 9 min a run; the study trains six). CrossFlow's source is the upsampled image itself ("none", the
# paper's): of the three sources it had the best validation PSNR. Why each value: the super-resolution section of
# docs/MEASUREMENTS.md.
_SR_UNET = UNetVelocityConfig(latent_shape=(3, 32, 32), block_out_channels=(32, 64, 64))
_SR_TRAIN = TrainConfig(steps=1200, batch_size=32, lr=1e-3, warmup_steps=100, ema_decay=0.999, ckpt_every=250,
                        log_every=25)
_SR_MODELS = sr_model_configs(_SR_UNET, source="none", guidance=GuidanceConfig(scale=1.0), regression_loss="l1")
_SR_CROSSFLOW = SRRecipe(model=_SR_MODELS["crossflow"], train=_SR_TRAIN, data=SRDataConfig(), sample_steps=10)
_SR_BASELINE = dataclasses.replace(_SR_CROSSFLOW, model=_SR_MODELS["baseline"])
_SR_REGRESSION = dataclasses.replace(_SR_CROSSFLOW, model=_SR_MODELS["regression"])
_SR_EVAL = SREvalConfig()
_SR_DEMO = dataclasses.replace(_SR_TRAIN, steps=100, warmup_steps=20, ema_decay=0.9, ckpt_every=0, log_every=5)
# Image captioning on ShapesWorld's rich captions (paper Sec. 5.4, Table 4): a text autoencoder (Text VE -> 8 x 4 x 4
# Gaussian text latent -> non-autoregressive decoder), then four captioners with the text autoencoder frozen, at
# matched parameters (the ones each captions with, a flow captioner's text decoder counted; within 10 %, tested) and
# the same training run: CrossFlow (Image VE -> flow -> text latent), standard flow matching (noise -> text latent,
# cross-attention to the image's patches), the direct captioner (image -> the same decoder, end to end) and a small
# autoregressive transformer. Why each value: the captioning section of docs/MEASUREMENTS.md.
_TEXT_LATENT = (8, 4, 4)
_IMAGE_LATENT = _AE_SHAPES.model.latent_shape
_TEXT_AE = TextAutoencoderRecipe(
    model=text_autoencoder_config(_TEXT_LATENT, encoder_width=128, encoder_depth=2, decoder_width=128, decoder_depth=3),
    train=TrainConfig(steps=3000, batch_size=128, lr=2e-3, warmup_steps=200, lr_schedule="cosine", ema_decay=0.995,
                      ckpt_every=250, log_every=25),
    shapes=RICH_SHAPES)
# 2,500 steps: the direct captioner, matched in parameters and steps, runs 1.57 steps/s on one thread, so 2,500 steps
# (about 27 min) is what fits the 30-minute budget per checkpoint; 6,000 would take about 64 min (docs/MEASUREMENTS.md).
_CAPTION_TRAIN = TrainConfig(steps=2500, batch_size=128, lr=1e-3, warmup_steps=200, lr_schedule="cosine",
                             ema_decay=0.995, ckpt_every=250, log_every=25)
_CAPTION_CROSSFLOW = CaptionRecipe(
    model=crossflow_captioner(_TEXT_LATENT, _IMAGE_LATENT, ve_width=64, width=128, depth=4), train=_CAPTION_TRAIN,
    shapes=RICH_SHAPES, autoencoder=_AE_SHAPES, text_autoencoder=_TEXT_AE)
_CAPTION_BASELINE = dataclasses.replace(_CAPTION_CROSSFLOW, model=baseline_captioner(_TEXT_LATENT, _IMAGE_LATENT,
                                                                                      width=128, depth=4))
_CAPTION_DIRECT = dataclasses.replace(_CAPTION_CROSSFLOW, text_autoencoder=None, model=direct_captioner(
    _TEXT_LATENT, _IMAGE_LATENT, encoder_width=64, width=176, depth=5))
_CAPTION_AUTOREGRESSIVE = dataclasses.replace(_CAPTION_CROSSFLOW, text_autoencoder=None,
                                              model=autoregressive_captioner(_IMAGE_LATENT, width=192, depth=3))
_CAPTION_EVAL = CaptionEvalConfig(max_images=1000)
_CAPTION_NOTEBOOK = CaptionEvalConfig(choose_images=200, max_images=300)
# Notebook 07's live arithmetic: 50 cases per kind (and their trivial answers and unstandardised controls), 40 per
# sweep point, 20 interpolation pairs - about 1,900 images; the study's 500 per kind are read from data/results.
_ARITHMETIC_NOTEBOOK = ArithmeticConfig(cases_per_kind=50, sweep_cases=40, control_cases=50, interpolation_pairs=20)


def _course() -> Profile:
    return Profile(
        name="course",
        shapes=ShapesDataConfig(n_train=20_000, n_val=1_000, n_test=2_000),
        fashion=FashionDataConfig(n_train=10_000, n_test=2_000),
        photos=PhotoDataConfig(),
        text=TextEncoderConfig(),
        autoencoder_shapes=_AE_SHAPES,
        autoencoder_fashion=_AE_FASHION,
        autoencoder_demo=dataclasses.replace(_AE_TRAIN, steps=300, warmup_steps=50, ckpt_every=0),
        flow2d=Flow2DConfig(),
        judge=_JUDGE,
        t2i_shapes=_T2I,
        t2i_shapes_flatten=_T2I_FLATTEN,
        t2i_eval=T2IEvalConfig(max_prompts=200),
        t2i_demo=_T2I_DEMO,
        t2i_ablation=_T2I_ABLATION,
        t2i_baseline_shapes=_BASELINE,
        t2i_fashion=_T2I_FASHION,
        t2i_baseline_fashion=_BASELINE_FASHION,
        classifier_fashion=_CLASSIFIER,
        t2i_compare=ComparisonConfig(),
        t2i_scaling=_SCALING,
        train_missing=False,
        depth_crossflow=_DEPTH_CROSSFLOW,
        depth_baseline=_DEPTH_BASELINE,
        depth_regression=_DEPTH_REGRESSION,
        depth_eval=_DEPTH_EVAL,
        depth_demo=_DEPTH_DEMO,
    )


# Your own image-caption folder on a laptop: the shipped ShapesWorld CrossFlow sizes on SD-VAE latents of 64 px
# images (4 x 8 x 8), 32 caption tokens; the text width follows the local text model (with_local_parts).
_T2I_FOLDER = FolderT2IRecipe(
    model=dataclasses.replace(_T2I_FLATTEN.model, source=dataclasses.replace(_T2I_FLATTEN.model.source, max_tokens=32)),
    train=dataclasses.replace(_T2I_TRAIN, steps=3000), data=CaptionedImagesConfig(image_size=64),
    text=TextEncoderConfig(max_tokens=32), vae=PretrainedVAEConfig())
# The paper's setting (tasks/t2i_folder.paper_recipe: 256 px, SD-VAE 4 x 32 x 32, CLIP 77 x 768, DiT-B/2). The
# paper's optimiser (CROSSFLOW_NOTES Sec. 3: AdamW 1e-4, betas (0.9, 0.9), weight decay 0.03, EMA 0.9999) and its
# 300K steps; the global batch of 256 (DiT's) and the 5,000 warm-up steps are ours (the notes give neither).
_PAPER_TRAIN = TrainConfig(steps=300_000, batch_size=256, lr=1e-4, betas=(0.9, 0.9), weight_decay=0.03,
                           warmup_steps=5000, ema_decay=0.9999, ckpt_every=2000, log_every=100)
_T2I_PAPER = paper_recipe(_PAPER_TRAIN)


def _paper() -> Profile:
    """The course's values, with the paper-sized text-to-image recipe on the user's local parts (t2i_folder);
    trains what is missing. Meant for GPUs: ``accelerate launch ... -m crossflow_mini --profile paper train
    t2i_folder``."""
    return dataclasses.replace(_course(), name="paper", train_missing=True,
                               t2i_folder=with_local_parts(_T2I_PAPER))


def _full() -> Profile:
    """The course's recipes with the full data and evaluation sizes; trains what is missing."""
    course = _course()
    return dataclasses.replace(
        course, name="full", shapes=ShapesDataConfig(), fashion=FashionDataConfig(),
        autoencoder_demo=dataclasses.replace(course.autoencoder_demo, steps=1000),
        flow2d=Flow2DConfig(train=dataclasses.replace(Flow2DConfig().train, steps=4000)),
        t2i_eval=T2IEvalConfig(), t2i_demo=dataclasses.replace(_T2I_DEMO, steps=1000), train_missing=True,
        eval_images=4000,
        caption_eval=dataclasses.replace(_CAPTION_EVAL, max_images=None))


# ------------------------------------------------------------------------------------------------ smoke
def _smoke_t2i(shapes: ShapesDataConfig, autoencoder: AutoencoderRecipe, train: TrainConfig) -> T2IRecipe:
    return T2IRecipe(
        model=CrossFlowConfig(source=TextVEConfig(width=32, depth=1, heads=2, max_tokens=_T2I_TOKENS, kl_form="code",
                                                  tower=TowerConfig(channels=(8, 16))),
                              velocity=VelocityTransformerConfig(width=32, depth=1, heads=2, time_dim=32)),
        train=train, shapes=shapes, text=TextEncoderConfig(max_tokens=_T2I_TOKENS, batch_size=64),
        autoencoder=autoencoder, sample_steps=4)


def _smoke_folder(train: TrainConfig) -> FolderT2IRecipe:
    """A tiny image-caption folder recipe: 32 px images, 4 x 8 x 8 latents (a VAE with two halvings), 16 tokens;
    batch 8, so that a folder of a dozen images trains (the tests make one, with a tiny CLIP and VAE)."""
    recipe = _smoke_t2i(ShapesDataConfig(), AutoencoderRecipe(), train)
    return FolderT2IRecipe(model=recipe.model, train=dataclasses.replace(train, batch_size=8),
                           data=CaptionedImagesConfig(image_size=32), text=recipe.text, vae=PretrainedVAEConfig(),
                           sample_steps=4, eval_pairs=8)


def _smoke_depth(train: TrainConfig) -> dict[str, object]:
    """Tiny depth recipes: 16 x 16 DepthWorld, a two-level UNet of 8 / 16 channels, 2 Euler steps."""
    data = DepthWorldConfig(n_train=256, n_val=32, n_test=32, image_size=16)
    unet = (8, 16)
    cf = DepthRecipe(model=crossflow_depth_config(16, ve_width=8, channels=unet, attention=False), train=train,
                     data=data, sample_steps=2, n_samples=2)
    net = conditioned_unet(16, unet, attention=False)
    return {"depth_crossflow": cf,
            "depth_baseline": dataclasses.replace(cf, model=BaselineConfig(velocity=net, scale=1.0)),
            "depth_regression": dataclasses.replace(cf, model=RegressionConfig(network=net, loss="l1"), n_samples=1),
            "depth_eval": DepthEvalConfig(scales=(1.0, 2.0), val_images=16, test_images=16, sample_counts=(1, 2),
                                          step_counts=(1, 2), batch_size=16, timing_images=4),
            "depth_demo": train}


def _smoke_sr(train: TrainConfig) -> dict[str, object]:
    """Tiny super-resolution recipes: 16 x 16 photo patches (4 x 4 LR), a two-level UNet of 8 / 16 channels."""
    data = SRDataConfig(hr_size=16)
    unet = UNetVelocityConfig(latent_shape=(3, 16, 16), block_out_channels=(8, 16), attention=False)
    models = sr_model_configs(unet, source="noise", guidance=GuidanceConfig(scale=1.0))
    cf = SRRecipe(model=models["crossflow"], train=train, data=data, sample_steps=2)
    return {"sr_crossflow": cf, "sr_baseline": dataclasses.replace(cf, model=models["baseline"]),
            "sr_regression": dataclasses.replace(cf, model=models["regression"]),
            "sr_eval": SREvalConfig(scales=(1.0, 2.0), n_val=8, n_test=16, batch_size=16, timing_batch=4),
            "sr_study": SRStudyConfig(sources=("none", "noise"), regression_losses=("l1",)), "sr_demo": train}


def _smoke_captioning(train: TrainConfig, shapes: ShapesDataConfig,
                      autoencoder: AutoencoderRecipe) -> dict[str, object]:
    """Tiny captioning recipes: the smoke split sizes with rich captions, one-block models of width 32."""
    shapes = dataclasses.replace(shapes, vocabulary="rich")
    image = autoencoder.model.latent_shape
    text_ae = TextAutoencoderRecipe(model=text_autoencoder_config(_TEXT_LATENT, encoder_width=32, encoder_depth=1,
                                                                  decoder_width=32, decoder_depth=1, heads=2),
                                    train=train, shapes=shapes, scale_samples=64)
    cf = CaptionRecipe(model=crossflow_captioner(_TEXT_LATENT, image, ve_width=16, width=32, depth=1, heads=2,
                                                 tower=(8, 16)),
                       train=train, shapes=shapes, autoencoder=autoencoder, text_autoencoder=text_ae, sample_steps=4)
    return {"text_autoencoder_shapes": text_ae, "caption_crossflow": cf,
            "caption_baseline": dataclasses.replace(cf, model=baseline_captioner(_TEXT_LATENT, image, width=32,
                                                                                 depth=1, heads=2)),
            "caption_direct": dataclasses.replace(cf, text_autoencoder=None, model=direct_captioner(
                _TEXT_LATENT, image, encoder_width=16, width=32, depth=1, heads=2)),
            "caption_autoregressive": dataclasses.replace(cf, text_autoencoder=None, model=autoregressive_captioner(
                image, width=32, depth=1, heads=2)),
            "caption_eval": CaptionEvalConfig(scales=(1.0, 2.0), choose_images=16, max_images=32, batch_size=16,
                                              n_examples=4),
            "caption_notebook": CaptionEvalConfig(scales=(1.0, 2.0), choose_images=16, max_images=32, batch_size=16,
                                                  n_examples=4),
            "caption_study": CaptioningStudyConfig(cycle_per_kind=4),
            "caption_schedule": ScheduleConfig(steps=3, val_images=8)}


_SMOKE_ARITHMETIC = ArithmeticConfig(cases_per_kind=4, sweep_alphas=(0.5, 1.0, 2.0), sweep_cases=4, control_cases=2,
                                    interpolation_pairs=2, interpolation_points=3, batch_size=16)


def _smoke() -> Profile:
    tiny_train = TrainConfig(steps=6, batch_size=16, lr=1e-3, warmup_steps=2, ema_decay=0.9, ckpt_every=0,
                             log_every=1)
    tiny_ae = AutoencoderConfig(block_out_channels=(16, 16, 16), norm_num_groups=8)
    shapes = ShapesDataConfig(n_train=512, n_val=64, n_test=128)
    fashion = FashionDataConfig(n_train=512, n_test=128)
    ae_shapes = AutoencoderRecipe("shapes", dataclasses.replace(tiny_ae, in_channels=3), tiny_train, shapes=shapes,
                                  scale_samples=64)
    ae_fashion = AutoencoderRecipe("fashion", dataclasses.replace(tiny_ae, in_channels=1), tiny_train,
                                   fashion=fashion, scale_samples=64)
    smoke_t2i_flatten = _smoke_t2i(shapes, ae_shapes, tiny_train)
    smoke_t2i = dataclasses.replace(smoke_t2i_flatten, model=dataclasses.replace(
        smoke_t2i_flatten.model, source=dataclasses.replace(_T2I.model.source, width=32, depth=1, heads=2,
                                                            head_depth=1, tower=TowerConfig(channels=(8, 16)))))
    smoke_baseline = BaselineRecipe(
        model=BaselineConfig(velocity=CrossAttentionTransformerConfig(width=32, depth=1, heads=2, time_dim=32)),
        train=tiny_train, shapes=shapes, text=smoke_t2i.text, autoencoder=ae_shapes, sample_steps=4)
    return Profile(
        name="smoke",
        shapes=shapes,
        fashion=fashion,
        photos=PhotoDataConfig(),
        text=TextEncoderConfig(batch_size=64),
        autoencoder_shapes=ae_shapes,
        autoencoder_fashion=ae_fashion,
        autoencoder_demo=tiny_train,
        flow2d=Flow2DConfig(n_points=512, hidden=32, layers=2,
                            train=dataclasses.replace(Flow2DConfig().train, steps=20, batch_size=64),
                            euler_steps=8, n_show=128, n_traj=8),
        judge=JudgeRecipe(model=JudgeConfig(width=16, dilations=(1, 2)), train=tiny_train, shapes=shapes),
        t2i_shapes=smoke_t2i,
        t2i_shapes_flatten=smoke_t2i_flatten,
        t2i_eval=T2IEvalConfig(scales=(1.0, 2.0), max_prompts=16, batch_size=16, solver_nfe=(2, 4)),
        t2i_demo=tiny_train,
        t2i_ablation=T2IAblationConfig(train=tiny_train, max_prompts=16),
        t2i_baseline_shapes=smoke_baseline,
        t2i_fashion=dataclasses.replace(smoke_t2i_flatten, autoencoder=ae_fashion),
        t2i_baseline_fashion=dataclasses.replace(smoke_baseline, autoencoder=ae_fashion),
        classifier_fashion=ClassifierRecipe(model=ClassifierConfig(channels=(8, 16)), train=tiny_train,
                                            fashion=fashion),
        t2i_compare=ComparisonConfig(geneval_per_kind=8, fid_samples=8, choose_samples=16, class_samples=32,
                                     scales=(1.0, 2.0), timing_batch=16, batch_size=16),
        t2i_scaling=ScalingConfig(sizes=((16, 1), (32, 1)), steps=(3, 6), train=tiny_train, geneval_per_kind=4,
                                  scales=(1.0,)),
        t2i_variants=VariantsConfig(train=tiny_train, geneval_per_kind=4, scales=(1.0,)),
        n_preview=4,
        n_captions_demo=16,
        eval_images=64,
        t2i_folder=with_local_parts(_smoke_folder(tiny_train)),
        **_smoke_depth(tiny_train),
        **_smoke_sr(tiny_train),
        **_smoke_captioning(tiny_train, shapes, ae_shapes),
        arithmetic=_SMOKE_ARITHMETIC,
        arithmetic_notebook=_SMOKE_ARITHMETIC,
    )


_BUILDERS = {"smoke": _smoke, "course": _course, "full": _full, "paper": _paper}


def profile_name() -> str:
    """The active profile's name, from ``CROSSFLOW_PROFILE`` (default ``course``)."""
    name = os.environ.get(PROFILE_ENV, DEFAULT_PROFILE).strip().lower() or DEFAULT_PROFILE
    if name not in _BUILDERS:
        raise ValueError(
            f"{PROFILE_ENV}={name!r} is not a profile; choose one of {', '.join(PROFILES)} "
            f"(e.g. `export {PROFILE_ENV}=smoke`, or `unset {PROFILE_ENV}` for the default, {DEFAULT_PROFILE})."
        )
    return name


def get_profile(name: str | None = None, device: str | torch.device | None = None) -> Profile:
    """The :class:`Profile` named ``name`` (default: the one ``CROSSFLOW_PROFILE`` selects), on ``device``
    (default: :func:`~crossflow_mini.utils.get_device`'s choice)."""
    if name is None:
        name = profile_name()
    if name not in _BUILDERS:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}.")
    return dataclasses.replace(_BUILDERS[name](), device=get_device(device))


__all__ = ["PROFILE_ENV", "PROFILES", "DEFAULT_PROFILE", "Profile", "profile_name", "get_profile"]

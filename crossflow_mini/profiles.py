"""Profiles: how big everything is - never what a checkpoint is.

One environment variable, ``CROSSFLOW_PROFILE``, read in :func:`profile_name` and nowhere else, picks one of:

* ``course`` - the default, what a student runs: the shipped checkpoints in ``data/checkpoints``, short live
  demonstrations, a few minutes per notebook on 2 CPU cores;
* ``smoke``  - seconds per notebook: tiny data, tiny models and a handful of steps; CI runs every notebook this way;
* ``full``   - the course's recipes with the full data and evaluation sizes; trains what is missing and rewrites
  ``data/results`` (``make reproduce``);
* ``paper``  - the course's values, with the paper-sized text-to-image recipe on your own folder (a GPU).

A checkpoint's *recipe* (its design: model, training run, data) is written out in its task's ``recipe.py`` (e.g.
:mod:`crossflow_mini.tasks.t2i.recipe`) and found by name through :func:`crossflow_mini.registry.recipe`. A profile
changes only sizes: the data the notebooks show, the live demonstration runs, how many prompts an evaluation uses,
and - for ``smoke`` - tiny versions of the recipes (``recipes``: per checkpoint, dot-path overrides or a whole
smaller recipe). ``course`` and ``full`` change no recipe, so both find the shipped weights.

Every profile is written the same way: :class:`Profile`'s defaults are the ``course`` values; the other profiles are
dot-path overrides of them (:data:`OVERRIDES`), the same mechanism as ``--set`` on the command line.

The device (``Profile.device``) is not a profile choice but the machine's: ``CROSSFLOW_DEVICE`` or, by default,
CUDA where a GPU is and the CPU elsewhere (:func:`crossflow_mini.utils.get_device`).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from .configs import with_overrides
from .core.baseline import BaselineConfig
from .core.regression import RegressionConfig
from .core.sampling import SamplingConfig
from .core.unet import UNetVelocityConfig
from .datasets.depthworld import DepthWorldConfig
from .datasets.fashion import FashionDataConfig
from .datasets.photos import PhotoDataConfig
from .datasets.shapes import ShapesDataConfig
from .datasets.superres import SRDataConfig
from .nn.text_encoder import TextEncoderConfig
from .studies.configs import (DEPTH_DYNAMICS, SR_DYNAMICS, DynamicsConfig, TradeoffConfig, CaptioningStudyConfig, ComparisonConfig, ScalingConfig, ScheduleConfig, SRStudyConfig,
                              T2IAblationConfig, VariantsConfig)
from .tasks.autoencoder import AUTOENCODER_TRAIN
from .tasks.captioning.evaluate import CaptionEvalConfig
from .tasks.depth.evaluate import DepthEvalConfig
from .tasks.depth.recipe import DEPTH_TRAIN, DepthRecipe, conditioned_unet, crossflow_depth_config
from .tasks.flow2d import Flow2DConfig
from .tasks.sr.evaluate import SREvalConfig
from .tasks.sr.recipe import SR_TRAIN, SRRecipe, model_configs as sr_model_configs
from .tasks.t2i.arithmetic import ArithmeticConfig
from .tasks.t2i.evaluate import T2IEvalConfig
from .tasks.t2i.recipe import T2I_FOLDER_PAPER, T2I_TRAIN
from .training import TrainConfig
from .utils import get_device

PROFILE_ENV = "CROSSFLOW_PROFILE"
PROFILES = ("smoke", "course", "full", "paper")
DEFAULT_PROFILE = "course"


@dataclass(frozen=True)
class Profile:
    """The sizes of one profile (defaults: ``course``). Obtain one with :func:`get_profile`."""

    name: str = "course"
    #: may a notebook or command train a checkpoint that is neither shipped nor cached? (course: no)
    train_missing: bool = False
    # ---- the data the notebooks show and train their live demonstrations on
    shapes: ShapesDataConfig = ShapesDataConfig(n_train=20_000, n_val=1_000, n_test=2_000)
    fashion: FashionDataConfig = FashionDataConfig(n_train=10_000, n_test=2_000)
    photos: PhotoDataConfig = PhotoDataConfig()
    text: TextEncoderConfig = TextEncoderConfig()
    n_preview: int = 8  # images per preview grid
    n_captions_demo: int = 512  # captions embedded in the notebook-00 text-encoder demo
    eval_images: int = 1000  # images used to measure reconstruction quality in a notebook
    # ---- the notebooks' live training runs
    flow2d: Flow2DConfig = Flow2DConfig()
    autoencoder_demo: TrainConfig = dataclasses.replace(AUTOENCODER_TRAIN, steps=100, warmup_steps=20, ckpt_every=0)
    #: the ShapesWorld data notebooks 04 and 05 train their live demonstration on: a fifth of the course's training
    #: images (a cold start embeds their captions in seconds), the same validation and test splits
    t2i_demo_shapes: ShapesDataConfig = ShapesDataConfig(n_train=4_000, n_val=1_000, n_test=2_000)
    t2i_demo: TrainConfig = dataclasses.replace(T2I_TRAIN, steps=120, warmup_steps=20, ema_decay=0.95, ckpt_every=0,
                                                log_every=5)
    depth_demo: TrainConfig = dataclasses.replace(DEPTH_TRAIN, steps=40, batch_size=32, warmup_steps=8,
                                                  lr_schedule="constant", ema_decay=0.8, ckpt_every=0, log_every=2)
    sr_demo: TrainConfig = dataclasses.replace(SR_TRAIN, steps=40, warmup_steps=8, ema_decay=0.8, ckpt_every=0,
                                               log_every=2)
    #: test prompts per scene kind that judge notebook 06's live scaling point (None: the study's own number)
    scaling_demo_prompts: int | None = 50
    caption_notebook: CaptionEvalConfig = CaptionEvalConfig(choose_images=200, max_images=300)
    arithmetic_notebook: ArithmeticConfig = ArithmeticConfig(cases_per_kind=50, sweep_cases=40, control_cases=50,
                                                             interpolation_pairs=20)
    # ---- how a checkpoint is measured when it is trained (``train``, ``evaluate``)
    t2i_eval: T2IEvalConfig = T2IEvalConfig(max_prompts=200)
    depth_eval: DepthEvalConfig = DepthEvalConfig()
    sr_eval: SREvalConfig = SREvalConfig()
    caption_eval: CaptionEvalConfig = CaptionEvalConfig(max_images=1000)
    # ---- the studies (``reproduce``)
    t2i_compare: ComparisonConfig = ComparisonConfig()
    t2i_scaling: ScalingConfig = ScalingConfig()
    t2i_variants: VariantsConfig = VariantsConfig()
    t2i_ablation: T2IAblationConfig = T2IAblationConfig()
    t2i_tradeoff: TradeoffConfig = TradeoffConfig()
    sr_study: SRStudyConfig = SRStudyConfig()
    sr_dynamics: DynamicsConfig = SR_DYNAMICS
    depth_dynamics: DynamicsConfig = DEPTH_DYNAMICS
    caption_study: CaptioningStudyConfig = CaptioningStudyConfig()
    caption_schedule: ScheduleConfig = ScheduleConfig()
    arithmetic: ArithmeticConfig = ArithmeticConfig()
    #: per checkpoint name: dot-path size overrides of its recipe, or a whole recipe of this profile's size
    recipes: Mapping[str, Any] = field(default_factory=dict)
    device: torch.device = torch.device("cpu")  # set by get_profile from the machine (CROSSFLOW_DEVICE)


# ------------------------------------------------------------------------------------------------------- smoke
_TINY_TRAIN = TrainConfig(steps=6, batch_size=16, lr=1e-3, warmup_steps=2, ema_decay=0.9, ckpt_every=0, log_every=1)
_SMOKE_SHAPES = ShapesDataConfig(n_train=512, n_val=64, n_test=128)
_SMOKE_FASHION = FashionDataConfig(n_train=512, n_test=128)
_TINY_AUTOENCODER = {"model.block_out_channels": (16, 16, 16), "model.norm_num_groups": 8, "train": _TINY_TRAIN,
                     "scale_samples": 64}
_TINY_TEXT_VE = {"model.source.width": 32, "model.source.depth": 1, "model.source.heads": 2,
                 "model.source.tower.channels": (8, 16)}
_TINY_VELOCITY = {"model.velocity.width": 32, "model.velocity.depth": 1, "model.velocity.heads": 2,
                  "model.velocity.time_dim": 32}
_TINY_T2I = {**_TINY_VELOCITY, "train": _TINY_TRAIN, "shapes": _SMOKE_SHAPES, "text.batch_size": 64,
             "sampling.steps": 4}
#: Depth at 16 x 16 (4 x 4 in the UNet's lowest level), two-level UNets of 8 / 16 channels, 2 Euler steps.
_SMOKE_DEPTHWORLD = DepthWorldConfig(n_train=256, n_val=32, n_test=32, image_size=16)
_SMOKE_DEPTH = DepthRecipe(model=crossflow_depth_config(16, ve_width=8, channels=(8, 16), attention=False),
                           train=_TINY_TRAIN, data=_SMOKE_DEPTHWORLD, sampling=SamplingConfig(steps=2, n_samples=2))
_SMOKE_DEPTH_UNET = conditioned_unet(16, (8, 16), attention=False)
#: Super-resolution of 16 x 16 photo patches (4 x 4 low-resolution), two-level UNets of 8 / 16 channels.
_SMOKE_SR_MODELS = sr_model_configs(UNetVelocityConfig(latent_shape=(3, 16, 16), block_out_channels=(8, 16),
                                                       attention=False), source="noise")
_SMOKE_SR = SRRecipe(model=_SMOKE_SR_MODELS["crossflow"], train=_TINY_TRAIN, data=SRDataConfig(hr_size=16),
                     sampling=SamplingConfig(steps=2))
_SMOKE_RICH = dataclasses.replace(_SMOKE_SHAPES, vocabulary="rich")
_TINY_CAPTION = {"train": _TINY_TRAIN, "shapes": _SMOKE_RICH, "sampling.steps": 4}
_SMOKE_ARITHMETIC = ArithmeticConfig(cases_per_kind=4, sweep_alphas=(0.5, 1.0, 2.0), sweep_cases=4, control_cases=2,
                                     interpolation_pairs=2, interpolation_points=3, batch_size=16)

SMOKE: dict[str, Any] = {
    "name": "smoke", "train_missing": True,
    "shapes": _SMOKE_SHAPES, "fashion": _SMOKE_FASHION, "text.batch_size": 64,
    "n_preview": 4, "n_captions_demo": 16, "eval_images": 64,
    "flow2d": Flow2DConfig(n_points=512, hidden=32, layers=2,
                           train=dataclasses.replace(Flow2DConfig().train, steps=20, batch_size=64), euler_steps=8,
                           n_show=128, n_traj=8),
    "t2i_demo_shapes": _SMOKE_SHAPES,
    "autoencoder_demo": _TINY_TRAIN, "t2i_demo": _TINY_TRAIN, "depth_demo": _TINY_TRAIN, "sr_demo": _TINY_TRAIN,
    "caption_notebook": CaptionEvalConfig(scales=(1.0, 2.0), choose_images=16, max_images=32, batch_size=16,
                                          n_examples=4),
    "arithmetic_notebook": _SMOKE_ARITHMETIC, "scaling_demo_prompts": None,
    "t2i_eval": T2IEvalConfig(scales=(1.0, 2.0), max_prompts=16, batch_size=16, solver_nfe=(2, 4), choose_samples=16,
                              class_samples=32),
    "depth_eval": DepthEvalConfig(scales=(1.0, 2.0), val_images=16, test_images=16, sample_counts=(1, 2),
                                  step_counts=(1, 2), batch_size=16, timing_images=4),
    "sr_eval": SREvalConfig(scales=(1.0, 2.0), n_val=8, n_test=16, batch_size=16, timing_batch=4),
    "caption_eval": CaptionEvalConfig(scales=(1.0, 2.0), choose_images=16, max_images=32, batch_size=16,
                                      n_examples=4),
    "t2i_compare": ComparisonConfig(geneval_per_kind=8, fid_samples=8, choose_samples=16, class_samples=32,
                                    scales=(1.0, 2.0), timing_batch=16, batch_size=16),
    "t2i_scaling": ScalingConfig(sizes=((16, 1), (32, 1)), steps=(3, 6), train=_TINY_TRAIN, geneval_per_kind=4,
                                 scales=(1.0,)),
    "t2i_variants": VariantsConfig(train=_TINY_TRAIN, geneval_per_kind=4, scales=(1.0,)),
    "t2i_ablation": T2IAblationConfig(train=_TINY_TRAIN, max_prompts=16),
    "t2i_tradeoff": TradeoffConfig(align_weights=(0.0, 1.0), kl_weights=(1e-3,), extra_pairs=((1.0, 1e-2),),
                                   train=_TINY_TRAIN,
                                   scales=(1.0,), geneval_per_kind=4, arithmetic_cases=2),
    "sr_study": SRStudyConfig(sources=("none", "noise"), regression_losses=("l1",)),
    "sr_dynamics.snapshots": (0, 3, 6), "sr_dynamics.val_items": 8, "sr_dynamics.final_steps": (1, 2),
    "depth_dynamics.snapshots": (0, 3, 6), "depth_dynamics.val_items": 8, "depth_dynamics.final_steps": (1, 2),
    "caption_study": CaptioningStudyConfig(cycle_per_kind=4),
    "caption_schedule": ScheduleConfig(steps=3, val_images=8),
    "arithmetic": _SMOKE_ARITHMETIC,
    "recipes": {
        "autoencoder_shapes": {**_TINY_AUTOENCODER, "shapes": _SMOKE_SHAPES},
        "autoencoder_fashion": {**_TINY_AUTOENCODER, "fashion": _SMOKE_FASHION},
        "judge_shapes": {"model.width": 16, "model.dilations": (1, 2), "train": _TINY_TRAIN, "shapes": _SMOKE_SHAPES},
        "classifier_fashion": {"model.channels": (8, 16), "train": _TINY_TRAIN, "fashion": _SMOKE_FASHION},
        "t2i_shapes": {**_TINY_T2I, **_TINY_TEXT_VE, "model.source.head_depth": 1},
        "t2i_shapes_flatten": {**_TINY_T2I, **_TINY_TEXT_VE},
        "t2i_baseline_shapes": _TINY_T2I,
        "t2i_fashion": {**_TINY_T2I, **_TINY_TEXT_VE},
        "t2i_baseline_fashion": _TINY_T2I,
        # a folder of a dozen 32 px images (the tests make one, with a tiny CLIP and VAE): batch 8, 16 tokens
        "t2i_folder": {**_TINY_VELOCITY, **_TINY_TEXT_VE, "model.source.max_tokens": 16,
                       "train": dataclasses.replace(_TINY_TRAIN, batch_size=8), "data.image_size": 32,
                       "text.max_tokens": 16, "text.batch_size": 64, "sampling.steps": 4, "eval_pairs": 8},
        "depth_crossflow": _SMOKE_DEPTH,
        "depth_baseline": dataclasses.replace(_SMOKE_DEPTH, model=BaselineConfig(velocity=_SMOKE_DEPTH_UNET)),
        "depth_regression": dataclasses.replace(_SMOKE_DEPTH, model=RegressionConfig(network=_SMOKE_DEPTH_UNET,
                                                                                     loss="l1"),
                                                sampling=SamplingConfig(steps=2)),
        "sr_crossflow": _SMOKE_SR,
        "sr_baseline": dataclasses.replace(_SMOKE_SR, model=_SMOKE_SR_MODELS["baseline"]),
        "sr_regression": dataclasses.replace(_SMOKE_SR, model=_SMOKE_SR_MODELS["regression"]),
        "text_autoencoder_shapes": {"model.encoder.width": 32, "model.encoder.depth": 1, "model.encoder.heads": 2,
                                    "model.decoder.width": 32, "model.decoder.depth": 1, "model.decoder.heads": 2,
                                    "train": _TINY_TRAIN, "shapes": _SMOKE_RICH, "scale_samples": 64},
        "caption_crossflow": {**_TINY_CAPTION, "model.source.width": 16, "model.source.tower.channels": (8, 16),
                              "model.velocity.width": 32, "model.velocity.depth": 1, "model.velocity.heads": 2},
        "caption_baseline": {**_TINY_CAPTION, "model.velocity.width": 32, "model.velocity.depth": 1,
                             "model.velocity.heads": 2},
        "caption_direct": {**_TINY_CAPTION, "model.encoder.width": 16, "model.decoder.width": 32,
                           "model.decoder.depth": 1, "model.decoder.heads": 2},
        "caption_autoregressive": {**_TINY_CAPTION, "model.width": 32, "model.depth": 1, "model.heads": 2},
    },
}

FULL: dict[str, Any] = {
    "name": "full", "train_missing": True,
    "shapes": ShapesDataConfig(), "fashion": FashionDataConfig(), "eval_images": 4000, "t2i_demo_shapes": ShapesDataConfig(),
    "autoencoder_demo.steps": 1000, "t2i_demo.steps": 1000, "flow2d.train.steps": 4000, "scaling_demo_prompts": None,
    "t2i_eval": T2IEvalConfig(), "caption_eval.max_images": None,
}

PAPER: dict[str, Any] = {"name": "paper", "train_missing": True, "recipes": {"t2i_folder": T2I_FOLDER_PAPER}}

#: Every profile as dot-path overrides of :class:`Profile`'s defaults (the ``course`` values).
OVERRIDES: dict[str, dict[str, Any]] = {"course": {}, "smoke": SMOKE, "full": FULL, "paper": PAPER}


def profile_name() -> str:
    """The active profile's name, from ``CROSSFLOW_PROFILE`` (default ``course``)."""
    name = os.environ.get(PROFILE_ENV, DEFAULT_PROFILE).strip().lower() or DEFAULT_PROFILE
    if name not in OVERRIDES:
        raise ValueError(
            f"{PROFILE_ENV}={name!r} is not a profile; choose one of {', '.join(PROFILES)} "
            f"(e.g. `export {PROFILE_ENV}=smoke`, or `unset {PROFILE_ENV}` for the default, {DEFAULT_PROFILE})."
        )
    return name


def get_profile(name: str | None = None, device: str | torch.device | None = None,
                overrides: dict[str, Any] | None = None) -> Profile:
    """The :class:`Profile` named ``name`` (default: the one ``CROSSFLOW_PROFILE`` selects), on ``device``
    (default: :func:`~crossflow_mini.utils.get_device`'s choice), with any further dot-path ``overrides``."""
    if name is None:
        name = profile_name()
    if name not in OVERRIDES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}.")
    profile = with_overrides(Profile(), {**OVERRIDES[name], **(overrides or {})})
    return dataclasses.replace(profile, device=get_device(device))


__all__ = ["PROFILE_ENV", "PROFILES", "DEFAULT_PROFILE", "Profile", "SMOKE", "FULL", "PAPER", "OVERRIDES",
           "profile_name", "get_profile"]

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
from dataclasses import dataclass

import torch

from .autoencoder import AutoencoderConfig
from .core.baseline import BaselineConfig
from .core.crossflow import CrossFlowConfig
from .core.guidance import GuidanceConfig
from .core.source import TowerConfig
from .core.text_ve import TextVEConfig
from .core.transformer import CrossAttentionTransformerConfig, VelocityTransformerConfig
from .datasets.fashion import FashionDataConfig
from .datasets.photos import PhotoDataConfig
from .datasets.shapes import ShapesDataConfig
from .eval.classifier import ClassifierConfig
from .eval.judge import JudgeConfig
from .tasks.ablation import T2IAblationConfig
from .tasks.autoencoder import AutoencoderRecipe
from .tasks.compare import ComparisonConfig, ScalingConfig
from .tasks.fashion import ClassifierRecipe
from .tasks.flow2d import Flow2DConfig
from .tasks.judge import JudgeRecipe
from .tasks.t2i import BaselineRecipe, T2IEvalConfig, T2IRecipe
from .text_encoder import TextEncoderConfig
from .training import TrainConfig
from .utils import get_device

PROFILE_ENV = "CROSSFLOW_PROFILE"
PROFILES = ("smoke", "course", "full")
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
    t2i_eval: T2IEvalConfig
    t2i_demo: TrainConfig  # the short live training runs of notebooks 03-04
    t2i_ablation: T2IAblationConfig
    t2i_baseline_shapes: BaselineRecipe
    t2i_fashion: T2IRecipe
    t2i_baseline_fashion: BaselineRecipe
    classifier_fashion: ClassifierRecipe
    t2i_compare: ComparisonConfig
    t2i_scaling: ScalingConfig
    train_missing: bool = True  # may a notebook train a checkpoint that is neither shipped nor cached?
    n_preview: int = 8  # images per preview grid
    n_captions_demo: int = 512  # captions embedded in the notebook-00 text-encoder demo
    eval_images: int = 1000  # images used to measure reconstruction quality in a notebook
    device: torch.device = torch.device("cpu")  # set by get_profile from the machine (CROSSFLOW_DEVICE)


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
_T2I = T2IRecipe(
    model=CrossFlowConfig(
        source=TextVEConfig(width=128, depth=2, max_tokens=_T2I_TOKENS, kl_form="code"),
        velocity=VelocityTransformerConfig(width=128, depth=4, heads=4),
        guidance=GuidanceConfig(),
    ),
    train=_T2I_TRAIN, shapes=ShapesDataConfig(), text=TextEncoderConfig(max_tokens=_T2I_TOKENS), autoencoder=_AE_SHAPES)
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
_T2I_FASHION = dataclasses.replace(_T2I, train=_FASHION_TRAIN, autoencoder=_AE_FASHION)
_BASELINE_FASHION = dataclasses.replace(_BASELINE, train=_FASHION_TRAIN, autoencoder=_AE_FASHION)
_CLASSIFIER = ClassifierRecipe(
    train=TrainConfig(steps=2000, batch_size=128, lr=2e-3, betas=(0.9, 0.99), weight_decay=1e-4, warmup_steps=100,
                      lr_schedule="cosine", ema_decay=0.0, ckpt_every=500))
# Mini Fig. 3: three sizes x three lengths x two methods, six runs of 2,000 steps (the longest length).
_SCALING = ScalingConfig(train=dataclasses.replace(_T2I_TRAIN, steps=2000, ckpt_every=500))


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
    )


def _full() -> Profile:
    """The course's recipes with the full data and evaluation sizes; trains what is missing."""
    course = _course()
    return dataclasses.replace(
        course, name="full", shapes=ShapesDataConfig(), fashion=FashionDataConfig(),
        autoencoder_demo=dataclasses.replace(course.autoencoder_demo, steps=1000),
        flow2d=Flow2DConfig(train=dataclasses.replace(Flow2DConfig().train, steps=4000)),
        t2i_eval=T2IEvalConfig(), t2i_demo=dataclasses.replace(_T2I_DEMO, steps=1000), train_missing=True,
        eval_images=4000)


# ------------------------------------------------------------------------------------------------ smoke
def _smoke_t2i(shapes: ShapesDataConfig, autoencoder: AutoencoderRecipe, train: TrainConfig) -> T2IRecipe:
    return T2IRecipe(
        model=CrossFlowConfig(source=TextVEConfig(width=32, depth=1, heads=2, max_tokens=_T2I_TOKENS, kl_form="code",
                                                  tower=TowerConfig(channels=(8, 16))),
                              velocity=VelocityTransformerConfig(width=32, depth=1, heads=2, time_dim=32)),
        train=train, shapes=shapes, text=TextEncoderConfig(max_tokens=_T2I_TOKENS, batch_size=64),
        autoencoder=autoencoder, sample_steps=4)


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
    smoke_t2i = _smoke_t2i(shapes, ae_shapes, tiny_train)
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
        t2i_eval=T2IEvalConfig(scales=(1.0, 2.0), max_prompts=16, batch_size=16, solver_nfe=(2, 4)),
        t2i_demo=tiny_train,
        t2i_ablation=T2IAblationConfig(train=tiny_train, max_prompts=16),
        t2i_baseline_shapes=smoke_baseline,
        t2i_fashion=dataclasses.replace(smoke_t2i, autoencoder=ae_fashion),
        t2i_baseline_fashion=dataclasses.replace(smoke_baseline, autoencoder=ae_fashion),
        classifier_fashion=ClassifierRecipe(model=ClassifierConfig(channels=(8, 16)), train=tiny_train,
                                            fashion=fashion),
        t2i_compare=ComparisonConfig(geneval_per_kind=8, fid_samples=8, choose_samples=16, class_samples=32,
                                     scales=(1.0, 2.0), timing_batch=16, batch_size=16),
        t2i_scaling=ScalingConfig(sizes=((16, 1), (32, 1)), steps=(3, 6), train=tiny_train, geneval_per_kind=4,
                                  scales=(1.0,)),
        n_preview=4,
        n_captions_demo=16,
        eval_images=64,
    )


_BUILDERS = {"smoke": _smoke, "course": _course, "full": _full}


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

"""The studies' settings, in one low module (the profiles size them; the studies read them): what each study
compares and how big it is. The study code itself is in the module of the same name (``comparison``, ``scaling``,
``variants``, ``ablation``, ``sr``, ``captioning``, ``captioning_schedule``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..tasks.sr.recipe import SOURCES
from ..tasks.t2i.recipe import T2I_TRAIN
from ..training import TrainConfig


# ------------------------------------------------------------------------------------ text to image: comparison
@dataclass(frozen=True)
class ComparisonConfig:
    """CrossFlow against the standard flow-matching baseline at equal size and steps (mini paper Tables 1, 2, 7).

    ShapesWorld: mini-GenEval on the first ``geneval_per_kind`` test prompts of each scene kind, at each model's
    guidance scale chosen on the validation prompts. Fashion-MNIST: the scale is chosen by the class accuracy of
    ``choose_samples`` generations (no test image is involved), then class accuracy on ``class_samples``
    generations for the test captions. FID: ``fid_samples`` generations against as many real test images, beside
    the FID of two disjoint real sets of that size (the floor). ``timing_batch``: batch of the ms/image figure."""

    geneval_per_kind: int | None = 500
    fid_samples: int = 500
    choose_samples: int = 500
    class_samples: int = 2000
    scales: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
    timing_batch: int = 250
    batch_size: int = 250
    seed: int = 0


# ------------------------------------------------------------------------------------------ text to image: scaling
@dataclass(frozen=True)
class ScalingConfig:
    """The mini paper Fig. 3: both methods at several sizes, each judged after several training lengths.

    ``sizes`` are (width, depth) of CrossFlow's velocity transformer; its Text VE has the same width. Each
    baseline gets the same depth and the width whose parameter count is closest to CrossFlow's (Text VE and
    image tower included). One run per (method, size) trains for ``max(steps)`` steps; its EMA weights are
    judged when each length in ``steps`` is reached (the learning rate is constant after warm-up, so the point at
    step s is what a run of s steps gives). Score: mini-GenEval overall on ``geneval_per_kind`` test prompts per
    scene kind, at every guidance scale in ``scales`` (all are stored; none is chosen on the test prompts)."""

    sizes: tuple[tuple[int, int], ...] = ((64, 2), (96, 3), (128, 4))
    steps: tuple[int, ...] = (500, 1000, 2000)
    train: TrainConfig = dataclasses.replace(T2I_TRAIN, steps=2000, ckpt_every=500)
    geneval_per_kind: int | None = 200
    scales: tuple[float, ...] = (1.0, 3.0)


# ------------------------------------------------------------------------------------------ text to image: variants
#: Each variant: a label -> overrides {"source": {...}, "velocity": {...}} of the base CrossFlow recipe.
DEFAULT_VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {"source": {"head": "flatten", "kl_form": "paper"}},
    "code_kl": {"source": {"head": "flatten", "kl_form": "code"}},
    "patch_queries": {"source": {"head": "patch_queries", "kl_form": "code"}},
    "patch_queries_align": {"source": {"head": "patch_queries", "kl_form": "code", "align_weight": 1.0}},
    "patch_queries_align_low_noise": {"source": {"head": "patch_queries", "kl_form": "code", "align_weight": 1.0,
                                                 "kl_weight": 1e-3}},
    "patch_queries_align_strong": {"source": {"head": "patch_queries", "kl_form": "code", "align_weight": 4.0}},
    "patch_queries_align_hard_negatives": {"source": {"head": "patch_queries", "kl_form": "code",
                                                      "align_weight": 1.0, "hard_negatives": 1}},
    "patch_queries_align_rich": {"source": {"head": "patch_queries", "kl_form": "code", "align_weight": 1.0},
                                 "shapes": {"vocabulary": "rich"}},
}
#: The baseline rows: label -> overrides {"shapes": {...}} of the baseline recipe (its network is never changed).
BASELINE_VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "baseline": {},
    "baseline_rich": {"shapes": {"vocabulary": "rich"}},
}


@dataclass(frozen=True)
class VariantsConfig:
    """The variants study: ``variants`` and ``baselines`` (label -> overrides, as tuples of (label, JSON-ready
    overrides) pairs), one training budget for all, the guidance scales and prompts judged, and the sample-spread
    probe (``spread_prompts`` single-object test prompts, ``spread_seeds`` draws of each)."""

    variants: tuple[tuple[str, Any], ...] = tuple((k, v) for k, v in DEFAULT_VARIANTS.items())
    baselines: tuple[tuple[str, Any], ...] = tuple((k, v) for k, v in BASELINE_VARIANTS.items())
    train: TrainConfig = TrainConfig(steps=2000, batch_size=128, lr=1e-3, warmup_steps=200, ema_decay=0.995,
                                     ckpt_every=500, log_every=25)
    scales: tuple[float, ...] = (1.0, 3.0)
    geneval_per_kind: int | None = 200
    spread_prompts: int = 50
    spread_seeds: int = 4


# ------------------------------------------------------------------------ text to image: composition vs arithmetic
@dataclass(frozen=True)
class TradeoffConfig:
    """The trade-off study (:mod:`crossflow_mini.studies.tradeoff`): a grid of ``align_weights`` x ``kl_weights``
    of the shipped Text VE and the ``(align, kl)`` pairs of ``extra_pairs`` (a second KL weight at a few alignment
    weights), plus the paper's head and the baseline, all on the ``vocabulary`` captions with one training budget; mini-GenEval on ``geneval_per_kind`` validation and test prompts per scene kind at each scale
    of ``scales``; Table-8 arithmetic on ``arithmetic_cases`` cases per kind, drawn with ``val_seed`` (validation)
    and ``test_seed`` (test - the seed of the arithmetic study's cases)."""

    align_weights: tuple[float, ...] = (0.0, 0.1, 0.3, 1.0)
    #: the shipped model's KL weight, and the public code's default (1e-2: a noisier source)
    kl_weights: tuple[float, ...] = (1e-3, 1e-2)
    extra_pairs: tuple[tuple[float, float], ...] = ()  # (align, kl) pairs beyond the grid
    vocabulary: str = "rich"
    train: TrainConfig = TrainConfig(steps=2000, batch_size=128, lr=1e-3, warmup_steps=200, ema_decay=0.995,
                                     ckpt_every=500, log_every=25)
    scales: tuple[float, ...] = (1.0, 2.0)
    geneval_per_kind: int | None = 200
    arithmetic_cases: int = 100
    val_seed: int = 1
    test_seed: int = 0
    seed: int = 0


# ------------------------------------------------------------------------------------------ text to image: ablation
@dataclass(frozen=True)
class T2IAblationConfig:
    """The mini version of paper Table 3a (how the text becomes z0) and Table 3b (the Text VE's loss): every run
    shares the shipped model sizes and one short training run, and is judged like the shipped model.

    The paper's Table 3a rows all use the text-reconstruction loss (its VE row, FID 40.78, is the same run as the
    text-reconstruction row of Table 3b), so ``variant_loss`` is ``"text_recon"`` and that run is shared."""

    train: TrainConfig = dataclasses.replace(T2I_TRAIN, steps=1200, ema_decay=0.99)
    variants: tuple[str, ...] = ("plain", "noise", "ve")  # Table 3a, each with ``variant_loss``
    variant_loss: str = "text_recon"
    enc_losses: tuple[str, ...] = ("text_recon", "text_text", "image_text")  # Table 3b, each with the VE
    scale: float = 1.0  # guidance scale used to judge every run
    max_prompts: int | None = 400


# ------------------------------------------------------------------------------------------------ super-resolution
@dataclass(frozen=True)
class SRStudyConfig:
    """The ``sr`` study: the shipped models, plus the CrossFlow source variants (``sources``) and regression losses
    (``regression_losses``) that the shipped ones do not cover, each trained with the shipped recipe's run."""

    sources: tuple[str, ...] = SOURCES
    regression_losses: tuple[str, ...] = ("l1", "l2")

    def __post_init__(self) -> None:
        bad = [s for s in self.sources if s not in SOURCES]
        if bad:
            raise ValueError(f"unknown CrossFlow sources {bad}; choose from {SOURCES}")


# --------------------------------------------------------------------------------- training dynamics (SR, depth)
@dataclass(frozen=True)
class DynamicsConfig:
    """One training-dynamics study (:mod:`crossflow_mini.studies.dynamics`): ``rows`` are ``(label, checkpoint,
    overrides)`` - the shipped recipe ``checkpoint`` with dot-path ``overrides`` (as ``((path, value), ...)``); each
    is scored on ``val_items`` validation items at every step of ``snapshots`` (0 = the untrained network), with
    guidance w = 1 and the recipe's Euler steps, and at the end with every count of ``final_steps``."""

    task: str = "sr"
    rows: tuple[tuple[str, str, tuple[tuple[str, Any], ...]], ...] = ()
    snapshots: tuple[int, ...] = (0, 100, 200, 400, 600, 900, 1200)
    val_items: int | None = 256  # None: every validation item
    final_steps: tuple[int, ...] = (1, 2, 3, 5, 10, 20)
    seed: int = 0


_ZERO_OUT = ("model.velocity.zero_out", True)
#: The super-resolution levers: the shipped recipe, an identity start, learning rates, no unconditional share, the
#: logit-normal time sampler; standard flow matching and regression as reference curves.
SR_LEVERS: tuple[tuple[str, str, tuple[tuple[str, Any], ...]], ...] = (
    ("shipped", "sr_crossflow", ()),
    ("identity_start", "sr_crossflow", (_ZERO_OUT,)),
    ("identity_start_lr3e-4", "sr_crossflow", (_ZERO_OUT, ("train.lr", 3e-4))),
    ("identity_start_lr1e-4", "sr_crossflow", (_ZERO_OUT, ("train.lr", 1e-4))),
    ("identity_start_lr3e-4_no_uncond", "sr_crossflow", (_ZERO_OUT, ("train.lr", 3e-4),
                                                         ("model.guidance.p_uncond", 0.0))),
    ("identity_start_lr3e-4_logit_normal", "sr_crossflow", (_ZERO_OUT, ("train.lr", 3e-4),
                                                            ("model.time_sampler", "logit_normal"))),
    ("flow_matching", "sr_baseline", ()),
    ("flow_matching_lr3e-4", "sr_baseline", (("train.lr", 3e-4),)),
    ("regression", "sr_regression", ()),
    ("regression_lr3e-4", "sr_regression", (("train.lr", 3e-4),)),
)
#: The rows measured so far (about 20 minutes each on one core): an identity start at a tenfold smaller learning
#: rate, and one without the unconditional share; add a lever's label here to measure it too.
SR_MEASURED = ("identity_start_lr1e-4", "identity_start_lr3e-4_no_uncond")
SR_DYNAMICS = DynamicsConfig(task="sr", val_items=None, rows=tuple(r for r in SR_LEVERS if r[0] in SR_MEASURED))
#: The depth levers (the shipped 2,000-step recipe): learning rate, no unconditional share, an identity start
#: (step 0 returns the Image VE's mean); regression as the reference curve.
DEPTH_DYNAMICS = DynamicsConfig(task="depth", snapshots=(0, 250, 500, 1000, 1500, 2000), final_steps=(1, 2, 5, 10),
                                rows=(
    ("shipped", "depth_crossflow", ()),
    ("lr3e-4", "depth_crossflow", (("train.lr", 3e-4),)),
    ("no_uncond", "depth_crossflow", (("model.guidance.p_uncond", 0.0),)),
    ("identity_start", "depth_crossflow", (_ZERO_OUT,)),
    ("regression", "depth_regression", ()),
))


# ------------------------------------------------------------------------------------------------------ captioning
@dataclass(frozen=True)
class CaptioningStudyConfig:
    """``cycle_per_kind``: test scenes of each kind sent round the cycle (0: no cycle); ``cycle_captioner``: the
    captioner that reads the generated images; ``cycle_scale``: the text-to-image guidance scale (None: the one
    the text-to-image model chose on validation prompts)."""

    cycle_per_kind: int = 100
    cycle_captioner: str = "caption_crossflow"
    cycle_scale: float | None = None
    seed: int = 0


@dataclass(frozen=True)
class ScheduleConfig:
    """Both runs: ``steps`` of the shipped captioner's training run (the rest of it unchanged); scored on the first
    ``val_images`` validation images at w = 1 and at ``scale`` (4, the guidance weight the stored study was measured
    at; the shipped captioner's own weight, chosen on validation images, is 2)."""

    steps: int = 1500
    val_images: int = 500
    scale: float = 4.0


__all__ = ["TradeoffConfig", "DynamicsConfig", "SR_DYNAMICS", "DEPTH_DYNAMICS", "ComparisonConfig", "ScalingConfig", "DEFAULT_VARIANTS", "BASELINE_VARIANTS", "VariantsConfig",
           "T2IAblationConfig", "SRStudyConfig", "CaptioningStudyConfig", "ScheduleConfig"]

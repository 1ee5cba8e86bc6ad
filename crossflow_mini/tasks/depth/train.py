"""Monocular depth: CrossFlow from an RGB image to its depth map, against two baselines (paper Sec. 5.5, Table 5).

Three methods, one recipe class (:class:`DepthRecipe`), one code path - they differ only in the model config:

* **CrossFlow** (:class:`~crossflow_mini.core.crossflow.CrossFlowConfig`): an Image VE maps the RGB image
  ``(3, S, S)`` to a Gaussian in the depth map's shape ``(1, S, S)``; a UNet velocity network (``diffusers``'
  ``UNet2DModel``, no condition input) carries the sample z0 to the depth target along the straight path; CFG through
  the indicator; Euler steps. The paper works in pixel space for depth, as we do. Optionally the prediction is the
  mean of ``n_samples`` flows from independent draws of z0.

  Choices (the paper says little about its depth Image VE; measured trials in docs/MEASUREMENTS.md, "Depth"): the
  KL is the paper's form with a weak weight (the KL is summed over the S * S depth pixels, so the paper's 1e-4 keeps
  sigma near 1 at 32 x 32 and the flow must start from noise); ``align_weight`` (ours) adds ||mu - y||^2 so that the
  source already looks like the depth map; the paper's other encoder loss, the contrastive one, stays an option
  (``ImageVEConfig(enc_loss="contrastive")``); the Image VE's residual form does not apply (3 channels in, 1 out).
  The UNet rather than the patch transformer, although the transformer trains faster per CPU second: the baselines
  read the image through concatenated channels, which only the UNet offers, and one network family keeps the
  comparison at matched parameters and steps clean.
* **standard flow matching** (:class:`~crossflow_mini.core.baseline.BaselineConfig`, Marigold-style): Gaussian noise
  -> depth, the RGB image concatenated to z_t as three extra input channels; CFG by zeroing them.
* **regression** (:class:`~crossflow_mini.core.regression.RegressionConfig`): the baseline's very network called
  once with z_t = 0, t = 0, predicting the target directly (L1 - ours; the paper does not say which loss its
  regression baseline used).

The target is DepthWorld's normalised log depth in [-1, 1] (:func:`~crossflow_mini.datasets.depthworld.
depth_to_target`: a fixed target error is one relative depth error at every distance, which is what AbsRel and
delta1 measure). Averaging several samples happens in that space (a geometric mean of depths).

Evaluation (:mod:`crossflow_mini.eval.depth`, written once and tested in closed form): AbsRel, SqRel, RMSE, log-RMSE,
delta < 1.25^k, per image then averaged over images - as predicted (metric depth, the paper's KITTI / NYUv2 setting),
and after a per-image least-squares scale and shift in depth and in inverse depth. The guidance scale is *chosen* on
the validation split (lowest unaligned AbsRel) and *reported* on the test split. Zero-shot: the real Middlebury
Motorcycle (:mod:`crossflow_mini.datasets.stereo`), aligned in inverse depth as Marigold and the paper's Table 9 do.

Every function takes a ``device`` (default: :func:`crossflow_mini.utils.get_device`); models and batches go there,
predictions come back on the CPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ...checkpoints import run_dir
from ...core.baseline import BaselineConfig
from ...core.build import build_model
from ...core.crossflow import CrossFlowConfig
from ...core.guidance import GuidanceConfig
from ...core.image_ve import ImageVEConfig
from ...core.params import parameter_report, sampling_parameters
from ...core.regression import RegressionConfig
from ...core.sampling import METHODS as SAMPLERS
from ...core.unet import UNetVelocityConfig
from ...datasets import stereo
from ...datasets.depthworld import DepthWorldConfig, DepthWorldSplit, load_depthworld, target_to_depth
from ...eval.depth import METRIC_NAMES, PAPER_TABLE5, depth_metrics
from ...training import EpochBatches, TrainConfig, TrainResult, train
from ...utils import get_device

Device = torch.device | str | None
DepthModelConfig = CrossFlowConfig | BaselineConfig | RegressionConfig
#: The three methods, in the order tables list them.
METHODS: tuple[str, ...] = ("crossflow", "baseline", "regression")
#: How a prediction is compared with the truth: as predicted, and after a least-squares scale and shift in depth or
#: in inverse depth (``crossflow_mini.eval.depth``'s ``align`` argument).
ALIGNMENTS: dict[str, str | None] = {"unaligned": None, "aligned_depth": "depth", "aligned_inverse": "inverse"}
RGB_CHANNELS = 3
DEPTH_CHANNELS = 1
ROUND = 5  # decimals kept in the results files


def method_of(cfg: DepthModelConfig) -> str:
    """``"crossflow"``, ``"baseline"`` or ``"regression"`` for a model config."""
    if isinstance(cfg, CrossFlowConfig):
        return "crossflow"
    if isinstance(cfg, BaselineConfig):
        return "baseline"
    if isinstance(cfg, RegressionConfig):
        return "regression"
    raise TypeError(f"no depth method for a {type(cfg).__name__}; use CrossFlowConfig, BaselineConfig or "
                    f"RegressionConfig")


def crossflow_depth_config(image_size: int = 32, *, ve_width: int = 32, ve_blocks: int = 1,
                           channels: tuple[int, ...] = (32, 64, 64), kl_weight: float | None = None,
                           align_weight: float = 0.0, p_uncond: float = 0.1, scale: float = 1.0,
                           attention: bool = True) -> CrossFlowConfig:
    """CrossFlow for depth at ``image_size``: Image VE ``(3, S, S) -> (1, S, S)`` (``ve_blocks`` residual blocks of
    ``ve_width`` channels at full resolution, conv head; ``residual`` does not apply, RGB and depth differ in channels)
    + a UNet velocity network with ``channels`` per resolution. ``kl_weight=None`` is the paper's 1e-4;
    ``align_weight`` weighs ||mu - y||^2 (ours); ``scale`` is the default guidance scale (1: no guidance)."""
    shape = (DEPTH_CHANNELS, image_size, image_size)
    source = ImageVEConfig(in_shape=(RGB_CHANNELS, image_size, image_size), latent_shape=shape, width=ve_width,
                           blocks=ve_blocks, head="conv", kl_weight=kl_weight, align_weight=align_weight)
    velocity = UNetVelocityConfig(latent_shape=shape, block_out_channels=tuple(channels), attention=attention)
    return CrossFlowConfig(source=source, velocity=velocity, guidance=GuidanceConfig(p_uncond=p_uncond, scale=scale))


def conditioned_unet(image_size: int = 32, channels: tuple[int, ...] = (32, 64, 64),
                     attention: bool = True) -> UNetVelocityConfig:
    """The UNet of both baselines: depth-shaped z_t with the RGB image concatenated (3 condition channels)."""
    return UNetVelocityConfig(latent_shape=(DEPTH_CHANNELS, image_size, image_size), cond_channels=RGB_CHANNELS,
                              block_out_channels=tuple(channels), attention=attention)


@dataclass(frozen=True)
class DepthRecipe:
    """Everything that determines a depth checkpoint: the model (CrossFlow, the standard flow-matching baseline or
    the regression baseline), the training run and the DepthWorld data; ``sample_steps`` / ``sampler`` are the ODE
    settings and ``n_samples`` the number of flows averaged into one prediction (flow models only)."""

    model: DepthModelConfig = crossflow_depth_config()
    train: TrainConfig = TrainConfig()
    data: DepthWorldConfig = DepthWorldConfig()
    sample_steps: int = 10
    sampler: str = "euler"
    n_samples: int = 1

    def __post_init__(self) -> None:
        s = self.data.image_size
        shape = (DEPTH_CHANNELS, s, s)
        method = method_of(self.model)
        net = self.model.network if method == "regression" else self.model.velocity
        if tuple(net.latent_shape) != shape:
            raise ValueError(f"DepthWorld at {s} x {s} has depth targets of shape {shape}, but the {method} network "
                             f"makes {tuple(net.latent_shape)}: set latent_shape={shape}")
        if method == "crossflow":
            src = self.model.source
            if not isinstance(src, ImageVEConfig) or tuple(src.in_shape) != (RGB_CHANNELS, s, s):
                raise ValueError(f"CrossFlow for depth needs an ImageVEConfig reading ({RGB_CHANNELS}, {s}, {s}) "
                                 f"images, got {src}")
        elif not isinstance(net, UNetVelocityConfig) or net.cond_channels != RGB_CHANNELS:
            raise ValueError(f"the {method} baseline reads the RGB image as {RGB_CHANNELS} concatenated channels: "
                             f"use a UNetVelocityConfig with cond_channels={RGB_CHANNELS}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; choose one of {SAMPLERS}")
        for name in ("sample_steps", "n_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DepthRecipe.{name} must be a positive integer, got {value!r}")

    @property
    def method(self) -> str:
        return method_of(self.model)


@dataclass(frozen=True)
class DepthEvalConfig:
    """How depth models are measured. ``scales``: the guidance sweep on the validation split (flow models; the
    lowest unaligned AbsRel wins, ties to the smaller w); ``val_images`` / ``test_images`` cap the splits (None:
    all); ``sample_counts``: the averaging sweep on validation images at the chosen scale; ``step_counts``: the
    Euler-steps sweep there; ``timing_images``: the batch timed for ms/image."""

    scales: tuple[float, ...] = (0.0, 1.0, 1.5, 2.0)
    val_images: int | None = 500
    test_images: int | None = None
    sample_counts: tuple[int, ...] = (1, 2, 4, 8)
    step_counts: tuple[int, ...] = (1, 2, 5, 10, 20)
    batch_size: int = 250
    timing_images: int = 64
    seed: int = 0


@dataclass
class DepthData:
    """One DepthWorld split ready for the models: images ``(N, 3, S, S)`` in [-1, 1], targets ``(N, 1, S, S)`` in
    [-1, 1] (normalised log depth) and the depth in metres ``(N, 1, S, S)``; ``split`` keeps the scenes."""

    split: DepthWorldSplit
    images: torch.Tensor
    target: torch.Tensor
    depth: torch.Tensor

    def __len__(self) -> int:
        return len(self.images)


def prepare(recipe: DepthRecipe, split: str, max_images: int | None = None) -> DepthData:
    """The recipe's DepthWorld ``split`` (train / val / test) as tensors; the first ``max_images`` if given."""
    data = load_depthworld(split, recipe.data)
    if max_images is not None and max_images < len(data):
        data = data.subset(np.arange(max_images))
    depth = data.depth_tensor()
    return DepthData(data, data.images_tensor(), data.target_tensor(), depth)


def training_batches(data: DepthData, cfg: TrainConfig) -> Callable[[int], tuple[torch.Tensor, torch.Tensor]]:
    """``step -> (images, depth targets)``: a pure function of ``(seed, step)`` (exact resume)."""
    batches = EpochBatches(len(data), cfg.batch_size, cfg.seed)

    def batch_fn(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = batches(step)
        return data.images[idx], data.target[idx]

    return batch_fn


def depth_loss(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]):
    """The training loss of an (image, depth target) batch as the training loop wants it: ``(total, logs)`` -
    CrossFlow's L_FM + L_Enc + lambda L_KL, the baseline's L_FM, or the regression loss."""
    out = model.loss(*batch)
    return out.total, out.logs


def fit(recipe: DepthRecipe, data: DepthData, *, name: str | None = None, resume: bool = True,
        callback: Callable[[int, dict[str, float]], None] | None = None, desc: str | None = None,
        device: Device = None) -> TrainResult:
    """Train the recipe's model on prepared data (checkpointed and resumable when ``name`` is given); use ``.ema``
    of the result for prediction."""
    torch.manual_seed(recipe.train.seed)
    model = build_model(recipe.model)
    return train(model, depth_loss, training_batches(data, recipe.train), recipe.train,
                 run_dir=run_dir(name, recipe) if name else None, resume=resume, callback=callback,
                 desc=desc or recipe.method, device=get_device(device))


# -------------------------------------------------------------------------------------------------- predicting
@torch.no_grad()
def predict(model: torch.nn.Module, images: torch.Tensor, *, guidance_scale: float | None = None, steps: int = 10,
            method: str = "euler", n_samples: int = 1, seed: int = 0, batch_size: int = 250,
            device: Device = None) -> torch.Tensor:
    """Depth targets ``(N, 1, S, S)`` (normalised log depth, on the CPU) for images ``(N, 3, S, S)`` in [-1, 1].

    Flow models: the mean of ``n_samples`` guided flows (z0 drawn with one CPU generator seeded by ``seed``, so the
    same numbers on any device); ``guidance_scale=None`` is the model's default. The regression model predicts once
    (``guidance_scale``, ``steps``, ``n_samples`` do not apply)."""
    device = get_device(device)
    model.to(device)
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    if not hasattr(model, "flow"):  # the regression model: deterministic, one evaluation
        n_samples = 1
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size].to(device)
        acc = None
        for _ in range(n_samples):
            y = model.generate(x, guidance_scale=guidance_scale, steps=steps, method=method, generator=g).sample
            acc = y if acc is None else acc + y
        out.append((acc / n_samples).cpu())
    return torch.cat(out)


def predict_depth(model: torch.nn.Module, images: torch.Tensor, **kw: Any) -> torch.Tensor:
    """:func:`predict` mapped to metres (``target_to_depth``: clipped to DepthWorld's [0.5, 20] m)."""
    return target_to_depth(predict(model, images, **kw))


def score(pred_depth: Any, gt_depth: Any, mask: Any = None,
          alignments: Sequence[str] = tuple(ALIGNMENTS)) -> dict[str, dict[str, float]]:
    """``{alignment: {metric: value}}`` for predicted vs true depth (metres), rounded for the results files."""
    return {a: {k: round(v, ROUND) for k, v in depth_metrics(pred_depth, gt_depth, mask, ALIGNMENTS[a]).items()}
            for a in alignments}


def _kw(recipe: DepthRecipe, eval_cfg: DepthEvalConfig, device: Device, **over: Any) -> dict[str, Any]:
    kw = dict(steps=recipe.sample_steps, method=recipe.sampler, n_samples=recipe.n_samples, seed=eval_cfg.seed,
              batch_size=eval_cfg.batch_size, device=device)
    return kw | over


def evaluate_split(model: torch.nn.Module, data: DepthData, *, alignments: Sequence[str] = tuple(ALIGNMENTS),
                   **kw: Any) -> dict[str, Any]:
    """The metrics of one prediction run over a prepared split (``kw`` go to :func:`predict`)."""
    t0 = time.perf_counter()
    pred = predict_depth(model, data.images, **kw)
    res: dict[str, Any] = score(pred, data.depth, alignments=alignments)
    res["n_images"] = len(data)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    return res


def evaluate_motorcycle(model: torch.nn.Module, image_size: int, **kw: Any) -> dict[str, Any]:
    """Zero-shot on the real Middlebury Motorcycle at the model's input size (centre square, area-averaged;
    :func:`crossflow_mini.datasets.stereo.model_input`). The headline is ``aligned_inverse`` (least squares in
    inverse depth, the Marigold / Table 9 protocol); unaligned numbers are meaningless here (another camera, another
    scale) and are kept only to show that."""
    sample = stereo.model_input(image_size)
    pred = predict_depth(model, sample.image_tensor(), **kw)
    res: dict[str, Any] = score(pred, sample.depth_tensor(), sample.valid_tensor())
    res["valid_pixels"] = int(sample.valid.sum())
    res["gt_depth_range_m"] = [round(float(np.nanmin(sample.depth)), 3), round(float(np.nanmax(sample.depth)), 3)]
    return res


def references(recipe: DepthRecipe, test: DepthData) -> dict[str, Any]:
    """What a model that ignores the image scores - the floor every method must clear:

    * ``train_mean_map``: the per-pixel mean target of the training split (a fixed depth map: ground below, far
      above), on ``test``, as predicted and aligned;
    * ``motorcycle_constant``: a constant depth on the Motorcycle, aligned in inverse depth (the alignment then
      fits the mean inverse depth: any affine-invariant score must beat this to mean anything)."""
    mean_map = prepare(recipe, "train").target.mean(0, keepdim=True).expand_as(test.target)
    sample = stereo.model_input(recipe.data.image_size)
    constant = np.ones(sample.valid.shape, dtype=np.float32)
    return {"train_mean_map": score(target_to_depth(mean_map), test.depth) | {"n_images": len(test)},
            "motorcycle_constant": score(constant, sample.depth, sample.valid)}


def choose_scale(sweep: dict[str, dict[str, Any]], metric: str = "abs_rel") -> float:
    """The guidance scale with the lowest unaligned ``metric`` in a sweep ``{"w=1": {"unaligned": {...}}, ...}``
    (ties: the scale nearest 1, which needs one network call per step instead of two)."""
    best = min(sweep, key=lambda k: (sweep[k]["unaligned"][metric], abs(float(k[2:]) - 1.0)))
    return float(best[2:])


def ms_per_image(model: torch.nn.Module, images: torch.Tensor, **kw: Any) -> float:
    """Wall milliseconds per image of :func:`predict` on ``images`` (one warm-up call first)."""
    predict(model, images[:2], **kw)
    t0 = time.perf_counter()
    predict(model, images, **kw)
    return round(1000 * (time.perf_counter() - t0) / len(images), 2)


def is_flow(model_or_recipe: Any) -> bool:
    """Whether a model (or recipe) samples by a flow (CrossFlow, baseline) rather than regressing once."""
    cfg = getattr(model_or_recipe, "model", None) or getattr(model_or_recipe, "cfg", None)
    return not isinstance(cfg, RegressionConfig)


def evaluate_depth(model: torch.nn.Module, recipe: DepthRecipe, eval_cfg: DepthEvalConfig = DepthEvalConfig(),
                   device: Device = None) -> dict[str, Any]:
    """The numbers of a depth checkpoint: a guidance sweep on validation images (which picks w; flow models),
    averaging and Euler-steps sweeps there, the test split at the chosen w (as predicted and aligned), w = 1 on the
    test split for comparison, the Motorcycle zero-shot, parameters and ms/image."""
    model.eval()
    val = prepare(recipe, "val", eval_cfg.val_images)
    test = prepare(recipe, "test", eval_cfg.test_images)
    flow = is_flow(recipe)
    out: dict[str, Any] = {
        "method": recipe.method, "parameters": parameter_report(model), "sampling_parameters":
            sampling_parameters(model),
        "sampler": {"method": recipe.sampler, "steps": recipe.sample_steps, "n_samples": recipe.n_samples}
        if flow else None,
    }
    chosen = 1.0
    if flow:
        out["val_sweep"] = {f"w={w:g}": evaluate_split(model, val, alignments=("unaligned",),
                                                       **_kw(recipe, eval_cfg, device, guidance_scale=w))
                            for w in eval_cfg.scales}
        chosen = choose_scale(out["val_sweep"])
        out["val_samples_sweep"] = {
            f"n={n}": evaluate_split(model, val, alignments=("unaligned",),
                                     **_kw(recipe, eval_cfg, device, guidance_scale=chosen, n_samples=n))
            for n in eval_cfg.sample_counts}
        out["val_steps_sweep"] = {
            f"steps={s}": evaluate_split(model, val, alignments=("unaligned",),
                                         **_kw(recipe, eval_cfg, device, guidance_scale=chosen, steps=s))
            for s in eval_cfg.step_counts}
    out["chosen_scale"] = chosen
    kw = _kw(recipe, eval_cfg, device, guidance_scale=chosen)
    out["test"] = evaluate_split(model, test, **kw)
    if flow and chosen != 1.0:
        out["test_cfg_off"] = evaluate_split(model, test, **_kw(recipe, eval_cfg, device, guidance_scale=1.0))
    out["motorcycle"] = evaluate_motorcycle(model, recipe.data.image_size, **kw)
    out["ms_per_image"] = ms_per_image(model, test.images[:eval_cfg.timing_images], **kw)
    out["paper_table5"] = PAPER_TABLE5
    return out


def fit_and_time(recipe: DepthRecipe, name: str | None, device: Device = None) -> tuple[TrainResult, dict[str, Any]]:
    """Prepare the training split, train (resumable), and report the time and final losses of the run."""
    data = prepare(recipe, "train")
    t0 = time.perf_counter()
    result = fit(recipe, data, name=name, device=device)
    seconds = time.perf_counter() - t0
    metrics: dict[str, Any] = {
        "train_seconds_this_run": round(seconds, 1), "train_steps": recipe.train.steps,
        "resumed_from_step": result.resumed_from,
        "train_seconds_all_parts": None if result.seconds is None else round(result.seconds, 1),
        "final_losses": {k: round(v[-1], 5) for k, v in result.history.items() if v and k != "step"},
        "device": str(get_device(device)), "torch_threads": torch.get_num_threads(),
    }
    if result.resumed_from == 0 and seconds > 0:
        metrics["seconds_per_step"] = round(seconds / recipe.train.steps, 4)
    return result, metrics


def train_depth(recipe: DepthRecipe, eval_cfg: DepthEvalConfig = DepthEvalConfig(), name: str | None = None,
                device: Device = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Prepare, train (resumable) and measure; returns ``(EMA model, metrics)``."""
    result, metrics = fit_and_time(recipe, name, device)
    metrics |= evaluate_depth(result.ema, recipe, eval_cfg, device)
    return result.ema, metrics


# ------------------------------------------------------------------------------------------------------ study
#: The checkpoint names of the study, by method.
CHECKPOINTS: dict[str, str] = {"crossflow": "depth_crossflow", "baseline": "depth_baseline",
                               "regression": "depth_regression"}


def run_study(find: Callable[[str], tuple[torch.nn.Module, dict[str, Any]]], recipes: dict[str, DepthRecipe],
              eval_cfg: DepthEvalConfig, device: Device = None) -> dict[str, Any]:
    """``data/results/depth.json``: every depth checkpoint (``find(name) -> (model, meta)``) on the DepthWorld test
    split, as predicted and aligned, at the guidance scale chosen on validation images when it was trained, and
    zero-shot on the Motorcycle; with parameters, training time, ms/image and the paper's Table 5 beside them."""
    out: dict[str, Any] = {"paper_table5": PAPER_TABLE5, "metrics": list(METRIC_NAMES),
                           "alignments": {k: v for k, v in ALIGNMENTS.items()}, "methods": {}}
    first = next(iter(recipes.values()))
    test = prepare(first, "test", eval_cfg.test_images)
    out["references"] = references(first, test)
    for method, name in CHECKPOINTS.items():
        if name not in recipes:
            continue
        recipe = recipes[name]
        model, meta = find(name)
        m = meta.get("metrics", {})
        scale = float(m.get("chosen_scale", 1.0))
        kw = _kw(recipe, eval_cfg, device, guidance_scale=scale)
        out["methods"][method] = {
            "checkpoint": name, "parameters": parameter_report(model)["total"],
            "sampling_parameters": sampling_parameters(model),
            "train_seconds": m.get("train_seconds_all_parts") or m.get("train_seconds_this_run"),
            "train_steps": recipe.train.steps, "batch_size": recipe.train.batch_size,
            "seconds_per_step": m.get("seconds_per_step"), "torch_threads": m.get("torch_threads"),
            "guidance_scale": scale if is_flow(recipe) else None,
            "sampler": {"method": recipe.sampler, "steps": recipe.sample_steps, "n_samples": recipe.n_samples}
            if is_flow(recipe) else None,
            "test": evaluate_split(model, test, **kw),
            "motorcycle": evaluate_motorcycle(model, recipe.data.image_size, **kw),
            "ms_per_image": ms_per_image(model, test.images[:eval_cfg.timing_images], **kw),
        }
    return out


def readme_table(results: dict[str, Any]) -> str:
    """The README's depth table from ``data/results/depth.json``'s metrics (nothing typed by hand)."""
    rows = ["| method | params | train | DepthWorld AbsRel | delta1 | AbsRel, aligned (depth) | delta1, aligned | "
            "Motorcycle AbsRel, aligned (inverse) | delta1 | ms/image |", "|---|---|---|---|---|---|---|---|---|---|"]
    for method, r in results["methods"].items():
        t, mc = r["test"], r["motorcycle"]["aligned_inverse"]
        train_s = r.get("train_seconds")
        rows.append(f"| {method} | {r['parameters'] / 1e6:.2f}M | {r['train_steps']} steps"
                    f"{'' if train_s is None else f', {train_s / 60:.0f} min'} | {t['unaligned']['abs_rel']:.3f} | "
                    f"{t['unaligned']['delta1']:.3f} | {t['aligned_depth']['abs_rel']:.3f} | "
                    f"{t['aligned_depth']['delta1']:.3f} | {mc['abs_rel']:.3f} | {mc['delta1']:.3f} | "
                    f"{r['ms_per_image']:.1f} |")
    ref = results.get("references")
    if ref:
        t, mc = ref["train_mean_map"], ref["motorcycle_constant"]["aligned_inverse"]
        rows.append(f"| reference: mean depth map / constant (ignores the image) | - | - | "
                    f"{t['unaligned']['abs_rel']:.3f} | {t['unaligned']['delta1']:.3f} | "
                    f"{t['aligned_depth']['abs_rel']:.3f} | {t['aligned_depth']['delta1']:.3f} | "
                    f"{mc['abs_rel']:.3f} | {mc['delta1']:.3f} | - |")
    for ds, p in results["paper_table5"].items():
        rows.append(f"| paper CrossFlow, {ds} (Table 5, reference) | - | - | {p['abs_rel']:.3f} | {p['delta1']:.3f} "
                    f"| - | - | - | - | - |")
    return "\n".join(rows)


__all__ = ["METHODS", "ALIGNMENTS", "CHECKPOINTS", "DepthRecipe", "DepthEvalConfig", "DepthData", "method_of",
           "crossflow_depth_config", "conditioned_unet", "prepare", "training_batches", "depth_loss", "fit",
           "predict", "predict_depth", "score", "evaluate_split", "evaluate_motorcycle", "references", "choose_scale",
           "ms_per_image", "is_flow", "evaluate_depth", "fit_and_time", "train_depth", "run_study", "readme_table"]

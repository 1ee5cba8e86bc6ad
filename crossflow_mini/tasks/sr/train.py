"""Super-resolution: 4x, flowing from the upsampled low-resolution image (paper Sec. 5.6, Table 6).

The paper's source for super-resolution is **the bicubic upsampling of the low-resolution (LR) image itself**: it
already has the target's shape, so no encoder is needed to bring it there, and the flow only has to add what the
blur took away (CROSSFLOW_NOTES Sec. 7). One :class:`~crossflow_mini.core.crossflow.CrossFlowModel` with a
``diffusers.UNet2DModel`` velocity network does it; the source encoder is the one choice the paper's Table 3a asks
about, now for an intra-modal task (:data:`SOURCES`):

==========  ================================================================  =====================================
source      z0                                                                config
==========  ================================================================  =====================================
``none``    the upsampled image x_up (the paper's noise-free source)          ``IdentitySourceConfig(noise_std=0)``
``noise``   x_up + s eps, a fixed small Gaussian noise (Table 3a's "+ noise")  ``IdentitySourceConfig(noise_std=s)``
``ve``      mu(x_up) + sigma(x_up) eps, a residual Image VE (mu starts as      ``ImageVEConfig(residual=True)``
            x_up) trained jointly with the KL (Table 3a's VE)
==========  ================================================================  =====================================

The flow is the core's: z_t = (1 - (1 - sigma_min) t) z0 + t x_hr, loss || v(z_t, t, 1_c) - (x_hr - (1 - sigma_min)
z0) ||^2, the CFG indicator's unconditional share flowing to another patch's HR image. Compared against (all with
the same UNet, :func:`model_configs`, so the parameters match within a few per cent - the first convolution reads 3
more channels in the baselines, and the VE adds its encoder):

* ``bicubic`` - the source itself, what super-resolution must beat;
* ``regression`` - the UNet predicts the HR image in one pass from the upsampled image (concatenated channels),
  trained with L1 or L2 (:mod:`crossflow_mini.core.regression`; the paper's Table 6 "regression": best PSNR,
  worst FID);
* ``baseline`` - standard flow matching: Gaussian noise -> HR image with the upsampled image concatenated to z_t
  as input channels (SR3-style conditioning; :mod:`crossflow_mini.core.baseline`); CFG drops the condition.

Data (:mod:`crossflow_mini.datasets.superres`): 32 x 32 RGB patches of the photographs scikit-image and matplotlib
ship - 6 training, 1 validation, 2 test photographs (split by photograph) - augmented training crops; the LR image
is the anti-aliased bicubic downsampling (8 x 8), the source its bicubic upsampling. Metrics
(:mod:`crossflow_mini.eval.sr`): PSNR and SSIM per patch, FID and KID across halves of the test patches with their
real-vs-real floor. The guidance scale of each flow model is **chosen on the validation photograph** and reported on
the test photographs (:func:`evaluate_sr`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ...checkpoints import run_dir
from ...core.baseline import BaselineConfig
from ...core.build import ModelConfig, build_model
from ...core.crossflow import CrossFlowConfig
from ...core.guidance import GuidanceConfig
from ...core.image_ve import ImageVEConfig
from ...core.params import count_parameters, parameter_report, sampling_parameters
from ...core.regression import RegressionConfig
from ...core.sampling import METHODS as SAMPLERS
from ...core.source import IdentitySourceConfig
from ...core.unet import UNetVelocityConfig
from ...datasets.superres import SRDataConfig, SRSplit, load_sr, photo_counts, stream_batch
from ...eval.sr import PAPER_TABLE6, PAPER_TABLE6_SETTING, SRFIDReference, psnr_ssim, sr_metrics
from ...training import TrainConfig, TrainResult, train
from ...utils import get_device

Device = torch.device | str | None

#: The three methods of the comparison (besides bicubic) and the three CrossFlow sources of the ablation.
METHODS = ("regression", "baseline", "crossflow")
SOURCES = ("none", "noise", "ve")
#: lambda of the ``ve`` source's KL (ours). The KL is summed over the 3 x 32 x 32 = 3,072 pixels, so the paper's 1e-4
#: holds sigma near 1 and the flow starts from noise (design trial: sigma 0.83 after 800 steps, docs/MEASUREMENTS.md).
SR_VE_KL_WEIGHT = 1e-6
#: Metrics a validation sweep can choose the guidance scale by, and whether larger is better.
CHOICE_METRICS = {"psnr": True, "ssim": True, "kid": False, "fid": False}


# ------------------------------------------------------------------------------------------------------ configs
@dataclass(frozen=True)
class SRRecipe:
    """Everything that determines a super-resolution checkpoint: the model (CrossFlow, the flow-matching baseline or
    the regression baseline), the training run and the data. ``sample_steps`` / ``sampler``: the ODE solver of the
    flow models (ignored by regression, which is one forward pass).

    The training batches are :func:`~crossflow_mini.datasets.superres.stream_batch` - fresh augmented crops at every
    step, a pure function of ``(data.seed, step)`` - so ``data.n_train`` does not enter training; ``data.n_val`` /
    ``data.n_test`` are left ``None`` (all patches) and thinned for evaluation by :class:`SREvalConfig`."""

    model: ModelConfig = CrossFlowConfig(source=IdentitySourceConfig((3, 32, 32)),
                                         velocity=UNetVelocityConfig(latent_shape=(3, 32, 32)))
    train: TrainConfig = TrainConfig()
    data: SRDataConfig = SRDataConfig()
    sample_steps: int = 10
    sampler: str = "euler"

    def __post_init__(self) -> None:
        shape = (self.data.channels, self.data.hr_size, self.data.hr_size)
        net = self.model.network if isinstance(self.model, RegressionConfig) else self.model.velocity
        if not isinstance(net, UNetVelocityConfig):
            raise ValueError("super-resolution uses the UNet velocity network (UNetVelocityConfig)")
        if tuple(net.latent_shape) != shape:
            raise ValueError(f"the network's latent_shape {tuple(net.latent_shape)} must be the HR image's shape "
                             f"{shape} (SRDataConfig: {self.data.dataset}, hr_size {self.data.hr_size})")
        if not isinstance(self.model, CrossFlowConfig) and net.cond_channels != self.data.channels:
            raise ValueError(f"the {method_of(self.model)} UNet reads the upsampled image as its condition: "
                             f"cond_channels must be {self.data.channels}, got {net.cond_channels}")
        if isinstance(self.model, CrossFlowConfig) and isinstance(self.model.source, ImageVEConfig) and \
                tuple(self.model.source.in_shape) != shape:
            raise ValueError(f"the Image VE reads the upsampled image: in_shape must be {shape}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; choose one of {SAMPLERS}")
        if self.sample_steps < 1:
            raise ValueError(f"sample_steps must be positive, got {self.sample_steps}")


@dataclass(frozen=True)
class SREvalConfig:
    """How a super-resolution model is measured (:func:`evaluate_sr`).

    ``scales``: guidance scales tried on the validation photograph; the one with the best ``choose_by`` metric
    (ties: the smaller w, which is cheaper) is used on the test photographs. ``n_val`` / ``n_test``: evenly thinned
    patch counts (``None``: all 124 / 417 at 32 pixels). ``fid``: FID and KID on the test patches (about 0.12 s a
    patch on 2 CPU cores, once for the real patches and once per scored model). ``timing_batch``: patches in the
    batch that measures ms/patch."""

    scales: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0)
    choose_by: str = "psnr"
    n_val: int | None = None
    n_test: int | None = None
    fid: bool = True
    val_fid: bool = False  # FID / KID on the validation patches too (needed when choose_by is "fid" or "kid")
    batch_size: int = 128
    seed: int = 0
    timing_batch: int = 64

    def __post_init__(self) -> None:
        if self.choose_by not in CHOICE_METRICS:
            raise ValueError(f"choose_by must be one of {sorted(CHOICE_METRICS)}, got {self.choose_by!r}")
        if self.choose_by in ("fid", "kid") and not self.val_fid:
            raise ValueError(f"choosing the guidance scale by {self.choose_by} needs val_fid=True")
        if not self.scales:
            raise ValueError("give at least one guidance scale")


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


# --------------------------------------------------------------------------------------------- model configs
def crossflow_config(unet: UNetVelocityConfig, source: str = "none", *, noise_std: float = 0.1,
                     ve: ImageVEConfig | None = None, guidance: GuidanceConfig = GuidanceConfig(),
                     time_sampler: str = "uniform") -> CrossFlowConfig:
    """CrossFlow for super-resolution with the UNet ``unet`` (``cond_channels`` 0) and one of :data:`SOURCES`.

    ``noise_std``: the fixed noise of the ``noise`` source; ``ve``: the Image VE of the ``ve`` source (default: a
    residual VE whose mu starts as the upsampled image, the paper's KL form with lambda :data:`SR_VE_KL_WEIGHT`)."""
    shape = tuple(unet.latent_shape)
    unet = dataclasses.replace(unet, cond_channels=0)
    if source == "none":
        src: Any = IdentitySourceConfig(shape, 0.0)
    elif source == "noise":
        src = IdentitySourceConfig(shape, noise_std)
    elif source == "ve":
        src = ve or ImageVEConfig(in_shape=shape, latent_shape=shape, residual=True, kl_weight=SR_VE_KL_WEIGHT)
    else:
        raise ValueError(f"unknown super-resolution source {source!r}; choose one of {SOURCES}")
    return CrossFlowConfig(source=src, velocity=unet, guidance=guidance, time_sampler=time_sampler)


def model_configs(unet: UNetVelocityConfig, *, source: str = "none", noise_std: float = 0.1,
                  ve: ImageVEConfig | None = None, guidance: GuidanceConfig = GuidanceConfig(),
                  regression_loss: str = "l1", regression_residual: bool = True,
                  time_sampler: str = "uniform") -> dict[str, ModelConfig]:
    """The three methods on one UNet: ``{"crossflow", "baseline", "regression"}``. The baselines read the upsampled
    image as ``C`` extra input channels; the flow-matching baseline drops them with CrossFlow's ``p_uncond`` and
    uses its default guidance scale and time sampler."""
    channels = unet.latent_shape[0]
    cond = dataclasses.replace(unet, cond_channels=channels)
    return {
        "crossflow": crossflow_config(unet, source, noise_std=noise_std, ve=ve, guidance=guidance,
                                      time_sampler=time_sampler),
        "baseline": BaselineConfig(velocity=cond, p_uncond=guidance.p_uncond, scale=guidance.scale,
                                   time_sampler=time_sampler),
        "regression": RegressionConfig(network=cond, loss=regression_loss, residual=regression_residual),
    }


def method_of(model: ModelConfig) -> str:
    """``"crossflow"``, ``"baseline"`` or ``"regression"`` for a model config."""
    if isinstance(model, CrossFlowConfig):
        return "crossflow"
    if isinstance(model, BaselineConfig):
        return "baseline"
    if isinstance(model, RegressionConfig):
        return "regression"
    raise TypeError(f"not a super-resolution model config: {type(model).__name__}")


def source_of(model: ModelConfig) -> str | None:
    """The CrossFlow source (one of :data:`SOURCES`), ``None`` for the baselines."""
    if not isinstance(model, CrossFlowConfig):
        return None
    if isinstance(model.source, ImageVEConfig):
        return "ve"
    return "noise" if model.source.noise_std > 0 else "none"


def variant(recipe: SRRecipe, *, source: str | None = None, regression_loss: str | None = None) -> SRRecipe:
    """``recipe`` with another CrossFlow source or regression loss, all else equal (the study's ablation rows).
    A ``noise`` (``ve``) variant keeps the recipe's noise level (Image VE) if it has one, else uses
    :func:`crossflow_config`'s."""
    model = recipe.model
    if source is not None:
        if not isinstance(model, CrossFlowConfig):
            raise ValueError("only a CrossFlow recipe has a source to change")
        if isinstance(model.source, IdentitySourceConfig):
            kw: dict[str, Any] = {"noise_std": model.source.noise_std} if model.source.noise_std > 0 else {}
        else:
            kw = {"ve": model.source}
        model = crossflow_config(model.velocity, source, guidance=model.guidance, time_sampler=model.time_sampler,
                                 **kw)
    if regression_loss is not None:
        if not isinstance(model, RegressionConfig):
            raise ValueError("only a regression recipe has a regression loss to change")
        model = dataclasses.replace(model, loss=regression_loss)
    return dataclasses.replace(recipe, model=model)


def row_name(recipe: SRRecipe) -> str:
    """The results-table row of a recipe: ``crossflow:none``, ``baseline``, ``regression:l1`` ..."""
    m = method_of(recipe.model)
    if m == "crossflow":
        return f"crossflow:{source_of(recipe.model)}"
    if m == "regression":
        return f"regression:{recipe.model.loss}"
    return m


# ------------------------------------------------------------------------------------------------------- data
def prepare(recipe: SRRecipe, split: str, n: int | None = None) -> SRSplit:
    """The ``val`` or ``test`` pairs of the recipe's data (``n``: evenly thinned to that many patches)."""
    key = {"val": "n_val", "test": "n_test", "train": "n_train"}.get(split)
    if key is None:
        raise ValueError(f"unknown split {split!r}; use 'train', 'val' or 'test'")
    data = recipe.data if n is None else dataclasses.replace(recipe.data, **{key: n})
    return load_sr(split, data)


def training_batches(recipe: SRRecipe) -> Callable[[int], tuple[torch.Tensor, torch.Tensor]]:
    """``step -> (upsampled, hr)``: fresh augmented crops, a pure function of ``(data.seed, step)`` (exact resume)."""
    def batch_fn(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        b = stream_batch(step, recipe.train.batch_size, recipe.data)
        return b.upsampled, b.hr

    return batch_fn


def sr_loss(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]):
    """The training loss of an (upsampled, hr) batch as the training loop wants it: ``(total, logs)`` - CrossFlow's
    joint loss, the baseline's L_FM or the regression L1 / L2 (all through ``model.loss``)."""
    out = model.loss(*batch)
    return out.total, out.logs


# ------------------------------------------------------------------------------------------------ training
def fit(recipe: SRRecipe, *, name: str | None = None, resume: bool = True,
        callback: Callable[[int, dict[str, float]], None] | None = None, desc: str | None = None,
        device: Device = None) -> TrainResult:
    """Train the recipe's model (resumable under ``data/cache/runs`` when ``name`` is given). Sample with ``.ema``."""
    torch.manual_seed(recipe.train.seed)
    model = build_model(recipe.model)
    return train(model, sr_loss, training_batches(recipe), recipe.train,
                 run_dir=run_dir(name, recipe) if name else None, resume=resume, callback=callback,
                 desc=desc or row_name(recipe), device=get_device(device))


# ------------------------------------------------------------------------------------------------ sampling
@torch.no_grad()
def super_resolve(model: torch.nn.Module, upsampled: torch.Tensor, *, guidance_scale: float = 1.0,
                  steps: int = 10, method: str = "euler", seed: int = 0, batch_size: int = 128,
                  device: Device = None) -> torch.Tensor:
    """HR images ``(N, C, H, W)`` in [-1, 1], on the CPU, from upsampled LR images in [-1, 1]: CrossFlow flows from
    them (its source encoder's z0), the baseline from noise reading them as a condition, regression predicts in one
    pass. Random draws (the source noise of CrossFlow's ``noise`` / ``ve`` sources, the baseline's noise) come from a
    CPU generator seeded with ``seed``: the same numbers on any device."""
    device = get_device(device)
    model.to(device)
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(upsampled), batch_size):
        x = upsampled[i:i + batch_size].to(device)
        res = model.generate(x, guidance_scale=guidance_scale, steps=steps, method=method, generator=g)
        out.append(res.sample.clamp(-1, 1).cpu())
    return torch.cat(out)


def sample_recipe(model: torch.nn.Module, recipe: SRRecipe, upsampled: torch.Tensor, guidance_scale: float = 1.0,
                  seed: int = 0, batch_size: int = 128, device: Device = None) -> torch.Tensor:
    """:func:`super_resolve` with the recipe's solver and steps."""
    return super_resolve(model, upsampled, guidance_scale=guidance_scale, steps=recipe.sample_steps,
                         method=recipe.sampler, seed=seed, batch_size=batch_size, device=device)


def ms_per_patch(model: torch.nn.Module, recipe: SRRecipe, upsampled: torch.Tensor, guidance_scale: float,
                 device: Device = None) -> float:
    """Wall-clock milliseconds per patch for one batch (upsampled image -> HR prediction), best of 2."""
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        sample_recipe(model, recipe, upsampled, guidance_scale, batch_size=len(upsampled), device=device)
        best = min(best, time.perf_counter() - t0)
    return round(1000 * best / len(upsampled), 2)


# ---------------------------------------------------------------------------------------------- evaluation
def guided(recipe: SRRecipe) -> bool:
    """Whether the model has a guidance scale to choose (the flow models trained with an unconditional share)."""
    m = recipe.model
    if isinstance(m, CrossFlowConfig):
        return m.guidance.p_uncond > 0
    return isinstance(m, BaselineConfig) and m.p_uncond > 0


def choose_scale(sweep: dict[str, dict[str, Any]], metric: str = "psnr") -> float:
    """The guidance scale with the best ``metric`` in a sweep ``{"w=1": {...}, ...}`` (ties: the smaller w)."""
    sign = 1.0 if CHOICE_METRICS[metric] else -1.0
    best = max(sweep, key=lambda k: (sign * sweep[k][metric], -float(k[2:])))
    return float(best[2:])


def score(pred: torch.Tensor, data: SRSplit, reference: SRFIDReference | None = None,
          fid: bool = True) -> dict[str, Any]:
    """:func:`~crossflow_mini.eval.sr.sr_metrics` of predictions for ``data`` (FID / KID against ``reference``)."""
    if not fid:
        return psnr_ssim(pred, data.hr)
    return sr_metrics(pred, data.hr, reference=reference)


def _rounded(d: dict[str, Any], digits: int = 4) -> dict[str, Any]:
    return {k: round(v, digits) if isinstance(v, float) else v for k, v in d.items()}


def evaluate_sr(model: torch.nn.Module, recipe: SRRecipe, eval_cfg: SREvalConfig, device: Device = None, *,
                test_reference: SRFIDReference | None = None,
                val_reference: SRFIDReference | None = None) -> dict[str, Any]:
    """The numbers of a checkpoint's results (``data/results/sr_crossflow.json`` ...): a guidance sweep on the
    validation photograph (which picks w), the test photographs at that w (PSNR, SSIM, FID, KID with floors) and at
    w = 1 (CFG off), bicubic on the same test patches, ms/patch and the parameters. Pass the references to share the
    real Inception features."""
    model.eval()
    val = prepare(recipe, "val", eval_cfg.n_val)
    test = prepare(recipe, "test", eval_cfg.n_test)
    kw = dict(seed=eval_cfg.seed, batch_size=eval_cfg.batch_size, device=device)
    scales = eval_cfg.scales if guided(recipe) else (1.0,)
    if eval_cfg.fid and test_reference is None:
        test_reference = SRFIDReference(test.hr, eval_cfg.seed)
    if eval_cfg.val_fid and val_reference is None:
        val_reference = SRFIDReference(val.hr, eval_cfg.seed)
    out: dict[str, Any] = {"row": row_name(recipe), "method": method_of(recipe.model),
                           "source": source_of(recipe.model),
                           "sampler": {"method": recipe.sampler, "steps": recipe.sample_steps},
                           "parameters": parameter_report(model), "photos": photo_counts(),
                           "n_val": len(val), "n_test": len(test)}
    sweep = {}
    for w in scales:
        pred = sample_recipe(model, recipe, val.upsampled, w, **kw)
        sweep[f"w={w:g}"] = _rounded(score(pred, val, val_reference, eval_cfg.val_fid))
    out["val_sweep"] = sweep
    out["chosen_scale"] = chosen = choose_scale(sweep, eval_cfg.choose_by) if len(scales) > 1 else scales[0]
    out["chosen_by"] = f"validation {eval_cfg.choose_by}"
    out["test"] = _rounded(score(sample_recipe(model, recipe, test.upsampled, chosen, **kw), test, test_reference,
                                 eval_cfg.fid))
    if chosen != 1.0:
        out["test_cfg_off"] = _rounded(score(sample_recipe(model, recipe, test.upsampled, 1.0, **kw), test,
                                             test_reference, eval_cfg.fid))
    out["bicubic_test"] = _rounded(score(test.upsampled, test, test_reference, eval_cfg.fid))
    out["ms_per_patch"] = ms_per_patch(model, recipe, test.upsampled[:eval_cfg.timing_batch], chosen, device)
    out["device"] = str(get_device(device))
    return out


def train_sr(recipe: SRRecipe, eval_cfg: SREvalConfig, name: str = "sr_crossflow",
             device: Device = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train (resumable) and measure; returns ``(EMA model, metrics)`` with the training time, device and threads."""
    t0 = time.perf_counter()
    result = fit(recipe, name=name, device=device)
    seconds = time.perf_counter() - t0
    metrics: dict[str, Any] = {
        "train_seconds_this_run": round(seconds, 1), "train_steps": recipe.train.steps,
        "batch_size": recipe.train.batch_size, "resumed_from_step": result.resumed_from,
        "train_seconds_all_parts": None if result.seconds is None else round(result.seconds, 1),
        "final_losses": {k: round(v[-1], 5) for k, v in result.history.items() if v and k != "step"},
        "device": str(get_device(device)), "torch_threads": torch.get_num_threads(),
    }
    if result.resumed_from == 0 and seconds > 0:
        metrics["seconds_per_step"] = round(seconds / recipe.train.steps, 4)
    metrics |= evaluate_sr(result.ema, recipe, eval_cfg, device)
    return result.ema, metrics


# ---------------------------------------------------------------------------------------------------- study
def train_seconds(meta: dict[str, Any]) -> float | None:
    """The whole training time a checkpoint's metrics record (None when a resumed run's earlier part was untimed)."""
    m = meta.get("metrics", {})
    seconds = m.get("train_seconds_all_parts")
    if seconds is None and not m.get("resumed_from_step"):
        seconds = m.get("train_seconds_this_run")
    return seconds


def study_recipes(recipes: dict[str, SRRecipe], cfg: SRStudyConfig) -> dict[str, tuple[str, SRRecipe]]:
    """Every row of the study: ``row -> (checkpoint name, recipe)``. ``recipes`` maps the shipped checkpoint names
    (``sr_regression``, ``sr_baseline``, ``sr_crossflow``) to their recipes; the variants reuse a shipped name
    (they are cached under it, keyed by their own recipe hash)."""
    rows: dict[str, tuple[str, SRRecipe]] = {}
    for name, recipe in recipes.items():
        rows[row_name(recipe)] = (name, recipe)
        if isinstance(recipe.model, RegressionConfig):
            for loss in cfg.regression_losses:
                r = variant(recipe, regression_loss=loss)
                rows.setdefault(row_name(r), (name, r))
        if isinstance(recipe.model, CrossFlowConfig):
            for source in cfg.sources:
                r = variant(recipe, source=source)
                rows.setdefault(row_name(r), (name, r))
    order = ["regression:l1", "regression:l2", "baseline", *(f"crossflow:{s}" for s in SOURCES)]
    return {k: rows[k] for k in sorted(rows, key=lambda k: order.index(k) if k in order else len(order))}


def run_sr_study(recipes: dict[str, SRRecipe], cfg: SRStudyConfig, eval_cfg: SREvalConfig,
                 find: Callable[[str, SRRecipe], tuple[torch.nn.Module, dict[str, Any]]],
                 device: Device = None) -> dict[str, Any]:
    """The numbers of ``data/results/sr.json``: every row of :func:`study_recipes` (found, or trained where the
    profile allows, by ``find(name, recipe)``) scored on the same test patches against one FID reference, at the
    guidance scale its own validation sweep chose; bicubic beside them; the paper's Table 6 quoted beside."""
    rows = study_recipes(recipes, cfg)
    first = next(iter(recipes.values()))
    test = prepare(first, "test", eval_cfg.n_test)
    reference = SRFIDReference(test.hr, eval_cfg.seed) if eval_cfg.fid else None
    kw = dict(seed=eval_cfg.seed, batch_size=eval_cfg.batch_size, device=device)
    out: dict[str, Any] = {"photos": photo_counts(), "n_test_patches": len(test),
                           "hr_size": first.data.hr_size, "scale": first.data.scale,
                           "bicubic": _rounded(score(test.upsampled, test, reference, eval_cfg.fid)), "rows": {}}
    for row, (name, recipe) in rows.items():
        model, meta = find(name, recipe)
        trained = meta.get("metrics", {})
        w = trained.get("chosen_scale", 1.0)
        pred = sample_recipe(model, recipe, test.upsampled, w, **kw)
        res = _rounded(score(pred, test, reference, eval_cfg.fid))
        res |= {"checkpoint": name, "guidance_scale": w, "val_sweep": trained.get("val_sweep"),
                "parameters": count_parameters(model), "parameters_for_sampling": sampling_parameters(model),
                "train_steps": recipe.train.steps, "batch_size": recipe.train.batch_size,
                "train_seconds": train_seconds(meta), "train_device": trained.get("device"),
                "train_threads": trained.get("torch_threads"),
                "sampler": {"method": recipe.sampler, "steps": recipe.sample_steps},
                "ms_per_patch": ms_per_patch(model, recipe, test.upsampled[:eval_cfg.timing_batch], w, device)}
        if w != 1.0:
            res["cfg_off"] = _rounded(score(sample_recipe(model, recipe, test.upsampled, 1.0, **kw), test,
                                            reference, eval_cfg.fid))
        out["rows"][row] = res
    out["paper_table6"] = {"setting": PAPER_TABLE6_SETTING, **PAPER_TABLE6}
    out["acceptance"] = acceptance(out, row_name(recipes["sr_crossflow"]) if "sr_crossflow" in recipes else None)
    return out


def acceptance(results: dict[str, Any], crossflow_row: str | None) -> dict[str, Any]:
    """The issue's checks, computed from the study's numbers: CrossFlow's PSNR gain over bicubic, FID against
    regression's, and CrossFlow against standard flow matching on both (the paper: +0.9 dB and a better FID)."""
    rows = results["rows"]
    if crossflow_row not in rows:
        return {}
    cf = rows[crossflow_row]
    out: dict[str, Any] = {"crossflow_row": crossflow_row,
                           "psnr_gain_over_bicubic_db": round(cf["psnr"] - results["bicubic"]["psnr"], 3)}
    if "baseline" in rows:
        out["psnr_minus_flow_matching_db"] = round(cf["psnr"] - rows["baseline"]["psnr"], 3)
    if "fid" in cf:
        for reg in ("regression:l1", "regression:l2"):
            if reg in rows:
                out[f"fid_minus_{reg.replace(':', '_')}"] = round(cf["fid"] - rows[reg]["fid"], 3)
        if "baseline" in rows:
            out["fid_minus_flow_matching"] = round(cf["fid"] - rows["baseline"]["fid"], 3)
    return out


def readme_table(results: dict[str, Any]) -> str:
    """The README's super-resolution table from ``data/results/sr.json``'s metrics (nothing typed by hand)."""
    b = results["bicubic"]
    rows = [f"| method | params | train | PSNR (dB) | SSIM | FID (floor {b.get('fid_floor', float('nan')):.1f}) | "
            f"KID | ms/patch | w |", "|---|---|---|---|---|---|---|---|---|"]
    rows.append(f"| bicubic (the source) | - | - | {b['psnr']:.2f} | {b['ssim']:.3f} | {b.get('fid', float('nan')):.1f} "
                f"| {b.get('kid', float('nan')):.4f} | - | - |")
    for row, r in results["rows"].items():
        secs = r.get("train_seconds")
        train_s = f"{r['train_steps']} steps" + ("" if secs is None else f", {secs / 60:.0f} min")
        rows.append(f"| {row} | {r['parameters'] / 1e6:.2f}M | {train_s} | {r['psnr']:.2f} | {r['ssim']:.3f} | "
                    f"{r.get('fid', float('nan')):.1f} | {r.get('kid', float('nan')):.4f} | {r['ms_per_patch']:.1f} | "
                    f"{r['guidance_scale']:g} |")
    for method, p in PAPER_TABLE6.items():
        rows.append(f"| paper {method} (Table 6, ImageNet 64 -> 256, reference) | - | - | {p['psnr']:.1f} | "
                    f"{p['ssim']:.3f} | {p['fid']:.1f} | - | - | - |")
    return "\n".join(rows)


__all__ = ["METHODS", "SOURCES", "SR_VE_KL_WEIGHT", "SRRecipe", "SREvalConfig", "SRStudyConfig", "crossflow_config", "model_configs",
           "method_of", "source_of", "variant", "row_name", "prepare", "training_batches", "sr_loss", "fit",
           "super_resolve", "sample_recipe", "ms_per_patch", "guided", "choose_scale", "score", "evaluate_sr",
           "train_sr", "train_seconds", "study_recipes", "run_sr_study", "acceptance", "readme_table"]

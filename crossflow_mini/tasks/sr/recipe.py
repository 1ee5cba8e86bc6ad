"""Super-resolution: 4x, flowing from the upsampled low-resolution image (paper Sec. 5.6, Table 6).

The paper's source for super-resolution is **the bicubic upsampling of the low-resolution (LR) image itself**: it
already has the target's shape, so no encoder is needed to bring it there, and the flow only has to add what the
blur took away (docs/METHOD.md Sec. 7). One :class:`~crossflow_mini.core.crossflow.CrossFlowModel` with a
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
from dataclasses import dataclass
from typing import Any

from ...configs import unhashed_field
from ...core.baseline import BaselineConfig
from ...core.build import ModelConfig
from ...core.crossflow import CrossFlowConfig
from ...core.guidance import GuidanceConfig
from ...core.image_ve import ImageVEConfig
from ...core.regression import RegressionConfig
from ...core.sampling import SamplingConfig
from ...core.source import IdentitySourceConfig
from ...core.unet import UNetVelocityConfig
from ...datasets.superres import SRDataConfig
from ...training import TrainConfig
from ..common import method_of

#: The three methods of the comparison (besides bicubic) and the three CrossFlow sources of the ablation.
METHODS = ("regression", "baseline", "crossflow")
SOURCES = ("none", "noise", "ve")
#: lambda of the ``ve`` source's KL (ours). The KL is summed over the 3 x 32 x 32 = 3,072 pixels, so the paper's 1e-4
#: holds sigma near 1 and the flow starts from noise (design trial: sigma 0.83 after 800 steps, docs/MEASUREMENTS.md).
SR_VE_KL_WEIGHT = 1e-6


# ------------------------------------------------------------------------------------------------------ configs
@dataclass(frozen=True)
class SRRecipe:
    """Everything that determines a super-resolution checkpoint: the model (CrossFlow, the flow-matching baseline or
    the regression baseline), the training run and the data. ``sampling`` (not hashed): the ODE's steps and solver
    (ignored by regression, which is one forward pass); the guidance weight is chosen on validation patches.

    The training batches are :func:`~crossflow_mini.datasets.superres.stream_batch` - fresh augmented crops at every
    step, a pure function of ``(data.seed, step)`` - so ``data.n_train`` does not enter training; ``data.n_val`` /
    ``data.n_test`` are left ``None`` (all patches) and thinned for evaluation by :class:`SREvalConfig`."""

    model: ModelConfig = CrossFlowConfig(source=IdentitySourceConfig((3, 32, 32)),
                                         velocity=UNetVelocityConfig(latent_shape=(3, 32, 32)))
    train: TrainConfig = TrainConfig()
    data: SRDataConfig = SRDataConfig()
    sampling: SamplingConfig = unhashed_field(SamplingConfig(steps=10))

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

    @property
    def method(self) -> str:
        return method_of(self.model)

    def with_overrides(self, overrides: dict | None = None, **kwargs) -> "SRRecipe":
        """This recipe with settings changed by dot-path (:func:`crossflow_mini.configs.with_overrides`)."""
        from ...configs import with_overrides

        return with_overrides(self, overrides, **kwargs)


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
    uses its time sampler."""
    channels = unet.latent_shape[0]
    cond = dataclasses.replace(unet, cond_channels=channels)
    return {
        "crossflow": crossflow_config(unet, source, noise_std=noise_std, ve=ve, guidance=guidance,
                                      time_sampler=time_sampler),
        "baseline": BaselineConfig(velocity=cond, p_uncond=guidance.p_uncond, time_sampler=time_sampler),
        "regression": RegressionConfig(network=cond, loss=regression_loss, residual=regression_residual),
    }


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


# ------------------------------------------------------------------------------------------------ shipped recipes
#: 1,200 steps of batch 32 on one thread (about 2.4 steps/s: about 9 min a run; the study trains six); EMA 0.999.
SR_TRAIN = TrainConfig(steps=1200, batch_size=32, lr=1e-3, warmup_steps=100, ema_decay=0.999, ckpt_every=250,
                       log_every=25)
#: 10 Euler steps; the guidance weight is chosen on the validation photograph (by PSNR).
SR_SAMPLING = SamplingConfig(guidance_scale=1.0, steps=10, sampler="euler")
#: The UNet all three share: (32, 64, 64) channels on 3 x 32 x 32 patches. The baselines read the upsampled image
#: through 3 more input channels; parameters within 1 % (tested).
SR_UNET = UNetVelocityConfig(latent_shape=(3, 32, 32), block_out_channels=(32, 64, 64))
#: CrossFlow from the upsampled image itself (source "none", the paper's): of the three sources it had the best
#: validation PSNR (docs/MEASUREMENTS.md, "Super-resolution").
SR_CROSSFLOW = SRRecipe(
    model=CrossFlowConfig(source=IdentitySourceConfig(latent_shape=(3, 32, 32), noise_std=0.0),
                          velocity=dataclasses.replace(SR_UNET, cond_channels=0),
                          guidance=GuidanceConfig(p_uncond=0.1, swap="roll"), time_sampler="uniform"),
    train=SR_TRAIN, data=SRDataConfig(), sampling=SR_SAMPLING)
#: Standard flow matching, SR3-style: noise -> high-res, the upsampled image concatenated.
SR_BASELINE = SRRecipe(
    model=BaselineConfig(velocity=dataclasses.replace(SR_UNET, cond_channels=3), p_uncond=0.1, time_sampler="uniform"),
    train=SR_TRAIN, data=SRDataConfig(), sampling=SR_SAMPLING)
#: Regression: the same UNet predicting the correction to the upsampled image in one pass, L1.
SR_REGRESSION = SRRecipe(
    model=RegressionConfig(network=dataclasses.replace(SR_UNET, cond_channels=3), loss="l1", residual=True),
    train=SR_TRAIN, data=SRDataConfig(), sampling=SR_SAMPLING)

__all__ = ["METHODS", "SOURCES", "SR_VE_KL_WEIGHT", "SRRecipe", "crossflow_config", "model_configs", "source_of",
           "variant", "row_name", "SR_TRAIN", "SR_SAMPLING", "SR_UNET", "SR_CROSSFLOW", "SR_BASELINE", "SR_REGRESSION"]

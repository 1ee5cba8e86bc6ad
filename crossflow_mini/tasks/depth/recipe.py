"""Monocular depth (paper Sec. 5.5, Table 5): what determines each checkpoint, and the shipped values, written out.

Three methods on DepthWorld at 32 x 32, one recipe class (:class:`DepthRecipe`), one code path - they differ only in
the model config:

* **CrossFlow** (``DEPTH_CROSSFLOW``): an Image VE maps the RGB image ``(3, S, S)`` to a Gaussian in the depth map's
  shape ``(1, S, S)``; a UNet velocity network (``diffusers``' ``UNet2DModel``, no condition input) carries the
  sample z0 to the depth target; CFG through the indicator; Euler steps. The paper works in pixel space for depth,
  as we do. The KL is the paper's form with a weak weight (1e-6: the KL is summed over the S * S depth pixels, so the
  paper's 1e-4 keeps sigma near 1 at 32 x 32 and the flow must start from noise); ``align_weight`` (ours) adds
  ||mu - y||^2 so that the source already looks like the depth map. The paper's contrastive encoder loss stays an
  option (``ImageVEConfig(enc_loss="contrastive")``).
* **standard flow matching** (``DEPTH_BASELINE``, Marigold-style): Gaussian noise -> depth, the RGB image
  concatenated to z_t as three extra input channels; CFG by zeroing them.
* **regression** (``DEPTH_REGRESSION``): the baseline's very network called once with z_t = 0, t = 0, predicting
  the target directly (L1 - ours; the paper does not say which loss its regression baseline used).

All three: 2,000 steps of batch 32 (one thread, 17-18 min each on 2 CPU cores); the two baselines share one UNet of
(40, 64, 64) channels, CrossFlow's UNet is (32, 64, 64) beside its Image VE - 1.21M parameters each (within 0.1 %).
The UNet rather than the patch transformer: the baselines read the image through concatenated channels, which only
the UNet offers, and one network family keeps the comparison at matched parameters and steps clean. Why each value:
docs/MEASUREMENTS.md, "Depth".
"""

from __future__ import annotations

from dataclasses import dataclass

from ...configs import unhashed_field
from ...core.baseline import BaselineConfig
from ...core.crossflow import CrossFlowConfig
from ...core.guidance import GuidanceConfig
from ...core.image_ve import ImageVEConfig
from ...core.regression import RegressionConfig
from ...core.sampling import SamplingConfig
from ...core.unet import UNetVelocityConfig
from ...datasets.depthworld import DepthWorldConfig
from ...training import TrainConfig
from ..common import method_of

DepthModelConfig = CrossFlowConfig | BaselineConfig | RegressionConfig
RGB_CHANNELS = 3
DEPTH_CHANNELS = 1


def crossflow_depth_config(image_size: int = 32, *, ve_width: int = 32, ve_blocks: int = 1,
                           channels: tuple[int, ...] = (32, 64, 64), kl_weight: float | None = None,
                           align_weight: float = 0.0, p_uncond: float = 0.1,
                           attention: bool = True) -> CrossFlowConfig:
    """CrossFlow for depth at ``image_size``: Image VE ``(3, S, S) -> (1, S, S)`` (``ve_blocks`` residual blocks of
    ``ve_width`` channels at full resolution, conv head; ``residual`` does not apply, RGB and depth differ in channels)
    + a UNet velocity network with ``channels`` per resolution. ``kl_weight=None`` is the paper's 1e-4;
    ``align_weight`` weighs ||mu - y||^2 (ours)."""
    shape = (DEPTH_CHANNELS, image_size, image_size)
    source = ImageVEConfig(in_shape=(RGB_CHANNELS, image_size, image_size), latent_shape=shape, width=ve_width,
                           blocks=ve_blocks, head="conv", kl_weight=kl_weight, align_weight=align_weight)
    velocity = UNetVelocityConfig(latent_shape=shape, block_out_channels=tuple(channels), attention=attention)
    return CrossFlowConfig(source=source, velocity=velocity, guidance=GuidanceConfig(p_uncond=p_uncond))


def conditioned_unet(image_size: int = 32, channels: tuple[int, ...] = (32, 64, 64),
                     attention: bool = True) -> UNetVelocityConfig:
    """The UNet of both baselines: depth-shaped z_t with the RGB image concatenated (3 condition channels)."""
    return UNetVelocityConfig(latent_shape=(DEPTH_CHANNELS, image_size, image_size), cond_channels=RGB_CHANNELS,
                              block_out_channels=tuple(channels), attention=attention)


@dataclass(frozen=True)
class DepthRecipe:
    """Everything that determines a depth checkpoint: the model (CrossFlow, the standard flow-matching baseline or
    the regression baseline), the training run and the DepthWorld data. ``sampling`` (not hashed): the ODE's steps
    and solver, and ``n_samples`` - flows averaged into one prediction (flow models only); the guidance weight is
    chosen on validation images when the checkpoint is trained."""

    model: DepthModelConfig = crossflow_depth_config()
    train: TrainConfig = TrainConfig()
    data: DepthWorldConfig = DepthWorldConfig()
    sampling: SamplingConfig = unhashed_field(SamplingConfig(steps=10))

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

    @property
    def method(self) -> str:
        return method_of(self.model)

    def with_overrides(self, overrides: dict | None = None, **kwargs) -> "DepthRecipe":
        """This recipe with settings changed by dot-path (:func:`crossflow_mini.configs.with_overrides`)."""
        from ...configs import with_overrides

        return with_overrides(self, overrides, **kwargs)


# ------------------------------------------------------------------------------------------------ shipped recipes
DEPTH_TRAIN = TrainConfig(steps=2000, batch_size=32, lr=1e-3, warmup_steps=100, lr_schedule="cosine",
                          ema_decay=0.995, ckpt_every=250, log_every=25)
#: 10 Euler steps, one flow per prediction (averaging buys little with sigma this small: the validation sweep
#: shows it); the guidance weight is chosen on validation images.
DEPTH_SAMPLING = SamplingConfig(guidance_scale=1.0, steps=10, sampler="euler", n_samples=1)

DEPTH_CROSSFLOW = DepthRecipe(
    model=CrossFlowConfig(
        source=ImageVEConfig(in_shape=(3, 32, 32), latent_shape=(1, 32, 32), width=32, blocks=5, head="conv",
                             kl_form="paper", kl_weight=1e-6, align_weight=1.0),
        velocity=UNetVelocityConfig(latent_shape=(1, 32, 32), block_out_channels=(32, 64, 64), attention=True),
        guidance=GuidanceConfig(p_uncond=0.1, swap="roll"),
        time_sampler="uniform"),
    train=DEPTH_TRAIN, data=DepthWorldConfig(), sampling=DEPTH_SAMPLING)

DEPTH_BASELINE = DepthRecipe(
    model=BaselineConfig(velocity=UNetVelocityConfig(latent_shape=(1, 32, 32), cond_channels=3,
                                                     block_out_channels=(40, 64, 64), attention=True),
                         p_uncond=0.1, time_sampler="uniform"),
    train=DEPTH_TRAIN, data=DepthWorldConfig(), sampling=DEPTH_SAMPLING)

DEPTH_REGRESSION = DepthRecipe(
    model=RegressionConfig(network=UNetVelocityConfig(latent_shape=(1, 32, 32), cond_channels=3,
                                                      block_out_channels=(40, 64, 64), attention=True),
                           loss="l1"),
    train=DEPTH_TRAIN, data=DepthWorldConfig(), sampling=DEPTH_SAMPLING)

__all__ = ["DepthModelConfig", "RGB_CHANNELS", "DEPTH_CHANNELS", "crossflow_depth_config", "conditioned_unet",
           "DepthRecipe", "DEPTH_TRAIN", "DEPTH_SAMPLING", "DEPTH_CROSSFLOW", "DEPTH_BASELINE", "DEPTH_REGRESSION"]

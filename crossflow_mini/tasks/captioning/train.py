"""Image captioning on ShapesWorld (paper Sec. 5.4, Table 4): the text autoencoder and four captioners.

Two stages, as chosen here (paper: "a text decoder ... trained with a reconstruction loss from the Text VE latent";
its schedule is not spelled out, so ours is stated and the alternative measured once, in
:mod:`~crossflow_mini.tasks.captioning_study`):

1. ``text_autoencoder_shapes`` (:class:`TextAutoencoderRecipe`): Text VE (frozen MiniLM tokens -> Gaussian text
   latent, 8 x 4 x 4) + non-autoregressive text decoder, trained on the training captions with L_rec + lambda KL;
   then the latent scale is fitted (unit-variance text latents, as for images).
2. A captioner (:class:`CaptionRecipe`), trained on (image latent, caption) pairs of the training split with the
   text autoencoder FROZEN (its latents are the flow's targets, computed once):

   * ``caption_crossflow`` - CrossFlow image -> text: an Image VE maps the image latent (4 x 8 x 8) to a Gaussian in
     the text latent's shape, a velocity transformer without cross-attention flows it to the text latent, CFG through
     the indicator (unconditional samples get another caption's latent); Image VE and velocity trained jointly
     (L_FM + L_Enc + lambda KL), as CrossFlow trains its source encoder. The frozen decoder reads the result.
   * ``caption_baseline`` - standard flow matching: noise -> text latent, the image's patches (with their positions,
     :func:`~crossflow_mini.core.captioners.image_token_batch`) read through cross-attention; same decoder.
   * ``caption_direct`` - image -> the same non-autoregressive decoder, trained end to end (no flow, no latent).
   * ``caption_autoregressive`` - a small transformer captioner decoded word by word: what people normally use.

Captions are the RICH ShapesWorld captions (``ShapesDataConfig(vocabulary="rich")``: ~46,000 different captions for
50,000 images, many sentence forms and synonyms), so every image has many right captions and a captioner must pick
one. The decoders' words come from :class:`~crossflow_mini.eval.captions.CaptionVocab` (word level: the grammar is
closed, so every word is known in advance - including the test-only words, which the decoders never see as targets).

Evaluation (:func:`evaluate_captioner`): BLEU-4, ROUGE-L and CIDEr-D against the scene's paraphrases, and scene
accuracy - the caption parsed back with the grammar and compared with the image's true attributes - per scene kind,
held-out (shape, colour) combinations apart, with the parse rate. The guidance scale of a flow captioner is chosen on
VALIDATION images (scene exact match) and reported on TEST images.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ...nn.autoencoder import ImageAutoencoder
from ...checkpoints import run_dir
from ...core.baseline import BaselineConfig
from ...core.build import build_model
from .captioners import (AutoregressiveCaptioner, AutoregressiveCaptionerConfig, DirectCaptioner, DirectCaptionerConfig,
                         image_token_batch, image_token_dim)
from ...core.crossflow import CrossFlowConfig
from ...core.flow_model import FlowModel
from ...core.guidance import GuidanceConfig
from ...core.image_ve import ImageVEConfig
from ...core.params import count_parameters, parameter_report, sampling_parameters
from ...core.source import TokenBatch, TowerConfig
from ...nn.text_autoencoder import TextAutoencoder, TextAutoencoderConfig
from ...nn.text_decoder import TextDecoderConfig
from ...core.text_ve import TextVEConfig
from ...core.transformer import CrossAttentionTransformerConfig, VelocityTransformerConfig
from ...datasets import shapes as sw
from ...datasets.shapes import ShapesDataConfig
from ...datasets.shapes_text import normalise
from ...eval.captions import CaptionVocab, caption_metrics, scene_scores
from ...latents import LatentSet, encode_images
from ...nn.text_encoder import TextEncoder, TextEncoderConfig
from ...training import EpochBatches, TrainConfig, TrainResult, train
from ...utils import get_device
from ..autoencoder import AutoencoderRecipe

Device = torch.device | str | None
#: The captions of the captioning recipes: the rich ShapesWorld vocabulary (many right captions per image).
RICH_SHAPES = ShapesDataConfig(vocabulary="rich")
#: ShapesWorld captions are at most 15 MiniLM tokens long (CLS and SEP included): 16 slots lose nothing.
CAPTION_TOKENS = 16


def caption_vocab() -> CaptionVocab:
    """The decoders' word vocabulary: every word of the ShapesWorld grammar (both vocabularies, test-only words
    included), ``max_len`` = the grammar's longest caption + ``<bos>`` and ``<eos>``."""
    return CaptionVocab.from_grammar()


#: Output positions of every decoder: the vocabulary's fixed length without ``<bos>`` (words + ``<eos>``).
DECODER_LEN = caption_vocab().max_len - 1
VOCAB_SIZE = len(caption_vocab())

CaptionModelConfig = CrossFlowConfig | BaselineConfig | DirectCaptionerConfig | AutoregressiveCaptionerConfig
KINDS = {CrossFlowConfig: "crossflow", BaselineConfig: "flow_matching", DirectCaptionerConfig: "direct",
         AutoregressiveCaptionerConfig: "autoregressive"}


# ------------------------------------------------------------------------------------------------ recipes
@dataclass(frozen=True)
class TextAutoencoderRecipe:
    """Everything that determines the text autoencoder checkpoint: model, training run, captions, text encoder;
    ``scale_samples`` training captions fit the latent scale."""

    model: TextAutoencoderConfig = TextAutoencoderConfig()
    train: TrainConfig = TrainConfig()
    shapes: ShapesDataConfig = RICH_SHAPES
    text: TextEncoderConfig = TextEncoderConfig(max_tokens=CAPTION_TOKENS)
    scale_samples: int = 4096

    def __post_init__(self) -> None:
        if self.text.max_tokens != self.model.encoder.max_tokens:
            raise ValueError(f"the text encoder keeps {self.text.max_tokens} tokens but the Text VE expects "
                             f"{self.model.encoder.max_tokens}: set both max_tokens to the same value")
        _check_decoder(self.model.decoder.vocab_size, self.model.decoder.max_len)


def _check_decoder(vocab_size: int, max_len: int) -> None:
    if vocab_size != VOCAB_SIZE or max_len != DECODER_LEN:
        raise ValueError(f"the caption decoders predict {DECODER_LEN} positions over the grammar's {VOCAB_SIZE} words "
                         f"(crossflow_mini.tasks.captioning.VOCAB_SIZE, DECODER_LEN); got vocab_size {vocab_size}, "
                         f"max_len {max_len}")


@dataclass(frozen=True)
class CaptionRecipe:
    """Everything that determines a captioner checkpoint: the model (CrossFlow, the flow-matching baseline, the
    direct or the autoregressive captioner), the training run, the data, the image autoencoder whose latents it
    reads, and - for the two flow captioners - the text autoencoder whose latents it flows to (``None`` for the
    others). ``image_patch``: patch side of the baseline's cross-attention tokens; ``sample_steps`` / ``sampler``:
    the flow's default NFE and ODE solver."""

    model: CaptionModelConfig = CrossFlowConfig()
    train: TrainConfig = TrainConfig()
    shapes: ShapesDataConfig = RICH_SHAPES
    autoencoder: AutoencoderRecipe = AutoencoderRecipe()
    text_autoencoder: TextAutoencoderRecipe | None = None
    image_patch: int = 2
    sample_steps: int = 20
    sampler: str = "euler"

    def __post_init__(self) -> None:
        image_shape = tuple(self.autoencoder.model.latent_shape)
        m = self.model
        if isinstance(m, (CrossFlowConfig, BaselineConfig)):
            if self.text_autoencoder is None:
                raise ValueError("a flow captioner flows to text latents: give its text_autoencoder recipe")
            text_shape = tuple(self.text_autoencoder.model.latent_shape)
            if tuple(m.velocity.latent_shape) != text_shape:
                raise ValueError(f"the flow model's latents {m.velocity.latent_shape} must be the text latent's "
                                 f"{text_shape}")
        if isinstance(m, CrossFlowConfig) and tuple(m.source.in_shape) != image_shape:
            raise ValueError(f"the Image VE reads {m.source.in_shape} but the image latents are {image_shape}")
        if isinstance(m, BaselineConfig):
            if not isinstance(m.velocity, CrossAttentionTransformerConfig):
                raise ValueError("the captioning baseline reads the image through cross-attention: use a "
                                 "CrossAttentionTransformerConfig")
            want = image_token_dim(image_shape, self.image_patch)
            if m.velocity.token_dim != want:
                raise ValueError(f"the baseline's tokens are {self.image_patch} x {self.image_patch} image patches "
                                 f"with their position: token_dim must be {want}, got {m.velocity.token_dim}")
        if isinstance(m, DirectCaptionerConfig):
            if tuple(m.encoder.in_shape) != image_shape:
                raise ValueError(f"the encoder reads {m.encoder.in_shape} but the image latents are {image_shape}")
            _check_decoder(m.decoder.vocab_size, m.decoder.max_len)
        if isinstance(m, AutoregressiveCaptionerConfig):
            if tuple(m.image_shape) != image_shape:
                raise ValueError(f"the captioner reads {m.image_shape} but the image latents are {image_shape}")
            _check_decoder(m.vocab_size, m.max_len)

    @property
    def kind(self) -> str:
        return KINDS[type(self.model)]

    @property
    def is_flow(self) -> bool:
        return isinstance(self.model, (CrossFlowConfig, BaselineConfig))


@dataclass(frozen=True)
class CaptionEvalConfig:
    """How captioners are measured: the guidance ``scales`` swept on the first ``choose_images`` validation images
    (scene exact match picks one), then the test images (``max_images`` of them; None = all) at that scale and at
    w = 1. ``n_examples`` captions are kept in the results."""

    scales: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0)
    choose_images: int = 500
    max_images: int | None = None
    batch_size: int = 500
    seed: int = 0
    n_examples: int = 12


# ---------------------------------------------------------------------------------------- model configs
def text_autoencoder_config(latent_shape: tuple[int, int, int], *, encoder_width: int = 128, encoder_depth: int = 2,
                            decoder_width: int = 128, decoder_depth: int = 3, heads: int = 4,
                            kl_weight: float | None = None) -> TextAutoencoderConfig:
    """Text VE (frozen MiniLM tokens in, ``enc_loss="none"``: the decoder's reconstruction shapes the latent; the
    paper's KL form, lambda 1e-4 unless ``kl_weight``) + text decoder over the grammar's words."""
    return TextAutoencoderConfig(
        encoder=TextVEConfig(latent_shape=latent_shape, enc_loss="none", max_tokens=CAPTION_TOKENS,
                             width=encoder_width, depth=encoder_depth, heads=heads, kl_form="paper",
                             kl_weight=kl_weight),
        decoder=TextDecoderConfig(latent_shape=latent_shape, vocab_size=VOCAB_SIZE, max_len=DECODER_LEN,
                                  width=decoder_width, depth=decoder_depth, heads=heads))


def crossflow_captioner(text_shape: tuple[int, int, int], image_shape: tuple[int, int, int], *, ve_width: int,
                        width: int, depth: int, heads: int = 4, enc_loss: str = "contrastive",
                        kl_form: str = "code", tower: tuple[int, ...] = (32, 64),
                        guidance: GuidanceConfig = GuidanceConfig()) -> CrossFlowConfig:
    """CrossFlow image -> text: an Image VE (image latent -> Gaussian in the text latent's shape; a LINEAR head,
    since a text latent has no spatial layout tied to the image), with the paper's contrastive L_Enc (roles swapped:
    z0 against a tower's embedding of the paired text latent), and a velocity transformer over the text latent's
    1 x 1 patches (one token per position of the 4 x 4 grid)."""
    return CrossFlowConfig(
        source=ImageVEConfig(in_shape=image_shape, latent_shape=text_shape, width=ve_width, head="linear",
                             enc_loss=enc_loss, kl_form=kl_form, tower=TowerConfig(in_shape=text_shape,
                                                                                   channels=tower)),
        velocity=VelocityTransformerConfig(latent_shape=text_shape, patch_size=1, width=width, depth=depth,
                                           heads=heads),
        guidance=guidance)


def baseline_captioner(text_shape: tuple[int, int, int], image_shape: tuple[int, int, int], *, width: int,
                       depth: int, heads: int = 4, image_patch: int = 2, scale: float = 4.0) -> BaselineConfig:
    """Standard flow matching: noise -> text latent, a cross-attention transformer whose keys are the image's
    ``image_patch`` x ``image_patch`` patches with their positions (:func:`image_token_batch`)."""
    return BaselineConfig(velocity=CrossAttentionTransformerConfig(
        latent_shape=text_shape, patch_size=1, width=width, depth=depth, heads=heads,
        token_dim=image_token_dim(image_shape, image_patch)), scale=scale)


def direct_captioner(text_shape: tuple[int, int, int], image_shape: tuple[int, int, int], *, encoder_width: int,
                     width: int, depth: int, heads: int = 4) -> DirectCaptionerConfig:
    """The Image VE's network (deterministic) into the text latent's shape + the text decoder, end to end."""
    return DirectCaptionerConfig(
        encoder=ImageVEConfig(in_shape=image_shape, latent_shape=text_shape, width=encoder_width, head="linear",
                              variant="plain"),
        decoder=TextDecoderConfig(latent_shape=text_shape, vocab_size=VOCAB_SIZE, max_len=DECODER_LEN, width=width,
                                  depth=depth, heads=heads))


def autoregressive_captioner(image_shape: tuple[int, int, int], *, width: int, depth: int, encoder_depth: int = 1,
                             heads: int = 4, image_patch: int = 2) -> AutoregressiveCaptionerConfig:
    """A transformer captioner over the grammar's words, reading the image's patches."""
    return AutoregressiveCaptionerConfig(image_shape=image_shape, patch=image_patch, vocab_size=VOCAB_SIZE,
                                         max_len=DECODER_LEN, width=width, depth=depth, encoder_depth=encoder_depth,
                                         heads=heads)


def build_captioner(cfg: CaptionModelConfig) -> torch.nn.Module:
    """The captioner a model config describes (randomly initialised)."""
    if isinstance(cfg, DirectCaptionerConfig):
        return DirectCaptioner(cfg)
    if isinstance(cfg, AutoregressiveCaptionerConfig):
        return AutoregressiveCaptioner(cfg)
    return build_model(cfg)


# ----------------------------------------------------------------------------------------------- data
@dataclass
class CaptionData:
    """One split ready for captioning: the split, its image latents (posterior statistics), its captions' target
    ids ``(N, DECODER_LEN)`` (words, ``<eos>``, padding) and - for the flow captioners - its captions' text latents
    (the frozen text autoencoder's scaled posterior statistics)."""

    split: sw.ShapesWorldSplit
    images: LatentSet
    targets: torch.Tensor
    text: LatentSet | None = None

    def __len__(self) -> int:
        return len(self.split)


def caption_targets(captions: Sequence[str]) -> torch.Tensor:
    """Decoder targets of captions: word ids without ``<bos>`` ``(N, DECODER_LEN)``."""
    return caption_vocab().encode(list(captions))[:, 1:]


def caption_tokens(captions: Sequence[str], text: TextEncoderConfig) -> TokenBatch:
    """Frozen MiniLM tokens of captions (cached on disk), one row per caption."""
    return TextEncoder(text).encode(list(captions)).batch(slice(None))


@torch.no_grad()
def text_latents(text_ae: TextAutoencoder, tokens: TokenBatch, batch_size: int = 1024) -> LatentSet:
    """The frozen text autoencoder's scaled posterior mean and std of caption tokens, on the CPU."""
    text_ae.eval()
    device = text_ae.latent_scale.device
    means, stds = [], []
    for i in range(0, len(tokens), batch_size):
        mean, std = text_ae.stats(tokens[i:i + batch_size].to(device))
        means.append(mean.cpu())
        stds.append(std.cpu())
    return LatentSet(torch.cat(means), torch.cat(stds))


def prepare(recipe: CaptionRecipe, split: str, autoencoder: ImageAutoencoder,
            text_ae: TextAutoencoder | None = None) -> CaptionData:
    """Images -> latents (cached), captions -> target ids and (flow captioners, with ``text_ae``) text latents."""
    data = sw.load_shapes(split, recipe.shapes)
    images = encode_images(autoencoder, data.images_tensor())
    text = None
    if text_ae is not None:
        text = text_latents(text_ae, caption_tokens(data.captions, recipe.text_autoencoder.text))
    return CaptionData(data, images, caption_targets(data.captions), text)


def flow_source(recipe: CaptionRecipe, image_latents: torch.Tensor) -> torch.Tensor | TokenBatch:
    """What a flow captioner reads: the image latent itself (CrossFlow's Image VE) or its patch tokens (the
    cross-attention baseline)."""
    if isinstance(recipe.model, BaselineConfig):
        return image_token_batch(image_latents, recipe.image_patch)
    return image_latents


# ------------------------------------------------------------------------------------------- training
def training_batches(recipe: CaptionRecipe, data: CaptionData) -> Callable[[int], tuple[Any, torch.Tensor]]:
    """``step -> (source, target)``, a pure function of ``(seed, step)`` (exact resume). Image latents are posterior
    samples, as are text latents (the paper's training samples from the VAE posterior); the target is the text latent
    (flow captioners) or the caption's word ids (direct and autoregressive)."""
    batches = EpochBatches(len(data), recipe.train.batch_size, recipe.train.seed)

    def batch_fn(step: int) -> tuple[Any, torch.Tensor]:
        idx = batches(step)
        g = torch.Generator().manual_seed(recipe.train.seed * 1_000_003 + step)
        images = data.images.sample(idx, g)
        if recipe.is_flow:
            return flow_source(recipe, images), data.text.sample(idx, g)
        return images, data.targets[idx]

    return batch_fn


def captioner_loss(model: torch.nn.Module, batch: tuple[Any, torch.Tensor]):
    """``(total, logs)`` of one batch for the training loop: a flow model's joint loss, or the token cross-entropy."""
    out = model.loss(*batch)
    if isinstance(out, tuple):
        return out
    return out.total, out.logs


def fit(recipe: CaptionRecipe, data: CaptionData, *, name: str | None = None, resume: bool = True,
        callback: Callable[[int, dict[str, float]], None] | None = None, desc: str | None = None,
        device: Device = None) -> TrainResult:
    """Train the recipe's captioner on prepared data (resumable when ``name`` is given). Use ``.ema`` for captions."""
    if recipe.is_flow and data.text is None:
        raise ValueError("a flow captioner needs the text latents: prepare the data with the text autoencoder")
    torch.manual_seed(recipe.train.seed)
    model = build_captioner(recipe.model)
    return train(model, captioner_loss, training_batches(recipe, data), recipe.train,
                 run_dir=run_dir(name, recipe) if name else None, resume=resume, callback=callback,
                 desc=desc or recipe.kind, device=get_device(device))


def train_timed(fit_fn: Callable[[], TrainResult], steps: int, batch_size: int,
                device: Device) -> tuple[TrainResult, dict[str, Any]]:
    """Run ``fit_fn`` and report its time (this run and all parts of a resumed run) and final losses."""
    t0 = time.perf_counter()
    result = fit_fn()
    seconds = time.perf_counter() - t0
    metrics: dict[str, Any] = {
        "train_seconds_this_run": round(seconds, 1), "train_steps": steps, "resumed_from_step": result.resumed_from,
        "train_seconds_all_parts": None if result.seconds is None else round(result.seconds, 1),
        "final_losses": {k: round(v[-1], 5) for k, v in result.history.items() if v and k != "step"},
        "device": str(get_device(device)), "torch_threads": torch.get_num_threads(),
    }
    if result.resumed_from == 0 and seconds > 0:
        metrics["seconds_per_step"] = round(seconds / steps, 4)
        metrics["train_samples_per_second"] = round(steps * batch_size / seconds, 1)
    return result, metrics


# ---------------------------------------------------------------------------------------- text autoencoder
def text_autoencoder_batches(recipe: TextAutoencoderRecipe, tokens: TokenBatch,
                             targets: torch.Tensor) -> Callable[[int], tuple[TokenBatch, torch.Tensor]]:
    batches = EpochBatches(len(targets), recipe.train.batch_size, recipe.train.seed)

    def batch_fn(step: int) -> tuple[TokenBatch, torch.Tensor]:
        idx = batches(step)
        return tokens[idx], targets[idx]

    return batch_fn


def text_autoencoder_loss(model: TextAutoencoder, batch: tuple[TokenBatch, torch.Tensor]):
    out = model.loss(*batch)
    return out.total, out.logs


def fit_text_autoencoder(recipe: TextAutoencoderRecipe, *, name: str | None = None, resume: bool = True,
                         callback: Callable[[int, dict[str, float]], None] | None = None,
                         device: Device = None) -> TrainResult:
    """Train the text autoencoder on the training captions (resumable when ``name`` is given); then fit the latent
    scale of the EMA model on ``scale_samples`` training captions."""
    captions = sw.load_shapes("train", recipe.shapes).captions
    tokens, targets = caption_tokens(captions, recipe.text), caption_targets(captions)
    torch.manual_seed(recipe.train.seed)
    model = TextAutoencoder(recipe.model)
    device = get_device(device)
    result = train(model, text_autoencoder_loss, text_autoencoder_batches(recipe, tokens, targets), recipe.train,
                   run_dir=run_dir(name, recipe) if name else None, resume=resume, callback=callback,
                   desc="text autoencoder", device=device)
    result.ema.fit_latent_scale(tokens[:recipe.scale_samples].to(device))
    return result


@torch.no_grad()
def evaluate_text_autoencoder(model: TextAutoencoder, recipe: TextAutoencoderRecipe, split: str = "test",
                              limit: int | None = None, batch_size: int = 1024) -> dict[str, Any]:
    """Reconstruction on ``split`` (default the test split, never seen in training): exact caption (normalised
    text) and scene accuracy of the parsed reconstruction, from the posterior mean and from one sample; captions
    with test-only wording (words the decoder never saw) apart."""
    model.eval()
    data = sw.load_shapes(split, recipe.shapes)
    n = len(data) if limit is None else min(limit, len(data))
    tokens = caption_tokens(data.captions[:n], recipe.text)
    vocab = caption_vocab()
    device = model.latent_scale.device
    g = torch.Generator().manual_seed(0)
    truth = [normalise(c) for c in data.captions[:n]]
    attrs = [data.attributes(i) for i in range(n)]
    novel = np.asarray(data.test_only_wording[:n], dtype=bool)
    out: dict[str, Any] = {"split": split, "n_captions": n, "latent_scale": round(float(model.latent_scale), 5),
                           "latent_shape": list(model.latent_shape), "parameters": parameter_report(model)}
    for how in ("mean", "sample"):
        decoded: list[str] = []
        for i in range(0, n, batch_size):
            z = model.latents(tokens[i:i + batch_size].to(device), sample=how == "sample", generator=g)
            decoded += vocab.decode(model.decode(z).cpu())
        exact = np.array([a == b for a, b in zip(decoded, truth)])
        res = {"exact_caption": round(float(exact.mean()), 4),
               "scene": _rounded(scene_scores(decoded, attrs))}
        if novel.any():
            res["test_only_wording"] = {
                "n": int(novel.sum()), "exact_caption": round(float(exact[novel].mean()), 4),
                "scene": round(scene_scores([d for d, k in zip(decoded, novel) if k],
                                            [a for a, k in zip(attrs, novel) if k])["scene"], 4)}
            res["train_wording_exact_caption"] = round(float(exact[~novel].mean()), 4)
        out[f"from_{how}"] = res
    out["examples"] = [{"caption": data.captions[i], "decoded": d} for i, d in enumerate(decoded[:8])]
    return out


def train_text_autoencoder(recipe: TextAutoencoderRecipe, name: str = "text_autoencoder_shapes",
                           device: Device = None) -> tuple[TextAutoencoder, dict[str, Any]]:
    """Train (resumable), fit the latent scale, measure on the test split; returns ``(EMA model, metrics)``."""
    result, metrics = train_timed(lambda: fit_text_autoencoder(recipe, name=name, device=device),
                                  recipe.train.steps, recipe.train.batch_size, device)
    metrics |= evaluate_text_autoencoder(result.ema, recipe)
    return result.ema, metrics


# ------------------------------------------------------------------------------------------ captioning
@torch.no_grad()
def caption_ids(model: torch.nn.Module, recipe: CaptionRecipe, image_latents: torch.Tensor,
                text_ae: TextAutoencoder | None = None, *, guidance_scale: float | None = None,
                steps: int | None = None, generator: torch.Generator | None = None,
                batch_size: int = 500, device: Device = None) -> torch.Tensor:
    """Word ids ``(N, DECODER_LEN)`` (on the CPU) for image latents ``(N, 4, 8, 8)``: a flow captioner flows from
    the image (CrossFlow: z0 from the Image VE drawn with ``generator``; the baseline: noise) to a text latent and the
    frozen decoder reads it; the direct and autoregressive captioners decode directly."""
    device = get_device(device)
    model.to(device).eval()
    out = []
    for i in range(0, len(image_latents), batch_size):
        x = image_latents[i:i + batch_size].to(device)
        if isinstance(model, FlowModel):
            if text_ae is None:
                raise ValueError("a flow captioner needs the text autoencoder to decode its text latents")
            z = model.generate(flow_source(recipe, x), guidance_scale=guidance_scale,
                               steps=steps or recipe.sample_steps, method=recipe.sampler, generator=generator).sample
            ids = text_ae.to(device).decode(z)
        else:
            ids = model.caption_ids(x)
        out.append(ids.cpu())
    return torch.cat(out)


@torch.no_grad()
def image_latents(autoencoder: ImageAutoencoder, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Images ``(N, 3, 32, 32)`` in [-1, 1] -> the autoencoder's scaled posterior means, on the CPU (no disk cache:
    for generated or one-off images)."""
    autoencoder.eval()
    device = autoencoder.latent_scale.device
    return torch.cat([autoencoder.encode(images[i:i + batch_size].to(device)).cpu()
                      for i in range(0, len(images), batch_size)])


def captions_of(model: torch.nn.Module, recipe: CaptionRecipe, image_latents: torch.Tensor,
                text_ae: TextAutoencoder | None = None, **kw) -> list[str]:
    """Caption strings for image latents (see :func:`caption_ids`)."""
    return caption_vocab().decode(caption_ids(model, recipe, image_latents, text_ae, **kw))


def _rounded(d: dict[str, float]) -> dict[str, float]:
    return {k: (round(v, 4) if isinstance(v, float) and v == v else v) for k, v in d.items()}


def score_captions(captions: Sequence[str], split: sw.ShapesWorldSplit, idx: np.ndarray) -> dict[str, Any]:
    """Caption metrics (x 100, against the scene's paraphrases) and scene accuracy of captions of the images
    ``idx`` of ``split``: overall, per scene kind, and in-distribution / held-out combinations apart."""
    idx = np.asarray(idx)
    refs = [split.paraphrases(int(i)) for i in idx]
    attrs = [split.attributes(int(i)) for i in idx]
    out: dict[str, Any] = {"n_images": len(idx), "metrics": _rounded(caption_metrics(list(captions), refs)),
                           "scene": _rounded(scene_scores(list(captions), attrs))}
    kinds = split.kinds[idx]
    heldout = split.heldout[idx]
    groups: dict[str, np.ndarray] = {kind: kinds == k for k, kind in enumerate(sw.SCENE_KINDS)}
    groups |= {"in_distribution": ~heldout, "heldout_combinations": heldout}
    for kind in sw.SCENE_KINDS:
        groups[f"{kind}_heldout_combinations"] = (kinds == sw.SCENE_KINDS.index(kind)) & heldout
    out["groups"] = {}
    for group, mask in groups.items():
        if mask.any():
            sel = np.flatnonzero(mask)
            out["groups"][group] = _rounded(scene_scores([captions[j] for j in sel], [attrs[j] for j in sel]))
    return out


def caption_split(model: torch.nn.Module, recipe: CaptionRecipe, data: CaptionData, idx: np.ndarray,
                  text_ae: TextAutoencoder | None, scale: float | None, eval_cfg: CaptionEvalConfig,
                  device: Device = None) -> dict[str, Any]:
    """Caption the images ``idx`` of prepared data (posterior-mean latents) at one guidance scale and score them."""
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(eval_cfg.seed)
    caps = captions_of(model, recipe, data.images.mean[torch.from_numpy(np.asarray(idx))], text_ae,
                       guidance_scale=scale, generator=g, batch_size=eval_cfg.batch_size, device=device)
    seconds = time.perf_counter() - t0
    res = score_captions(caps, data.split, idx)
    res["ms_per_image"] = round(1000 * seconds / max(1, len(idx)), 3)
    res["examples"] = [{"index": int(i), "caption": c, "truth": data.split.captions[int(i)]}
                       for i, c in zip(idx[:eval_cfg.n_examples], caps)]
    return res


def choose_scale(sweep: dict[str, dict[str, Any]]) -> float:
    """The guidance scale with the best validation scene exact match (ties: the smaller, cheaper scale)."""
    best = max(sweep, key=lambda k: (sweep[k]["scene"]["scene"], -float(k[2:])))
    return float(best[2:])


def captioner_parameters(model: torch.nn.Module, text_ae: TextAutoencoder | None) -> dict[str, Any]:
    """Parameters a captioner samples with (a flow captioner's frozen text decoder counted) and its report."""
    rep = parameter_report(model)
    decoder = count_parameters(text_ae.decoder) if text_ae is not None else 0
    rep["text_decoder"] = decoder
    rep["captioning"] = sampling_parameters(model) + decoder
    return rep


def evaluate_captioner(model: torch.nn.Module, recipe: CaptionRecipe, autoencoder: ImageAutoencoder,
                       text_ae: TextAutoencoder | None, eval_cfg: CaptionEvalConfig,
                       device: Device = None) -> dict[str, Any]:
    """The numbers of ``data/results/<captioner>.json``: a guidance sweep on validation images (flow captioners;
    picks the scale by scene exact match), then the test images at the chosen scale and at w = 1 (CFG off)."""
    model.eval()
    val = prepare(recipe, "val", autoencoder)
    test = prepare(recipe, "test", autoencoder)
    out: dict[str, Any] = {"kind": recipe.kind, "parameters": captioner_parameters(model, text_ae)}
    val_idx = np.arange(min(eval_cfg.choose_images, len(val)))
    test_idx = np.arange(len(test) if eval_cfg.max_images is None else min(eval_cfg.max_images, len(test)))
    kw = dict(text_ae=text_ae, eval_cfg=eval_cfg, device=device)
    if isinstance(model, FlowModel):
        out["sampler"] = {"method": recipe.sampler, "steps": recipe.sample_steps}
        out["val_sweep"] = {f"w={w:g}": caption_split(model, recipe, val, val_idx, scale=w, **kw)
                            for w in eval_cfg.scales}
        for res in out["val_sweep"].values():
            res.pop("examples")
        chosen = choose_scale(out["val_sweep"])
        out["chosen_scale"] = chosen
        out["test"] = caption_split(model, recipe, test, test_idx, scale=chosen, **kw)
        out["test_cfg_off"] = caption_split(model, recipe, test, test_idx, scale=1.0, **kw)
    else:
        out["test"] = caption_split(model, recipe, test, test_idx, scale=None, **kw)
    return out


def train_captioner(recipe: CaptionRecipe, autoencoder: ImageAutoencoder, text_ae: TextAutoencoder | None,
                    eval_cfg: CaptionEvalConfig, name: str, device: Device = None) -> tuple[torch.nn.Module,
                                                                                            dict[str, Any]]:
    """Prepare the training split, train (resumable), measure; returns ``(EMA model, metrics)``."""
    data = prepare(recipe, "train", autoencoder, text_ae if recipe.is_flow else None)
    result, metrics = train_timed(lambda: fit(recipe, data, name=name, device=device), recipe.train.steps,
                                  recipe.train.batch_size, device)
    metrics |= evaluate_captioner(result.ema, recipe, autoencoder, text_ae, eval_cfg, device)
    return result.ema, metrics


__all__ = ["RICH_SHAPES", "CAPTION_TOKENS", "DECODER_LEN", "VOCAB_SIZE", "caption_vocab", "CaptionModelConfig",
           "TextAutoencoderRecipe", "CaptionRecipe", "CaptionEvalConfig", "text_autoencoder_config",
           "crossflow_captioner", "baseline_captioner", "direct_captioner", "autoregressive_captioner", "build_captioner", "CaptionData",
           "caption_targets", "caption_tokens", "text_latents", "prepare", "flow_source", "training_batches",
           "captioner_loss", "fit", "fit_text_autoencoder", "evaluate_text_autoencoder", "train_text_autoencoder",
           "caption_ids", "image_latents", "captions_of", "score_captions", "caption_split", "choose_scale", "captioner_parameters",
           "evaluate_captioner", "train_captioner"]

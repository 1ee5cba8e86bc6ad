"""Image captioning on ShapesWorld (paper Sec. 5.4, Table 4): the text autoencoder and four captioners.

Two stages, as chosen here (paper: "a text decoder ... trained with a reconstruction loss from the Text VE latent";
its schedule is not spelled out, so ours is stated and the alternative measured once, in
:mod:`~crossflow_mini.studies.captioning_schedule`):

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
     :func:`~crossflow_mini.tasks.captioning.captioners.image_token_batch`) read through cross-attention; same decoder.
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

import dataclasses
from dataclasses import dataclass

from ...configs import unhashed_field
from ...core.baseline import BaselineConfig
from ...core.crossflow import CrossFlowConfig
from ...core.guidance import GuidanceConfig
from ...core.image_ve import ImageVEConfig
from ...core.sampling import SamplingConfig
from ...core.source import TowerConfig
from ...core.text_ve import TextVEConfig
from ...core.transformer import CrossAttentionTransformerConfig, VelocityTransformerConfig
from ...datasets.shapes import ShapesDataConfig
from ...eval.captions import CaptionVocab
from ...nn.text_autoencoder import TextAutoencoderConfig
from ...nn.text_decoder import TextDecoderConfig
from ...nn.text_encoder import TextEncoderConfig
from ...training import TrainConfig
from ..autoencoder import AUTOENCODER_SHAPES, AutoencoderRecipe
from ..common import method_of
from .captioners import AutoregressiveCaptionerConfig, DirectCaptionerConfig, image_token_dim

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
    others). ``image_patch``: patch side of the baseline's cross-attention tokens; ``sampling`` (not hashed): the
    flow's steps and solver (the guidance weight is chosen on validation images when the checkpoint is trained)."""

    model: CaptionModelConfig = CrossFlowConfig()
    train: TrainConfig = TrainConfig()
    shapes: ShapesDataConfig = RICH_SHAPES
    autoencoder: AutoencoderRecipe = AutoencoderRecipe()
    text_autoencoder: TextAutoencoderRecipe | None = None
    image_patch: int = 2
    sampling: SamplingConfig = unhashed_field(SamplingConfig(steps=20))

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
        """How the captioning tables name the method: ``crossflow``, ``flow_matching``, ``direct``,
        ``autoregressive``."""
        method = method_of(self.model)
        return "flow_matching" if method == "baseline" else method

    @property
    def method(self) -> str:
        return method_of(self.model)

    def with_overrides(self, overrides: dict | None = None, **kwargs) -> "CaptionRecipe":
        """This recipe with settings changed by dot-path (:func:`crossflow_mini.configs.with_overrides`)."""
        from ...configs import with_overrides

        return with_overrides(self, overrides, **kwargs)

    @property
    def is_flow(self) -> bool:
        return isinstance(self.model, (CrossFlowConfig, BaselineConfig))


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
                       depth: int, heads: int = 4, image_patch: int = 2) -> BaselineConfig:
    """Standard flow matching: noise -> text latent, a cross-attention transformer whose keys are the image's
    ``image_patch`` x ``image_patch`` patches with their positions (:func:`image_token_batch`)."""
    return BaselineConfig(velocity=CrossAttentionTransformerConfig(
        latent_shape=text_shape, patch_size=1, width=width, depth=depth, heads=heads,
        token_dim=image_token_dim(image_shape, image_patch)))


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


# ------------------------------------------------------------------------------------------------ shipped recipes
#: The text latent (8 x 4 x 4) the flow captioners flow to, and the image latent (4 x 8 x 8) they read.
TEXT_LATENT = (8, 4, 4)
IMAGE_LATENT = tuple(AUTOENCODER_SHAPES.model.latent_shape)
#: ``text_autoencoder_shapes``: Text VE (width 128, depth 2, the paper's KL form) + non-autoregressive decoder
#: (width 128, depth 3) over the rich training captions; 3,000 steps of 128.
TEXT_AUTOENCODER_SHAPES = TextAutoencoderRecipe(
    model=text_autoencoder_config(TEXT_LATENT, encoder_width=128, encoder_depth=2, decoder_width=128, decoder_depth=3),
    train=TrainConfig(steps=3000, batch_size=128, lr=2e-3, warmup_steps=200, lr_schedule="cosine", ema_decay=0.995,
                      ckpt_every=250, log_every=25),
    shapes=RICH_SHAPES)
#: 2,500 steps: the direct captioner, matched in parameters and steps, runs 1.57 steps/s on one thread, so 2,500
#: steps (about 27 min) is what fits the 30-minute budget per checkpoint (docs/MEASUREMENTS.md, "Captioning").
CAPTION_TRAIN = TrainConfig(steps=2500, batch_size=128, lr=1e-3, warmup_steps=200, lr_schedule="cosine",
                            ema_decay=0.995, ckpt_every=250, log_every=25)
#: 20 Euler steps; the guidance weight of the flow captioners is chosen on validation images.
CAPTION_SAMPLING = SamplingConfig(guidance_scale=1.0, steps=20, sampler="euler")
#: The four captioners at matched parameters (the ones each captions with, a flow captioner's text decoder counted;
#: within 10 %, tested) and the same training run. CrossFlow: Image VE (width 64) -> velocity transformer (width
#: 128, depth 4) over the text latent, decoded by the frozen text autoencoder.
CAPTION_CROSSFLOW = CaptionRecipe(
    model=crossflow_captioner(TEXT_LATENT, IMAGE_LATENT, ve_width=64, width=128, depth=4), train=CAPTION_TRAIN,
    shapes=RICH_SHAPES, autoencoder=AUTOENCODER_SHAPES, text_autoencoder=TEXT_AUTOENCODER_SHAPES,
    sampling=CAPTION_SAMPLING)
#: Standard flow matching: noise -> text latent, cross-attention (width 128, depth 4) to the image's 2 x 2 patches.
CAPTION_BASELINE = dataclasses.replace(CAPTION_CROSSFLOW, model=baseline_captioner(TEXT_LATENT, IMAGE_LATENT,
                                                                                  width=128, depth=4))
#: The direct captioner: the Image VE's network (width 64) into the text latent's shape + a decoder (176 x 5).
CAPTION_DIRECT = dataclasses.replace(CAPTION_CROSSFLOW, text_autoencoder=None, model=direct_captioner(
    TEXT_LATENT, IMAGE_LATENT, encoder_width=64, width=176, depth=5))
#: The autoregressive transformer captioner (width 192, depth 3), decoded word by word.
CAPTION_AUTOREGRESSIVE = dataclasses.replace(CAPTION_CROSSFLOW, text_autoencoder=None,
                                             model=autoregressive_captioner(IMAGE_LATENT, width=192, depth=3))

__all__ = ["RICH_SHAPES", "CAPTION_TOKENS", "DECODER_LEN", "VOCAB_SIZE", "caption_vocab", "CaptionModelConfig",
           "TextAutoencoderRecipe", "CaptionRecipe", "text_autoencoder_config", "crossflow_captioner",
           "baseline_captioner", "direct_captioner", "autoregressive_captioner", "TEXT_LATENT", "IMAGE_LATENT",
           "TEXT_AUTOENCODER_SHAPES", "CAPTION_TRAIN", "CAPTION_SAMPLING", "CAPTION_CROSSFLOW", "CAPTION_BASELINE",
           "CAPTION_DIRECT", "CAPTION_AUTOREGRESSIVE"]

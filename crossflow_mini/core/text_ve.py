"""The Text Variational Encoder (Text VE): text tokens -> a Gaussian latent with the image latent's shape.

CrossFlow (Liu et al., CVPR 2025, Sec. 4.1; CROSSFLOW_NOTES Sec. 2) makes the *text* the source distribution of
flow matching. The Text VE turns frozen language-model token embeddings into (mu, logvar) shaped exactly like the
image latent z1, and the flow starts from the reparameterised sample

    z0 = mu + exp(logvar / 2) * eps,      eps ~ N(0, I)                               (reparameterisation)

Architecture (the public code's, scaled down; the paper only says "a Text VE"):

    tokens (B, L, 384) --linear--> (B, L, width) + positions --n_layers pre-norm transformer encoder layers
    (padding mask only)--> LayerNorm --reduction layers (width -> width/2 -> ..., per token)--> zero the padding
    positions --flatten (max_tokens * reduced width)--> linear --> (mu, logvar), each reshaped to latent_shape.

Losses (trained jointly with the flow model; the joint objective is L_FM + L_Enc + lambda L_KL, notes Sec. 2):

* L_KL = KL(N(mu, sigma^2) || N(0, I)), summed over latent dimensions and averaged over the batch
  (:func:`kl_divergence`). Paper: lambda = 1e-4. Public code: lambda = 1e-2 and mu^2 replaced by (0.3 mu)^6.
* L_Enc (:func:`text_ve_losses`): the paper's best is a symmetric CLIP-style InfoNCE between the flattened,
  L2-normalised z0 and an image embedding of the paired image (:class:`ImageTower`, :func:`info_nce`).
  The other rows of paper Table 3b are options: text-text contrastive and text reconstruction.
* Table 3a variants: ``"plain"`` encoder (z0 = mu), ``"noise"`` (z0 = mu + fixed std * eps, no KL),
  ``"ve"`` (the variational encoder).

The contrastive loss must see the TRUE (text, image) pairs: pass the unswapped image latents here, not the
targets that :func:`crossflow_mini.guidance.swap_targets` produced for the flow loss.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# --------------------------------------------------------------------------------------------------- configs
VARIANTS = ("ve", "plain", "noise")
KL_FORMS = ("paper", "code")
ENC_LOSSES = ("image_text", "text_text", "text_recon", "none")
CONTRASTIVE_LOSSES = ("image_text", "text_text")
TEMPERATURE_PARAMS = ("log", "raw")

#: lambda of L_KL: the paper's 1e-4 (Sec. 4.1) and the public code's 1e-2 (which goes with ``kl_form="code"``).
KL_WEIGHT_PAPER = 1e-4
KL_WEIGHT_CODE = 1e-2
DEFAULT_KL_WEIGHTS = {"paper": KL_WEIGHT_PAPER, "code": KL_WEIGHT_CODE}
#: The public code's KL replaces mu^2 by (CODE_KL_MU_SCALE * mu) ** CODE_KL_MU_POWER.
CODE_KL_MU_SCALE = 0.3
CODE_KL_MU_POWER = 6
#: CLIP's initial temperature and its cap on the logit scale (1 / temperature).
CLIP_INIT_TEMPERATURE = 0.07
MAX_LOGIT_SCALE = 100.0
#: logvar is clamped to this range before exp (as diffusers' DiagonalGaussianDistribution does).
LOGVAR_RANGE = (-30.0, 20.0)


@dataclass(frozen=True)
class ImageTowerConfig:
    """The "simple image encoder" of the image-text contrastive loss (paper Sec. 4.1, trained along).

    We feed it the 4 x 8 x 8 image *latent* rather than the 3 x 32 x 32 pixels: 48x fewer inputs, and the latent is
    already computed for the flow loss. To use pixels instead set ``in_shape=(3, 32, 32)`` and pass images.
    Each entry of ``channels`` is one 3x3 conv + SiLU; every conv after the first halves the resolution."""

    in_shape: tuple[int, int, int] = (4, 8, 8)
    channels: tuple[int, ...] = (32, 64)


@dataclass(frozen=True)
class TextVEConfig:
    """Text VE sizes and loss choices (CROSSFLOW_NOTES Sec. 2; paper Sec. 4.1, Table 3a/3b).

    ``kl_weight=None`` follows ``kl_form``: 1e-4 for ``"paper"``, 1e-2 for ``"code"`` (:attr:`resolved_kl_weight`).
    ``temperature_param``: ``"log"`` (the notes' choice, CLIP's: the logit scale is exp of a learnable log-scale
    initialised at log(1 / init_temperature)) or ``"raw"`` (the public-code quirk, per the notes: the learnable
    parameter initialised at log(1 / init_temperature) ~ 2.66 is used as the scale itself, without exp).
    ``token_scale`` multiplies the input tokens (the paper multiplies T5 features by 10; MiniLM needs 1)."""

    token_dim: int = 384
    width: int = 128
    n_layers: int = 2
    n_heads: int = 4
    ff_mult: int = 4
    dropout: float = 0.0
    reduction_layers: int = 2
    max_tokens: int = 32
    latent_shape: tuple[int, int, int] = (4, 8, 8)
    token_scale: float = 1.0
    variant: str = "ve"  # "ve" | "plain" | "noise"   (Table 3a)
    fixed_noise_std: float = 1.0  # "noise" variant: z0 = mu + fixed_noise_std * eps (the prior's std)
    kl_form: str = "paper"  # "paper" | "code"
    kl_weight: float | None = None  # None -> 1e-4 (paper) or 1e-2 (code), following kl_form
    enc_loss: str = "image_text"  # "image_text" | "text_text" | "text_recon" | "none"   (Table 3b)
    enc_weight: float = 1.0
    init_temperature: float = CLIP_INIT_TEMPERATURE
    temperature_param: str = "log"  # "log" (exp of a learnable log-scale) | "raw" (public-code quirk)
    image_tower: ImageTowerConfig = ImageTowerConfig()

    def __post_init__(self) -> None:
        for name, value, allowed in (("variant", self.variant, VARIANTS), ("kl_form", self.kl_form, KL_FORMS),
                                     ("enc_loss", self.enc_loss, ENC_LOSSES),
                                     ("temperature_param", self.temperature_param, TEMPERATURE_PARAMS)):
            if value not in allowed:
                raise ValueError(f"TextVEConfig.{name}={value!r} is not one of {allowed}")
        if self.width % self.n_heads:
            raise ValueError(f"width {self.width} must be divisible by n_heads {self.n_heads}")
        if self.width % 2 ** self.reduction_layers:
            raise ValueError(f"width {self.width} must be divisible by 2 ** reduction_layers = "
                             f"{2 ** self.reduction_layers} (each reduction layer halves it)")
        if self.max_tokens < 1 or self.token_dim < 1:
            raise ValueError("max_tokens and token_dim must be positive")
        if len(self.latent_shape) != 3:
            raise ValueError(f"latent_shape must be (C, H, W), got {self.latent_shape}")
        if self.fixed_noise_std < 0 or self.init_temperature <= 0:
            raise ValueError("fixed_noise_std must be >= 0 and init_temperature > 0")

    @property
    def reduced_width(self) -> int:
        return self.width // 2 ** self.reduction_layers

    @property
    def latent_numel(self) -> int:
        return math.prod(self.latent_shape)

    @property
    def resolved_kl_weight(self) -> float:
        """lambda of L_KL: ``kl_weight`` if set, else the default of ``kl_form``."""
        return DEFAULT_KL_WEIGHTS[self.kl_form] if self.kl_weight is None else self.kl_weight


# ------------------------------------------------------------------------------------------------- outputs
@dataclass
class TextVEOutput:
    """``z0`` (the flow's source, image-latent shape), ``mu`` and ``logvar`` (``None`` for "plain" / "noise")."""

    z0: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor | None


# ------------------------------------------------------------------------------------------------- helpers
def check_tokens(tokens: torch.Tensor, mask: torch.Tensor, token_dim: int) -> torch.Tensor:
    """Validate ``tokens (B, L, token_dim)`` and ``mask (B, L)``; return the mask as bool (True = real token)."""
    if not torch.is_tensor(tokens) or tokens.ndim != 3:
        raise ValueError(f"tokens must be a (B, L, {token_dim}) tensor, got shape "
                         f"{tuple(tokens.shape) if torch.is_tensor(tokens) else type(tokens).__name__}")
    if tokens.shape[-1] != token_dim:
        raise ValueError(f"tokens have dimension {tokens.shape[-1]} but the Text VE expects {token_dim}: "
                         f"set TextVEConfig.token_dim to match your text encoder")
    if not torch.is_tensor(mask) or tuple(mask.shape) != tuple(tokens.shape[:2]):
        raise ValueError(f"mask must have shape (B, L) = {tuple(tokens.shape[:2])} like the tokens, got "
                         f"{tuple(mask.shape) if torch.is_tensor(mask) else type(mask).__name__}")
    if mask.dtype.is_floating_point or mask.is_complex():
        raise ValueError("mask must be bool (or 0/1 integers) with True on real tokens, not floats")
    return mask.bool()


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``tokens (B, L, D)`` over the real positions of ``mask (B, L)`` -> ``(B, D)``."""
    m = mask.to(tokens.dtype)[..., None]
    return (tokens * m).sum(1) / m.sum(1).clamp_min(1.0)


# ------------------------------------------------------------------------------------------------- modules
class TextVE(nn.Module):
    """Tokens ``(B, L, token_dim)`` + mask ``(B, L)`` -> :class:`TextVEOutput` with z0 ``(B, *latent_shape)``.

    Padding never matters: padded positions are zeroed on input, masked out as attention keys and zeroed again
    before flattening, so appending padding (or putting anything into padded slots) leaves the output unchanged.
    Sequences are padded or truncated to ``max_tokens`` so the flattened size is fixed.

    Besides the encoder it holds the small text-side parts of L_Enc: the learnable logit scale (contrastive
    losses), the text head (``"text_text"``) and the reconstruction decoder (``"text_recon"``)."""

    def __init__(self, cfg: TextVEConfig = TextVEConfig()):
        super().__init__()
        self.cfg = cfg
        self.proj = nn.Linear(cfg.token_dim, cfg.width)
        self.pos = nn.Parameter(torch.zeros(1, cfg.max_tokens, cfg.width))
        nn.init.normal_(self.pos, std=0.02)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(cfg.width, cfg.n_heads, cfg.ff_mult * cfg.width, cfg.dropout,
                                       activation="gelu", batch_first=True, norm_first=True)
            for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(cfg.width)
        reductions: list[nn.Module] = []
        w = cfg.width
        for i in range(cfg.reduction_layers):  # GELU between the halving layers, none after the last
            reductions.append(nn.Linear(w, w // 2))
            w //= 2
            if i < cfg.reduction_layers - 1:
                reductions.append(nn.GELU())
        self.reduce = nn.Sequential(*reductions)
        n_stats = 2 if cfg.variant == "ve" else 1  # (mu, logvar) or mu only
        self.to_stats = nn.Linear(cfg.max_tokens * cfg.reduced_width, n_stats * cfg.latent_numel)
        if cfg.enc_loss in CONTRASTIVE_LOSSES:
            self.logit_scale_param = nn.Parameter(torch.tensor(math.log(1.0 / cfg.init_temperature)))
        if cfg.enc_loss == "text_text":
            self.text_head = nn.Linear(cfg.token_dim, cfg.latent_numel)
        if cfg.enc_loss == "text_recon":
            self.recon_head = nn.Linear(cfg.latent_numel, cfg.token_dim)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return self.cfg.latent_shape

    # -- encoder
    def _fit_length(self, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.cfg.max_tokens
        length = tokens.shape[1]
        if length > n:
            if mask[:, n:].any():
                warnings.warn(f"some sequences have real tokens beyond TextVEConfig.max_tokens={n}; they were "
                              f"truncated", stacklevel=4)
            return tokens[:, :n], mask[:, :n]
        if length < n:
            tokens = F.pad(tokens, (0, 0, 0, n - length))
            mask = F.pad(mask, (0, n - length), value=False)
        return tokens, mask

    def _stats(self, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        mask = check_tokens(tokens, mask, self.cfg.token_dim)
        tokens, mask = self._fit_length(tokens, mask)
        empty = (~mask.any(dim=1)).nonzero().flatten()
        if len(empty):
            raise ValueError(f"sample(s) {empty.tolist()} have no real token in the first {self.cfg.max_tokens} "
                             f"positions (mask all False): every caption needs at least one token")
        keep = mask[..., None]
        x = tokens.masked_fill(~keep, 0.0) * self.cfg.token_scale
        x = self.proj(x) + self.pos
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=~mask)
        x = self.reduce(self.norm(x)).masked_fill(~keep, 0.0)  # padding positions contribute exactly zero
        stats = self.to_stats(x.flatten(1))
        shape = (tokens.shape[0], *self.cfg.latent_shape)
        if self.cfg.variant == "ve":
            mu, logvar = stats.chunk(2, dim=1)
            return mu.reshape(shape), logvar.reshape(shape).clamp(*LOGVAR_RANGE)
        return stats.reshape(shape), None

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor,
                generator: torch.Generator | None = None) -> TextVEOutput:
        """Encode and sample: z0 = mu + exp(logvar / 2) * eps ("ve"), mu ("plain"), mu + std * eps ("noise").

        eps is drawn from ``generator`` when given, else from the global RNG. The sample is drawn in eval mode
        too: CrossFlow samples its source z0 at inference as well (notes Sec. 5)."""
        mu, logvar = self._stats(tokens, mask)
        if self.cfg.variant == "plain":
            return TextVEOutput(mu, mu, None)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        std = torch.exp(0.5 * logvar) if self.cfg.variant == "ve" else self.cfg.fixed_noise_std
        return TextVEOutput(mu + std * eps, mu, logvar)

    def encode_mean(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The deterministic mean mu ``(B, *latent_shape)`` (no sampling)."""
        return self._stats(tokens, mask)[0]

    # -- loss parts
    def logit_scale(self) -> torch.Tensor:
        """The contrastive logit scale (1 / temperature), capped at 100 as in CLIP."""
        if not hasattr(self, "logit_scale_param"):
            raise ValueError(f"enc_loss={self.cfg.enc_loss!r} has no logit scale; only "
                             f"{CONTRASTIVE_LOSSES} do")
        p = self.logit_scale_param
        scale = p.exp() if self.cfg.temperature_param == "log" else p
        return scale.clamp(max=MAX_LOGIT_SCALE)

    def text_embedding(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``"text_text"``: a linear projection of the mean-pooled input tokens, ``(B, latent_numel)``."""
        if not hasattr(self, "text_head"):
            raise ValueError("text_embedding needs TextVEConfig(enc_loss='text_text')")
        mask = check_tokens(tokens, mask, self.cfg.token_dim)
        return self.text_head(masked_mean(tokens * self.cfg.token_scale, mask))


class ImageTower(nn.Module):
    """Image latent ``(B, *in_shape)`` -> embedding ``(B, embed_dim)`` for the image-text contrastive loss.

    A few 3x3 convs with SiLU (stride 2 after the first) and one linear projection; ``embed_dim`` defaults to
    the flattened latent size so it lives in the same space as the flattened z0 (paper Sec. 4.1)."""

    def __init__(self, cfg: ImageTowerConfig = ImageTowerConfig(), embed_dim: int | None = None):
        super().__init__()
        self.cfg = cfg
        c, h, w = cfg.in_shape
        self.embed_dim = embed_dim if embed_dim is not None else math.prod(cfg.in_shape)
        convs: list[nn.Module] = []
        for i, out in enumerate(cfg.channels):
            stride = 1 if i == 0 else 2
            convs += [nn.Conv2d(c, out, 3, stride=stride, padding=1), nn.SiLU()]
            c = out
            if stride == 2:
                h, w = (h + 1) // 2, (w + 1) // 2
        self.convs = nn.Sequential(*convs)
        self.head = nn.Linear(c * h * w, self.embed_dim)

    @classmethod
    def for_text_ve(cls, cfg: TextVEConfig) -> "ImageTower":
        """The tower that matches a Text VE: ``cfg.image_tower`` projecting to ``cfg.latent_numel``."""
        return cls(cfg.image_tower, cfg.latent_numel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != tuple(self.cfg.in_shape):
            raise ValueError(f"ImageTower expects (B, {', '.join(map(str, self.cfg.in_shape))}) inputs "
                             f"(ImageTowerConfig.in_shape), got {tuple(x.shape)}")
        return self.head(self.convs(x).flatten(1))


# -------------------------------------------------------------------------------------------------- losses
def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor, form: str = "paper") -> torch.Tensor:
    """Per-sample KL to the standard normal prior, SUMMED over all latent dimensions -> ``(B,)``.

    ``"paper"`` (Sec. 4.1): KL(N(mu, sigma^2) || N(0, I)) = 1/2 sum( mu^2 + exp(logvar) - 1 - logvar ).
    ``"code"`` (public code, an empirical tweak for diversity): the same with mu^2 replaced by (0.3 mu)^6,
    1/2 sum( (0.3 mu)^6 + exp(logvar) - 1 - logvar ) - it lets |mu| grow freely up to ~1/0.3 before pulling.

    :func:`text_ve_losses` averages this over the batch (sum over dims, mean over samples - the usual VAE
    reduction), so lambda acts per latent dimension and does not change with the latent size."""
    if mu.shape != logvar.shape:
        raise ValueError(f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} must have the same shape")
    if form == "paper":
        mean_term = mu.pow(2)
    elif form == "code":
        mean_term = (CODE_KL_MU_SCALE * mu).pow(CODE_KL_MU_POWER)
    else:
        raise ValueError(f"unknown KL form {form!r}; choose one of {KL_FORMS}")
    kl = 0.5 * (mean_term + logvar.exp() - 1.0 - logvar)
    return kl.flatten(1).sum(dim=1)


def info_nce(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor | float) -> torch.Tensor:
    """Symmetric CLIP InfoNCE between row-paired ``a`` and ``b`` (any shape ``(B, ...)``, flattened).

    With a_i, b_j L2-normalised and logits S_ij = s <a_i, b_j> (s = ``logit_scale`` = 1 / temperature):

        L = 1/2 [ CE(S, diag) + CE(S^T, diag) ] = -1/(2B) sum_i [ log softmax_j S_ij + log softmax_j S_ji ]_(j=i)

    Closed forms: equal similarities everywhere give log B; orthonormal perfect matches give
    log(1 + (B - 1) e^{-s}), which goes to 0 as s grows."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"info_nce needs paired rows: {a.shape[0]} vs {b.shape[0]}")
    if a[0].numel() != b[0].numel():
        raise ValueError(f"flattened sizes differ: {a[0].numel()} vs {b[0].numel()} (project both to one size)")
    a = F.normalize(a.flatten(1), dim=1)
    b = F.normalize(b.flatten(1), dim=1)
    logits = logit_scale * a @ b.T
    labels = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def text_ve_losses(ve_out: TextVEOutput, image_latents: torch.Tensor | None, tokens: torch.Tensor,
                   mask: torch.Tensor, ve: TextVE, image_tower: ImageTower | None = None) -> dict[str, torch.Tensor]:
    """The Text VE's part of the joint loss: ``{"kl", "enc", "total_ve", "logit_scale"}``.

    total_ve = enc_weight * L_Enc + lambda * L_KL; the trainer adds L_FM (joint objective L_FM + L_Enc +
    lambda L_KL, notes Sec. 2; ``enc_weight`` is 1 in the paper). The config is ``ve.cfg``.

    * ``kl``: batch mean of :func:`kl_divergence` (0 for the "plain" and "noise" variants).
    * ``enc`` by ``cfg.enc_loss`` (paper Table 3b):
      - ``"image_text"`` (paper best): :func:`info_nce` (z0, image_tower(image_latents)). ``image_latents``
        must be the TRUE partners of the texts (not the CFG-swapped flow targets).
      - ``"text_text"``: :func:`info_nce` (z0, linear projection of the mean-pooled input tokens). The paper
        does not spell this row out; we read it as the image-text loss with the image side replaced by a text
        embedding of the same caption.
      - ``"text_recon"``: MSE between a linear decoding of z0 and the mean-pooled input tokens.
      - ``"none"``: 0.
    * ``logit_scale``: the current contrastive scale, detached, for logging (NaN if there is none)."""
    cfg = ve.cfg
    mu = ve_out.mu
    zero = mu.new_zeros(())
    kl = zero if ve_out.logvar is None else kl_divergence(mu, ve_out.logvar, cfg.kl_form).mean()
    z0 = ve_out.z0
    if cfg.enc_loss == "image_text":
        if image_tower is None or image_latents is None:
            raise ValueError("enc_loss='image_text' needs image_latents and an image_tower "
                             "(ImageTower.for_text_ve(cfg))")
        if image_latents.shape[0] != z0.shape[0]:
            raise ValueError(f"{image_latents.shape[0]} image latents for {z0.shape[0]} texts: pass the true pairs")
        enc = info_nce(z0, image_tower(image_latents), ve.logit_scale())
    elif cfg.enc_loss == "text_text":
        enc = info_nce(z0, ve.text_embedding(tokens, mask), ve.logit_scale())
    elif cfg.enc_loss == "text_recon":
        pooled = masked_mean(tokens * cfg.token_scale, check_tokens(tokens, mask, cfg.token_dim))
        enc = F.mse_loss(ve.recon_head(z0.flatten(1)), pooled)
    else:
        enc = zero
    total = cfg.enc_weight * enc + cfg.resolved_kl_weight * kl
    scale = ve.logit_scale().detach() if cfg.enc_loss in CONTRASTIVE_LOSSES else mu.new_tensor(float("nan"))
    return {"kl": kl, "enc": enc, "total_ve": total, "logit_scale": scale}


__all__ = [
    "VARIANTS", "KL_FORMS", "ENC_LOSSES", "KL_WEIGHT_PAPER", "KL_WEIGHT_CODE", "MAX_LOGIT_SCALE",
    "ImageTowerConfig", "TextVEConfig", "TextVEOutput", "TextVE", "ImageTower", "check_tokens", "masked_mean",
    "kl_divergence", "info_nce", "text_ve_losses",
]

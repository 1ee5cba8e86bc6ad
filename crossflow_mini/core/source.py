"""Source encoders: what turns a task's input into the Gaussian latent z0 that CrossFlow flows from.

CrossFlow (paper Sec. 4.1; docs/METHOD.md Sec. 2, 7) is one recipe for any pair of modalities. A *source
encoder* maps the source (caption tokens, an image, a low-resolution image, ...) to the parameters of a Gaussian
with exactly the TARGET latent's shape, and the flow starts from the reparameterised sample

    z0 = mu + sigma * eps,      eps ~ N(0, I),      sigma = exp(logvar / 2)                     (reparameterisation)

Every encoder here returns a :class:`SourceOutput` ``(z0, mu, logvar)`` and owns its part of the joint loss
(L_Enc + lambda L_KL, :meth:`SourceEncoder.losses`); the CrossFlow model adds L_FM. Instances:

* :class:`~crossflow_mini.core.text_ve.TextVE` - caption tokens -> image-latent shape (text-to-image), or any
  latent shape (the text autoencoder of captioning);
* :class:`~crossflow_mini.core.image_ve.ImageVE` - an image or image latent -> any target shape (depth map,
  text latent, high-resolution image);
* :class:`IdentitySource` - the degenerate source of intra-modal tasks: the source itself, optionally plus fixed
  Gaussian noise (super-resolution from the upsampled low-resolution image).

What a source encoder may be asked to do is fixed by three choices the paper's Table 3a/3b ablates:

* ``variant``: ``"ve"`` (variational: mu and logvar, the sample above), ``"plain"`` (z0 = mu, no noise) or
  ``"noise"`` (z0 = mu + fixed_noise_std * eps: noise without a learned variance);
* the KL form and weight (:func:`kl_divergence`; paper: mu^2 and lambda 1e-4, public code: (0.3 mu)^6 and 1e-2);
* the encoder loss L_Enc, e.g. the image-text contrastive loss (:func:`info_nce` between z0 and an embedding of the
  paired *target* made by a small :class:`TargetTower`, trained along).

This module holds what they share: the output type, the token batch, the reparameterisation, the KL, InfoNCE, the
target tower, and the identity source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

VARIANTS = ("ve", "plain", "noise")
KL_FORMS = ("paper", "code")
TEMPERATURE_PARAMS = ("log", "raw")
#: lambda of L_KL: the paper's 1e-4 (Sec. 4.1) and the public code's 1e-2 (which goes with ``kl_form="code"``).
KL_WEIGHT_PAPER = 1e-4
KL_WEIGHT_CODE = 1e-2
DEFAULT_KL_WEIGHTS = {"paper": KL_WEIGHT_PAPER, "code": KL_WEIGHT_CODE}


def resolve_kl_weight(kl_form: str, kl_weight: float | None) -> float:
    """lambda of L_KL, resolved in this one place: ``kl_weight`` where a config sets it, else the default of its
    ``kl_form`` (the paper's 1e-4, the public code's 1e-2)."""
    return DEFAULT_KL_WEIGHTS[kl_form] if kl_weight is None else float(kl_weight)
#: The public code's KL replaces mu^2 by (CODE_KL_MU_SCALE * mu) ** CODE_KL_MU_POWER.
CODE_KL_MU_SCALE = 0.3
CODE_KL_MU_POWER = 6
#: CLIP's initial temperature and its cap on the logit scale (1 / temperature).
CLIP_INIT_TEMPERATURE = 0.07
MAX_LOGIT_SCALE = 100.0
#: logvar is clamped to this range before exp (as diffusers' DiagonalGaussianDistribution does).
LOGVAR_RANGE = (-30.0, 20.0)
#: Width of the token embeddings of the project's default frozen text encoder (all-MiniLM-L6-v2).
MINILM_TOKEN_DIM = 384


# ------------------------------------------------------------------------------------------------ data types
@dataclass
class SourceOutput:
    """``z0`` (the flow's source, target-latent shape), ``mu`` and ``logvar`` (``None`` for "plain" / "noise")."""

    z0: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor | None


@dataclass
class TokenBatch:
    """Frozen text-encoder tokens ``(B, L, D)`` and their padding mask ``(B, L)`` (True on real tokens): the source
    of the Text VE and the condition of the cross-attention baseline. Unpacks as ``tokens, mask = batch``."""

    tokens: torch.Tensor
    mask: torch.Tensor

    def __post_init__(self) -> None:
        if not torch.is_tensor(self.tokens) or self.tokens.ndim != 3:
            raise ValueError(f"tokens must be a (B, L, D) tensor, got "
                             f"{tuple(self.tokens.shape) if torch.is_tensor(self.tokens) else type(self.tokens)}")
        if not torch.is_tensor(self.mask) or tuple(self.mask.shape) != tuple(self.tokens.shape[:2]):
            raise ValueError(f"mask must have shape (B, L) = {tuple(self.tokens.shape[:2])} like the tokens, got "
                             f"{tuple(self.mask.shape) if torch.is_tensor(self.mask) else type(self.mask).__name__}")
        if self.mask.dtype.is_floating_point or self.mask.is_complex():
            raise ValueError("mask must be bool (or 0/1 integers) with True on real tokens, not floats")
        if self.mask.dtype != torch.bool:
            self.mask = self.mask.bool()

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter((self.tokens, self.mask))

    def __getitem__(self, idx) -> "TokenBatch":
        return TokenBatch(self.tokens[idx], self.mask[idx])

    def to(self, device: torch.device | str) -> "TokenBatch":
        return TokenBatch(self.tokens.to(device), self.mask.to(device))

    @staticmethod
    def cat(batches: "list[TokenBatch]") -> "TokenBatch":
        """Concatenate along the batch (all must share the padded length)."""
        return TokenBatch(torch.cat([b.tokens for b in batches]), torch.cat([b.mask for b in batches]))


Source = torch.Tensor | TokenBatch


def batch_size(source: Source) -> int:
    return len(source) if isinstance(source, TokenBatch) else source.shape[0]


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``tokens (B, L, D)`` over the real positions of ``mask (B, L)`` -> ``(B, D)``."""
    m = mask.to(tokens.dtype)[..., None]
    return (tokens * m).sum(1) / m.sum(1).clamp_min(1.0)


def draw_noise(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal noise of ``shape`` on ``device``, drawn from ``generator`` where given.

    The draw happens on the generator's own device and is then moved, so a CPU generator gives the same numbers
    whichever device the model runs on (a seeded run means the same thing on a laptop and on a GPU)."""
    if generator is None:
        return torch.randn(shape, device=device, dtype=dtype)
    return torch.randn(shape, generator=generator, device=generator.device, dtype=dtype).to(device)


# ------------------------------------------------------------------------------------------------ the math
def reparameterise(mu: torch.Tensor, logvar: torch.Tensor | None, variant: str, fixed_noise_std: float,
                   generator: torch.Generator | None = None) -> SourceOutput:
    """z0 from the encoder's statistics: ``mu + exp(logvar / 2) eps`` ("ve"), ``mu`` ("plain") or
    ``mu + fixed_noise_std * eps`` ("noise"). eps is drawn from ``generator`` when given (else the global RNG),
    in eval mode too: CrossFlow samples its source at inference as well (docs/METHOD.md Sec. 5)."""
    if variant == "plain":
        return SourceOutput(mu, mu, None)
    eps = draw_noise(tuple(mu.shape), generator, mu.device, mu.dtype)
    if variant == "ve":
        if logvar is None:
            raise ValueError("the 've' variant needs a logvar")
        return SourceOutput(mu + torch.exp(0.5 * logvar) * eps, mu, logvar)
    if variant == "noise":
        return SourceOutput(mu + fixed_noise_std * eps, mu, None)
    raise ValueError(f"unknown variant {variant!r}; choose one of {VARIANTS}")


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor, form: str = "paper") -> torch.Tensor:
    """Per-sample KL to the standard normal prior, SUMMED over all latent dimensions -> ``(B,)``.

    ``"paper"`` (Sec. 4.1): KL(N(mu, sigma^2) || N(0, I)) = 1/2 sum( mu^2 + exp(logvar) - 1 - logvar ).
    ``"code"`` (public code, an empirical tweak for diversity): the same with mu^2 replaced by (0.3 mu)^6,
    1/2 sum( (0.3 mu)^6 + exp(logvar) - 1 - logvar ) - it lets |mu| grow freely up to ~1/0.3 before pulling.

    :meth:`SourceEncoder.losses` averages this over the batch (sum over dims, mean over samples - the usual VAE
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
    log(1 + (B - 1) e^{-s}), which goes to 0 as s grows. Extra rows of ``b`` beyond ``a``'s (hard negatives) are
    candidates for ``a`` only: ``b`` may have ``B + K`` rows, the first B paired with ``a``."""
    if b.shape[0] < a.shape[0]:
        raise ValueError(f"info_nce needs paired rows: {a.shape[0]} vs {b.shape[0]}")
    if a[0].numel() != b[0].numel():
        raise ValueError(f"flattened sizes differ: {a[0].numel()} vs {b[0].numel()} (project both to one size)")
    n = a.shape[0]
    a = F.normalize(a.flatten(1), dim=1)
    b = F.normalize(b.flatten(1), dim=1)
    logits = logit_scale * a @ b.T  # (B, B + K)
    labels = torch.arange(n, device=a.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits[:, :n].T, labels))


# ------------------------------------------------------------------------------------------------ configs
@dataclass(frozen=True)
class TowerConfig:
    """The "simple encoder" of the contrastive loss (paper Sec. 4.1, trained along): it embeds the TARGET.

    For text-to-image the target is the 4 x 8 x 8 image latent (48x fewer inputs than the pixels, and already
    computed for the flow loss). Each entry of ``channels`` is one 3x3 conv + SiLU; every conv after the first
    halves the resolution; one linear map projects to the flattened source-latent size."""

    in_shape: tuple[int, int, int] = (4, 8, 8)
    channels: tuple[int, ...] = (32, 64)


@dataclass(frozen=True)
class IdentitySourceConfig:
    """The degenerate source of an intra-modal task: z0 = the source itself (+ ``noise_std`` * eps).

    Super-resolution (paper Sec. 5.6) flows from the bicubic-upsampled low-resolution image; ``noise_std = 0`` is
    the paper's noise-free source, a small ``noise_std`` the "encoder + noise" row of Table 3a, now intra-modal."""

    latent_shape: tuple[int, int, int] = (3, 32, 32)
    noise_std: float = 0.0

    def __post_init__(self) -> None:
        if self.noise_std < 0:
            raise ValueError(f"IdentitySourceConfig.noise_std must be >= 0, got {self.noise_std}")


def check_common(name: str, variant: str, kl_form: str, temperature_param: str, fixed_noise_std: float,
                 init_temperature: float) -> None:
    """The config checks every learned source encoder shares."""
    for field, value, allowed in (("variant", variant, VARIANTS), ("kl_form", kl_form, KL_FORMS),
                                  ("temperature_param", temperature_param, TEMPERATURE_PARAMS)):
        if value not in allowed:
            raise ValueError(f"{name}.{field}={value!r} is not one of {allowed}")
    if fixed_noise_std < 0 or init_temperature <= 0:
        raise ValueError(f"{name}: fixed_noise_std must be >= 0 and init_temperature > 0")


# ------------------------------------------------------------------------------------------------ modules
class TargetTower(nn.Module):
    """Target ``(B, *in_shape)`` -> embedding ``(B, embed_dim)`` for the contrastive loss (the image tower of
    text-to-image). A few 3x3 convs with SiLU (stride 2 after the first) and one linear projection into the
    space of the flattened z0."""

    def __init__(self, cfg: TowerConfig, embed_dim: int):
        super().__init__()
        self.cfg = cfg
        c, h, w = cfg.in_shape
        self.embed_dim = embed_dim
        convs: list[nn.Module] = []
        for i, out in enumerate(cfg.channels):
            stride = 1 if i == 0 else 2
            convs += [nn.Conv2d(c, out, 3, stride=stride, padding=1), nn.SiLU()]
            c = out
            if stride == 2:
                h, w = (h + 1) // 2, (w + 1) // 2
        self.convs = nn.Sequential(*convs)
        self.head = nn.Linear(c * h * w, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or tuple(x.shape[1:]) != tuple(self.cfg.in_shape):
            raise ValueError(f"the target tower expects (B, {', '.join(map(str, self.cfg.in_shape))}) inputs "
                             f"(TowerConfig.in_shape), got {tuple(x.shape)}")
        return self.head(self.convs(x).flatten(1))


class SourceEncoder(nn.Module):
    """Base class: ``forward(source, generator) -> SourceOutput`` and ``losses(out, source, target)``.

    Subclasses implement :meth:`stats` (``mu``, ``logvar`` or ``None``) and, where they have one, the encoder loss
    (:meth:`encoder_loss`). The shared parts - reparameterisation, KL, the learnable contrastive temperature and
    the target tower - live here."""

    cfg: object

    def __init__(self, cfg: object, contrastive: bool, tower: TowerConfig | None = None):
        super().__init__()
        self.cfg = cfg
        if contrastive:
            init = getattr(cfg, "init_temperature", CLIP_INIT_TEMPERATURE)
            self.logit_scale_param = nn.Parameter(torch.tensor(math.log(1.0 / init)))
        self.tower = TargetTower(tower, math.prod(self.latent_shape)) if tower is not None else None

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return tuple(self.cfg.latent_shape)  # type: ignore[attr-defined]

    # -- encoding
    def stats(self, source: Source) -> tuple[torch.Tensor, torch.Tensor | None]:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, source: Source, generator: torch.Generator | None = None) -> SourceOutput:
        """Encode and sample z0 (see :func:`reparameterise`)."""
        mu, logvar = self.stats(source)
        return reparameterise(mu, logvar, self.cfg.variant, self.cfg.fixed_noise_std, generator)  # type: ignore

    def encode_mean(self, source: Source) -> torch.Tensor:
        """The deterministic mean mu ``(B, *latent_shape)`` (no sampling)."""
        return self.stats(source)[0]

    # -- loss parts
    def logit_scale(self) -> torch.Tensor:
        """The contrastive logit scale (1 / temperature), capped at 100 as in CLIP. ``temperature_param="log"``
        exponentiates a learnable log-scale (CLIP's, the default here); ``"raw"`` uses the parameter itself (the
        public-code quirk: initialised at log(1 / 0.07) ~ 2.66 and never exponentiated)."""
        if not hasattr(self, "logit_scale_param"):
            raise ValueError("this encoder has no contrastive loss, so no logit scale")
        p = self.logit_scale_param
        scale = p.exp() if getattr(self.cfg, "temperature_param", "log") == "log" else p
        return scale.clamp(max=MAX_LOGIT_SCALE)

    def target_contrastive(self, z0: torch.Tensor, target: torch.Tensor | None,
                           negatives: torch.Tensor | None = None) -> torch.Tensor:
        """InfoNCE between z0 and the tower's embedding of the TRUE paired targets (never the CFG-swapped ones),
        with optional extra negative targets (hard negatives) that only compete for each z0."""
        if self.tower is None or target is None:
            raise ValueError("the target-contrastive loss needs a target tower and the paired targets")
        if target.shape[0] != z0.shape[0]:
            raise ValueError(f"{target.shape[0]} targets for {z0.shape[0]} sources: pass the true pairs")
        cand = target if negatives is None else torch.cat([target, negatives])
        return info_nce(z0, self.tower(cand), self.logit_scale())

    def encoder_loss(self, out: SourceOutput, source: Source, target: torch.Tensor | None,
                     negatives: torch.Tensor | None = None) -> torch.Tensor:
        """L_Enc; the base class has none (0)."""
        return out.mu.new_zeros(())

    def losses(self, out: SourceOutput, source: Source, target: torch.Tensor | None,
               negatives: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The encoder's part of the joint loss: ``{"kl", "enc", "align", "total"}`` with
        total = enc_weight * L_Enc + lambda * L_KL + align_weight * L_align (the trainer adds L_FM; docs/METHOD.md
        Sec. 2).

        ``kl`` is the batch mean of :func:`kl_divergence` (0 for the "plain" and "noise" variants). ``align`` (ours,
        not the paper's; 0 unless ``align_weight > 0``) is the mean squared distance between mu and the paired
        target, || mu - z1 ||^2: it lays the source out like the target it flows to, so the flow has a short,
        local correction to learn (docs/MEASUREMENTS.md, "compositional prompts")."""
        cfg = self.cfg
        zero = out.mu.new_zeros(())
        kl = zero if out.logvar is None else kl_divergence(out.mu, out.logvar, cfg.kl_form).mean()  # type: ignore
        enc = self.encoder_loss(out, source, target, negatives)
        weight = resolve_kl_weight(cfg.kl_form, cfg.kl_weight)  # type: ignore[attr-defined]
        total = cfg.enc_weight * enc + weight * kl  # type: ignore[attr-defined]
        align = zero
        align_weight = getattr(cfg, "align_weight", 0.0)
        if align_weight:
            if target is None or target.shape != out.mu.shape:
                raise ValueError("the alignment loss needs the paired targets, shaped like the source latent")
            align = F.mse_loss(out.mu, target)
            total = total + align_weight * align
        return {"kl": kl, "enc": enc, "align": align, "total": total}

    def training_only(self) -> list[nn.Module]:
        """Submodules that serve only the training loss (not sampling): the target tower."""
        return [self.tower] if self.tower is not None else []


class IdentitySource(SourceEncoder):
    """z0 = source (+ ``noise_std`` * eps): no parameters, no KL, no encoder loss (the intra-modal source)."""

    def __init__(self, cfg: IdentitySourceConfig = IdentitySourceConfig()):
        nn.Module.__init__(self)
        self.cfg = cfg
        self.tower = None

    def stats(self, source: Source) -> tuple[torch.Tensor, torch.Tensor | None]:
        if not torch.is_tensor(source) or tuple(source.shape[1:]) != tuple(self.cfg.latent_shape):
            shape = tuple(source.shape) if torch.is_tensor(source) else type(source).__name__
            raise ValueError(f"the identity source needs inputs shaped like the target (B, "
                             f"{', '.join(map(str, self.cfg.latent_shape))}), got {shape}")
        return source, None

    def forward(self, source: Source, generator: torch.Generator | None = None) -> SourceOutput:
        mu, _ = self.stats(source)
        if self.cfg.noise_std == 0:
            return SourceOutput(mu, mu, None)
        return reparameterise(mu, None, "noise", self.cfg.noise_std, generator)

    def losses(self, out: SourceOutput, source: Source, target: torch.Tensor | None,
               negatives: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        zero = out.mu.new_zeros(())
        return {"kl": zero, "enc": zero, "align": zero, "total": zero}


__all__ = [
    "VARIANTS", "KL_FORMS", "KL_WEIGHT_PAPER", "KL_WEIGHT_CODE", "DEFAULT_KL_WEIGHTS", "resolve_kl_weight", "MAX_LOGIT_SCALE",
    "LOGVAR_RANGE", "MINILM_TOKEN_DIM", "SourceOutput", "TokenBatch", "Source", "batch_size", "masked_mean",
    "draw_noise", "reparameterise", "kl_divergence", "info_nce", "TowerConfig", "IdentitySourceConfig",
    "TargetTower", "SourceEncoder", "IdentitySource",
]

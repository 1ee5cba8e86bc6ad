"""Latent arithmetic and interpolation with a text-to-image CrossFlow model, judged like the paper's Table 8.

CrossFlow's flow starts at the text latent z0 (paper Sec. 5.3, Fig. 5-6, Table 8): add, subtract or interpolate the
z0 of several prompts and flow the result to an image. The recipe here, for one case (:mod:`.arithmetic_cases`):

1. encode each prompt to its text latent: the Text VE's mean ``mu`` by default (``ArithmeticConfig.sample=False``,
   as the issue asks: the answer then depends on the prompts alone), or a draw z0 = mu + sigma eps
   (``sample=True``, what the public code uses);
2. combine with the case's coefficients, z = sum_i c_i z_i;
3. **standardise** the result with its own global mean and standard deviation, z <- (z - mean(z)) / std(z), over
   all of the latent's entries (the public code, ``demo_t2i_arith.py``: ``(z - z.mean()) / z.std()``, with torch's
   unbiased std; the paper does not mention it). Without it a sum of two latents is about sqrt(2) times as large as
   either (more if they point the same way) and a difference is small, so the flow would start far from where any
   prompt puts it. ``ArithmeticConfig.standardisation``: ``"unit"`` (the public code), ``"none"``, or ``"operands"``
   (ours: standardised, then given the operands' mean global mean and std - the scale of one prompt's latent, which
   for Text VE means need not be 1); the study measures the other two as controls;
4. flow with classifier-free guidance (default: the pipeline's scale, chosen on validation prompts when the model was
   trained; the public code asserts a scale > 1) and decode;
5. let the judge read the image and :func:`~crossflow_mini.tasks.arithmetic_cases.score` it.

Interpolation (:mod:`.interpolation`) is linear between the two prompts' latents without standardisation, as in the
public code, with spherical interpolation beside it.

Controls that give the numbers a meaning:

* the *trivial answer*: the one prompt the arithmetic should equal ("a red circle to the left of a blue square" for
  the addition of its two halves), generated and judged the same way - how close arithmetic gets to asking directly;
* the arithmetic without standardisation, rescaled to the operands' scale, and with z0 draws instead of means (or the
  reverse).

The same arithmetic on the standard flow-matching baseline is not possible, and a mean-pooled MiniLM embedding would
not fix that: the baseline's flow starts from noise that knows nothing of the prompt, and its network reads the
text as a *sequence of tokens* through cross-attention at every step. There is no single vector of the prompt for a
sum to act on - adding token sequences of prompts of different lengths aligns unrelated words, and a pooled vector is
not an input the baseline was trained to read. CrossFlow has exactly one such object: z0, in the image latent's
shape, where the flow begins.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ...datasets import shapes as sw
from ...eval.judge import JudgeNet, read_scenes
from .interpolation import METHODS as INTERPOLATIONS
from .interpolation import norm_profile, path as interpolation_path, read_path, summarise_paths
from .arithmetic_cases import (EDIT_KINDS, KINDS, PAPER_ROWS, PAPER_TABLE8, ArithmeticCase, caption, make_cases, score,
                               single)

GROUPS: tuple[str, ...] = ("all", "in_distribution", "heldout_combinations")
#: How a combination is standardised: the public code's unit mean-0 std-1, none, or to the operands' scale (ours).
STANDARDISATIONS: tuple[str, ...] = ("unit", "none", "operands")
#: The study's controls: a label -> what it changes against the config (a control equal to the config is skipped).
CONTROLS: dict[str, dict[str, Any]] = {"no_standardisation": {"standardisation": "none"},
                                       "operand_scale": {"standardisation": "operands"}}


@dataclass(frozen=True)
class ArithmeticConfig:
    """The arithmetic study (``python -m crossflow_mini reproduce arithmetic``) and the notebook's live part.

    ``cases_per_kind`` random cases of each of ``kinds`` (arithmetic and its trivial answer); ``sweep_alphas`` x
    ``sweep_cases`` additions VE(A) + alpha VE(B) (the paper's Fig. 6 uses alpha 0.25 .. 3); ``control_cases`` per
    kind for each control (:data:`CONTROLS`, and the other kind of latent: draws / means);
    ``interpolation_pairs`` prompt pairs at ``interpolation_points`` positions, each way of interpolating.
    ``guidance_scale`` / ``steps``: None takes the pipeline's (the scale chosen on validation prompts, the recipe's
    steps). ``sample``: z0 draws instead of the Text VE's mean. ``standardisation``: of every combination
    (:data:`STANDARDISATIONS`; ``"unit"`` is the public code's)."""

    cases_per_kind: int = 500
    kinds: tuple[str, ...] = KINDS
    sweep_alphas: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
    sweep_cases: int = 500
    control_cases: int = 200
    interpolation_pairs: int = 100
    interpolation_points: int = 9
    guidance_scale: float | None = None
    steps: int | None = None
    sample: bool = False
    standardisation: str = "unit"
    seed: int = 0
    batch_size: int = 250

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown arithmetic kinds {unknown}; choose from {', '.join(KINDS)}")
        if self.standardisation not in STANDARDISATIONS:
            raise ValueError(f"unknown standardisation {self.standardisation!r}; choose one of {STANDARDISATIONS}")
        if self.interpolation_points < 2 and self.interpolation_pairs:
            raise ValueError("an interpolation path needs at least 2 points (its two ends)")


# ------------------------------------------------------------------------------------------ latent algebra
def standardise(z: torch.Tensor) -> torch.Tensor:
    """Each sample of ``z`` ``(B, ...)`` minus its own mean over all entries, divided by its own (unbiased) standard
    deviation: the public code's ``(z - z.mean()) / z.std()`` applied per sample."""
    flat = z.flatten(1)
    return ((flat - flat.mean(1, keepdim=True)) / flat.std(1, keepdim=True)).view_as(z)


def combine(latents: Sequence[torch.Tensor], coefficients: Sequence[float] | Sequence[torch.Tensor],
            standardisation: str = "unit") -> torch.Tensor:
    """``sum_i c_i z_i`` over latents ``z_i`` ``(B, ...)``; each ``c_i`` a number or one value per sample ``(B,)``;
    then standardised: ``"unit"`` (:func:`standardise`, the public code), ``"none"``, or ``"operands"`` (standardised,
    then scaled to the mean of the operands' global stds and shifted to the mean of their global means - ours)."""
    if len(latents) != len(coefficients) or not latents:
        raise ValueError(f"give one coefficient per latent (got {len(coefficients)} for {len(latents)})")
    if standardisation not in STANDARDISATIONS:
        raise ValueError(f"unknown standardisation {standardisation!r}; choose one of {STANDARDISATIONS}")
    z = torch.zeros_like(latents[0])
    for c, lat in zip(coefficients, latents):
        c = torch.as_tensor(c, dtype=lat.dtype, device=lat.device)
        z = z + (c.view(-1, *([1] * (lat.ndim - 1))) if c.ndim else c) * lat
    if standardisation == "none":
        return z
    if standardisation == "unit":
        return standardise(z)
    flat = torch.stack([lat.flatten(1) for lat in latents])  # (K, B, D)
    shape = (-1, *([1] * (z.ndim - 1)))
    return standardise(z) * flat.std(2).mean(0).view(shape) + flat.mean(2).mean(0).view(shape)


class TextLatents:
    """Prompts -> text latents of a :class:`~crossflow_mini.pipelines.CrossFlowPipeline`: the Text VE's mean of each
    distinct prompt is computed once and kept; draws are made per occurrence (two mentions of a prompt, two draws)."""

    def __init__(self, pipe: Any, batch_size: int = 250):
        self.pipe = pipe
        self.batch_size = batch_size
        self._mu: dict[str, torch.Tensor] = {}

    def mean(self, prompts: Sequence[str]) -> torch.Tensor:
        """``(N, *latent)`` Text VE means, on the pipeline's device."""
        missing = sorted(set(prompts) - set(self._mu))
        for i in range(0, len(missing), self.batch_size):
            chunk = missing[i:i + self.batch_size]
            self._mu.update(zip(chunk, self.pipe.encode_text(chunk, sample=False)))
        return torch.stack([self._mu[p] for p in prompts])

    def draw(self, prompts: Sequence[str], generator: torch.Generator | None) -> torch.Tensor:
        """``(N, *latent)`` reparameterised draws z0 = mu + sigma eps, one per occurrence."""
        prompts = list(prompts)
        return torch.cat([self.pipe.encode_text(prompts[i:i + self.batch_size], generator, sample=True)
                          for i in range(0, len(prompts), self.batch_size)])

    def __call__(self, prompts: Sequence[str], sample: bool = False,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        return self.draw(prompts, generator) if sample else self.mean(prompts)


def case_latents(cases: Sequence[ArithmeticCase], latents: Callable[[list[str]], torch.Tensor],
                 standardisation: str = "unit") -> torch.Tensor:
    """The starting points of a list of cases with the same number of terms: ``latents(prompts)`` of each term,
    combined with each case's coefficients (:func:`combine`)."""
    if not cases:
        raise ValueError("no cases")
    n_terms = {len(c.terms) for c in cases}
    if len(n_terms) != 1:
        raise ValueError(f"cases with different numbers of terms ({sorted(n_terms)}) cannot be batched together")
    terms = range(n_terms.pop())
    parts = [latents([c.terms[k][1] for c in cases]) for k in terms]
    coefficients = [torch.tensor([c.terms[k][0] for c in cases]) for k in terms]
    return combine(parts, coefficients, standardisation)


# ------------------------------------------------------------------------------------------------ running
@torch.no_grad()
def render(pipe: Any, z0: torch.Tensor, guidance_scale: float | None = None, steps: int | None = None,
           batch_size: int = 250) -> torch.Tensor:
    """Flow text latents ``z0`` to images in [-1, 1] ``(N, C, H, W)``, on the CPU (the pipeline's guided ODE and
    decoder; ``None`` takes the pipeline's default scale and steps)."""
    out = []
    for i in range(0, len(z0), batch_size):
        res = pipe.from_text_latents(z0[i:i + batch_size], guidance_scale=guidance_scale,
                                     num_inference_steps=steps, output_type="latent")
        out.append(pipe.decode(res.latents).cpu())
    return torch.cat(out) if out else torch.empty(0)


def judge_cases(judge: JudgeNet, cases: Sequence[ArithmeticCase], images: torch.Tensor) -> list[dict[str, bool]]:
    """The judge's reading of each image, scored against its case."""
    return [score(c, read) for c, read in zip(cases, read_scenes(judge, images))]


@dataclass
class CaseRun:
    """What :func:`run_cases` made: the start latents, the images in [-1, 1] and the scores, in case order."""

    cases: list[ArithmeticCase]
    z0: torch.Tensor
    images: torch.Tensor
    scores: list[dict[str, bool]]


def run_cases(pipe: Any, judge: JudgeNet, cases: Sequence[ArithmeticCase], latents: TextLatents,
              cfg: ArithmeticConfig, *, trivial: bool = False, standardisation: str | None = None,
              sample: bool | None = None) -> CaseRun:
    """Generate and judge ``cases`` (all with the same number of terms): their arithmetic, or with ``trivial`` each
    case's trivial answer - its target's own caption, used as a prompt normally is (not standardised).
    ``standardisation`` / ``sample`` override the config's; draws come from a generator seeded with ``cfg.seed``."""
    cases = list(cases)
    if not cases:
        return CaseRun([], torch.empty(0), torch.empty(0), [])
    sample = cfg.sample if sample is None else sample
    g = torch.Generator().manual_seed(cfg.seed)

    def lookup(prompts: list[str]) -> torch.Tensor:
        return latents(prompts, sample, g)

    if trivial:
        z0 = lookup([c.trivial for c in cases])
    else:
        z0 = case_latents(cases, lookup, cfg.standardisation if standardisation is None else standardisation)
    images = render(pipe, z0, cfg.guidance_scale, cfg.steps, cfg.batch_size)
    return CaseRun(cases, z0, images, judge_cases(judge, cases, images))


# ------------------------------------------------------------------------------------------------ summaries
def _rate(values: Sequence[bool]) -> float | None:
    return round(float(np.mean(values)), 4) if len(values) else None


def summarise(cases: Sequence[ArithmeticCase], scores: Sequence[dict[str, bool]]) -> dict[str, dict[str, Any]]:
    """Success and strict-success rates with their case counts: over all cases, and the in-distribution and held-out
    cases apart."""
    masks = {"all": [True] * len(cases), "in_distribution": [not c.heldout for c in cases],
             "heldout_combinations": [c.heldout for c in cases]}
    out = {}
    for group, mask in masks.items():
        picked = [s for s, m in zip(scores, mask) if m]
        out[group] = {"success": _rate([s["success"] for s in picked]), "strict": _rate([s["strict"] for s in picked]),
                      "n": len(picked)}
    return out


def table8(per_kind: dict[str, dict[str, dict[str, Any]]], key: str = "success") -> dict[str, dict[str, Any]]:
    """The paper's Table 8 rows from per-kind summaries (:func:`summarise`), per group: ``addition``,
    ``subtraction``, ``combination`` (the attribute edits pooled, each case counted once) and ``overall`` (the plain
    mean of the three rows present - ours; the paper does not say how its overall is formed)."""
    out: dict[str, dict[str, Any]] = {}
    for group in GROUPS:
        row: dict[str, Any] = {}
        for name, kinds in PAPER_ROWS.items():
            parts = [per_kind[k][group] for k in kinds if k in per_kind and per_kind[k][group]["n"]]
            n = sum(p["n"] for p in parts)
            row[name] = round(sum(p[key] * p["n"] for p in parts) / n, 4) if n else None
        present = [row[k] for k in PAPER_ROWS if row[k] is not None]
        row["overall"] = round(float(np.mean(present)), 4) if present else None
        out[group] = row
    return out


def latent_stats(cases: Sequence[ArithmeticCase], latents: TextLatents) -> dict[str, float]:
    """What standardisation does to one kind's combinations (Text VE means): the mean global std of the operands, of
    the raw combination and of the trivial answer's latent; and the correlation (cosine of the standardised vectors)
    of the trivial answer's latent with the combination and, for reference, with the first operand alone."""
    if not cases:
        return {}
    operands = torch.stack([latents.mean(c.prompts) for c in cases])  # (N, K, ...)
    raw = case_latents(cases, latents.mean, "none")
    trivial = latents.mean([c.trivial for c in cases])

    def corr(a: torch.Tensor, b: torch.Tensor) -> float:
        a, b = standardise(a).flatten(1), standardise(b).flatten(1)
        return round(float(torch.nn.functional.cosine_similarity(a, b, dim=1).mean()), 4)

    return {"operand_std": round(float(operands.flatten(2).std(2).mean()), 4),
            "combination_std_before_standardising": round(float(raw.flatten(1).std(1).mean()), 4),
            "trivial_std": round(float(trivial.flatten(1).std(1).mean()), 4),
            "correlation_with_trivial": corr(raw, trivial), "first_operand_correlation_with_trivial":
                corr(operands[:, 0], trivial)}


# ------------------------------------------------------------------------------------------------ studies
def strength_sweep(pipe: Any, judge: JudgeNet, latents: TextLatents, cfg: ArithmeticConfig) -> dict[str, Any]:
    """VE(A) + alpha VE(B) for each alpha of ``cfg.sweep_alphas`` over ``cfg.sweep_cases`` additions (paper Fig. 6):
    the share of images with both objects (the addition criterion), with A, with B, and with exactly two objects."""
    base = make_cases("addition", cfg.sweep_cases, cfg.seed)
    out: dict[str, Any] = {"alpha": list(cfg.sweep_alphas), "success": [], "a_present": [], "b_present": [],
                           "two_objects": [], "n": len(base)}
    for alpha in cfg.sweep_alphas:
        scores = run_cases(pipe, judge, [c.with_coefficients((1.0, alpha)) for c in base], latents, cfg).scores
        for key, name in (("success", "success"), ("a_present", "present_0"), ("b_present", "present_1"),
                          ("two_objects", "count")):
            out[key].append(_rate([s[name] for s in scores]))
    return out


def interpolation_pairs(n: int, seed: int = 0) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``n`` pairs of one-object scenes that differ in shape, colour and position (same size): the ends of the
    interpolation paths."""
    rng = np.random.default_rng([seed, len(KINDS)])  # a stream of its own, apart from the cases'
    out = []
    for _ in range(n):
        shapes = rng.choice(len(sw.SHAPES), 2, replace=False)
        colours = rng.choice(len(sw.COLOURS), 2, replace=False)
        positions = rng.choice(len(sw.POSITIONS), 2, replace=False)
        size = sw.SIZES[rng.integers(len(sw.SIZES))]
        out.append(tuple(single({"shape": sw.SHAPES[s], "colour": sw.COLOURS[c], "size": size}, sw.POSITIONS[p])
                         for s, c, p in zip(shapes, colours, positions)))
    return out


def expected_reading(scene: dict[str, Any]) -> dict[str, Any]:
    """What the judge should read from a one-object scene (the layout of :func:`~crossflow_mini.tasks.interpolation.reading`)."""
    return {"count": 1, **scene["objects"][0], "position": scene["position"]}


def interpolate_pairs(pipe: Any, judge: JudgeNet, latents: TextLatents, pairs: Sequence[tuple[dict, dict]],
                      ts: Sequence[float], method: str, cfg: ArithmeticConfig) -> tuple[torch.Tensor, list]:
    """Images along each pair's path ``(len(pairs), len(ts), C, H, W)`` and the judge's readings (per pair, per t).
    The ends are the prompts' latents (means, or draws with ``cfg.sample``), not standardised (the public code)."""
    g = torch.Generator().manual_seed(cfg.seed)
    a = latents([caption(p[0]) for p in pairs], cfg.sample, g)
    b = latents([caption(p[1]) for p in pairs], cfg.sample, g)
    pts = interpolation_path(a, b, ts, method).transpose(0, 1)  # (P, T, ...)
    images = render(pipe, pts.flatten(0, 1), cfg.guidance_scale, cfg.steps, cfg.batch_size)
    reads = read_scenes(judge, images)
    t = len(ts)
    return images.view(len(pairs), t, *images.shape[1:]), [read_path(reads[i * t:(i + 1) * t])
                                                           for i in range(len(pairs))]


def interpolation_study(pipe: Any, judge: JudgeNet, latents: TextLatents, cfg: ArithmeticConfig) -> dict[str, Any]:
    """Lerp and slerp paths between ``cfg.interpolation_pairs`` prompt pairs: per attribute, the share of clean
    switches and where they happen (:func:`~crossflow_mini.tasks.interpolation.summarise_paths`), and the norm along each path."""
    pairs = interpolation_pairs(cfg.interpolation_pairs, cfg.seed)
    ts = [round(float(t), 4) for t in np.linspace(0.0, 1.0, cfg.interpolation_points)]
    out: dict[str, Any] = {"t": ts, "n_pairs": len(pairs)}
    if not pairs:
        return out
    ends = [(expected_reading(p[0]), expected_reading(p[1])) for p in pairs]
    a = latents.mean([caption(p[0]) for p in pairs])
    b = latents.mean([caption(p[1]) for p in pairs])
    for method in INTERPOLATIONS:
        _, reads = interpolate_pairs(pipe, judge, latents, pairs, ts, method, cfg)
        out[method] = summarise_paths(reads, ends, ts) | {"norm_along_path": norm_profile(a, b, ts,
                                                                                                        method)}
    return out


def controls(cfg: ArithmeticConfig) -> dict[str, dict[str, Any]]:
    """The study's controls for a config: :data:`CONTROLS` that differ from it, and the other kind of latent."""
    out = {k: v for k, v in CONTROLS.items() if v["standardisation"] != cfg.standardisation}
    if cfg.standardisation != "unit":
        out["unit_standardisation"] = {"standardisation": "unit"}
    return out | {("means" if cfg.sample else "draws"): {"sample": not cfg.sample}}


def run_arithmetic(pipe: Any, judge: JudgeNet, cfg: ArithmeticConfig) -> dict[str, Any]:
    """The numbers of ``data/results/arithmetic.json``: per kind the arithmetic's success (held-out combinations
    apart) beside the trivial answer's, the paper's Table 8 rows beside ours, the strength sweep, the controls
    (:func:`controls`), what standardisation does to the latents, and the interpolation paths. ``pipe``: a
    text-to-image :class:`~crossflow_mini.pipelines.CrossFlowPipeline`."""
    if not pipe.is_crossflow:
        raise ValueError("latent arithmetic needs a CrossFlow pipeline: the baseline's flow starts from noise and has "
                         "no text latent to add (see the module docstring)")
    t0 = time.perf_counter()
    latents = TextLatents(pipe, cfg.batch_size)
    checks = controls(cfg)
    out: dict[str, Any] = {
        "sampler": {"guidance_scale": pipe.sampling.guidance_scale if cfg.guidance_scale is None else cfg.guidance_scale,
                    "steps": pipe.sampling.steps if cfg.steps is None else cfg.steps, "method": pipe.sampling.sampler,
                    "latent": "draws" if cfg.sample else "means", "standardisation": cfg.standardisation},
        "kinds": {}, "trivial": {}, "controls": {k: {} for k in checks}, "latent_stats": {}}
    n_images = 0
    for kind in cfg.kinds:
        cases = make_cases(kind, cfg.cases_per_kind, cfg.seed)
        out["kinds"][kind] = summarise(cases, run_cases(pipe, judge, cases, latents, cfg).scores)
        out["trivial"][kind] = summarise(cases, run_cases(pipe, judge, cases, latents, cfg, trivial=True).scores)
        few = cases[:cfg.control_cases]
        for label, change in checks.items():
            out["controls"][label][kind] = summarise(few, run_cases(pipe, judge, few, latents, cfg, **change).scores)
        out["latent_stats"][kind] = latent_stats(few, latents)
        n_images += 2 * len(cases) + len(checks) * len(few)
    out["table8"] = {"arithmetic": table8(out["kinds"]), "arithmetic_strict": table8(out["kinds"], "strict"),
                     "trivial_answer": table8(out["trivial"]),
                     **{f"control_{k}": table8(v) for k, v in out["controls"].items()},
                     "paper_percent": dict(PAPER_TABLE8)}
    if cfg.sweep_alphas and cfg.sweep_cases:
        out["strength_sweep"] = strength_sweep(pipe, judge, latents, cfg)
        n_images += len(cfg.sweep_alphas) * cfg.sweep_cases
    if cfg.interpolation_pairs:
        out["interpolation"] = interpolation_study(pipe, judge, latents, cfg)
        n_images += len(INTERPOLATIONS) * cfg.interpolation_pairs * cfg.interpolation_points
    out |= {"images": n_images, "seconds": round(time.perf_counter() - t0, 1), "device": str(pipe.device),
            "torch_threads": torch.get_num_threads(),
            "paper": {"table8_percent": dict(PAPER_TABLE8),
                      "how": "a detector judges 1,000 COCO prompts (paper Table 8); its combination is z_a + z_b - "
                             "z_c, our attribute edits"}}
    return out


__all__ = ["GROUPS", "STANDARDISATIONS", "CONTROLS", "controls", "ArithmeticConfig", "standardise", "combine", "TextLatents", "case_latents", "render",
           "judge_cases", "CaseRun", "run_cases", "summarise", "table8", "latent_stats", "strength_sweep",
           "interpolation_pairs", "expected_reading", "interpolate_pairs", "interpolation_study", "run_arithmetic",
           "KINDS", "EDIT_KINDS", "PAPER_TABLE8"]

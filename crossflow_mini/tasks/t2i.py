"""Text-to-image recipes: data preparation and training for CrossFlow and the baseline, and judging on ShapesWorld.

Data: each training image's latent (posterior statistics from the shipped autoencoder, cached) and its caption's
MiniLM tokens (cached); the data set is the autoencoder's, ShapesWorld or Fashion-MNIST
(:mod:`crossflow_mini.recipes.fashion` judges the latter). Training: :class:`~crossflow_mini.crossflow.CrossFlowModel`
through the shared loop (one optimiser, L_FM + L_Enc + lambda L_KL, EMA weights for sampling), or the standard
flow-matching :class:`~crossflow_mini.baseline.BaselineModel` through the same loop (L_FM only). Evaluation: generate
from the single-object prompts of a split, decode, and let the judge (:mod:`crossflow_mini.judge`) read the images
back.

The guidance scale is *chosen* on the validation prompts and *reported* on the test prompts; the test prompts
whose (shape, colour) pair never occurs in training (ShapesWorld's held-out combinations) are reported apart.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..core.baseline import BaselineConfig, BaselineModel
from ..checkpoints import run_dir
from ..core.crossflow import CrossFlowModel
from ..datasets import fashion as fm
from ..datasets import shapes as sw
from ..eval.judge import JudgeNet, judge_accuracy, read_scenes
from ..latents import LatentSet, encode_images
from ..core.transformer import parameter_report
from ..text_encoder import TextEmbeddings, TextEncoder
from ..training import EpochBatches, TrainResult, train
from ..core.crossflow import CrossFlowConfig
from ..datasets.shapes import ShapesDataConfig
from ..text_encoder import TextEncoderConfig
from ..training import TrainConfig
from .autoencoder import AutoencoderRecipe


@dataclass(frozen=True)
class T2IRecipe:
    """Everything that determines a ShapesWorld CrossFlow checkpoint: the model, the training run, the data, the
    frozen text encoder and the autoencoder whose latents it learns (its recipe is part of the hash, so a new
    autoencoder invalidates the flow model). ``sample_steps``/``sampler`` are the default NFE and ODE solver."""

    model: CrossFlowConfig = CrossFlowConfig()
    train: TrainConfig = TrainConfig()
    shapes: ShapesDataConfig = ShapesDataConfig()
    text: TextEncoderConfig = TextEncoderConfig()
    autoencoder: AutoencoderRecipe = AutoencoderRecipe()
    sample_steps: int = 20
    sampler: str = "euler"

    def __post_init__(self) -> None:
        text_ve = getattr(self.model, "text_ve", None)  # the baseline (BaselineRecipe) has no Text VE
        if text_ve is not None and self.text.max_tokens != text_ve.max_tokens:
            raise ValueError(f"the text encoder keeps {self.text.max_tokens} tokens but the Text VE expects "
                             f"{text_ve.max_tokens}: set both max_tokens to the same value")
        if tuple(self.autoencoder.model.latent_shape) != tuple(self.model.velocity.latent_shape):
            raise ValueError(f"the autoencoder makes latents of shape {self.autoencoder.model.latent_shape} but "
                             f"the flow model expects {self.model.velocity.latent_shape}")


@dataclass(frozen=True)
class BaselineRecipe(T2IRecipe):
    """A standard flow-matching baseline checkpoint (:mod:`crossflow_mini.baseline`): everything as in
    :class:`T2IRecipe` - training run, data, text encoder, autoencoder, sampler and NFE - but the model. The data set
    is the autoencoder's (``autoencoder.dataset``), for CrossFlow and baseline recipes alike."""

    model: BaselineConfig = BaselineConfig()


@dataclass(frozen=True)
class T2IEvalConfig:
    """How generations are judged (:mod:`crossflow_mini.recipes.t2i`). The guidance scale is *chosen* on the
    validation prompts and *reported* on the test prompts; ``max_prompts`` caps each prompt group."""

    scales: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
    max_prompts: int | None = None
    batch_size: int = 250
    seed: int = 0
    solver_nfe: tuple[int, ...] = (2, 4, 8, 16, 32)  # Euler vs Heun at equal network evaluations (notebook 05)


@dataclass(frozen=True)
class T2IAblationConfig:
    """The mini version of paper Table 3a (how the text becomes z0) and Table 3b (the Text VE's loss): every run
    shares the shipped model sizes and one short training run, and is judged like the shipped model.

    The paper's Table 3a rows all use the text-reconstruction loss (its VE row, FID 40.78, is the same run as the
    text-reconstruction row of Table 3b), so ``variant_loss`` is ``"text_recon"`` and that run is shared."""

    train: TrainConfig = TrainConfig()
    variants: tuple[str, ...] = ("plain", "noise", "ve")  # Table 3a, each with ``variant_loss``
    variant_loss: str = "text_recon"
    enc_losses: tuple[str, ...] = ("text_recon", "text_text", "image_text")  # Table 3b, each with the VE
    scale: float = 1.0  # guidance scale used to judge every run
    max_prompts: int | None = 400

#: The judged attributes of a single-object prompt; "all" needs exactly one object with all three right.
SINGLE_METRICS = ("colour", "shape", "position")


FlowModel = CrossFlowModel | BaselineModel


@dataclass
class T2IData:
    """One split ready for the flow: the split (ShapesWorld or Fashion-MNIST), its caption tokens and its image
    latents."""

    split: sw.ShapesWorldSplit | fm.FashionSplit
    text: TextEmbeddings
    latents: LatentSet


def prepare(recipe: T2IRecipe, split: str, autoencoder: torch.nn.Module) -> T2IData:
    """Captions -> MiniLM tokens (cached) and images -> latents (cached) for one split of the recipe's data set
    (``recipe.autoencoder.dataset``: ShapesWorld train/val/test, Fashion-MNIST train/test)."""
    if recipe.autoencoder.dataset == "fashion":
        data = fm.load_fashion(split, recipe.autoencoder.fashion)
        images = data.images_tensor(recipe.autoencoder.fashion.image_size)
    else:
        data = sw.load_shapes(split, recipe.shapes)
        images = data.images_tensor()
    text = TextEncoder(recipe.text).encode(data.captions)
    latents = encode_images(autoencoder, images)
    return T2IData(data, text, latents)


def build_model(model_cfg: Any) -> FlowModel:
    """An untrained flow model for a recipe's ``model`` config: the baseline or CrossFlow."""
    return BaselineModel(model_cfg) if isinstance(model_cfg, BaselineConfig) else CrossFlowModel(model_cfg)


def fit(recipe: T2IRecipe, data: T2IData, *, name: str | None = None, resume: bool = True,
        callback: Callable[[int, dict[str, float]], None] | None = None, desc: str | None = None,
        snapshot_steps: Sequence[int] = (), on_snapshot: Callable[[int, torch.nn.Module], None] | None = None,
        ) -> TrainResult:
    """Train the recipe's model on prepared data - CrossFlow's joint loss (L_FM + L_Enc + lambda L_KL) or the
    baseline's L_FM - checkpointed and resumable when ``name`` is given. Use ``.ema`` of the result for sampling."""
    torch.manual_seed(recipe.train.seed)
    model = build_model(recipe.model)
    desc = desc or type(model).__name__.replace("Model", "")
    batches = EpochBatches(len(data.split), recipe.train.batch_size, recipe.train.seed)

    def loss_fn(m: FlowModel, idx: torch.Tensor):
        tokens, mask = data.text.batch(idx)
        out = m.loss(tokens, mask, data.latents.sample(idx))
        return out.total, out.logs

    return train(model, loss_fn, batches, recipe.train, run_dir=run_dir(name, recipe) if name else None,
                 resume=resume, callback=callback, desc=desc, snapshot_steps=snapshot_steps, on_snapshot=on_snapshot)


@torch.no_grad()
def generate(model: FlowModel, autoencoder: torch.nn.Module, tokens: torch.Tensor, mask: torch.Tensor,
             guidance_scale: float, steps: int, method: str = "euler", seed: int = 0,
             batch_size: int = 250) -> torch.Tensor:
    """Images ``(N, C, 32, 32)`` in [-1, 1] for caption tokens (z0 drawn with a generator seeded by ``seed``)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(tokens), batch_size):
        z1 = model.generate(tokens[i:i + batch_size], mask[i:i + batch_size], guidance_scale, steps,
                            method=method, generator=g).sample
        out.append(autoencoder.decode(z1).clamp(-1, 1))
    return torch.cat(out)


def judge_single_objects(judge: JudgeNet, images: torch.Tensor, split: sw.ShapesWorldSplit) -> dict[str, Any]:
    """For single-object prompts: the share of images whose most prominent object has the prompt's colour, shape
    and position (each scored alone), the share with exactly one object, and ``all`` (exactly one object, all
    three right) - GenEval's "single object" criterion with attributes added."""
    scenes = read_scenes(judge, images)
    hits = {"one_object": 0, "colour": 0, "shape": 0, "position": 0, "all": 0}
    for i, read in enumerate(scenes):
        ok1 = len(read) == 1
        hits["one_object"] += ok1
        if not read:
            continue
        o = max(read, key=lambda r: r.area)
        c = o.colour == split.colours[i, 0]
        s = o.shape == split.shapes[i, 0]
        p = int(sw.position_of(np.array([o.centre]))[0]) == split.positions[i]
        hits["colour"] += c
        hits["shape"] += s
        hits["position"] += p
        hits["all"] += ok1 and c and s and p
    n = max(1, len(scenes))
    return {k: round(float(v) / n, 4) for k, v in hits.items()} | {"n_prompts": len(scenes)}


def single_object_groups(split: sw.ShapesWorldSplit, max_prompts: int | None = None) -> dict[str, np.ndarray]:
    """Indices of the single-object prompts of a split: in-distribution and held-out combinations apart."""
    single = split.kinds == sw.SCENE_KINDS.index("single")
    groups = {"in_distribution": np.flatnonzero(single & ~split.heldout),
              "heldout_combinations": np.flatnonzero(single & split.heldout)}
    return {k: v[:max_prompts] for k, v in groups.items() if len(v)}


def judge_prompts(model: FlowModel, autoencoder: torch.nn.Module, judge: JudgeNet, data: T2IData,
                  idx: np.ndarray, scale: float, steps: int, method: str = "euler", seed: int = 0,
                  batch_size: int = 250) -> dict[str, Any]:
    """Generate for the prompts ``idx`` of ``data`` at one guidance scale and judge them."""
    t0 = time.perf_counter()
    tokens, mask = data.text.batch(torch.from_numpy(idx))
    images = generate(model, autoencoder, tokens, mask, scale, steps, method, seed, batch_size)
    res = judge_single_objects(judge, images, data.split.subset(idx))
    res["seconds"] = round(time.perf_counter() - t0, 1)
    return res


def choose_scale(sweep: dict[str, dict[str, Any]], metric: str = "all") -> float:
    """The guidance scale with the best ``metric`` in a validation sweep ``{"w=1": {...}, ...}`` (ties: the
    smaller scale, which is cheaper: w = 1 needs one network call per step, any other w two)."""
    best = max(sweep, key=lambda k: (sweep[k][metric], -float(k[2:])))
    return float(best[2:])


def evaluate_t2i(model: FlowModel, recipe: T2IRecipe, autoencoder: torch.nn.Module, judge: JudgeNet,
                 eval_cfg: T2IEvalConfig) -> dict[str, Any]:
    """The numbers of ``data/results/t2i_shapes.json``: the judge's own accuracy, a guidance sweep on the
    validation prompts (which picks the scale), the same sweep on the test prompts, and the test scores at the
    chosen scale (CFG on) against w = 1 (CFG off)."""
    model.eval()
    steps, method = recipe.sample_steps, recipe.sampler
    val, test = prepare(recipe, "val", autoencoder), prepare(recipe, "test", autoencoder)
    out: dict[str, Any] = {
        "judge_accuracy_on_test_renders": judge_accuracy(judge, test.split),
        "sampler": {"method": method, "steps": steps},
        "parameters": parameter_report(model),
    }
    kw = dict(steps=steps, method=method, seed=eval_cfg.seed, batch_size=eval_cfg.batch_size)
    val_idx = single_object_groups(val.split, eval_cfg.max_prompts)["in_distribution"]
    out["val_sweep"] = {f"w={w:g}": judge_prompts(model, autoencoder, judge, val, val_idx, w, **kw)
                        for w in eval_cfg.scales}
    chosen = choose_scale(out["val_sweep"])
    out["chosen_scale"] = chosen
    out["test_sweep"] = {}
    for group, idx in single_object_groups(test.split, eval_cfg.max_prompts).items():
        out["test_sweep"][group] = {f"w={w:g}": judge_prompts(model, autoencoder, judge, test, idx, w, **kw)
                                    for w in eval_cfg.scales}
    out["test_at_chosen_scale"] = {g: s[f"w={chosen:g}"] for g, s in out["test_sweep"].items()}
    out["test_cfg_off"] = {g: s["w=1"] for g, s in out["test_sweep"].items() if "w=1" in s}
    return out


def train_t2i(recipe: T2IRecipe, autoencoder: torch.nn.Module, judge: JudgeNet, eval_cfg: T2IEvalConfig,
              name: str = "t2i_shapes") -> tuple[FlowModel, dict[str, Any]]:
    """Prepare, train (resumable), and measure on ShapesWorld; returns ``(EMA model, metrics)``."""
    result, metrics = fit_and_time(recipe, autoencoder, name)
    metrics |= evaluate_t2i(result.ema, recipe, autoencoder, judge, eval_cfg)
    return result.ema, metrics


def fit_and_time(recipe: T2IRecipe, autoencoder: torch.nn.Module, name: str) -> tuple[TrainResult, dict[str, Any]]:
    """Prepare the training split, train (resumable), and report the time and final losses of the run."""
    data = prepare(recipe, "train", autoencoder)
    t0 = time.perf_counter()
    result = fit(recipe, data, name=name)
    seconds = time.perf_counter() - t0
    metrics: dict[str, Any] = {
        "train_seconds_this_run": round(seconds, 1), "train_steps": recipe.train.steps,
        "resumed_from_step": result.resumed_from,
        # all parts of a resumed run together (None where an earlier part predates this record)
        "train_seconds_all_parts": None if result.seconds is None else round(result.seconds, 1),
        "final_losses": {k: round(v[-1], 5) for k, v in result.history.items() if v and k != "step"},
    }
    if result.resumed_from == 0 and seconds > 0:
        metrics["train_samples_per_second"] = round(recipe.train.steps * recipe.train.batch_size / seconds, 1)
    return result, metrics


# ------------------------------------------------------------------------------------------ mini ablation
def ablation_recipes(base: T2IRecipe, cfg: T2IAblationConfig) -> dict[str, T2IRecipe]:
    """The runs of the mini Table 3a (``variant=...``) and 3b (``enc_loss=...``), keyed by a readable label.
    Every run shares the shipped sizes and ``cfg.train``; the VE with ``cfg.variant_loss`` is in both tables
    (labelled ``3a:ve``)."""
    runs: dict[str, T2IRecipe] = {}

    def with_ve(**kw) -> T2IRecipe:
        model = dataclasses.replace(base.model, text_ve=dataclasses.replace(base.model.text_ve, **kw))
        return dataclasses.replace(base, model=model, train=cfg.train)

    for v in cfg.variants:
        runs[f"3a:{v}"] = with_ve(variant=v, enc_loss=cfg.variant_loss)
    for e in cfg.enc_losses:
        key = "3a:ve" if e == cfg.variant_loss and "ve" in cfg.variants else f"3b:{e}"
        runs.setdefault(key, with_ve(variant="ve", enc_loss=e))
    return runs


def run_ablation(base: T2IRecipe, cfg: T2IAblationConfig, autoencoder: torch.nn.Module, judge: JudgeNet,
                 seed: int = 0) -> dict[str, Any]:
    """Train every ablation run (each resumable under ``data/cache/runs``) and judge it on the validation
    prompts at ``cfg.scale`` (an ablation compares design choices, so it must not look at the test set)."""
    train_data = prepare(base, "train", autoencoder)
    val = prepare(base, "val", autoencoder)
    idx = single_object_groups(val.split, cfg.max_prompts)["in_distribution"]
    out: dict[str, Any] = {"split": "val", "guidance_scale": cfg.scale, "train_steps": cfg.train.steps, "runs": {}}
    for label, recipe in ablation_recipes(base, cfg).items():
        t0 = time.perf_counter()
        result = fit(recipe, train_data, name=f"t2i_ablation_{label.replace(':', '_')}", desc=label)
        res = judge_prompts(result.ema, autoencoder, judge, val, idx, cfg.scale, recipe.sample_steps,
                            recipe.sampler, seed)
        res["train_seconds_this_run"] = round(time.perf_counter() - t0 - res["seconds"], 1)
        res["final_fm_loss"] = round(result.history["fm"][-1], 5) if result.history.get("fm") else None
        res["text_ve"] = {"variant": recipe.model.text_ve.variant, "enc_loss": recipe.model.text_ve.enc_loss}
        out["runs"][label] = res
    return out

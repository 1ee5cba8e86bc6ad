"""Text to image: data preparation, training and judging for CrossFlow and the baseline on ShapesWorld and Fashion.

Data (:func:`prepare`): each image's latent (posterior statistics from the recipe's autoencoder, cached) and its
caption's MiniLM tokens (cached); the data set is the autoencoder's, ShapesWorld or Fashion-MNIST
(:mod:`crossflow_mini.tasks.fashion` judges the latter). Training (:func:`fit`): the recipe's model -
:class:`~crossflow_mini.core.crossflow.CrossFlowModel` (one optimiser, L_FM + L_Enc + lambda L_KL) or the standard
flow-matching :class:`~crossflow_mini.core.baseline.BaselineModel` (L_FM) - through the shared loop, EMA weights for
sampling. Evaluation: generate from the single-object prompts of a split, decode, and let the judge
(:mod:`crossflow_mini.eval.judge`) read the images back.

The guidance scale is *chosen* on the validation prompts and *reported* on the test prompts; the test prompts
whose (shape, colour) pair never occurs in training (ShapesWorld's held-out combinations) are reported apart.
Every function takes a ``device`` (default: the one :func:`crossflow_mini.utils.get_device` picks): models and
batches go there; images come back on the CPU.
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
from ...core.flow_model import FlowModel
from ...core.params import parameter_report
from ...core.source import TokenBatch
from ...core.text_ve import TextVEConfig
from ...datasets import fashion as fm
from ...datasets import shapes as sw
from ...datasets.shapes import ShapesDataConfig
from ...eval.judge import JudgeNet, judge_accuracy, read_scenes
from ...latents import LatentSet, encode_images
from ...nn.text_encoder import TextEmbeddings, TextEncoder, TextEncoderConfig
from ...training import EpochBatches, TrainConfig, TrainResult, train
from ...utils import get_device
from ..autoencoder import AutoencoderRecipe

Device = torch.device | str | None


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
        source = getattr(self.model, "source", None)  # the baseline (BaselineRecipe) has no source encoder
        if isinstance(source, TextVEConfig) and self.text.max_tokens != source.max_tokens:
            raise ValueError(f"the text encoder keeps {self.text.max_tokens} tokens but the Text VE expects "
                             f"{source.max_tokens}: set both max_tokens to the same value")
        if getattr(source, "hard_negatives", 0) and (self.autoencoder.dataset != "shapes" or source.hard_negatives > 1):
            raise ValueError("hard negatives exist for ShapesWorld only, one per two-object scene (the swapped scene, "
                             "datasets.shapes.swapped_pairs): set TextVEConfig.hard_negatives to 0 or 1")
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
    """How generations are judged (:mod:`crossflow_mini.tasks.t2i`). The guidance scale is *chosen* on the
    validation prompts and *reported* on the test prompts; ``max_prompts`` caps each prompt group."""

    scales: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
    max_prompts: int | None = None
    batch_size: int = 250
    seed: int = 0
    solver_nfe: tuple[int, ...] = (2, 4, 8, 16, 32)  # Euler vs Heun at equal network evaluations (notebook 05)


#: The judged attributes of a single-object prompt; "all" needs exactly one object with all three right.
SINGLE_METRICS = ("colour", "shape", "position")


@dataclass
class T2IData:
    """One split ready for the flow: the split (ShapesWorld or Fashion-MNIST), its caption tokens and its image
    latents."""

    split: sw.ShapesWorldSplit | fm.FashionSplit
    text: TextEmbeddings
    latents: LatentSet
    #: hard negatives (training split of a Text VE with ``hard_negatives > 0``): latents of the swapped pair scenes
    #: (:func:`~crossflow_mini.datasets.shapes.swapped_pairs`) and, per sample, its row there (-1 = none)
    negatives: LatentSet | None = None
    negative_of: np.ndarray | None = None


def hard_negatives_wanted(recipe: T2IRecipe) -> int:
    """How many hard negatives per sample the recipe's Text VE asks for (0 for the baseline and the paper's)."""
    return getattr(getattr(recipe.model, "source", None), "hard_negatives", 0)


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
    if split != "train" or not hard_negatives_wanted(recipe):  # the recipe checked they are ShapesWorld's
        return T2IData(data, text, latents)
    rows, swapped = sw.swapped_pairs(data)
    negative_of = np.full(len(data), -1, dtype=np.int64)
    negative_of[rows] = np.arange(len(rows))
    return T2IData(data, text, latents, encode_images(autoencoder, sw.images_to_tensor(swapped)), negative_of)


def training_batches(data: T2IData, cfg: TrainConfig) -> Callable[[int], tuple[Any, ...]]:
    """``step -> (caption tokens, image latents)``: a pure function of ``(seed, step)`` (exact resume). The latents
    are posterior samples (the paper's training samples from the VAE posterior). Where ``data`` holds hard
    negatives, a third item follows: the swapped scenes of the batch's two-object samples (posterior samples too),
    extra wrong targets for the contrastive loss."""
    batches = EpochBatches(len(data.split), cfg.batch_size, cfg.seed)

    def batch_fn(step: int) -> tuple[Any, ...]:
        idx = batches(step)
        if data.negatives is None or data.negative_of is None:
            return data.text.batch(idx), data.latents.sample(idx)
        tokens, targets = data.text.batch(idx), data.latents.sample(idx)  # draws in this order: targets, negatives
        rows = data.negative_of[np.asarray(idx)]
        return tokens, targets, data.negatives.sample(torch.from_numpy(rows[rows >= 0]))

    return batch_fn


def flow_loss(model: FlowModel, batch: tuple[Any, torch.Tensor]):
    """The training loss of a (source, target[, hard negatives]) batch, as the training loop wants it:
    ``(total, logs)``."""
    out = model.loss(*batch[:2]) if len(batch) == 2 else model.loss(*batch[:2], negatives=batch[2])
    return out.total, out.logs


def fit(recipe: T2IRecipe, data: T2IData, *, name: str | None = None, resume: bool = True,
        callback: Callable[[int, dict[str, float]], None] | None = None, desc: str | None = None,
        snapshot_steps: Sequence[int] = (), on_snapshot: Callable[[int, torch.nn.Module], None] | None = None,
        device: Device = None) -> TrainResult:
    """Train the recipe's model on prepared data - CrossFlow's joint loss (L_FM + L_Enc + lambda L_KL) or the
    baseline's L_FM - checkpointed and resumable when ``name`` is given. Use ``.ema`` of the result for sampling."""
    torch.manual_seed(recipe.train.seed)
    model = build_model(recipe.model)
    desc = desc or type(model).__name__.replace("Model", "")
    return train(model, flow_loss, training_batches(data, recipe.train), recipe.train,
                 run_dir=run_dir(name, recipe) if name else None, resume=resume, callback=callback, desc=desc,
                 snapshot_steps=snapshot_steps, on_snapshot=on_snapshot, device=get_device(device))


@torch.no_grad()
def generate(model: FlowModel, autoencoder: torch.nn.Module, source: TokenBatch, guidance_scale: float,
             steps: int, method: str = "euler", seed: int = 0, batch_size: int = 250,
             device: Device = None) -> torch.Tensor:
    """Images ``(N, C, 32, 32)`` in [-1, 1], on the CPU, for a batch of caption tokens: z0 drawn with a CPU generator
    seeded by ``seed`` (the same numbers on any device), the guided flow and the decoder on ``device``."""
    device = get_device(device)
    model.to(device)
    autoencoder.to(device)
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, len(source), batch_size):
        z1 = model.generate(source[i:i + batch_size].to(device), guidance_scale=guidance_scale, steps=steps,
                            method=method, generator=g).sample
        out.append(autoencoder.decode(z1).clamp(-1, 1).cpu())
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
    """Indices of the single-object prompts of a split: in-distribution and held-out combinations apart, and - for
    the rich vocabulary - the prompts worded with test-only words or sentence forms apart too."""
    single = split.kinds == sw.SCENE_KINDS.index("single")
    groups = {"in_distribution": np.flatnonzero(single & ~split.heldout),
              "heldout_combinations": np.flatnonzero(single & split.heldout)}
    if split.vocabulary == "rich" and split.test_only_wording.any():
        groups["test_only_wording"] = np.flatnonzero(single & split.test_only_wording)
    return {k: v[:max_prompts] for k, v in groups.items() if len(v)}


def judge_prompts(model: FlowModel, autoencoder: torch.nn.Module, judge: JudgeNet, data: T2IData,
                  idx: np.ndarray, scale: float, steps: int, method: str = "euler", seed: int = 0,
                  batch_size: int = 250, device: Device = None) -> dict[str, Any]:
    """Generate for the prompts ``idx`` of ``data`` at one guidance scale and judge them."""
    t0 = time.perf_counter()
    source = data.text.batch(torch.from_numpy(np.asarray(idx)))
    images = generate(model, autoencoder, source, scale, steps, method, seed, batch_size, device)
    res = judge_single_objects(judge, images, data.split.subset(idx))
    res["seconds"] = round(time.perf_counter() - t0, 1)
    return res


def choose_scale(sweep: dict[str, dict[str, Any]], metric: str = "all") -> float:
    """The guidance scale with the best ``metric`` in a validation sweep ``{"w=1": {...}, ...}`` (ties: the
    smaller scale, which is cheaper: w = 1 needs one network call per step, any other w two)."""
    best = max(sweep, key=lambda k: (sweep[k][metric], -float(k[2:])))
    return float(best[2:])


def evaluate_t2i(model: FlowModel, recipe: T2IRecipe, autoencoder: torch.nn.Module, judge: JudgeNet,
                 eval_cfg: T2IEvalConfig, device: Device = None) -> dict[str, Any]:
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
    kw = dict(steps=steps, method=method, seed=eval_cfg.seed, batch_size=eval_cfg.batch_size, device=device)
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
              name: str = "t2i_shapes", device: Device = None) -> tuple[FlowModel, dict[str, Any]]:
    """Prepare, train (resumable), and measure on ShapesWorld; returns ``(EMA model, metrics)``."""
    result, metrics = fit_and_time(recipe, autoencoder, name, device)
    metrics |= evaluate_t2i(result.ema, recipe, autoencoder, judge, eval_cfg, device)
    return result.ema, metrics


def fit_and_time(recipe: T2IRecipe, autoencoder: torch.nn.Module, name: str,
                 device: Device = None) -> tuple[TrainResult, dict[str, Any]]:
    """Prepare the training split, train (resumable), and report the time and final losses of the run."""
    data = prepare(recipe, "train", autoencoder)
    t0 = time.perf_counter()
    result = fit(recipe, data, name=name, device=device)
    seconds = time.perf_counter() - t0
    metrics: dict[str, Any] = {
        "train_seconds_this_run": round(seconds, 1), "train_steps": recipe.train.steps,
        "resumed_from_step": result.resumed_from,
        # all parts of a resumed run together (None where an earlier part predates this record)
        "train_seconds_all_parts": None if result.seconds is None else round(result.seconds, 1),
        "final_losses": {k: round(v[-1], 5) for k, v in result.history.items() if v and k != "step"},
        "device": str(get_device(device)), "torch_threads": torch.get_num_threads(),
    }
    if result.resumed_from == 0 and seconds > 0:
        metrics["train_samples_per_second"] = round(recipe.train.steps * recipe.train.batch_size / seconds, 1)
    return result, metrics

"""Text to image: generating from prompts and judging the images.

ShapesWorld (:func:`evaluate_t2i`): generate for the single-object prompts of a split and let the judge
(:mod:`crossflow_mini.eval.judge`) read colour, shape, position and count back; the guidance scale is *chosen* on
the validation prompts and *reported* on the test prompts, with the test prompts whose (shape, colour) pair never
occurs in training (the held-out combinations) apart. Fashion-MNIST (:func:`evaluate_fashion_t2i`): the classifier's
accuracy on generations for the class captions, the scale chosen on training captions (no test image involved).

Every function takes a ``device`` (default: :func:`crossflow_mini.utils.get_device`): models and batches go there;
images come back on the CPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...core.flow_model import FlowModel
from ...core.params import parameter_report
from ...core.source import TokenBatch
from ...datasets import shapes as sw
from ...eval.classifier import FashionClassifier, class_accuracy
from ...eval.judge import JudgeNet, judge_accuracy, read_scenes
from ...utils import get_device
from ..common import Device, choose_scale, scale_key
from .data import T2IData, prepare
from .recipe import T2IRecipe


@dataclass(frozen=True)
class T2IEvalConfig:
    """How a text-to-image checkpoint is measured when it is trained. ``scales``: the guidance sweep (chosen on
    validation prompts, reported on test prompts); ``max_prompts`` caps each ShapesWorld prompt group; Fashion-MNIST
    chooses w by the class accuracy of ``choose_samples`` generations for training captions, then reports
    ``class_samples`` generations for test captions. ``solver_nfe``: Euler vs Heun at equal network evaluations
    (notebook 05)."""

    scales: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
    max_prompts: int | None = None
    batch_size: int = 250
    seed: int = 0
    solver_nfe: tuple[int, ...] = (2, 4, 8, 16, 32)
    choose_samples: int = 500
    class_samples: int = 2000


#: The judged attributes of a single-object prompt; "all" needs exactly one object with all three right.
SINGLE_METRICS = ("colour", "shape", "position")


@torch.no_grad()
def generate(model: FlowModel, autoencoder: torch.nn.Module, source: TokenBatch, guidance_scale: float | None = None,
             steps: int | None = None, method: str | None = None, seed: int = 0, batch_size: int = 250,
             device: Device = None) -> torch.Tensor:
    """Images ``(N, C, 32, 32)`` in [-1, 1], on the CPU, for a batch of caption tokens: z0 drawn with a CPU generator
    seeded by ``seed`` (the same numbers on any device), the guided flow and the decoder on ``device``.
    ``guidance_scale``, ``steps``, ``method``: the model's :attr:`~crossflow_mini.core.flow_model.FlowModel.sampling`
    unless given."""
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
                  idx: np.ndarray, scale: float, steps: int | None = None, method: str | None = None, seed: int = 0,
                  batch_size: int = 250, device: Device = None) -> dict[str, Any]:
    """Generate for the prompts ``idx`` of ``data`` at one guidance scale and judge them."""
    t0 = time.perf_counter()
    source = data.text.batch(torch.from_numpy(np.asarray(idx)))
    images = generate(model, autoencoder, source, scale, steps, method, seed, batch_size, device)
    res = judge_single_objects(judge, images, data.split.subset(idx))
    res["seconds"] = round(time.perf_counter() - t0, 1)
    return res


def evaluate_t2i(model: FlowModel, recipe: T2IRecipe, autoencoder: torch.nn.Module, judge: JudgeNet,
                 eval_cfg: T2IEvalConfig, device: Device = None) -> dict[str, Any]:
    """The numbers of ``data/results/t2i_shapes.json``: the judge's own accuracy, a guidance sweep on the
    validation prompts (which picks the scale: the best "all" score), the same sweep on the test prompts, and the
    test scores at the chosen scale (CFG on) against w = 1 (CFG off)."""
    model.eval()
    steps, method = recipe.sampling.steps, recipe.sampling.sampler
    val, test = prepare(recipe, "val", autoencoder), prepare(recipe, "test", autoencoder)
    out: dict[str, Any] = {
        "judge_accuracy_on_test_renders": judge_accuracy(judge, test.split),
        "sampler": {"method": method, "steps": steps},
        "parameters": parameter_report(model),
    }
    kw = dict(steps=steps, method=method, seed=eval_cfg.seed, batch_size=eval_cfg.batch_size, device=device)
    val_idx = single_object_groups(val.split, eval_cfg.max_prompts)["in_distribution"]
    out["val_sweep"] = {scale_key(w): judge_prompts(model, autoencoder, judge, val, val_idx, w, **kw)
                        for w in eval_cfg.scales}
    chosen = choose_scale(out["val_sweep"], "all")
    out["chosen_scale"] = chosen
    out["test_sweep"] = {}
    for group, idx in single_object_groups(test.split, eval_cfg.max_prompts).items():
        out["test_sweep"][group] = {scale_key(w): judge_prompts(model, autoencoder, judge, test, idx, w, **kw)
                                    for w in eval_cfg.scales}
    out["test_at_chosen_scale"] = {g: s[scale_key(chosen)] for g, s in out["test_sweep"].items()}
    out["test_cfg_off"] = {g: s["w=1"] for g, s in out["test_sweep"].items() if "w=1" in s}
    return out


# ------------------------------------------------------------------------------------------------ Fashion-MNIST
def class_accuracy_of(model: FlowModel, autoencoder: torch.nn.Module, classifier: FashionClassifier,
                      data: T2IData, n: int, scale: float, steps: int | None = None, method: str | None = None,
                      seed: int = 0, batch_size: int = 250, device: Device = None) -> dict[str, Any]:
    """Generate for the first ``n`` captions of ``data`` at one guidance scale; the classifier's accuracy on them."""
    t0 = time.perf_counter()
    idx = torch.arange(min(n, len(data.split)))
    images = generate(model, autoencoder, data.text.batch(idx), scale, steps, method, seed, batch_size, device)
    acc = class_accuracy(classifier, images, data.split.labels[idx.numpy()])
    return {"class_accuracy": round(acc, 4), "n": len(idx), "seconds": round(time.perf_counter() - t0, 1)}


def evaluate_fashion_t2i(model: FlowModel, recipe: T2IRecipe, autoencoder: torch.nn.Module,
                         classifier: FashionClassifier, eval_cfg: T2IEvalConfig, device: Device = None) -> dict[str, Any]:
    """Parameters; w chosen by class accuracy on training captions; class accuracy on the test captions at the
    chosen w (CFG on) and at w = 1 (CFG off)."""
    kw = dict(steps=recipe.sampling.steps, method=recipe.sampling.sampler, seed=eval_cfg.seed,
              batch_size=eval_cfg.batch_size, device=device)
    train_data, test = prepare(recipe, "train", autoencoder), prepare(recipe, "test", autoencoder)
    sweep = {scale_key(w): class_accuracy_of(model, autoencoder, classifier, train_data, eval_cfg.choose_samples, w,
                                             **kw)
             for w in eval_cfg.scales}
    chosen = choose_scale(sweep, "class_accuracy")
    out: dict[str, Any] = {"parameters": parameter_report(model), "choose_sweep_on_train_captions": sweep,
                           "chosen_scale": chosen,
                           "sampler": {"method": recipe.sampling.sampler, "steps": recipe.sampling.steps}}
    out["test_at_chosen_scale"] = class_accuracy_of(model, autoencoder, classifier, test, eval_cfg.class_samples,
                                                    chosen, **kw)
    out["test_cfg_off"] = class_accuracy_of(model, autoencoder, classifier, test, eval_cfg.class_samples, 1.0, **kw)
    return out


def evaluate(model: FlowModel, recipe: T2IRecipe, *, sizes: T2IEvalConfig, autoencoder: torch.nn.Module,
             referee: torch.nn.Module, device: Device = None) -> dict[str, Any]:
    """The measurements of a text-to-image checkpoint: :func:`evaluate_t2i` with the judge on ShapesWorld,
    :func:`evaluate_fashion_t2i` with the classifier on Fashion-MNIST."""
    if recipe.dataset == "fashion":
        return evaluate_fashion_t2i(model, recipe, autoencoder, referee, sizes, device)
    return evaluate_t2i(model, recipe, autoencoder, referee, sizes, device)


__all__ = ["T2IEvalConfig", "SINGLE_METRICS", "generate", "judge_single_objects", "single_object_groups",
           "judge_prompts", "evaluate_t2i", "class_accuracy_of", "evaluate_fashion_t2i", "evaluate"]

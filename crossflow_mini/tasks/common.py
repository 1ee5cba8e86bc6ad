"""What every task shares, written once: the method table, training a recipe and the record of that run, and the
rule that chooses a guidance scale on validation data.

* :func:`method_of` - which method a model config is (``"crossflow"``, ``"baseline"`` - standard flow matching -,
  ``"regression"``, and the captioners ``"direct"`` / ``"autoregressive"``): each model config class names its own
  method (a ``method`` class attribute), so there is no second table to keep in step.
* :func:`fit` - seed, build the recipe's model, and run the shared training loop (:func:`crossflow_mini.training.train`)
  on a task's batches; resumable under ``data/cache/runs/<name>-<hash>`` when a name is given.
* :func:`timed_fit` - the same, timed: ``(TrainResult, record)`` with the training record every results file carries
  (steps, batch, seconds of this run and of all its parts, samples per second, final losses, device, threads).
* :func:`choose_scale` - the guidance scale with the best validation score, one tie rule for every task.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

from ..checkpoints import run_dir
from ..distributed import num_processes
from ..core.build import build_model
from ..training import LossFn, TrainResult, train
from ..utils import get_device

Device = torch.device | str | None
#: The methods a task compares, in the order tables list them.
METHODS = ("crossflow", "baseline", "regression")


def method_of(model_cfg: Any) -> str:
    """The method of a model config: its class's ``method`` (``"crossflow"``, ``"baseline"``, ``"regression"``,
    ``"direct"``, ``"autoregressive"``)."""
    method = getattr(type(model_cfg), "method", None)
    if not isinstance(method, str):
        raise TypeError(f"{type(model_cfg).__name__} is not a model config with a method (CrossFlowConfig, "
                        f"BaselineConfig, RegressionConfig or a captioner config)")
    return method


def is_flow(model_or_recipe: Any) -> bool:
    """Whether a model, model config or recipe samples by a flow (CrossFlow, the baseline) rather than predicting in
    one pass (regression, the direct and autoregressive captioners)."""
    cfg = getattr(model_or_recipe, "model", None) or getattr(model_or_recipe, "cfg", None) or model_or_recipe
    return method_of(cfg) in ("crossflow", "baseline")


def model_loss(model: torch.nn.Module, batch: tuple[Any, ...]) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of a ``(source, target[, hard negatives])`` batch as the training loop wants it, ``(total, logs)``:
    ``model.loss(source, target)`` - CrossFlow's joint loss, the baseline's L_FM, a regression or captioning loss."""
    out = model.loss(*batch[:2]) if len(batch) == 2 else model.loss(*batch[:2], negatives=batch[2])
    if isinstance(out, tuple):
        return out
    return out.total, out.logs


def fit(recipe: Any, batch_fn: Callable[[int], Any], *, loss_fn: LossFn = model_loss,
        build: Callable[[Any], torch.nn.Module] = build_model, name: str | None = None, resume: bool = True,
        callback: Callable[[int, dict[str, float]], None] | None = None, desc: str | None = None,
        device: Device = None, **train_kw: Any) -> TrainResult:
    """Train ``build(recipe.model)`` with ``recipe.train`` on ``batch_fn(step)`` batches: the model is built right
    after seeding torch with ``recipe.train.seed`` (the same weights every time), and the run is checkpointed and
    resumable under ``data/cache/runs`` when ``name`` is given. Use ``.ema`` of the result for sampling."""
    torch.manual_seed(recipe.train.seed)
    model = build(recipe.model)
    if desc is None:
        desc = getattr(type(recipe.model), "method", type(model).__name__)
    return train(model, loss_fn, batch_fn, recipe.train, run_dir=run_dir(name, recipe) if name else None,
                 resume=resume, callback=callback, desc=desc, device=get_device(device), **train_kw)


def training_record(result: TrainResult, seconds: float, steps: int, batch_size: int,
                    device: Device = None) -> dict[str, Any]:
    """What a results file records of a training run: steps and batch size, the seconds of this run and of all the
    parts of a resumed run (None where an earlier part was not timed), final losses, device, threads per process and
    processes (the layout); for a run
    that did not resume, seconds per step and training samples per second."""
    record: dict[str, Any] = {
        "train_seconds_this_run": round(seconds, 1), "train_steps": steps, "batch_size": batch_size,
        "resumed_from_step": result.resumed_from,
        "train_seconds_all_parts": None if result.seconds is None else round(result.seconds, 1),
        "final_losses": {k: round(v[-1], 5) for k, v in result.history.items() if v and k != "step"},
        "device": str(get_device(device)), "torch_threads": torch.get_num_threads(),
        "processes": num_processes(),
    }
    if result.resumed_from == 0 and seconds > 0:
        record["seconds_per_step"] = round(seconds / steps, 4)
        record["train_samples_per_second"] = round(steps * batch_size / seconds, 1)
    return record


def timed_fit(fit_fn: Callable[[], TrainResult], steps: int, batch_size: int,
              device: Device = None) -> tuple[TrainResult, dict[str, Any]]:
    """Run ``fit_fn()`` and return its result with its :func:`training_record`."""
    t0 = time.perf_counter()
    result = fit_fn()
    return result, training_record(result, time.perf_counter() - t0, steps, batch_size, device)


def train_seconds(metrics: dict[str, Any]) -> float | None:
    """The whole training time a checkpoint's metrics record (None when a resumed run's earlier part was untimed)."""
    seconds = metrics.get("train_seconds_all_parts")
    if seconds is None and not metrics.get("resumed_from_step"):
        seconds = metrics.get("train_seconds_this_run")
    return seconds


def scale_key(w: float) -> str:
    """The key of guidance scale ``w`` in a sweep: ``"w=1.5"``."""
    return f"w={w:g}"


def choose_scale(sweep: dict[str, Any], metric: Callable[[dict[str, Any]], float] | str,
                 higher_is_better: bool = True) -> float:
    """The guidance scale whose validation score is best in ``sweep`` (``{"w=1": {...}, "w=2": {...}}``);
    ``metric`` names the score in each entry or computes it from the entry.

    One tie rule for every task: the scale nearest w = 1, then the smaller one - w = 1 (like w = 0) needs one
    network call per step, any other w two, so among equals the cheaper one wins."""
    score = metric if callable(metric) else (lambda entry: entry[metric])
    sign = 1.0 if higher_is_better else -1.0
    best = max(sweep, key=lambda k: (sign * score(sweep[k]), -abs(float(k[2:]) - 1.0), -float(k[2:])))
    return float(best[2:])


__all__ = ["Device", "METHODS", "method_of", "is_flow", "model_loss", "fit", "training_record", "timed_fit",
           "train_seconds", "scale_key", "choose_scale"]

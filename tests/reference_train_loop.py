"""The training loop as it was before accelerate came in (crossflow_mini/training.py at commit de7d37d), kept
verbatim as the reference that the accelerate loop must match bit for bit in a one-process run
(tests/test_distributed.py). Only the imports are made absolute, and TrainConfig's docstring cites the method notes
where the repository keeps them (docs/METHOD.md). Do not edit the code: it is the "before" of a comparison."""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from crossflow_mini.utils import DamagedFileError, load_tensors, progress, save_tensors, to_device


@dataclass(frozen=True)
class TrainConfig:
    """One training run of :func:`crossflow_mini.training.train`.

    Defaults follow the paper's optimiser (docs/METHOD.md Sec. 3: AdamW, betas (0.9, 0.9), weight decay 0.03,
    warm-up, EMA) with a learning rate and EMA decay sized for short CPU runs."""

    steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.9)
    weight_decay: float = 0.03
    warmup_steps: int = 100
    lr_schedule: str = "constant"  # "constant" after warm-up (the paper) or "cosine" decay to zero
    grad_clip: float = 1.0
    ema_decay: float = 0.999  # 0 disables EMA
    seed: int = 0
    ckpt_every: int = 500
    log_every: int = 10

STATE_FILE = "train_state.safetensors"

LossFn = Callable[[torch.nn.Module, Any], "torch.Tensor | tuple[torch.Tensor, dict[str, float]]"]


class EpochBatches:
    """Index batches over ``n`` items in shuffled epochs; batch ``step`` depends only on ``(seed, step)``.

    Every batch is full (the last partial batch of an epoch is dropped), so a step's batch can be found
    without replaying earlier steps - which is what makes resuming exact."""

    def __init__(self, n: int, batch_size: int, seed: int = 0):
        if n < 1:
            raise ValueError("cannot draw batches from an empty data set")
        if batch_size > n:
            raise ValueError(f"batch size {batch_size} is larger than the data set ({n} items); lower it")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.per_epoch = n // batch_size
        self._epoch, self._perm = -1, None

    def __call__(self, step: int) -> torch.Tensor:
        epoch, k = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.n, generator=g)
        return self._perm[k * self.batch_size:(k + 1) * self.batch_size]


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up over ``cfg.warmup_steps``, then constant or cosine decay to zero."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant":
        return cfg.lr
    if cfg.lr_schedule == "cosine":
        span = max(1, cfg.steps - cfg.warmup_steps)
        progress_ = min(1.0, (step - cfg.warmup_steps) / span)
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * progress_))
    raise ValueError(f"unknown lr_schedule {cfg.lr_schedule!r}; use 'constant' or 'cosine'")


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, parameters and floating-point buffers alike."""
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach(), 1 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        if e.is_floating_point():
            e.lerp_(b, 1 - decay)
        else:
            e.copy_(b)


@dataclass
class TrainResult:
    """What :func:`train` returns: the trained model, its EMA copy (the model itself if EMA is off), the loss
    history (``history["loss"][i]`` is the loss at step ``history["step"][i]``) and the steps run."""

    model: torch.nn.Module
    ema: torch.nn.Module
    history: dict[str, list[float]] = field(default_factory=dict)
    steps: int = 0
    resumed_from: int = 0
    seconds: float | None = None  # training time of all the run's parts together (None: an earlier part's is unknown)


# --------------------------------------------------------------------------------------- state (de)serialising
def _save_state(path: Path, step: int, model: torch.nn.Module, ema: torch.nn.Module | None,
                opt: torch.optim.Optimizer, history: dict[str, list[float]], cfg: TrainConfig,
                seconds: float | None = None) -> None:
    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.state_dict().items():
        tensors[f"model.{k}"] = v.detach().contiguous().clone()
    if ema is not None:
        for k, v in ema.state_dict().items():
            tensors[f"ema.{k}"] = v.detach().contiguous().clone()
    opt_sd = opt.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in opt_sd["state"].items():
        for key, val in st.items():
            if torch.is_tensor(val):
                tensors[f"optim.{idx}.{key}"] = val.detach().contiguous().clone()
            else:
                scalars.setdefault(str(idx), {})[key] = val
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    meta = {"step": step, "history": history, "param_groups": opt_sd["param_groups"], "optim_scalars": scalars,
            "train_config": json.dumps(cfg.__dict__, default=list, sort_keys=True), "seconds": seconds}
    save_tensors(path, tensors, metadata={"state": json.dumps(meta)})  # atomic, with a checksum


def _load_state(path: Path, model: torch.nn.Module, ema: torch.nn.Module | None, opt: torch.optim.Optimizer,
                cfg: TrainConfig) -> tuple[int, dict[str, list[float]], float | None]:
    """Restore a state written by :func:`_save_state`; returns ``(step, history, seconds trained so far)``.
    A damaged state file raises :class:`~crossflow_mini.utils.DamagedFileError` saying how to start over."""
    try:  # states saved before checksums existed still resume
        tensors, metadata = load_tensors(path, require_checksum=False)
        meta = json.loads(metadata["state"])
        saved_cfg = json.loads(meta["train_config"])
    except (DamagedFileError, KeyError, ValueError) as err:
        raise DamagedFileError(f"the training state {path} is damaged ({err}); delete the run folder {path.parent} "
                               f"to start this run over, or rerun the train command with --fresh") from err
    now_cfg = json.loads(json.dumps(cfg.__dict__, default=list, sort_keys=True))
    if {k: v for k, v in saved_cfg.items() if k != "steps"} != {k: v for k, v in now_cfg.items() if k != "steps"}:
        raise ValueError(f"the training state in {path} was written with a different TrainConfig; delete that "
                         f"folder to start over, or resume with the config it was written with")
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    if ema is not None:
        ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
    state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("optim."):
            _, idx, key = k.split(".", 2)
            state.setdefault(int(idx), {})[key] = v
    for idx, sc in meta["optim_scalars"].items():
        state.setdefault(int(idx), {}).update(sc)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return int(meta["step"]), {k: list(v) for k, v in meta["history"].items()}, meta.get("seconds")


# ---------------------------------------------------------------------------------------------------- the loop
def train(model: torch.nn.Module, loss_fn: LossFn, batch_fn: Callable[[int], Any], cfg: TrainConfig, *,
          run_dir: str | Path | None = None, resume: bool = True,
          callback: Callable[[int, dict[str, float]], None] | None = None, desc: str = "train",
          parameters: list[torch.nn.Parameter] | None = None, snapshot_steps: Sequence[int] = (),
          on_snapshot: Callable[[int, torch.nn.Module], None] | None = None,
          device: torch.device | str | None = None) -> TrainResult:
    """Train ``model`` for ``cfg.steps`` steps.

    ``batch_fn(step)`` returns the batch of that step; ``loss_fn(model, batch)`` returns the loss, or
    ``(loss, logs)`` with extra scalars to record. ``callback(step, logs)`` runs after every step (live plots;
    raising from it stops the run). With ``run_dir``, the training state is saved every ``cfg.ckpt_every``
    steps and at the end, and a later call with the same ``run_dir`` resumes from it.

    ``on_snapshot(steps_done, ema_model)`` runs when ``steps_done`` (a member of ``snapshot_steps``) steps are
    done, before the training state is saved there: one long run yields the models of several shorter ones (what a
    run of that many steps gives, for a constant learning rate). A resumed run calls it only for later steps."""
    torch.manual_seed(cfg.seed)
    if device is not None:
        model.to(device)
    params = list(parameters) if parameters is not None else [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    ema = None
    if cfg.ema_decay > 0:
        ema = copy.deepcopy(model).requires_grad_(False)
    history: dict[str, list[float]] = {"step": [], "loss": []}
    start, before = 0, 0.0  # before: seconds spent by earlier parts of a resumed run (None if not recorded)
    state_path = Path(run_dir) / STATE_FILE if run_dir is not None else None
    if state_path is not None and resume and state_path.exists():
        start, history, before = _load_state(state_path, model, ema, opt, cfg)
    resumed_from = start
    t0 = time.perf_counter()

    def seconds() -> float | None:
        return None if before is None else before + time.perf_counter() - t0

    model.train()
    bar = progress(range(start, cfg.steps), desc=desc, initial=start, total=cfg.steps)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = learning_rate(cfg, step)
        out = loss_fn(model, to_device(batch_fn(step), device))
        loss, logs = (out if isinstance(out, tuple) else (out, {}))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower the learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip) if cfg.grad_clip > 0 else None
        opt.step()
        if ema is not None:
            ema_update(ema, model, min(cfg.ema_decay, (1 + step) / (10 + step)))
        logs = {"loss": float(loss.detach()), **{k: float(v) for k, v in logs.items()}}
        if grad_norm is not None:
            logs["grad_norm"] = float(grad_norm)
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            history.setdefault("step", []).append(step)
            for k, v in logs.items():
                history.setdefault(k, []).append(v)
            bar.set_postfix(loss=f"{logs['loss']:.4f}")
        done = step + 1
        snap = done in snapshot_steps and on_snapshot is not None
        if snap:
            paused = time.perf_counter()
            on_snapshot(done, ema if ema is not None else model)
            model.train()
            t0 += time.perf_counter() - paused  # the snapshot's work is not training time
        periodic = cfg.ckpt_every > 0 and done % cfg.ckpt_every == 0
        if state_path is not None and (periodic or snap) and done < cfg.steps:
            _save_state(state_path, done, model, ema, opt, history, cfg, seconds())
        if callback is not None:
            callback(step, logs)
    bar.close()
    total = seconds()
    if state_path is not None:
        _save_state(state_path, cfg.steps, model, ema, opt, history, cfg, total)
    model.eval()
    if ema is not None:
        ema.eval()
    return TrainResult(model=model, ema=ema if ema is not None else model, history=history,
                       steps=cfg.steps, resumed_from=resumed_from, seconds=total)

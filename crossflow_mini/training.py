"""The one training loop every model in the project goes through.

AdamW with linear warm-up (then constant, as in the paper, or cosine decay), gradient clipping, an EMA copy
of the weights (paper: EMA 0.9999; short CPU runs use a smaller decay), a tqdm bar, a loss history for plots,
and periodic training-state checkpoints written atomically so that an interrupted run resumes to *exactly* the
numbers an uninterrupted run gives:

* batches are a pure function of ``(seed, step)`` (:class:`EpochBatches`), and
* the torch RNG state (used by the loss for times, noise, reparameterisation) is saved with the weights, the
  EMA weights and the optimiser moments, all in one safetensors file (no pickle).

Every step goes through one ``accelerate.Accelerator`` (:mod:`crossflow_mini.distributed`): in a plain
one-process run it places nothing and computes exactly what this loop computed before accelerate came in; under
``accelerate launch`` (or torchrun) the same loop trains data-parallel over several processes (DDP), each taking
its share of the global batch ``batch_size``, with optional bf16 / fp16 mixed precision and gradient
accumulation (:class:`~crossflow_mini.distributed.ParallelConfig`). The main process alone keeps the EMA, shows
the progress bar and writes the training state (atomically, with every process's RNG state in it, so that a
killed multi-process run resumes exactly too); logged losses are averaged over all processes.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from . import distributed as dist
from .distributed import ParallelConfig
from .utils import DamagedFileError, load_tensors, progress, save_tensors, to_device


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
                seconds: float | None = None, rng: dict[str, torch.Tensor] | None = None,
                processes: int = 1) -> None:
    """Write the training state atomically. ``rng``: the RNG states of the other processes of a multi-process run
    (``rng.torch.<rank>``, gathered by :func:`_gather_rng`); this process's own go under ``rng.torch``/``rng.cuda``."""
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
    tensors.update(rng or {})
    meta = {"step": step, "history": history, "param_groups": opt_sd["param_groups"], "optim_scalars": scalars,
            "train_config": json.dumps(cfg.__dict__, default=list, sort_keys=True), "seconds": seconds}
    if processes > 1:  # a one-process state file stays exactly what it always was
        meta["processes"] = processes
    save_tensors(path, tensors, metadata={"state": json.dumps(meta)})  # atomic, with a checksum


def _load_state(path: Path, model: torch.nn.Module, ema: torch.nn.Module | None, opt: torch.optim.Optimizer,
                cfg: TrainConfig, *, rank: int = 0,
                processes: int = 1) -> tuple[int, dict[str, list[float]], float | None]:
    """Restore a state written by :func:`_save_state`; returns ``(step, history, seconds trained so far)``.
    A damaged state file raises :class:`~crossflow_mini.utils.DamagedFileError` saying how to start over.

    Process ``rank`` of ``processes`` takes its own RNG state back. A state written by a run with another number of
    processes resumes too - same weights, optimiser moments and step - but the later random draws (times, noise)
    cannot be those of an uninterrupted run, and a warning says so."""
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
    step = int(meta["step"])
    saved_processes = int(meta.get("processes", 1))
    suffix = "" if rank == 0 else f".{rank}"
    if saved_processes == processes and f"rng.torch{suffix}" in tensors:
        torch.set_rng_state(tensors[f"rng.torch{suffix}"])
        if f"rng.cuda{suffix}" in tensors and torch.cuda.is_available():
            torch.cuda.set_rng_state(tensors[f"rng.cuda{suffix}"])
    else:
        torch.manual_seed(dist.rank_seed(cfg.seed, rank) + step)
        if rank == 0:
            warnings.warn(f"{path} was written by a run of {saved_processes} process(es) and resumes with "
                          f"{processes}: weights, optimiser and step carry on, but the random draws from step {step} "
                          f"on differ from an uninterrupted run", stacklevel=3)
    return step, {k: list(v) for k, v in meta["history"].items()}, meta.get("seconds")


def _gather_rng(accelerator: Any) -> dict[str, torch.Tensor]:
    """The RNG states of processes 1.. of a multi-process run, for the main process to save (every process must
    call this: it is a collective). Empty in a one-process run."""
    if accelerator.num_processes == 1:
        return {}
    states = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state()
    out = {}
    for key, state in states.items():
        every = accelerator.gather(state.to(accelerator.device)[None]).cpu()  # (processes, n) bytes
        out.update({f"rng.{key}.{r}": every[r].contiguous() for r in range(1, len(every))})
    return out


class _LossModule(torch.nn.Module):
    """``model`` and ``loss_fn`` as one module whose ``forward(batch)`` is the loss: DDP synchronises gradients
    only through ``forward``, while the project's models compute their loss in a method of their own (``.loss``)."""

    def __init__(self, model: torch.nn.Module, loss_fn: LossFn):
        super().__init__()
        self.model, self.loss_fn = model, loss_fn

    def forward(self, batch: Any):
        return self.loss_fn(self.model, batch)


# ---------------------------------------------------------------------------------------------------- the loop
@torch.enable_grad()  # a notebook that switched gradients off (to sample) may still train a missing checkpoint
def train(model: torch.nn.Module, loss_fn: LossFn, batch_fn: Callable[[int], Any], cfg: TrainConfig, *,
          run_dir: str | Path | None = None, resume: bool = True,
          callback: Callable[[int, dict[str, float]], None] | None = None, desc: str = "train",
          parameters: list[torch.nn.Parameter] | None = None, snapshot_steps: Sequence[int] = (),
          on_snapshot: Callable[[int, torch.nn.Module], None] | None = None,
          device: torch.device | str | None = None, parallel: ParallelConfig | None = None) -> TrainResult:
    """Train ``model`` for ``cfg.steps`` steps.

    ``batch_fn(step)`` returns the (global) batch of that step; ``loss_fn(model, batch)`` returns the loss, or
    ``(loss, logs)`` with extra scalars to record. ``callback(step, logs)`` runs after every step, on every process
    (live plots; raising from it stops the run). With ``run_dir``, the training state is saved every
    ``cfg.ckpt_every`` steps and at the end, and a later call with the same ``run_dir`` resumes from it.

    ``on_snapshot(steps_done, ema_model)`` runs on the main process when ``steps_done`` (a member of
    ``snapshot_steps``) steps are done, before the training state is saved there: one long run yields the models of
    several shorter ones (what a run of that many steps gives, for a constant learning rate). A resumed run calls it
    only for later steps.

    ``parallel`` (default: :meth:`ParallelConfig.from_env`) sets mixed precision and gradient accumulation; the
    number of processes is the launcher's. In a multi-process run ``device`` gives the device *type* (each process
    takes its own GPU), the main process returns the EMA model and the others their copy of the trained weights."""
    parallel = ParallelConfig.from_env() if parallel is None else parallel
    acc = dist.make_accelerator(parallel, device)
    world, rank, accum = acc.num_processes, acc.process_index, parallel.grad_accum
    main = acc.is_main_process
    parts = world * accum  # the global batch is cut into this many equal micro-batches
    if cfg.batch_size % parts:
        raise ValueError(f"batch_size {cfg.batch_size} cannot be split over {world} process(es) x {accum} "
                         f"accumulation step(s): choose a batch_size divisible by {parts}")
    if world > 1:
        device = acc.device  # this process's GPU (or the CPU)
    torch.manual_seed(dist.rank_seed(cfg.seed, rank))
    if device is not None:
        model.to(device)
    params = list(parameters) if parameters is not None else [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    ema = None
    if cfg.ema_decay > 0 and main:
        ema = copy.deepcopy(model).requires_grad_(False)
    history: dict[str, list[float]] = {"step": [], "loss": []}
    start, before = 0, 0.0  # before: seconds spent by earlier parts of a resumed run (None if not recorded)
    state_path = Path(run_dir) / STATE_FILE if run_dir is not None else None
    if state_path is not None and resume and state_path.exists():
        start, history, before = _load_state(state_path, model, ema, opt, cfg, rank=rank, processes=world)
    resumed_from = start
    net, opt_ = acc.prepare(_LossModule(model, loss_fn), opt)  # DDP (several processes) and autocast (if asked)
    t0 = time.perf_counter()

    def seconds() -> float | None:
        return None if before is None else before + time.perf_counter() - t0

    model.train()
    quiet = {} if main else {"disable": True}  # one progress bar: the main process's
    bar = progress(range(start, cfg.steps), desc=desc, initial=start, total=cfg.steps, **quiet)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = learning_rate(cfg, step)
        batch = batch_fn(step)
        opt_.zero_grad(set_to_none=True)
        losses, extras = [], []
        for k in range(accum):  # micro-batch k of this process's share; gradients synchronise on the last one
            micro = dist.shard(batch, rank * accum + k, parts)
            with acc.no_sync(net) if k < accum - 1 else contextlib.nullcontext():
                out = net(to_device(micro, device))
                loss, logs = (out if isinstance(out, tuple) else (out, {}))
                if parts == 1 and not torch.isfinite(loss):
                    raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower the learning rate")
                acc.backward(loss if accum == 1 else loss / accum)
            losses.append(loss.detach())
            extras.append(logs)
        if parts > 1:  # the loss of the global batch: mean over micro-batches and processes (a collective)
            loss = acc.reduce(torch.stack(losses).mean(), reduction="mean")
            if not torch.isfinite(loss):  # every process sees the same value, so all of them stop here
                raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower the learning rate")
        grad_norm = acc.clip_grad_norm_(params, cfg.grad_clip) if cfg.grad_clip > 0 else None
        opt_.step()
        if ema is not None:
            ema_update(ema, model, min(cfg.ema_decay, (1 + step) / (10 + step)))
        logging = step % cfg.log_every == 0 or step == cfg.steps - 1
        if parts == 1:
            logs = {"loss": float(loss.detach()), **{k: float(v) for k, v in logs.items()}}
        elif logging:  # extra scalars too, averaged over micro-batches and processes (only where they are recorded)
            keys = sorted(extras[0])
            means = torch.tensor([[float(e[k]) for k in keys] for e in extras], dtype=torch.float64).mean(0)
            means = acc.reduce(means.to(acc.device), reduction="mean").cpu() if world > 1 else means
            logs = {"loss": float(loss), **{k: float(v) for k, v in zip(keys, means)}}
        else:
            logs = {"loss": float(loss)}
        if grad_norm is not None:
            logs["grad_norm"] = float(grad_norm)
        if logging:
            history.setdefault("step", []).append(step)
            for k, v in logs.items():
                history.setdefault(k, []).append(v)
            bar.set_postfix(loss=f"{logs['loss']:.4f}")
        done = step + 1
        snap = done in snapshot_steps and on_snapshot is not None
        if snap:
            paused = time.perf_counter()
            if main:
                on_snapshot(done, ema if ema is not None else model)
                model.train()
            t0 += time.perf_counter() - paused  # the snapshot's work is not training time
        periodic = cfg.ckpt_every > 0 and done % cfg.ckpt_every == 0
        if state_path is not None and (periodic or snap) and done < cfg.steps:
            _write_state(acc, state_path, done, model, ema, opt, history, cfg, seconds())
        if callback is not None:
            callback(step, logs)
    bar.close()
    total = seconds()
    if state_path is not None:
        _write_state(acc, state_path, cfg.steps, model, ema, opt, history, cfg, total)
    acc.wait_for_everyone()  # every process returns once the final state is on disk
    if world > 1:  # drop the DDP wrapper now, with its gradient hooks (free_memory's gc pass costs ~0.3 s)
        acc.free_memory()
    model.eval()
    if ema is not None:
        ema.eval()
    return TrainResult(model=model, ema=ema if ema is not None else model, history=history,
                       steps=cfg.steps, resumed_from=resumed_from, seconds=total)


def _write_state(acc: Any, path: Path, step: int, model: torch.nn.Module, ema: torch.nn.Module | None,
                 opt: torch.optim.Optimizer, history: dict[str, list[float]], cfg: TrainConfig,
                 seconds: float | None) -> None:
    """Every process hands in its RNG state; the main process alone writes the file."""
    rng = _gather_rng(acc)
    if acc.is_main_process:
        _save_state(path, step, model, ema, opt, history, cfg, seconds, rng=rng, processes=acc.num_processes)

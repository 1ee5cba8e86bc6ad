"""Beyond one laptop: how a training run is spread over processes and devices, through Hugging Face accelerate.

The training loop (:func:`crossflow_mini.training.train`) runs every step through one ``accelerate.Accelerator``
made here (:func:`make_accelerator`). What that changes depends on how the program was started:

* **one process** (``python -m crossflow_mini train t2i_shapes``, a notebook, a test): one device, the one the
  caller names (the CPU by default, as before). This computes *exactly* the numbers the loop computed before
  accelerate came in - tested bit for bit (tests/test_training.py, tests/test_distributed.py);
* **several processes** (``accelerate launch --num_processes N -m crossflow_mini train t2i_shapes``, or torchrun):
  data parallelism (PyTorch DDP: NCCL between GPUs, gloo between CPU processes), one device per process.

The *global batch* is ``TrainConfig.batch_size``, the batch of one optimiser step, whatever the layout. Every
process draws the same global batch (a pure function of ``(seed, step)``,
:class:`~crossflow_mini.training.EpochBatches`) and takes its share (:func:`shard`): with N processes and K
accumulation steps each forward pass sees ``batch_size / (N * K)`` samples, and the averaged gradient is the
gradient of the global batch's mean loss.
So a recipe means the same training run on a laptop and on eight GPUs (up to float rounding and the random
draws), and its config hash - which names the checkpoint - does not depend on the layout. The one term whose
value *does* depend on the split is a loss over pairs within a batch, such as CrossFlow's contrastive L_Enc: each
process contrasts its own share (as every DDP training without a gather does), so it sees B / (N K) candidates.

How a run is spread is a :class:`ParallelConfig` (mixed precision, gradient accumulation), not part of any
recipe; by default it is read from the environment (:meth:`ParallelConfig.from_env`), which is how ``accelerate
launch --mixed_precision bf16`` and ``python -m crossflow_mini train NAME --mixed-precision bf16 --grad-accum 4``
reach a task's training run without any task passing it along.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch

MIXED_PRECISIONS = ("no", "bf16", "fp16")
#: Set by ``accelerate launch --mixed_precision ...`` (and by our CLI's ``--mixed-precision``).
PRECISION_ENV = "ACCELERATE_MIXED_PRECISION"
#: Set by our CLI's ``--grad-accum`` (accelerate launch passes its own flag only to DeepSpeed).
GRAD_ACCUM_ENV = "CROSSFLOW_GRAD_ACCUM"
#: ``1`` turns on DDP's search for parameters a step did not use (for a model that has such parameters).
UNUSED_ENV = "CROSSFLOW_FIND_UNUSED_PARAMETERS"
#: Environment variables that launchers (torchrun, accelerate launch, MPI) use for the number of processes / rank.
_WORLD_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
_RANK_VARS = ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK")
#: Process r > 0 of a run seeds its random draws (times, noise, CFG swaps) with seed + r * RANK_SEED_STRIDE, so the
#: processes draw different numbers for their different samples; process 0 keeps the run's own seed.
RANK_SEED_STRIDE = 1_000_003


@dataclass(frozen=True)
class ParallelConfig:
    """How a training run uses its hardware - never what it trains (so it is not part of a recipe or its hash).

    ``mixed_precision``: ``"no"`` (fp32, the tested default), ``"bf16"`` (autocast; the choice on Ampere or newer
    GPUs) or ``"fp16"`` (autocast with a gradient scaler; older GPUs). The weights, the optimiser moments and the
    EMA stay fp32 in every case. ``grad_accum``: forward/backward passes per optimiser step, each over
    ``1 / grad_accum`` of the process's share of the global batch (a memory knob: the step's gradient is the
    same). ``find_unused_parameters``: DDP's option for models with parameters that some steps do not use (the
    text-to-image models use every parameter in every step; checked for CrossFlow and the baseline)."""

    mixed_precision: str = "no"
    grad_accum: int = 1
    find_unused_parameters: bool = False

    def __post_init__(self) -> None:
        if self.mixed_precision not in MIXED_PRECISIONS:
            raise ValueError(f"mixed_precision={self.mixed_precision!r} is not one of {MIXED_PRECISIONS}")
        if self.grad_accum < 1:
            raise ValueError(f"grad_accum must be at least 1, got {self.grad_accum}")

    @classmethod
    def from_env(cls) -> "ParallelConfig":
        """The layout the launcher (or our CLI) asked for: ``ACCELERATE_MIXED_PRECISION``,
        ``CROSSFLOW_GRAD_ACCUM`` and ``CROSSFLOW_FIND_UNUSED_PARAMETERS``; fp32, no accumulation and no search for
        unused parameters where they are unset."""
        precision = os.environ.get(PRECISION_ENV, "no").strip().lower() or "no"
        try:
            accum = int(os.environ.get(GRAD_ACCUM_ENV, "1") or 1)
        except ValueError as err:
            raise ValueError(f"{GRAD_ACCUM_ENV}={os.environ[GRAD_ACCUM_ENV]!r} is not a whole number") from err
        if precision not in MIXED_PRECISIONS:
            raise ValueError(f"{PRECISION_ENV}={precision!r} is not one of {MIXED_PRECISIONS} (fp8 is not supported "
                             f"here)")
        unused = os.environ.get(UNUSED_ENV, "0").strip().lower() in ("1", "true", "yes")
        return cls(mixed_precision=precision, grad_accum=accum, find_unused_parameters=unused)


# ------------------------------------------------------------------------------------------ who am I
def _env_int(names: tuple[str, ...], default: int) -> int:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return int(value)
    return default


def num_processes() -> int:
    """Processes in this run: more than one only when a launcher (accelerate launch, torchrun, mpirun) started it."""
    return max(1, _env_int(_WORLD_VARS, 1))


def process_index() -> int:
    """This process's rank (0 = the main process, the one that writes files and logs)."""
    return _env_int(_RANK_VARS, 0) if num_processes() > 1 else 0


def is_main_process() -> bool:
    return process_index() == 0


def _partial_state():
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def wait_for_everyone() -> None:
    """A barrier across the run's processes (nothing in a one-process run)."""
    if num_processes() > 1:
        _partial_state().wait_for_everyone()


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """Run the block on the main process first, then on the others: the main process fills a cache (text tokens,
    latents), the others then read it instead of computing it at the same time. No training may run inside."""
    if num_processes() == 1:
        yield
        return
    if not is_main_process():
        wait_for_everyone()
    yield
    if is_main_process():
        wait_for_everyone()


# -------------------------------------------------------------------------------------------- the Accelerator
def make_accelerator(parallel: ParallelConfig, device: torch.device | str | None = None):
    """The ``accelerate.Accelerator`` of one training run.

    One process: a plain accelerator that places nothing (the loop puts the model on ``device``, as it always did;
    the CPU when ``device`` is a CPU or no GPU exists). Several processes: one device per process (the process's
    GPU, or the CPU with gloo), DDP for the model. accelerate keeps its state per process and refuses a second
    accelerator with other settings; a training loop is the one user of it here, so each run starts from a clean
    state (in a launched run only the settings are reset, never the process group)."""
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from accelerate.state import AcceleratorState, GradientState

    many = num_processes() > 1
    wanted = None if device is None else torch.device(device)
    cpu = (wanted is not None and wanted.type == "cpu") or not torch.cuda.is_available()
    AcceleratorState._reset_state(reset_partial_state=not many)  # the settings of an earlier run in this process
    GradientState._reset_state()
    ddp = DistributedDataParallelKwargs(find_unused_parameters=parallel.find_unused_parameters)
    return Accelerator(cpu=cpu, mixed_precision=parallel.mixed_precision, device_placement=False,
                       kwargs_handlers=[ddp], step_scheduler_with_optimizer=False)


# ------------------------------------------------------------------------------------------------ batches
def shard(batch: Any, index: int, count: int) -> Any:
    """Part ``index`` of ``count`` equal parts of a batch: tensors (and objects that slice, like
    :class:`~crossflow_mini.core.source.TokenBatch`) are cut along their first dimension; tuples, lists and dicts
    are cut item by item; anything else (a number, a string) is passed on whole. ``count == 1`` returns the batch
    itself."""
    if count == 1:
        return batch
    if isinstance(batch, (tuple, list)):
        return type(batch)(shard(b, index, count) for b in batch)
    if isinstance(batch, dict):
        return {k: shard(v, index, count) for k, v in batch.items()}
    if torch.is_tensor(batch) or (hasattr(batch, "__getitem__") and hasattr(batch, "__len__")
                                  and not isinstance(batch, (str, bytes))):
        n = len(batch)
        if n % count:
            raise ValueError(f"a batch of {n} items cannot be split into {count} equal parts (processes x "
                             f"gradient-accumulation steps): choose a batch_size divisible by {count}")
        size = n // count
        return batch[index * size:(index + 1) * size]
    return batch


def rank_seed(seed: int, rank: int) -> int:
    """The seed of process ``rank``'s random draws (``seed`` itself for process 0)."""
    return seed + rank * RANK_SEED_STRIDE


__all__ = ["MIXED_PRECISIONS", "PRECISION_ENV", "GRAD_ACCUM_ENV", "UNUSED_ENV", "ParallelConfig", "num_processes",
           "process_index", "is_main_process", "wait_for_everyone", "main_process_first", "make_accelerator",
           "shard", "rank_seed"]

"""The 2-D flow-matching experiment of notebook 01: noise -> data, and data -> data with an independent or a
paired coupling (the CrossFlow case, where the source point decides its target)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..datasets.toy2d import moon_label, paired_blobs_to_moons, sample_2d
from ..core.path import flow_matching_loss
from ..nn.mlp import MLPVelocity
from ..core.sampling import SampleResult, sample
from ..training import EpochBatches, TrainResult, train
from ..training import TrainConfig


@dataclass(frozen=True)
class Flow2DConfig:
    """The 2-D flow-matching lesson of notebook 01."""

    n_points: int = 4096
    hidden: int = 128
    layers: int = 3
    train: TrainConfig = TrainConfig(steps=1500, batch_size=256, lr=3e-3, warmup_steps=50, ema_decay=0.0,
                                     weight_decay=0.0, betas=(0.9, 0.999), ckpt_every=0)
    euler_steps: int = 50
    time_sampler: str = "uniform"  # or "logit_normal", as in the CrossFlow code (flow.TIME_SAMPLERS)
    num_threads: int = 1  # the 2-D networks are tiny: one CPU thread is faster than several
    n_show: int = 512  # points drawn in scatter plots
    n_traj: int = 24  # trajectories drawn

COUPLINGS = ("noise", "independent", "paired")


@dataclass
class Flow2DData:
    """Training pairs for one coupling: ``x0[i]`` is transported to ``x1[i]`` (after re-pairing, if any)."""

    x0: torch.Tensor
    x1: torch.Tensor
    labels: torch.Tensor  # the moon each x1 lies on; for the paired coupling also the blob of x0


def make_data(coupling: str, n: int, seed: int = 0, crossed: bool = False) -> Flow2DData:
    """``noise``: x0 ~ N(0, I), x1 ~ moons. ``independent`` / ``paired``: x0 from two blobs, x1 from two moons;
    the pairs are kept for ``paired`` and shuffled away by the batch sampler for ``independent``."""
    if coupling not in COUPLINGS:
        raise ValueError(f"unknown coupling {coupling!r}; choose one of {COUPLINGS}")
    g = torch.Generator().manual_seed(seed)
    x0, x1, labels = paired_blobs_to_moons(n, g, crossed=crossed)
    if coupling == "noise":
        x0 = sample_2d("gaussian", n, g)
    return Flow2DData(x0, x1, labels)


def train_flow2d(coupling: str, cfg: Flow2DConfig, seed: int | None = None, crossed: bool = False,
                 callback: Callable[[int, dict[str, float]], None] | None = None) -> TrainResult:
    """Fit an :class:`MLPVelocity` by flow matching (times drawn by ``cfg.time_sampler``) for the coupling."""
    seed = cfg.train.seed if seed is None else seed
    data = make_data(coupling, cfg.n_points, seed, crossed=crossed)
    torch.manual_seed(seed)
    model = MLPVelocity(2, cfg.hidden, cfg.layers)
    src_batches = EpochBatches(cfg.n_points, cfg.train.batch_size, seed)
    # independent coupling: the source index of a pair is drawn separately from the target index
    tgt_batches = EpochBatches(cfg.n_points, cfg.train.batch_size, seed + 1) if coupling != "paired" else src_batches

    def batch_fn(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        return data.x0[src_batches(step)], data.x1[tgt_batches(step)]

    def loss_fn(m: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        z0, z1 = batch
        return flow_matching_loss(m, z0, z1, time_sampler=cfg.time_sampler)

    return train(model, loss_fn, batch_fn, cfg.train, callback=callback, desc=f"2-D flow ({coupling})")


def transport(model: torch.nn.Module, x0: torch.Tensor, steps: int, method: str = "euler",
              return_trajectory: bool = True) -> SampleResult:
    """Carry ``x0`` along the learned field from t = 0 to t = 1."""
    return sample(model, x0, steps, method=method, return_trajectory=return_trajectory)


def label_accuracy(x_end: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of transported points that land on the moon their source was paired with."""
    return float((moon_label(x_end) == labels).float().mean())

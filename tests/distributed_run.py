"""A training run for tests/test_distributed.py, started there as one process or under ``accelerate launch``.

    python tests/distributed_run.py MODES OUT_DIR [--steps N] [--run-dir DIR] [--sleep S] [--accum K]

MODES is ``toy``, ``t2i`` or ``toy,t2i`` (both, one after the other, in the same processes). ``toy``: a linear
regression with a deterministic loss (no dropout, no noise), so that a split batch must give the gradient of the
whole batch up to float rounding. ``t2i``: the smoke profile's ShapesWorld CrossFlow recipe on its prepared data
(the test fills the caches first, with one process). Each process writes ``OUT_DIR/<mode>-rank<r>.json``: a digest
of its weights, its loss history, the step it resumed from and the number of processes.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

import torch


def digest(module: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()[:16]


def flat(module: torch.nn.Module) -> list[float]:
    return torch.cat([p.detach().cpu().reshape(-1) for p in module.parameters()]).tolist()


def run(mode: str, steps: int = 12, run_dir: str | None = None, sleep: float = 0.0, accum: int = 1) -> dict:
    """Train (``mode`` "toy" or "t2i") and return what the test compares."""
    from crossflow_mini import distributed as dist
    from crossflow_mini.training import EpochBatches, TrainConfig, train

    parallel = dist.ParallelConfig(grad_accum=accum)
    callback = (lambda step, logs: time.sleep(sleep)) if sleep else None
    if mode == "toy":
        g = torch.Generator().manual_seed(1)
        x = torch.randn(256, 4, generator=g)
        y = x @ torch.randn(4, 2, generator=g)
        cfg = TrainConfig(steps=steps, batch_size=16, lr=1e-2, warmup_steps=2, ema_decay=0.9, ckpt_every=5,
                          log_every=1)
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
        batches = EpochBatches(len(x), cfg.batch_size, cfg.seed)
        seen: list[int] = []  # the number of samples each forward pass of this process sees

        def loss(m, idx):
            seen.append(len(idx))
            return ((m(x[idx]) - y[idx]) ** 2).mean()

        result = train(model, loss, batches, cfg, device="cpu", run_dir=run_dir, callback=callback,
                       parallel=parallel)
    else:
        from crossflow_mini.core.build import build_model
        from crossflow_mini.profiles import get_profile
        from crossflow_mini import registry
        from crossflow_mini.tasks.common import model_loss
        from crossflow_mini.tasks.t2i import data as t2i_data

        profile = get_profile("smoke", device="cpu")
        recipe = registry.recipe("t2i_shapes", profile)
        cfg = dataclasses.replace(recipe.train, steps=steps, ckpt_every=5, log_every=1)
        autoencoder = registry.load("autoencoder_shapes", profile)
        data = t2i_data.prepare(recipe, "train", autoencoder)
        torch.manual_seed(cfg.seed)
        model = build_model(recipe.model)
        seen = []
        result = train(model, model_loss, t2i_data.training_batches(data, cfg), cfg, device="cpu",
                       run_dir=run_dir, callback=callback, parallel=parallel)
    return {"rank": dist.process_index(), "processes": dist.num_processes(), "digest": digest(result.model),
            "weights": flat(result.model), "ema_digest": digest(result.ema), "history": result.history,
            "resumed_from": result.resumed_from, "threads": torch.get_num_threads(),
            "forward_sizes": sorted(set(seen)), "rng_probe": torch.rand(1).item(),
            "backend": torch.distributed.get_backend() if torch.distributed.is_initialized() else None}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("modes", help="toy, t2i, or both separated by a comma")
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--run-dir", default=None)
    ap.add_argument("--sleep", type=float, default=0.0)
    ap.add_argument("--accum", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for mode in args.modes.split(","):
        out = run(mode, args.steps, args.run_dir, args.sleep, args.accum)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / f"{mode}-rank{out['rank']}.json").write_text(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())

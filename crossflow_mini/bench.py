"""Speed figures (``python -m crossflow_mini bench``): printed, and copied into the README by hand with the
command that produced them. Nothing here asserts a time; tests only check that it runs."""

from __future__ import annotations

import os
import platform
import tempfile
import time

import torch

from .config import ShapesDataConfig, TextEncoderConfig, get_profile


def _timeit(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_shapes(n: int) -> float:
    """ShapesWorld images rendered (with captions and attributes) per second."""
    from .datasets.shapes import generate_split

    cfg = ShapesDataConfig(n_train=n, n_val=1, n_test=1, seed=123)
    return n / _timeit(lambda: generate_split("train", cfg))


def bench_text_encoder(n: int) -> tuple[float, float, int]:
    """MiniLM captions/s cold (embedding) and cached (read from disk), on ``n`` distinct ShapesWorld captions."""
    from .datasets.shapes import generate_split
    from .text_encoder import TextEncoder, load_minilm

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
    from .autoencoder import ImageAutoencoder

    recipe = get_profile("full").autoencoder_shapes
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
    out["machine"] = f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}"
    out["quick"] = quick
    return out

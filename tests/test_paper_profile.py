"""The ``paper`` profile: its recipes build and validate, and the cost report counts what it should."""

from __future__ import annotations

import pytest
import torch

from crossflow_mini.core.build import build_model
from crossflow_mini.core.params import count_parameters
from crossflow_mini.cli.cost import step_flops, training_cost
from crossflow_mini.profiles import PROFILES, get_profile
from crossflow_mini.registry import recipe


def test_paper_profile_builds_with_the_papers_shapes(monkeypatch):
    for var in ("CROSSFLOW_TEXT_MODEL", "CROSSFLOW_VAE", "CROSSFLOW_IMAGE_FOLDER"):
        monkeypatch.delenv(var, raising=False)
    assert "paper" in PROFILES
    p = get_profile("paper", device="cpu")
    r = recipe("t2i_folder", p)
    assert p.name == "paper" and p.train_missing
    assert r.data.image_size == 256 and tuple(r.model.velocity.latent_shape) == (4, 32, 32)
    assert (r.model.source.token_dim, r.model.source.max_tokens, r.text.max_tokens) == (768, 77, 77)  # CLIP ViT-L/14
    v = r.model.velocity
    assert (v.width, v.depth, v.heads, v.patch_size, v.num_patches) == (768, 12, 12, 2, 256)  # DiT-B/2
    assert (r.train.steps, r.train.lr, tuple(r.train.betas), r.train.ema_decay) == (300_000, 1e-4, (0.9, 0.9), 0.9999)
    with torch.device("meta"):  # shapes only: no memory for the weights
        model = build_model(r.model)
    assert 125e6 < count_parameters(model.velocity) < 135e6  # DiT-B/2 is 130M (DiT paper, Table 4)
    assert r.vae.path is None and r.data.path is None  # the user points the environment at their folders


def test_step_flops_counts_a_linear_layer_exactly():
    from torch.utils.flop_counter import FlopCounterMode

    lin = torch.nn.Linear(8, 4)
    with FlopCounterMode(display=False) as c:
        lin(torch.zeros(3, 8))
    assert c.get_total_flops() == 2 * 3 * 8 * 4  # what cost.py's counts are made of


def test_cost_report_of_the_smoke_recipe():
    cfg = recipe("t2i_shapes", get_profile("smoke", device="cpu")).model
    cost = step_flops(cfg)
    assert cost["parameters"] == cost["velocity_parameters"] + cost["source_parameters"]
    assert cost["train_gflop_per_sample"] > 2 * cost["velocity_forward_gflop_per_sample"] > 0  # forward + backward
    measured = training_cost(cfg, steps=100_000, batch_size=16, samples_per_second=50.0)
    assert measured["gpu_hours"] == pytest.approx(100_000 * 16 / 50.0 / 3600, abs=0.01)
    assert "measured" in measured["gpu_hours_from"]
    assumed = training_cost(cfg, steps=1000, batch_size=16, peak_tflops=100.0, utilisation=0.5)
    assert "not measured" in assumed["gpu_hours_from"]


def test_gpu_check_without_a_gpu_says_so_and_exits_0(capsys):
    from crossflow_mini.cli import gpu_check

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: `make gpu-check` runs the real check")
    assert gpu_check.main([]) == 0
    assert "no CUDA GPU" in capsys.readouterr().out


def test_gpu_check_parts_run_on_the_cpu_with_the_smoke_recipes(tmp_cache):
    """The GPU check's two parts, on the CPU at smoke size, so that the lent GPU's few minutes are not spent on a
    typo (the real run: `make gpu-check`)."""
    from crossflow_mini.cli import gpu_check

    t2i = gpu_check.t2i_shapes_part(steps=6, train_images=None, cpu_steps=3, n_sample=8, device="cpu",
                                    profile_name="smoke")
    assert t2i["cpu_train_samples_per_s"] > 0 and t2i["cpu_sample_ms_per_image_cfg"] > 0
    paper = gpu_check.paper_smoke_part(steps=6, batch_size=4, device="cpu", profile_name="smoke")
    assert paper["train_samples_per_s"] > 0 and "measured" in paper["paper_recipe_cost"]["gpu_hours_from"]

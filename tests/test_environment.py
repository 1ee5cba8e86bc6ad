"""The environment check of notebook 00 and the benchmark command (it must run; its times are not asserted)."""

from __future__ import annotations

from crossflow_mini.__main__ import main
from crossflow_mini.environment import check_environment


def test_environment_check_finds_the_offline_parts():
    checks = {c.item: c for c in check_environment()}
    for item in ("torch", "diffusers", "MiniLM text encoder", "Inception (FID)", "photos"):
        assert checks[item].ok, f"{item}: {checks[item].detail}"


def test_bench_quick_prints_every_figure(capsys, tmp_cache):
    assert main(["bench", "--quick"]) == 0
    out = capsys.readouterr().out
    for label in ("ShapesWorld render", "MiniLM text encoder cold", "MiniLM text encoder cache",
                  "Autoencoder training", "fp32 matmul peak", "CrossFlow training", "CrossFlow sampling"):
        assert label in out


def test_the_2d_lesson_does_not_import_diffusers_or_transformers():
    """Notebook 01 used to pay 17-24 s for imports it never uses; a fresh interpreter shows what its imports load."""
    import subprocess
    import sys

    code = ("import sys; from crossflow_mini import course, viz; from crossflow_mini.core import path, sampling; "
            "from crossflow_mini.tasks import flow2d; course.start(quiet=True); "
            "print(sorted(m for m in ('diffusers', 'transformers', 'torchmetrics') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout

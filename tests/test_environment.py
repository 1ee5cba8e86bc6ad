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

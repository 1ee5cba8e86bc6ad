"""The profile switch: read from CROSSFLOW_PROFILE in one place, with a clear error for a typo."""

from __future__ import annotations

import pytest
import torch

from crossflow_mini import profiles as config
from crossflow_mini import registry


@pytest.mark.parametrize("name", config.PROFILES)
def test_every_profile_builds(name):
    p = config.get_profile(name)
    assert p.name == name
    assert registry.recipe("autoencoder_shapes", p).model.latent_shape == (4, 8, 8)


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv(config.PROFILE_ENV, "smoke")
    assert config.get_profile().name == "smoke"
    monkeypatch.delenv(config.PROFILE_ENV)
    assert config.get_profile().name == "course"


def test_unknown_profile_says_what_to_do(monkeypatch):
    monkeypatch.setenv(config.PROFILE_ENV, "fast")
    with pytest.raises(ValueError, match="smoke, course, full"):
        config.get_profile()


def test_course_uses_the_shipped_recipes_and_smoke_is_small():
    course, full, smoke = (config.get_profile(n) for n in ("course", "full", "smoke"))
    # so course finds the shipped weights
    assert registry.recipe("autoencoder_shapes", course) == registry.recipe("autoencoder_shapes", full)
    assert not course.train_missing
    assert smoke.shapes.n_train < course.shapes.n_train <= full.shapes.n_train
    assert registry.recipe("autoencoder_shapes", smoke).train.steps < 50


def test_seeding_pins_the_threads_and_switches_off_dynamic_adjustment():
    """With dynamic adjustment on (``OMP_DYNAMIC=true``), OpenMP sizes each parallel region by the load average,
    so a seeded run's numbers change with how busy the machine is; seeding must switch it off."""
    from crossflow_mini import utils

    omp = utils._openmp_runtime()
    if omp is None:
        pytest.skip("no OpenMP runtime found in this torch build")
    before = torch.get_num_threads()
    omp.omp_set_dynamic(1)  # as OMP_DYNAMIC=true in the environment would
    try:
        utils.seed_everything(0)
        settings = utils.thread_settings()
        assert settings["omp_dynamic"] is False and settings["mkl_dynamic"] in (False, None)
        assert settings["threads"] == before
        assert utils.deterministic_threads(1) == 1 and torch.get_num_threads() == 1
    finally:
        omp.omp_set_dynamic(0)
        torch.set_num_threads(before)


def test_progress_switch_silences_every_bar(monkeypatch):
    """CROSSFLOW_PROGRESS=0 (the notebook runner, the tests) wins over a caller that asks for a bar."""
    from crossflow_mini import utils

    monkeypatch.setenv("CROSSFLOW_PROGRESS", "0")
    assert utils.progress(range(3), disable=False).disable
    monkeypatch.setenv("CROSSFLOW_PROGRESS", "1")
    assert not utils.progress(range(3), disable=False).disable
    assert utils.progress(range(3), disable=True).disable

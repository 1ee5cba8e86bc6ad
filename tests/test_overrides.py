"""Change a setting without editing code: dot-path overrides from Python and from the command line, checked against
the config's fields, and a run that never replaces a shipped checkpoint."""

from __future__ import annotations

import json

import pytest

from crossflow_mini import checkpoints, registry
from crossflow_mini.cli import main
from crossflow_mini.configs import OverrideError, config_hash, parse_overrides, settings, with_overrides
from crossflow_mini.profiles import get_profile
from crossflow_mini.tasks.t2i.recipe import T2I_SHAPES

SMOKE = get_profile("smoke", device="cpu")


def test_dot_paths_change_exactly_what_they_name():
    r = T2I_SHAPES.with_overrides({"model.source.kl_weight": 1e-2, "train.steps": 500})
    assert r.model.source.kl_weight == 1e-2 and r.train.steps == 500
    assert r.model.source.head == T2I_SHAPES.model.source.head and r.train.lr == T2I_SHAPES.train.lr
    assert config_hash(r) != config_hash(T2I_SHAPES)
    # a key whose first part is a setting of the model may leave out "model."
    assert with_overrides(T2I_SHAPES, {"source.kl_weight": 1e-2}) == T2I_SHAPES.with_overrides(
        {"model.source.kl_weight": 1e-2})
    # several keys are applied together, so checks across fields see the final state
    both = with_overrides(T2I_SHAPES, {"model.source.max_tokens": 24, "text.max_tokens": 24})
    assert both.text.max_tokens == both.model.source.max_tokens == 24


@pytest.mark.parametrize("key, value, match", [
    ("source.kl_wieght", 1.0, r"unknown setting 'model\.source\.kl_wieght'.*kl_weight.*Did you mean 'model\.source\.kl_weight'"),
    ("train.stepz", 3, r"TrainConfig \(at 'train'\) has the settings steps, batch_size"),
    ("nothing", 3, r"T2IRecipe has the settings model, train, shapes, text, autoencoder, sampling"),
    ("train.steps", "many", r"'train\.steps' must be int \(now 9000\), got 'many'"),
    ("train.steps", 2.5, r"must be int"),
    ("train.steps.more", 1, r"not a config with settings"),
    ("model.source.max_tokens", 20, r"refused: the text encoder keeps 16 tokens"),
])
def test_unknown_keys_and_wrong_types_are_refused_with_what_exists(key, value, match):
    with pytest.raises(OverrideError, match=match):
        with_overrides(T2I_SHAPES, {key: value})


def test_values_are_converted_to_the_fields_types():
    r = with_overrides(T2I_SHAPES, {"train.lr": 1, "model.source.tower.channels": [8, 16], "train.steps": 4.0})
    assert isinstance(r.train.lr, float) and r.model.source.tower.channels == (8, 16) and r.train.steps == 4
    assert "model.source.kl_weight" in settings(T2I_SHAPES) and "sampling.guidance_scale" in settings(T2I_SHAPES)


def test_command_line_values_are_python_literals_or_words():
    assert parse_overrides(["train.steps=500", "source.kl_weight=1e-2", "time_sampler=logit_normal",
                            "model.source.tower.channels=(8, 16)", "source.kl_weight=None"]) == {
        "train.steps": 500, "source.kl_weight": None, "time_sampler": "logit_normal",
        "model.source.tower.channels": (8, 16)}
    with pytest.raises(OverrideError, match="KEY=VALUE"):
        parse_overrides(["train.steps"])


def test_the_registry_applies_overrides_after_the_profile():
    r = registry.recipe("t2i_shapes", SMOKE, overrides={"train.steps": 3})
    assert r.train.steps == 3 and r.model.source.width == registry.recipe("t2i_shapes", SMOKE).model.source.width


def test_cli_refuses_a_typo_and_lists_the_settings(capsys, monkeypatch, tmp_cache):
    monkeypatch.setenv("CROSSFLOW_PROFILE", "smoke")
    assert main(["train", "autoencoder_shapes", "--set", "train.stepz=3", "--name", "mine"]) == 2
    err = capsys.readouterr().err
    assert "unknown setting 'train.stepz'" in err and "steps, batch_size" in err and "Did you mean" in err


def test_a_run_with_overrides_needs_its_own_name_and_never_a_shipped_one(capsys, monkeypatch, tmp_cache):
    monkeypatch.setenv("CROSSFLOW_PROFILE", "smoke")
    assert main(["train", "autoencoder_shapes", "--set", "train.steps=3"]) == 2
    assert "needs its own name: add --name" in capsys.readouterr().err
    assert main(["train", "autoencoder_shapes", "--set", "train.steps=3", "--name", "t2i_shapes"]) == 2
    assert "is a named checkpoint; choose a new name" in capsys.readouterr().err
    assert main(["train", "autoencoder_shapes", "--set", "train.steps=3", "--name", "x", "--overwrite"]) == 2
    assert "--overwrite ships the recipe as written" in capsys.readouterr().err


def test_a_run_with_overrides_trains_under_its_name_and_loads_by_it(capsys, monkeypatch, tmp_cache):
    monkeypatch.setenv("CROSSFLOW_PROFILE", "smoke")
    shipped = checkpoints.shipped_dir("autoencoder_shapes")
    before = (shipped / checkpoints.WEIGHTS_FILE).read_bytes()
    assert main(["train", "autoencoder_shapes", "--set", "train.steps=3", "--set", "model.latent_channels=4",
                 "--name", "tiny_ae"]) == 0
    out = capsys.readouterr().out
    assert "registry.load('tiny_ae')" in out
    model, meta = registry.find("tiny_ae", SMOKE)
    assert meta["base"] == "autoencoder_shapes" and meta["overrides"] == {"train.steps": 3, "model.latent_channels": 4}
    assert meta["config"]["train"]["steps"] == 3 and "--name tiny_ae" in meta["command"]
    assert (shipped / checkpoints.WEIGHTS_FILE).read_bytes() == before  # the shipped checkpoint is untouched
    assert main(["list"]) == 0
    assert "tiny_ae" in capsys.readouterr().out
    with pytest.raises(registry.UnknownCheckpointError, match="no run was trained under that name"):
        registry.find("tiny_ea", SMOKE)


def test_training_goes_to_the_cache_unless_told_to_ship(capsys, monkeypatch, tmp_cache):
    """A plain ``train NAME`` never replaces the shipped files: it trains into the cache and says how to ship."""
    monkeypatch.setenv("CROSSFLOW_PROFILE", "smoke")
    assert main(["train", "judge_shapes"]) == 0
    out = capsys.readouterr().out
    assert f"saved {tmp_cache}" in out
    assert main(["train", "judge_shapes", "--overwrite"]) == 2
    assert "cannot be combined with --set or the smoke profile" in capsys.readouterr().err
    meta = json.loads(next((tmp_cache / "checkpoints").glob("judge_shapes-*/config.json")).read_text())
    assert meta["name"] == "judge_shapes" and meta["command"].endswith("train judge_shapes")

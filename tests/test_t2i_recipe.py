"""The t2i_shapes recipe end to end on the smoke profile (tiny data and model, a few steps), the choice of the
guidance scale, the ablation's runs, and the profile wiring."""

from __future__ import annotations

import json

import pytest

from crossflow_mini import registry as recipes
from crossflow_mini import results
from crossflow_mini.configs import config_hash
from crossflow_mini.profiles import get_profile
from crossflow_mini.studies import ablation, catalog
from crossflow_mini.tasks.common import choose_scale

SMOKE = get_profile("smoke")


def test_choose_scale_takes_the_best_and_breaks_ties_towards_the_cheaper_scale():
    sweep = {"w=1": {"all": 0.5}, "w=2": {"all": 0.7}, "w=3": {"all": 0.7}, "w=4": {"all": 0.1}}
    assert choose_scale(sweep, "all") == 2.0
    assert choose_scale({"w=1": {"all": 0.3}, "w=1.5": {"all": 0.3}}, "all") == 1.0


def test_ablation_has_the_table_3a_and_3b_runs_with_the_shared_budget():
    cfg = get_profile("full").t2i_ablation
    base = recipes.recipe("t2i_shapes_flatten", get_profile("full"))
    runs = ablation.ablation_recipes(base, cfg)
    assert set(runs) == {"3a:plain", "3a:noise", "3a:ve", "3b:text_text", "3b:image_text"}
    assert {runs[k].model.source.enc_loss for k in ("3a:plain", "3a:noise", "3a:ve")} == {"text_recon"}
    assert {r.model.source.variant for r in runs.values()} == {"plain", "noise", "ve"}
    assert all(r.train == cfg.train for r in runs.values())
    assert all(r.model.velocity == base.model.velocity for r in runs.values())  # only the Text VE changes
    assert len({config_hash(r) for r in runs.values()}) == len(runs)


def test_course_and_full_share_the_shipped_recipe_and_it_fits_the_autoencoder():
    course, full = get_profile("course"), get_profile("full")
    shipped = recipes.recipe("t2i_shapes", course)
    assert shipped == recipes.recipe("t2i_shapes", full)
    assert shipped.autoencoder == recipes.recipe("autoencoder_shapes", course)
    assert shipped.text.max_tokens == shipped.model.source.max_tokens


def test_mismatched_token_limits_are_refused():
    import dataclasses

    from crossflow_mini.nn.text_encoder import TextEncoderConfig

    with pytest.raises(ValueError, match="max_tokens"):
        dataclasses.replace(recipes.recipe("t2i_shapes", SMOKE), text=TextEncoderConfig(max_tokens=8))


def test_smoke_recipe_trains_evaluates_and_reloads(tmp_cache, monkeypatch):
    monkeypatch.setenv("CROSSFLOW_PROFILE", "smoke")  # as `--profile smoke` does: the eval settings follow it
    recipe = recipes.recipe("t2i_shapes", SMOKE)
    folder, metrics = recipes.train_and_save("t2i_shapes", SMOKE)
    assert folder.is_relative_to(tmp_cache)  # trained into the cache, never shipped
    assert metrics["train_steps"] == recipe.train.steps and metrics["train_seconds_all_parts"] > 0
    assert set(metrics["val_sweep"]) == {f"w={w:g}" for w in SMOKE.t2i_eval.scales}
    assert metrics["chosen_scale"] in SMOKE.t2i_eval.scales
    for group, sweep in metrics["test_sweep"].items():
        assert group in ("in_distribution", "heldout_combinations")
        for res in sweep.values():
            assert 0 < res["n_prompts"] <= SMOKE.t2i_eval.max_prompts
            assert all(0.0 <= res[k] <= 1.0 for k in ("colour", "shape", "position", "all"))
    assert metrics["test_at_chosen_scale"]["in_distribution"] == \
        metrics["test_sweep"]["in_distribution"][f"w={metrics['chosen_scale']:g}"]
    json.dumps(metrics)  # the results file must be writable
    model = recipes.load("t2i_shapes", SMOKE)  # ... and it reloads from the cache, with the chosen scale
    assert model.sampling.guidance_scale == metrics["chosen_scale"]
    assert model.sampling.steps == recipe.sampling.steps


def test_smoke_ablation_study_runs(tmp_cache):
    out = catalog.run_study("t2i_ablation", SMOKE)
    base = recipes.recipe("t2i_shapes_flatten", SMOKE)
    assert out["split"] == "val" and set(out["runs"]) == set(ablation.ablation_recipes(base, SMOKE.t2i_ablation))
    with pytest.raises(KeyError, match="unknown study"):
        catalog.run_study("nope", SMOKE)


def test_cli_lists_the_study_and_refuses_unknown_names(capsys, monkeypatch, tmp_cache):
    from crossflow_mini.__main__ import main

    monkeypatch.setenv("CROSSFLOW_PROFILE", "smoke")
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "t2i_shapes" in out and "t2i_ablation" in out and "study" in out
    assert main(["reproduce", "t2i_nothing"]) == 2
    err = capsys.readouterr().err
    assert "unknown study or checkpoint" in err and "t2i_ablation" in err  # the error lists what exists


def test_load_results_names_the_command_when_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="reproduce t2i_ablation"):
        results.load_results("t2i_ablation")

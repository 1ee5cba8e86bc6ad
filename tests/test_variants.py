"""The compositional variants study (tasks/variants.py; issue: CrossFlow on compositional prompts)."""

from __future__ import annotations

from crossflow_mini.core.build import build_model
from crossflow_mini.core.params import count_parameters
from crossflow_mini.profiles import get_profile
from crossflow_mini.tasks import registry
from crossflow_mini.tasks.variants import DEFAULT_VARIANTS, VariantsConfig, variant_recipes


def test_each_variant_changes_exactly_its_overrides_and_shares_the_budget():
    p = get_profile("smoke")
    cfg = VariantsConfig(train=p.t2i_variants.train)
    runs = variant_recipes(p.t2i_shapes, p.t2i_baseline_shapes, cfg)
    assert list(runs) == [*DEFAULT_VARIANTS, "baseline"]
    for label, overrides in DEFAULT_VARIANTS.items():
        src = runs[label].model.source
        for key, value in overrides["source"].items():
            assert getattr(src, key) == value, (label, key)
        assert runs[label].model.velocity == p.t2i_shapes.model.velocity
        assert runs[label].train == cfg.train
    assert runs["baseline"].train == cfg.train and runs["baseline"].model == p.t2i_baseline_shapes.model
    # the spatial head is a different network, not a relabelled one
    flat, queries = (count_parameters(build_model(runs[k].model)) for k in ("paper", "patch_queries"))
    assert flat != queries


def test_study_runs_end_to_end_on_smoke(tmp_cache):
    p = get_profile("smoke", device="cpu")
    m = registry.run_study("t2i_variants", p)
    assert set(m["runs"]) == {*DEFAULT_VARIANTS, "baseline"}
    for label, run in m["runs"].items():
        assert set(run["geneval"]) == {f"w={w:g}" for w in p.t2i_variants.scales}
        assert run["parameters"] > 0 and run["train_seconds"] >= 0
    assert not registry.results_path("t2i_variants").exists() or registry.load_results("t2i_variants")["profile"] != "smoke"

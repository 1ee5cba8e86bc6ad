"""The compositional variants study (tasks/variants.py; issue: CrossFlow on compositional prompts)."""

from __future__ import annotations

from crossflow_mini.core.build import build_model
from crossflow_mini.core.params import count_parameters
from crossflow_mini.core.sampling import SamplingConfig
from crossflow_mini.profiles import get_profile
from crossflow_mini import registry, results
from crossflow_mini.studies import catalog
import dataclasses

import numpy as np
import pytest
import torch

from crossflow_mini.studies.variants import (BASELINE_VARIANTS, DEFAULT_VARIANTS, VariantsConfig, sample_spread,
                                             variant_recipes)


def test_each_variant_changes_exactly_its_overrides_and_shares_the_budget():
    p = get_profile("smoke")
    flatten, baseline = registry.recipe("t2i_shapes_flatten", p), registry.recipe("t2i_baseline_shapes", p)
    cfg = VariantsConfig(train=p.t2i_variants.train)
    runs = variant_recipes(flatten, baseline, cfg)
    assert list(runs) == [*DEFAULT_VARIANTS, *BASELINE_VARIANTS]
    for label, overrides in DEFAULT_VARIANTS.items():
        src = runs[label].model.source
        for key, value in overrides["source"].items():
            assert getattr(src, key) == value, (label, key)
        assert runs[label].model.velocity == flatten.model.velocity
        assert runs[label].train == cfg.train
        assert runs[label].shapes.vocabulary == overrides.get("shapes", {}).get("vocabulary", "template"), label
    for label in BASELINE_VARIANTS:
        assert runs[label].train == cfg.train and runs[label].model == baseline.model
    assert runs["baseline"].shapes == baseline.shapes
    # the rich rows differ from their template twins in the data set only
    assert runs["baseline_rich"].shapes == dataclasses.replace(runs["baseline"].shapes, vocabulary="rich")
    assert runs["patch_queries_align_rich"].model == runs["patch_queries_align"].model
    assert runs["patch_queries_align_rich"].shapes.vocabulary == "rich"
    # the low-noise row lowers the KL weight of the best design, nothing else
    low, best = runs["patch_queries_align_low_noise"].model.source, runs["patch_queries_align"].model.source
    assert low.resolved_kl_weight < best.resolved_kl_weight
    assert dataclasses.replace(low, kl_weight=best.kl_weight) == best
    # the spatial head is a different network, not a relabelled one
    flat, queries = (count_parameters(build_model(runs[k].model)) for k in ("paper", "patch_queries"))
    assert flat != queries


def test_study_runs_end_to_end_on_smoke(tmp_cache, monkeypatch):
    from crossflow_mini.studies import variants

    judged: list[str] = []  # the split each call of judge_run scores
    real_judge_run = variants.judge_run

    def spy(model, recipe, autoencoder, judge, data, *args, **kwargs):
        judged.append(data.split.split)
        return real_judge_run(model, recipe, autoencoder, judge, data, *args, **kwargs)

    monkeypatch.setattr(variants, "judge_run", spy)
    p = get_profile("smoke", device="cpu")
    m = catalog.run_study("t2i_variants", p)
    assert set(m["runs"]) == {*DEFAULT_VARIANTS, *BASELINE_VARIANTS}
    assert m["split"] == "test" and m["choose_split"] == "val"
    assert judged == ["test", "val"] * len(m["runs"])  # each run: the table on test prompts, the choice on val
    for label, run in m["runs"].items():
        assert set(run["geneval"]) == {f"w={w:g}" for w in p.t2i_variants.scales}
        assert set(run["geneval_val"]) == set(run["geneval"])
        assert all(0 <= v["overall"] <= 1 for v in run["geneval_val"].values())
        assert set(run["sample_spread"]) == set(run["geneval"]) and all(v > 0 for v in run["sample_spread"].values())
        rich = run["vocabulary"] == "rich"
        assert rich == label.endswith("_rich")
        # the rich rows, and only they, are judged with the test-only wording apart
        groups = set(run["geneval"][f"w={p.t2i_variants.scales[0]:g}"])
        assert ("test_only_wording" in groups) == rich and ("train_wording" in groups) == rich
        assert run["parameters"] > 0 and run["train_seconds"] >= 0
    assert not results.results_path("t2i_variants").exists() or \
        results.load_results("t2i_variants")["profile"] != "smoke"


def test_baseline_rows_may_only_change_the_data_set():
    p = get_profile("smoke")
    cfg = VariantsConfig(train=p.t2i_variants.train, baselines=(("wide", {"velocity": {"width": 256}}),))
    with pytest.raises(ValueError, match=r"only \['shapes'\] may be overridden"):  # the data set, nothing else
        variant_recipes(registry.recipe("t2i_shapes_flatten", p), registry.recipe("t2i_baseline_shapes", p), cfg)


class _Split:
    kinds = np.array([0, 1, 0, 2, 0])


class _Text:
    def batch(self, idx):
        return idx


class _Test:
    split, text = _Split(), _Text()


class _Recipe:
    sampling = SamplingConfig(steps=1, sampler="euler")


def test_sample_spread_is_zero_for_a_collapsed_generator_and_grows_with_the_noise(monkeypatch):
    """The probe reads the std over draws of the same prompts: 0 when the seed changes nothing, sigma for i.i.d.
    Gaussian images of std sigma, and it only looks at single-object prompts."""
    import crossflow_mini.studies.variants as v

    seen = []

    def collapsed(model, ae, idx, w, steps, sampler, seed, device=None):
        seen.append(idx.tolist())
        return torch.ones(len(idx), 3, 4, 4) * idx.view(-1, 1, 1, 1)

    monkeypatch.setattr(v, "generate", collapsed)
    assert sample_spread(None, _Recipe(), None, _Test(), 1.0, prompts=2, seeds=3) == 0.0
    assert seen == [[0, 2]] * 3  # the first two single-object prompts, once per seed

    def noisy(model, ae, idx, w, steps, sampler, seed, device=None):
        g = torch.Generator().manual_seed(seed)
        return 0.5 * torch.randn(len(idx), 3, 32, 32, generator=g)

    monkeypatch.setattr(v, "generate", noisy)
    assert sample_spread(None, _Recipe(), None, _Test(), 1.0, prompts=3, seeds=64) == pytest.approx(0.5, abs=0.03)
    with pytest.raises(ValueError, match="at least 2 seeds"):
        sample_spread(None, _Recipe(), None, _Test(), 1.0, prompts=3, seeds=1)


def test_hard_negatives_reach_the_contrastive_loss_only(tmp_cache):
    """The hard-negative row's training batches carry one swapped scene per two-object sample, and the loss feeds
    them to L_Enc alone: the same batch without them gives the same L_FM and a smaller InfoNCE (fewer wrong
    candidates in its denominator)."""
    from crossflow_mini.nn.autoencoder import ImageAutoencoder
    from crossflow_mini.core.build import build_model as build
    from crossflow_mini.datasets.shapes import SCENE_KINDS
    from crossflow_mini.tasks.common import model_loss as flow_loss
    from crossflow_mini.tasks.t2i.data import prepare, training_batches
    from crossflow_mini.training import EpochBatches

    p = get_profile("smoke")
    runs = variant_recipes(registry.recipe("t2i_shapes_flatten", p), registry.recipe("t2i_baseline_shapes", p),
                           VariantsConfig(train=p.t2i_variants.train))
    recipe = runs["patch_queries_align_hard_negatives"]
    torch.manual_seed(0)
    ae = ImageAutoencoder(recipe.autoencoder.model)
    data = prepare(recipe, "train", ae)
    assert prepare(runs["patch_queries_align"], "train", ae).negatives is None
    assert prepare(recipe, "test", ae).negatives is None  # training only
    batches = EpochBatches(len(data.split), recipe.train.batch_size, recipe.train.seed)
    pairs = [int((data.split.kinds[np.asarray(batches(s))] == SCENE_KINDS.index("pair")).sum()) for s in range(20)]
    step = next(s for s, n in enumerate(pairs) if n > 0)  # a batch holding two-object samples
    batch = training_batches(data, recipe.train)(step)
    assert len(batch) == 3 and batch[2].shape == (pairs[step], *batch[1].shape[1:])
    model = build(recipe.model)
    torch.manual_seed(1)
    _, with_neg = flow_loss(model, batch)
    torch.manual_seed(1)
    _, without = flow_loss(model, batch[:2])
    assert with_neg["fm"] == without["fm"]
    assert with_neg["enc"] > without["enc"] + 1e-4


def test_a_recipe_asks_only_for_the_hard_negatives_that_exist():
    """One swapped scene per two-object ShapesWorld scene: two per sample, or any on Fashion-MNIST, is refused when
    the recipe is built, with the value to set."""
    p = get_profile("smoke")
    shapes, fashion_recipe = registry.recipe("t2i_shapes", p), registry.recipe("t2i_fashion", p)
    src = shapes.model.source
    model = dataclasses.replace(shapes.model, source=dataclasses.replace(src, hard_negatives=2))
    with pytest.raises(ValueError, match="hard_negatives to 0 or 1"):
        dataclasses.replace(shapes, model=model)
    fashion = fashion_recipe.model
    model = dataclasses.replace(fashion, source=dataclasses.replace(fashion.source, hard_negatives=1))
    with pytest.raises(ValueError, match="ShapesWorld only"):
        dataclasses.replace(fashion_recipe, model=model)
    assert dataclasses.replace(shapes, model=dataclasses.replace(
        shapes.model, source=dataclasses.replace(src, hard_negatives=1))).model.source.hard_negatives == 1


def test_the_shipped_model_is_the_chosen_variant_on_the_paper_design():
    """t2i_shapes is the paper design (t2i_shapes_flatten) with the overrides of the variants row chosen on validation
    prompts, and nothing else: the comparison's two CrossFlow rows differ only in the Text VE."""
    full = get_profile("full")
    shapes, flatten = registry.recipe("t2i_shapes", full), registry.recipe("t2i_shapes_flatten", full)
    chosen = variant_recipes(flatten, registry.recipe("t2i_baseline_shapes", full), full.t2i_variants)[
        "patch_queries_align_low_noise"]
    assert shapes.model == chosen.model
    assert shapes == dataclasses.replace(flatten, model=chosen.model)
    assert shapes.model.source.head == "patch_queries"
    assert flatten.model.source.head == "flatten"
    assert registry.recipe("t2i_fashion", full).model == flatten.model  # Fashion-MNIST keeps the paper's head

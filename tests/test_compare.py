"""The comparison and scaling studies (CrossFlow vs standard flow matching) and the Fashion-MNIST referee."""

from __future__ import annotations

import pytest
import torch

from crossflow_mini.core.baseline import BaselineModel
from crossflow_mini.core.params import count_parameters as parameter_count
from crossflow_mini import registry as recipes
from crossflow_mini.eval.classifier import FashionClassifier, class_accuracy
from crossflow_mini.eval.classifier import ClassifierConfig
from crossflow_mini.datasets.fashion import FashionDataConfig
from crossflow_mini.training import TrainConfig
from crossflow_mini.profiles import get_profile
from crossflow_mini.core.crossflow import CrossFlowModel
from crossflow_mini.datasets import fashion
from crossflow_mini.studies import catalog
from crossflow_mini.studies import comparison as compare
from crossflow_mini.studies import scaling as scaling_study

needs_fashion = pytest.mark.skipif(not fashion._has_all(fashion.DEBIAN_DIR),
                                   reason="Debian package dataset-fashion-mnist not installed (make data)")


def test_winner_reads_the_direction_of_each_metric():
    assert compare.winner({"crossflow": 0.6, "baseline": 0.5}) == "crossflow"
    assert compare.winner({"crossflow": 30.0, "baseline": 20.0}, higher_is_better=False) == "baseline"
    assert compare.winner({"crossflow": 0.5, "baseline": 0.5}) == "tie"


def test_the_scaling_grid_has_three_sizes_and_lengths_with_matched_baselines():
    full = get_profile("full")
    cfg = full.t2i_scaling
    assert len(cfg.sizes) >= 3 and len(cfg.steps) >= 3 and max(cfg.steps) == cfg.train.steps
    shipped, shipped_baseline = recipes.recipe("t2i_shapes", full), recipes.recipe("t2i_baseline_shapes", full)
    runs = scaling_study.scaling_recipes(shipped, shipped_baseline, cfg)
    assert len(runs) == 2 * len(cfg.sizes)
    for width, depth in cfg.sizes:
        cf, base = runs[f"crossflow:{width}x{depth}"], runs[f"baseline:{width}x{depth}"]
        n_cf, n_base = parameter_count(CrossFlowModel(cf.model)), parameter_count(BaselineModel(base.model))
        assert abs(n_base - n_cf) / n_cf < 0.10, (width, depth, n_cf, n_base)
        assert cf.train == base.train == cfg.train and base.model.velocity.depth == depth
        assert cf.model.velocity.width == cf.model.source.width == width
    sizes = [parameter_count(CrossFlowModel(runs[f"crossflow:{w}x{d}"].model)) for w, d in cfg.sizes]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)


def test_sampling_parameters_leave_out_only_the_image_tower():
    from crossflow_mini.core.params import parameter_report, sampling_parameters

    model = CrossFlowModel(recipes.recipe("t2i_shapes", get_profile("smoke")).model)
    assert sampling_parameters(model) == parameter_count(model) - parameter_count(model.source.tower) > 0
    assert parameter_report(model)["for_sampling"] == sampling_parameters(model)
    base = BaselineModel(recipes.recipe("t2i_baseline_shapes", get_profile("smoke")).model)
    assert sampling_parameters(base) == parameter_count(base)


def test_classifier_checks_its_input_and_scores_by_label():
    net = FashionClassifier(ClassifierConfig(channels=(8, 16)))
    with pytest.raises(ValueError, match="grey-scale"):
        net(torch.zeros(2, 3, 32, 32))
    images = torch.zeros(4, 1, 32, 32)
    pred = net.predict(images)
    assert class_accuracy(net, images, pred) == 1.0
    assert class_accuracy(net, images, (pred + 1) % 10) == 0.0
    with pytest.raises(ValueError, match="labels"):
        class_accuracy(net, images, pred[:2])


@needs_fashion
def test_classifier_learns_real_fashion_and_is_measured_on_unseen_photos(tmp_cache):
    from crossflow_mini.tasks.t2i import train as t2i_train
    from crossflow_mini.tasks.t2i.recipe import ClassifierRecipe

    recipe = ClassifierRecipe(model=ClassifierConfig(channels=(8, 16)),
                              train=TrainConfig(steps=150, batch_size=64, lr=3e-3, warmup_steps=10, ema_decay=0.0,
                                                ckpt_every=0),
                              fashion=FashionDataConfig(n_train=4000, n_test=500))
    result = t2i_train.train_classifier(recipe, name="classifier_test")
    metrics = t2i_train.evaluate_classifier(result.ema, recipe)
    assert metrics["n_test"] == 500
    assert metrics["test_accuracy"] > 0.4  # chance is 0.1; 150 steps of a tiny net reach about 0.48


@needs_fashion
def test_studies_run_end_to_end_on_the_smoke_profile(tmp_cache, monkeypatch):
    monkeypatch.setenv("CROSSFLOW_PROFILE", "smoke")
    smoke = get_profile("smoke")
    comparison = catalog.run_study("t2i_comparison", smoke)
    for dataset in ("shapes", "fashion"):
        for method in compare.METHODS:
            res = comparison[dataset][method]
            assert res["fid"]["n_images"] == smoke.t2i_compare.fid_samples
            assert res["fid"]["real_vs_real_floor"] > 0 and res["ms_per_image"] > 0
        assert comparison[dataset]["crossflow"]["fid"]["real_vs_real_floor"] == \
            comparison[dataset]["baseline"]["fid"]["real_vs_real_floor"]  # one reference for both
        assert set(comparison[dataset]["winner"].values()) <= {"crossflow", "baseline", "tie"}
    # the paper-head reference row is measured on ShapesWorld like the others, outside the winner
    ref = comparison["shapes"]["crossflow_flatten"]
    assert ref["parameters"] != comparison["shapes"]["crossflow"]["parameters"]  # a different Text VE head
    assert set(ref["geneval"]) == set(comparison["shapes"]["crossflow"]["geneval"])
    assert "crossflow_flatten" not in comparison["fashion"]
    geneval = comparison["shapes"]["crossflow"]["geneval"]
    assert set(geneval) == {"all", "in_distribution", "heldout_combinations"}
    assert 0 <= geneval["all"]["overall"] <= 1
    assert 0 <= comparison["fashion"]["baseline"]["class_accuracy"]["class_accuracy"] <= 1

    scaling = catalog.run_study("t2i_scaling", smoke)
    cfg = smoke.t2i_scaling
    assert len(scaling["runs"]) == 2 * len(cfg.sizes)
    for run in scaling["runs"].values():
        assert list(run["points"]) == list(cfg.steps)
        for point in run["points"].values():
            assert set(point) == {f"w={w:g}" for w in cfg.scales}
    again = catalog.run_study("t2i_scaling", smoke)  # finished runs are found again with their points
    assert again["runs"].keys() == scaling["runs"].keys()
    assert all(again["runs"][k]["points"] == scaling["runs"][k]["points"] for k in scaling["runs"])


def test_reproduce_t2i_names_the_comparison_and_the_scaling_study():
    assert catalog.STUDY_GROUPS["t2i"] == ("t2i_comparison", "t2i_scaling")
    assert all(name in catalog.STUDIES for name in catalog.STUDY_GROUPS["t2i"])
    assert {"t2i_baseline_shapes", "t2i_fashion", "t2i_baseline_fashion", "classifier_fashion"} <= set(recipes.CHECKPOINTS)
    order = list(recipes.CHECKPOINTS)  # `reproduce` trains in this order: the classifier before the models it judges
    assert order.index("classifier_fashion") < order.index("t2i_fashion")

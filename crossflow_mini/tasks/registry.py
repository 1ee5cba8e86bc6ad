"""Recipes: how each named checkpoint is built, trained, measured and found again.

The CLI (``python -m crossflow_mini train NAME``) and the notebooks call the same recipe, so a number in
``data/results`` and the same number in a notebook come from the same code. ``load(NAME)`` returns the
model for the active profile: the shipped weights when their config matches, else the cache, else - where
the profile allows it - a fresh training run.
"""

from __future__ import annotations

import json
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from .. import checkpoints
from ..autoencoder import ImageAutoencoder
from ..core.baseline import BaselineModel
from ..core.crossflow import CrossFlowModel
from ..eval.judge import JudgeNet
from ..paths import RESULTS_DIR, ROOT
from ..profiles import Profile, get_profile
from ..configs import config_hash, to_dict
from ..utils import atomic_write_text
from ..eval.classifier import FashionClassifier
from . import autoencoder as ae_recipe
from . import compare
from . import fashion as fashion_recipe
from . import judge as judge_recipe
from . import t2i as t2i_recipe


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    config: Callable[[Profile], Any]  # the recipe config for a profile
    build: Callable[[Any], torch.nn.Module]  # an untrained model for a config
    train: Callable[[Any, str], tuple[torch.nn.Module, dict[str, Any]]]  # (config, name) -> (model, metrics)
    evaluate: Callable[[torch.nn.Module, Any], dict[str, Any]]  # (model, config) -> metrics


def _fashion_referees(cfg: Any) -> tuple[torch.nn.Module, torch.nn.Module]:
    profile = get_profile()
    return (autoencoder_for(cfg, profile),
            dependency("classifier_fashion", profile.classifier_fashion, profile.train_missing))


def _train_fashion(cfg: Any, name: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    return fashion_recipe.train_fashion_t2i(cfg, *_fashion_referees(cfg), get_profile().t2i_compare, name)


def _evaluate_fashion(model: torch.nn.Module, cfg: Any) -> dict[str, Any]:
    return fashion_recipe.evaluate_fashion_t2i(model, cfg, *_fashion_referees(cfg), get_profile().t2i_compare)


RECIPES: dict[str, Recipe] = {
    "autoencoder_shapes": Recipe(
        "autoencoder_shapes", "AutoencoderKL for ShapesWorld, 3 x 32 x 32 <-> 4 x 8 x 8",
        lambda p: p.autoencoder_shapes, lambda r: ImageAutoencoder(r.model),
        ae_recipe.train_autoencoder, ae_recipe.evaluate_autoencoder),
    "autoencoder_fashion": Recipe(
        "autoencoder_fashion", "AutoencoderKL for Fashion-MNIST, 1 x 32 x 32 (padded 28 x 28) <-> 4 x 8 x 8",
        lambda p: p.autoencoder_fashion, lambda r: ImageAutoencoder(r.model),
        ae_recipe.train_autoencoder, ae_recipe.evaluate_autoencoder),
    "judge_shapes": Recipe(
        "judge_shapes", "ShapesWorld judge: reads shape, colour, size, position and count back from an image",
        lambda p: p.judge, lambda r: JudgeNet(r.model), judge_recipe.train_judge, judge_recipe.evaluate_judge),
    "t2i_shapes": Recipe(
        "t2i_shapes", "CrossFlow text-to-image on ShapesWorld: Text VE + velocity transformer, no noise, no "
        "cross-attention", lambda p: p.t2i_shapes, lambda r: CrossFlowModel(r.model),
        lambda cfg, name: t2i_recipe.train_t2i(cfg, *_referees(cfg), get_profile().t2i_eval, name),
        lambda model, cfg: t2i_recipe.evaluate_t2i(model, cfg, *_referees(cfg), get_profile().t2i_eval)),
    "t2i_baseline_shapes": Recipe(
        "t2i_baseline_shapes", "standard flow matching on ShapesWorld: noise -> image with cross-attention to the "
        "MiniLM tokens, CrossFlow's size and training run", lambda p: p.t2i_baseline_shapes,
        lambda r: BaselineModel(r.model),
        lambda cfg, name: t2i_recipe.train_t2i(cfg, *_referees(cfg), get_profile().t2i_eval, name),
        lambda model, cfg: t2i_recipe.evaluate_t2i(model, cfg, *_referees(cfg), get_profile().t2i_eval)),
    "classifier_fashion": Recipe(
        "classifier_fashion", "Fashion-MNIST classifier trained on the real training photos: the class-accuracy "
        "referee", lambda p: p.classifier_fashion, lambda r: FashionClassifier(r.model),
        fashion_recipe.train_classifier, fashion_recipe.evaluate_classifier),
    "t2i_fashion": Recipe(
        "t2i_fashion", "CrossFlow text-to-image on Fashion-MNIST (captions from class names)",
        lambda p: p.t2i_fashion, lambda r: CrossFlowModel(r.model), _train_fashion, _evaluate_fashion),
    "t2i_baseline_fashion": Recipe(
        "t2i_baseline_fashion", "standard flow matching on Fashion-MNIST, CrossFlow's size and training run",
        lambda p: p.t2i_baseline_fashion, lambda r: BaselineModel(r.model), _train_fashion,
        _evaluate_fashion),
}



@dataclass(frozen=True)
class Study:
    """A study command (``python -m crossflow_mini reproduce NAME``): writes ``data/results/NAME.json``, ships no
    checkpoint. ``run(profile)`` returns ``(config, metrics)``."""

    description: str
    run: Callable[[Profile], tuple[Any, dict[str, Any]]]


def _run_ablation(profile: Profile) -> tuple[Any, dict[str, Any]]:
    ae, judge = _referees(profile.t2i_shapes, profile)
    return profile.t2i_ablation, t2i_recipe.run_ablation(profile.t2i_shapes, profile.t2i_ablation, ae, judge)


def load_with_meta(name: str, cfg: Any) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The checkpoint ``name`` for config ``cfg`` in eval mode, and its ``config.json`` (with the metrics measured
    when it was trained, e.g. the guidance scale chosen on validation prompts)."""
    recipe = get_recipe(name)
    model, meta = checkpoints.load_or_train(name, cfg, recipe.build, lambda c: recipe.train(c, name),
                                            allow_train=get_profile().train_missing)
    return model.eval(), meta


def _run_comparison(profile: Profile) -> tuple[Any, dict[str, Any]]:
    classifier, meta = load_with_meta("classifier_fashion", profile.classifier_fashion)
    referees = {"autoencoder_shapes": autoencoder_for(profile.t2i_shapes, profile),
                "autoencoder_fashion": autoencoder_for(profile.t2i_fashion, profile),
                "judge": dependency("judge_shapes", profile.judge, profile.train_missing),
                "classifier": classifier, "classifier_accuracy": meta["metrics"]["test_accuracy"]}
    cfg = {"compare": profile.t2i_compare, **{name: getattr(profile, name) for name in compare.CHECKPOINTS.values()}}
    return cfg, compare.run_comparison(profile, load_with_meta, referees)


def _run_scaling(profile: Profile) -> tuple[Any, dict[str, Any]]:
    ae, judge = _referees(profile.t2i_shapes, profile)
    cfg = {"scaling": profile.t2i_scaling, "crossflow_base": profile.t2i_shapes,
           "baseline_base": profile.t2i_baseline_shapes}
    return cfg, compare.run_scaling(profile, ae, judge)


STUDIES: dict[str, Study] = {
    "t2i_ablation": Study("mini paper Table 3a/3b: plain encoder vs encoder + noise vs Text VE, and the Text VE's "
                          "loss", _run_ablation),
    "t2i_comparison": Study("CrossFlow vs standard flow matching at equal size and steps on ShapesWorld and "
                            "Fashion-MNIST: mini-GenEval, class accuracy, FID with floor, ms/image", _run_comparison),
    "t2i_scaling": Study("mini paper Fig. 3: both methods at 3 sizes x 3 training lengths, mini-GenEval",
                         _run_scaling),
}
#: Names that stand for several studies (``reproduce t2i`` runs the comparison and the scaling study).
STUDY_GROUPS: dict[str, tuple[str, ...]] = {"t2i": ("t2i_comparison", "t2i_scaling")}


def dependency(name: str, cfg: Any, allow_train: bool | None = None) -> torch.nn.Module:
    """The checkpoint ``name`` for the recipe config ``cfg`` (shipped, cached, or - where the active profile
    allows it - trained now), in eval mode: what a recipe that builds on another one (the flow model on the
    autoencoder) loads."""
    recipe = get_recipe(name)
    allow = get_profile().train_missing if allow_train is None else allow_train
    model, _ = checkpoints.load_or_train(name, cfg, recipe.build, lambda c: recipe.train(c, name), allow_train=allow)
    return model.eval()


def _referees(cfg: Any, profile: Profile | None = None) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The autoencoder a text-to-image recipe builds on, and the profile's judge (default: the active one)."""
    profile = profile or get_profile()
    return autoencoder_for(cfg, profile), dependency("judge_shapes", profile.judge, profile.train_missing)


def autoencoder_for(cfg: Any, profile: Profile | None = None) -> torch.nn.Module:
    """The autoencoder of a text-to-image recipe config (``autoencoder_shapes`` or ``autoencoder_fashion``)."""
    profile = profile or get_profile()
    return dependency(f"autoencoder_{cfg.autoencoder.dataset}", cfg.autoencoder, profile.train_missing)


def run_study(name: str, profile: Profile | None = None) -> dict[str, Any]:
    """Run the study ``name`` (see :data:`STUDIES`) for ``profile`` and write its results file."""
    profile = profile or get_profile()
    if name not in STUDIES:
        raise KeyError(f"unknown study {name!r}; known: {', '.join(sorted(STUDIES))}")
    cfg, metrics = STUDIES[name].run(profile)
    if profile.name != "smoke":  # smoke runs only check that the study works
        write_study(name, profile, cfg, metrics)
    return metrics


def write_study(name: str, profile: Profile, cfg: Any, metrics: dict[str, Any]) -> Path:
    """Write ``data/results/<name>.json`` for a study: its metrics, its config and the command."""
    return _write_blob(name, profile, cfg, metrics, "reproduce", {})


def load_results(name: str) -> dict[str, Any]:
    """The stored ``data/results/<name>.json`` (what a notebook shows when it does not rerun a study)."""
    path = results_path(name)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; create it with `CROSSFLOW_PROFILE=full python -m "
                                f"crossflow_mini {'reproduce' if name in STUDIES else 'train'} {name}`")
    return json.loads(path.read_text())


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise KeyError(f"unknown checkpoint {name!r}; known: {', '.join(sorted(RECIPES))} "
                       f"(`python -m crossflow_mini list`)")
    return RECIPES[name]


def load(name: str, profile: Profile | None = None) -> torch.nn.Module:
    """The model ``name`` for ``profile`` (default: the active one), in eval mode."""
    profile = profile or get_profile()
    recipe = get_recipe(name)
    model, _ = checkpoints.load_or_train(name, recipe.config(profile), recipe.build,
                                         lambda cfg: recipe.train(cfg, name), allow_train=profile.train_missing)
    return model


def results_path(name: str) -> Path:
    return RESULTS_DIR / f"{name}.json"


def write_results(name: str, profile: Profile, cfg: Any, metrics: dict[str, Any], checkpoint_dir: Path) -> Path:
    """Write ``data/results/<name>.json``: the metrics, the config they belong to, and the command."""
    try:
        where = str(checkpoint_dir.relative_to(ROOT))
    except ValueError:
        where = checkpoint_dir.name
    return _write_blob(name, profile, cfg, metrics, "train", {"checkpoint": where})


def _write_blob(name: str, profile: Profile, cfg: Any, metrics: dict[str, Any], verb: str,
                extra: dict[str, Any]) -> Path:
    blob = {"name": name, "profile": profile.name, "config_hash": config_hash(cfg), **extra,
            "command": f"CROSSFLOW_PROFILE={profile.name} python -m crossflow_mini {verb} {name}",
            "metrics": metrics, "config": to_dict(cfg),
            "environment": {"torch": torch.__version__, "threads": torch.get_num_threads(),
                            "machine": platform.machine(), "python": platform.python_version()}}
    path = results_path(name)
    atomic_write_text(path, json.dumps(blob, indent=2) + "\n")
    return path


def train_and_save(name: str, profile: Profile | None = None, ship: bool | None = None,
                   fresh: bool = False) -> tuple[Path, dict]:
    """Train ``name`` (resuming an interrupted run unless ``fresh``), save it, and write its results.

    With the shipped config (``course``/``full`` profiles) the weights go to ``data/checkpoints/<name>`` and
    the metrics to ``data/results/<name>.json``; a ``smoke`` run only fills the cache."""
    profile = profile or get_profile()
    recipe = get_recipe(name)
    cfg = recipe.config(profile)
    if fresh:
        shutil.rmtree(checkpoints.run_dir(name, cfg), ignore_errors=True)
    ship = profile.name != "smoke" if ship is None else ship
    out = checkpoints.shipped_dir(name) if ship else checkpoints.cached_dir(name, cfg)
    _, meta = checkpoints.load_or_train(name, cfg, recipe.build, lambda c: recipe.train(c, name),
                                        force_train=True, output_dir=out)
    if ship:
        write_results(name, profile, cfg, meta["metrics"], out)
    return out, meta["metrics"]


def evaluate(name: str, profile: Profile | None = None) -> dict[str, Any]:
    """Re-measure the checkpoint ``name`` (it must exist for this profile's config)."""
    profile = profile or get_profile()
    recipe = get_recipe(name)
    model = load(name, profile)
    return recipe.evaluate(model, recipe.config(profile))

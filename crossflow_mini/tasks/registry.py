"""The registry: every named checkpoint and study, and how each is found again, trained and measured.

The CLI (``python -m crossflow_mini train NAME``) and the notebooks call the same functions, so a number in
``data/results`` and the same number in a notebook come from the same code. :func:`load` returns a model for the
active profile: the shipped weights when their recipe matches, else the cache, else - where the profile allows
it - a fresh training run; on the profile's device, in eval mode.

Words: a *recipe* is the config dataclass that determines a checkpoint (model + training + data, e.g.
:class:`~crossflow_mini.tasks.t2i.T2IRecipe`); a *named checkpoint* (:class:`NamedCheckpoint`) says which recipe a
profile uses and how to build, train and measure it; a *study* (:class:`Study`) is a command that measures and
writes ``data/results/NAME.json`` without shipping a checkpoint.
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
from ..configs import config_hash, to_dict
from ..core.build import build_model
from ..eval.classifier import FashionClassifier
from ..eval.judge import JudgeNet
from ..paths import RESULTS_DIR, ROOT
from ..profiles import Profile, get_profile
from ..utils import atomic_write_text
from . import ablation, autoencoder, compare, fashion, judge, t2i


@dataclass(frozen=True)
class NamedCheckpoint:
    """A named checkpoint: how its recipe is chosen for a profile, how its model is built, trained and measured.

    ``train(recipe, name, profile) -> (model, metrics)`` and ``evaluate(model, recipe, profile) -> metrics``."""

    name: str
    description: str
    recipe: Callable[[Profile], Any]
    build: Callable[[Any], torch.nn.Module]
    train: Callable[[Any, str, Profile], tuple[torch.nn.Module, dict[str, Any]]]
    evaluate: Callable[[torch.nn.Module, Any, Profile], dict[str, Any]]


def _autoencoder(recipe: Any, profile: Profile) -> torch.nn.Module:
    """The autoencoder a flow recipe builds on (``autoencoder_shapes`` or ``autoencoder_fashion``)."""
    return load(f"autoencoder_{recipe.autoencoder.dataset}", profile, recipe=recipe.autoencoder)


def _judge(profile: Profile) -> torch.nn.Module:
    return load("judge_shapes", profile)


def _classifier(profile: Profile) -> torch.nn.Module:
    return load("classifier_fashion", profile)


def _train_t2i(recipe: Any, name: str, profile: Profile):
    return t2i.train_t2i(recipe, _autoencoder(recipe, profile), _judge(profile), profile.t2i_eval, name,
                         profile.device)


def _evaluate_t2i(model: torch.nn.Module, recipe: Any, profile: Profile) -> dict[str, Any]:
    return t2i.evaluate_t2i(model, recipe, _autoencoder(recipe, profile), _judge(profile), profile.t2i_eval,
                            profile.device)


def _train_fashion(recipe: Any, name: str, profile: Profile):
    return fashion.train_fashion_t2i(recipe, _autoencoder(recipe, profile), _classifier(profile),
                                     profile.t2i_compare, name, profile.device)


def _evaluate_fashion(model: torch.nn.Module, recipe: Any, profile: Profile) -> dict[str, Any]:
    return fashion.evaluate_fashion_t2i(model, recipe, _autoencoder(recipe, profile), _classifier(profile),
                                        profile.t2i_compare, profile.device)


def _train_plain(fn: Callable) -> Callable[[Any, str, Profile], tuple[torch.nn.Module, dict[str, Any]]]:
    return lambda recipe, name, profile: fn(recipe, name, device=profile.device)


def _evaluate_plain(fn: Callable) -> Callable[[torch.nn.Module, Any, Profile], dict[str, Any]]:
    return lambda model, recipe, profile: fn(model, recipe)


def _flow_model(recipe: Any) -> torch.nn.Module:
    return build_model(recipe.model)


CHECKPOINTS: dict[str, NamedCheckpoint] = {c.name: c for c in (
    NamedCheckpoint("autoencoder_shapes", "AutoencoderKL for ShapesWorld, 3 x 32 x 32 <-> 4 x 8 x 8",
                    lambda p: p.autoencoder_shapes, lambda r: ImageAutoencoder(r.model),
                    _train_plain(autoencoder.train_autoencoder), _evaluate_plain(autoencoder.evaluate_autoencoder)),
    NamedCheckpoint("autoencoder_fashion", "AutoencoderKL for Fashion-MNIST, 1 x 32 x 32 (padded 28 x 28) <-> 4 x 8 x 8",
                    lambda p: p.autoencoder_fashion, lambda r: ImageAutoencoder(r.model),
                    _train_plain(autoencoder.train_autoencoder), _evaluate_plain(autoencoder.evaluate_autoencoder)),
    NamedCheckpoint("judge_shapes", "ShapesWorld judge: reads shape, colour, size, position and count back from "
                    "an image", lambda p: p.judge, lambda r: JudgeNet(r.model),
                    _train_plain(judge.train_judge), _evaluate_plain(judge.evaluate_judge)),
    NamedCheckpoint("t2i_shapes", "CrossFlow text-to-image on ShapesWorld: Text VE + velocity transformer, no "
                    "noise, no cross-attention", lambda p: p.t2i_shapes, _flow_model, _train_t2i, _evaluate_t2i),
    NamedCheckpoint("t2i_baseline_shapes", "standard flow matching on ShapesWorld: noise -> image with "
                    "cross-attention to the MiniLM tokens, CrossFlow's size and training run",
                    lambda p: p.t2i_baseline_shapes, _flow_model, _train_t2i, _evaluate_t2i),
    NamedCheckpoint("classifier_fashion", "Fashion-MNIST classifier trained on the real training photos: the "
                    "class-accuracy referee", lambda p: p.classifier_fashion, lambda r: FashionClassifier(r.model),
                    _train_plain(fashion.train_classifier), _evaluate_plain(fashion.evaluate_classifier)),
    NamedCheckpoint("t2i_fashion", "CrossFlow text-to-image on Fashion-MNIST (captions from class names)",
                    lambda p: p.t2i_fashion, _flow_model, _train_fashion, _evaluate_fashion),
    NamedCheckpoint("t2i_baseline_fashion", "standard flow matching on Fashion-MNIST, CrossFlow's size and "
                    "training run", lambda p: p.t2i_baseline_fashion, _flow_model, _train_fashion,
                    _evaluate_fashion),
)}


@dataclass(frozen=True)
class Study:
    """A study command (``python -m crossflow_mini reproduce NAME``): writes ``data/results/NAME.json``, ships no
    checkpoint. ``run(profile)`` returns ``(config, metrics)``."""

    description: str
    run: Callable[[Profile], tuple[Any, dict[str, Any]]]


def _run_ablation(profile: Profile) -> tuple[Any, dict[str, Any]]:
    base = profile.t2i_shapes
    return profile.t2i_ablation, ablation.run_ablation(base, profile.t2i_ablation, _autoencoder(base, profile),
                                                       _judge(profile), device=profile.device)


def _run_comparison(profile: Profile) -> tuple[Any, dict[str, Any]]:
    classifier, meta = find("classifier_fashion", profile)
    referees = {"autoencoder_shapes": _autoencoder(profile.t2i_shapes, profile),
                "autoencoder_fashion": _autoencoder(profile.t2i_fashion, profile),
                "judge": _judge(profile), "classifier": classifier,
                "classifier_accuracy": meta["metrics"]["test_accuracy"]}
    cfg = {"compare": profile.t2i_compare, **{name: getattr(profile, name) for name in compare.CHECKPOINTS.values()}}
    return cfg, compare.run_comparison(profile, lambda name, recipe: find(name, profile, recipe=recipe), referees,
                                       profile.device)


def _run_scaling(profile: Profile) -> tuple[Any, dict[str, Any]]:
    cfg = {"scaling": profile.t2i_scaling, "crossflow_base": profile.t2i_shapes,
           "baseline_base": profile.t2i_baseline_shapes}
    return cfg, compare.run_scaling(profile, _autoencoder(profile.t2i_shapes, profile), _judge(profile),
                                    profile.device)


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


# ------------------------------------------------------------------------------------------------ finding
def get(name: str) -> NamedCheckpoint:
    """The named checkpoint ``name``; an unknown name lists the known ones."""
    if name not in CHECKPOINTS:
        raise KeyError(f"unknown checkpoint {name!r}; known: {', '.join(sorted(CHECKPOINTS))} "
                       f"(`python -m crossflow_mini list`)")
    return CHECKPOINTS[name]


def find(name: str, profile: Profile | None = None, *, recipe: Any = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The checkpoint ``name`` built from ``recipe`` (default: the profile's recipe for it) and its ``config.json``
    (with the metrics measured when it was trained, e.g. the guidance scale chosen on validation prompts).

    Shipped weights, then the cache, then - where ``profile.train_missing`` allows it - a training run whose
    result goes to the cache. The model comes back in eval mode on ``profile.device``."""
    profile = profile or get_profile()
    entry = get(name)
    recipe = entry.recipe(profile) if recipe is None else recipe
    model, meta = checkpoints.load_or_train(name, recipe, entry.build, lambda r: entry.train(r, name, profile),
                                            allow_train=profile.train_missing)
    return model.to(profile.device).eval(), meta


def load(name: str, profile: Profile | None = None, *, recipe: Any = None) -> torch.nn.Module:
    """:func:`find` without the meta: the model alone."""
    return find(name, profile, recipe=recipe)[0]


# ---------------------------------------------------------------------------------------------- commands
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


def results_path(name: str) -> Path:
    return RESULTS_DIR / f"{name}.json"


def load_results(name: str) -> dict[str, Any]:
    """The stored ``data/results/<name>.json`` (what a notebook shows when it does not rerun a study)."""
    path = results_path(name)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; create it with `CROSSFLOW_PROFILE=full python -m "
                                f"crossflow_mini {'reproduce' if name in STUDIES else 'train'} {name}`")
    return json.loads(path.read_text())


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
                            "device": str(profile.device), "machine": platform.machine(),
                            "python": platform.python_version()}}
    path = results_path(name)
    atomic_write_text(path, json.dumps(blob, indent=2) + "\n")
    return path


def train_and_save(name: str, profile: Profile | None = None, ship: bool | None = None,
                   fresh: bool = False) -> tuple[Path, dict]:
    """Train ``name`` (resuming an interrupted run unless ``fresh``), save it, and write its results.

    With the shipped config (``course``/``full`` profiles) the weights go to ``data/checkpoints/<name>`` and
    the metrics to ``data/results/<name>.json``; a ``smoke`` run only fills the cache."""
    profile = profile or get_profile()
    entry = get(name)
    recipe = entry.recipe(profile)
    if fresh:
        shutil.rmtree(checkpoints.run_dir(name, recipe), ignore_errors=True)
    ship = profile.name != "smoke" if ship is None else ship
    out = checkpoints.shipped_dir(name) if ship else checkpoints.cached_dir(name, recipe)
    _, meta = checkpoints.load_or_train(name, recipe, entry.build, lambda r: entry.train(r, name, profile),
                                        force_train=True, output_dir=out)
    if ship:
        write_results(name, profile, recipe, meta["metrics"], out)
    return out, meta["metrics"]


def evaluate(name: str, profile: Profile | None = None) -> dict[str, Any]:
    """Re-measure the checkpoint ``name`` (it must exist for this profile's recipe)."""
    profile = profile or get_profile()
    entry = get(name)
    recipe = entry.recipe(profile)
    return entry.evaluate(load(name, profile, recipe=recipe), recipe, profile)

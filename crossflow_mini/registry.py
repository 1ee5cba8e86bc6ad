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

import dataclasses
import json
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from . import checkpoints, distributed
from .nn.autoencoder import ImageAutoencoder
from .configs import config_hash, to_dict
from .core.build import build_model
from .eval.classifier import FashionClassifier
from .eval.judge import JudgeNet
from .paths import RESULTS_DIR, ROOT
from .profiles import Profile, get_profile
from .utils import atomic_write_text
from .studies import ablation, comparison as compare, variants
from .tasks import autoencoder, judge
from .tasks.depth import train as depth
from .tasks.t2i import fashion, train as t2i, folder as t2i_folder
from .tasks.sr import train as sr_task
from .tasks.captioning import train as captioning
from .studies import captioning_schedule, captioning as captioning_study
from .tasks.t2i import arithmetic
from .nn.text_autoencoder import TextAutoencoder


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
    if not distributed.is_main_process():  # a helper process of a multi-process run: its share of the training only
        return t2i.fit_and_time(recipe, _autoencoder(recipe, profile), name, profile.device)[0].model, {}
    return t2i.train_t2i(recipe, _autoencoder(recipe, profile), _judge(profile), profile.t2i_eval, name,
                         profile.device)


def _evaluate_t2i(model: torch.nn.Module, recipe: Any, profile: Profile) -> dict[str, Any]:
    return t2i.evaluate_t2i(model, recipe, _autoencoder(recipe, profile), _judge(profile), profile.t2i_eval,
                            profile.device)


def _train_fashion(recipe: Any, name: str, profile: Profile):
    if not distributed.is_main_process():  # a helper process of a multi-process run: its share of the training only
        return t2i.fit_and_time(recipe, _autoencoder(recipe, profile), name, profile.device)[0].model, {}
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


def _train_folder(recipe: Any, name: str, profile: Profile):
    return t2i_folder.train_folder_t2i(recipe, name, profile.device)


def _evaluate_folder(model: torch.nn.Module, recipe: Any, profile: Profile) -> dict[str, Any]:
    return t2i_folder.evaluate_folder_t2i(model, recipe, profile.device)


def _train_depth(recipe: Any, name: str, profile: Profile):
    return depth.train_depth(recipe, profile.depth_eval, name, profile.device)


def _evaluate_depth(model: torch.nn.Module, recipe: Any, profile: Profile) -> dict[str, Any]:
    return depth.evaluate_depth(model, recipe, profile.depth_eval, profile.device)


def _train_sr(recipe: Any, name: str, profile: Profile):
    return sr_task.train_sr(recipe, profile.sr_eval, name, profile.device)


def _evaluate_sr(model: torch.nn.Module, recipe: Any, profile: Profile) -> dict[str, Any]:
    return sr_task.evaluate_sr(model, recipe, profile.sr_eval, profile.device)


def _text_autoencoder(recipe: Any, profile: Profile) -> torch.nn.Module | None:
    """The frozen text autoencoder a flow captioner flows to and decodes with (None for the other captioners)."""
    if recipe.text_autoencoder is None:
        return None
    return load("text_autoencoder_shapes", profile, recipe=recipe.text_autoencoder)


def _train_captioner(recipe: Any, name: str, profile: Profile):
    return captioning.train_captioner(recipe, _autoencoder(recipe, profile), _text_autoencoder(recipe, profile),
                                      profile.caption_eval, name, profile.device)


def _evaluate_captioner(model: torch.nn.Module, recipe: Any, profile: Profile) -> dict[str, Any]:
    return captioning.evaluate_captioner(model, recipe, _autoencoder(recipe, profile),
                                         _text_autoencoder(recipe, profile), profile.caption_eval, profile.device)


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
    NamedCheckpoint("t2i_shapes", "CrossFlow text-to-image on ShapesWorld: Text VE with patch queries (a source laid "
                    "out like the image) + velocity transformer, no noise, no cross-attention",
                    lambda p: p.t2i_shapes, _flow_model, _train_t2i, _evaluate_t2i),
    NamedCheckpoint("t2i_shapes_flatten", "CrossFlow text-to-image on ShapesWorld with the paper's Text VE head "
                    "(flatten + linear, the public code's): the reference row", lambda p: p.t2i_shapes_flatten,
                    _flow_model, _train_t2i, _evaluate_t2i),
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
    NamedCheckpoint("t2i_folder", "CrossFlow text-to-image on your own image-caption folder with local pretrained "
                    "parts (CLIP / T5 / MiniLM text tower, SD-VAE; docs/SCALING_UP.md); paper-sized in the paper "
                    "profile", lambda p: p.t2i_folder, _flow_model, _train_folder, _evaluate_folder),
    NamedCheckpoint("depth_crossflow", "CrossFlow monocular depth on DepthWorld: Image VE (RGB -> depth-shaped "
                    "Gaussian) + UNet velocity, no condition input", lambda p: p.depth_crossflow, _flow_model,
                    _train_depth, _evaluate_depth),
    NamedCheckpoint("depth_baseline", "standard flow matching for depth (Marigold-style): noise -> depth, RGB "
                    "concatenated; CrossFlow's size and training run", lambda p: p.depth_baseline, _flow_model,
                    _train_depth, _evaluate_depth),
    NamedCheckpoint("depth_regression", "regression baseline for depth: the baseline's UNet predicting log depth "
                    "directly (L1)", lambda p: p.depth_regression, _flow_model, _train_depth, _evaluate_depth),
    NamedCheckpoint("sr_crossflow", "CrossFlow 4x super-resolution of photo patches (8 -> 32 px): flows from the "
                    "bicubic-upsampled low-res image itself; UNet, no concatenated input", lambda p: p.sr_crossflow,
                    _flow_model, _train_sr, _evaluate_sr),
    NamedCheckpoint("sr_baseline", "standard flow matching for super-resolution: noise -> high-res, the upsampled "
                    "image concatenated (SR3-style); CrossFlow's UNet and training run", lambda p: p.sr_baseline,
                    _flow_model, _train_sr, _evaluate_sr),
    NamedCheckpoint("sr_regression", "regression baseline for super-resolution: the same UNet predicting the high-res "
                    "patch in one pass", lambda p: p.sr_regression, _flow_model, _train_sr, _evaluate_sr),
    NamedCheckpoint("text_autoencoder_shapes", "text autoencoder for captioning: Text VE (MiniLM tokens -> 8 x 4 x 4 "
                    "Gaussian text latent) + non-autoregressive text decoder, rich ShapesWorld captions",
                    lambda p: p.text_autoencoder_shapes, lambda r: TextAutoencoder(r.model),
                    lambda r, name, p: captioning.train_text_autoencoder(r, name, p.device),
                    lambda m, r, p: captioning.evaluate_text_autoencoder(m, r)),
    NamedCheckpoint("caption_crossflow", "CrossFlow image -> text: Image VE (image latent -> text-latent-shaped "
                    "Gaussian) + velocity transformer, no cross-attention; decoded by text_autoencoder_shapes",
                    lambda p: p.caption_crossflow, lambda r: captioning.build_captioner(r.model), _train_captioner,
                    _evaluate_captioner),
    NamedCheckpoint("caption_baseline", "standard flow matching for captioning: noise -> text latent, cross-attention "
                    "to the image's patches; CrossFlow's size and steps, the same decoder",
                    lambda p: p.caption_baseline, lambda r: captioning.build_captioner(r.model), _train_captioner,
                    _evaluate_captioner),
    NamedCheckpoint("caption_direct", "direct captioner: image -> the non-autoregressive text decoder, trained end to "
                    "end; CrossFlow's size and steps", lambda p: p.caption_direct,
                    lambda r: captioning.build_captioner(r.model), _train_captioner, _evaluate_captioner),
    NamedCheckpoint("caption_autoregressive", "autoregressive transformer captioner (word by word, cross-attention to "
                    "the image's patches); CrossFlow's size and steps", lambda p: p.caption_autoregressive,
                    lambda r: captioning.build_captioner(r.model), _train_captioner, _evaluate_captioner),
)}


@dataclass(frozen=True)
class Study:
    """A study command (``python -m crossflow_mini reproduce NAME``): writes ``data/results/NAME.json``, ships no
    checkpoint. ``run(profile)`` returns ``(config, metrics)``."""

    description: str
    run: Callable[[Profile], tuple[Any, dict[str, Any]]]


def _run_ablation(profile: Profile) -> tuple[Any, dict[str, Any]]:
    base = profile.t2i_shapes_flatten  # the paper's Table 3a/3b are about its own Text VE
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


def _run_depth(profile: Profile) -> tuple[Any, dict[str, Any]]:
    recipes = {name: getattr(profile, name) for name in depth.CHECKPOINTS.values()}
    return {"eval": profile.depth_eval, **recipes}, depth.run_study(lambda name: find(name, profile), recipes,
                                                                    profile.depth_eval, profile.device)


def _run_sr(profile: Profile) -> tuple[Any, dict[str, Any]]:
    recipes = {name: getattr(profile, name) for name in ("sr_regression", "sr_baseline", "sr_crossflow")}
    cfg = {"study": profile.sr_study, "eval": profile.sr_eval, **recipes}
    return cfg, sr_task.run_sr_study(recipes, profile.sr_study, profile.sr_eval,
                                     lambda name, recipe: find(name, profile, recipe=recipe), profile.device)


def _run_captioning(profile: Profile) -> tuple[Any, dict[str, Any]]:
    names = ("text_autoencoder_shapes", *captioning_study.CAPTIONERS)
    cfg = {"study": profile.caption_study, "eval": profile.caption_eval, **{n: getattr(profile, n) for n in names}}
    t2i_name = "t2i_shapes" if profile.caption_study.cycle_per_kind else None
    return cfg, captioning_study.run_study(
        lambda name: find(name, profile), {n: getattr(profile, n) for n in names}, _autoencoder(
            profile.caption_crossflow, profile), profile.caption_eval, profile.caption_study,
        _judge(profile) if t2i_name else None, t2i_name and _t2i_pipeline(profile), profile.device)


def _run_captioning_schedule(profile: Profile) -> tuple[Any, dict[str, Any]]:
    recipe = profile.caption_crossflow
    cfg = {"schedule": profile.caption_schedule, "eval": profile.caption_eval, "caption_crossflow": recipe}
    return cfg, captioning_schedule.run_schedules(recipe, _text_autoencoder(recipe, profile),
                                                  _autoencoder(recipe, profile), profile.caption_schedule,
                                                  profile.caption_eval, device=profile.device)


def _run_variants(profile: Profile) -> tuple[Any, dict[str, Any]]:
    base = profile.t2i_shapes_flatten  # every row is the paper's design with its overrides
    cfg = {"variants": profile.t2i_variants, "crossflow_base": base, "baseline_base": profile.t2i_baseline_shapes}
    return cfg, variants.run_variants(base, profile.t2i_baseline_shapes, profile.t2i_variants,
                                      _autoencoder(base, profile), _judge(profile), profile.device)


def _run_arithmetic(profile: Profile) -> tuple[Any, dict[str, Any]]:
    """The study on the shipped model, and its Table 8 rows again on the paper-head reference model (the same cases
    and controls; no strength sweep or interpolation), so the two Text VE heads can be compared."""
    reference = dataclasses.replace(profile.arithmetic, sweep_cases=0, interpolation_pairs=0)
    cfg = {"arithmetic": profile.arithmetic, "t2i_shapes": profile.t2i_shapes,
           "reference": {"arithmetic": reference, "t2i_shapes_flatten": profile.t2i_shapes_flatten}}
    judge = _judge(profile)
    out = arithmetic.run_arithmetic(_t2i_pipeline(profile), judge, profile.arithmetic)
    ref_pipe = _t2i_pipeline(profile, "t2i_shapes_flatten")
    ref = arithmetic.run_arithmetic(ref_pipe, judge, reference)
    out["reference"] = {"checkpoint": "t2i_shapes_flatten", "recipe_hash": config_hash(ref_pipe.recipe),
                        **{k: ref[k] for k in ("sampler", "kinds", "trivial", "controls", "table8", "seconds")}}
    return cfg, out


def _t2i_pipeline(profile: Profile, name: str = "t2i_shapes"):
    from .pipelines import CrossFlowPipeline

    return CrossFlowPipeline.from_pretrained(name, profile)


STUDIES: dict[str, Study] = {
    "t2i_ablation": Study("mini paper Table 3a/3b: plain encoder vs encoder + noise vs Text VE, and the Text VE's "
                          "loss", _run_ablation),
    "t2i_comparison": Study("CrossFlow vs standard flow matching at equal size and steps on ShapesWorld and "
                            "Fashion-MNIST: mini-GenEval, class accuracy, FID with floor, ms/image", _run_comparison),
    "t2i_scaling": Study("mini paper Fig. 3: both methods at 3 sizes x 3 training lengths, mini-GenEval",
                         _run_scaling),
    "t2i_variants": Study("what it takes for CrossFlow to compose: Text VE variants (the paper's, the public code's KL, "
                          "a patch-query head, alignment to the image latent, ...) beside the baseline at one budget, "
                          "mini-GenEval on test prompts", _run_variants),
    "depth": Study("mini paper Table 5: CrossFlow vs standard flow matching vs regression on DepthWorld (test split, "
                   "as predicted and aligned) and zero-shot on the Middlebury Motorcycle", _run_depth),
    "sr": Study("mini paper Table 6: 4x super-resolution of photo patches - bicubic, regression (L1, L2), standard "
                "flow matching, CrossFlow from the upsampled image (sources: none / fixed noise / VE); PSNR, SSIM, "
                "FID and KID with floors", _run_sr),
    "captioning": Study("mini paper Table 4: CrossFlow image -> text vs standard flow matching, the direct and the "
                        "autoregressive captioner (BLEU-4, ROUGE-L, CIDEr-D, scene accuracy by parsing), the text "
                        "autoencoder's reconstruction, and the cycle text -> image -> text", _run_captioning),
    "captioning_schedule": Study("the CrossFlow captioner's training schedule, measured once: text autoencoder frozen "
                                 "(shipped) vs trained jointly with the flow, same start and steps",
                                 _run_captioning_schedule),
    "arithmetic": Study("mini paper Table 8 and Fig. 5-6: latent addition, subtraction and attribute edits with the "
                        "shipped t2i_shapes model, judged (held-out combinations apart), beside the trivial answer; "
                        "the strength sweep; lerp / slerp interpolation read along the path", _run_arithmetic),
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


def results_for(name: str, profile: Profile | None = None) -> dict[str, Any]:
    """What a notebook shows as the stored result of ``name`` (a study or a checkpoint).

    ``data/results/<name>.json`` where it exists. Under the ``smoke`` profile, before the full results exist, the
    study (or the checkpoint's own measurements) is run at smoke size instead and returned without being written,
    so that every notebook runs end to end in CI; its ``profile`` says ``smoke``. Any other profile raises the
    :func:`load_results` error that names the command."""
    profile = profile or get_profile()
    if results_path(name).exists() or profile.name != "smoke":
        return load_results(name)
    if name in STUDIES:
        cfg, metrics = STUDIES[name].run(profile)
        verb = "reproduce"
    else:
        cfg, (_, meta) = get(name).recipe(profile), find(name, profile)
        metrics, verb = meta["metrics"], "train"
    return {"name": name, "profile": profile.name, "config_hash": config_hash(cfg), "config": to_dict(cfg),
            "command": f"CROSSFLOW_PROFILE=smoke python -m crossflow_mini {verb} {name}", "metrics": metrics}


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
                            "python": platform.python_version(), **_parallel_environment()}}
    path = results_path(name)
    atomic_write_text(path, json.dumps(blob, indent=2) + "\n")
    return path


def _parallel_environment() -> dict[str, Any]:
    """The processes and mixed precision of a run, where they are not the default one fp32 process."""
    parallel, n = distributed.ParallelConfig.from_env(), distributed.num_processes()
    out: dict[str, Any] = {"processes": n} if n > 1 else {}
    if parallel != distributed.ParallelConfig():
        out |= {"mixed_precision": parallel.mixed_precision, "grad_accum": parallel.grad_accum}
    return out


def train_and_save(name: str, profile: Profile | None = None, ship: bool | None = None,
                   fresh: bool = False) -> tuple[Path, dict]:
    """Train ``name`` (resuming an interrupted run unless ``fresh``), save it, and write its results.

    With the shipped config (``course``/``full`` profiles) the weights go to ``data/checkpoints/<name>`` and
    the metrics to ``data/results/<name>.json``; a ``smoke`` run only fills the cache."""
    profile = profile or get_profile()
    entry = get(name)
    recipe = entry.recipe(profile)
    if fresh:
        with distributed.main_process_first():  # one process deletes the old run, before any process reads it
            if distributed.is_main_process():
                shutil.rmtree(checkpoints.run_dir(name, recipe), ignore_errors=True)
    ship = profile.name != "smoke" if ship is None else ship
    out = checkpoints.shipped_dir(name) if ship else checkpoints.cached_dir(name, recipe)
    if distributed.num_processes() > 1:  # under `accelerate launch`: every process trains, the main one saves
        _ready_for_processes(recipe, profile)
        if not distributed.is_main_process():
            entry.train(recipe, name, profile)
            return out, {}
    _, meta = checkpoints.load_or_train(name, recipe, entry.build, lambda r: entry.train(r, name, profile),
                                        force_train=True, output_dir=out)
    if ship:
        write_results(name, profile, recipe, meta["metrics"], out)
    return out, meta["metrics"]


def _ready_for_processes(recipe: Any, profile: Profile) -> None:
    """Before a multi-process training run: the checkpoints it builds on must exist (training one would need all
    the processes at once), and the main process fills the data caches first, which the others then read."""
    if isinstance(recipe, t2i_folder.FolderT2IRecipe):  # pretrained parts only: nothing to train first
        with distributed.main_process_first():
            t2i_folder.prepare(recipe, "train", device=profile.device)
        return
    if not isinstance(recipe, t2i.T2IRecipe):
        return
    referee = "judge_shapes" if recipe.autoencoder.dataset == "shapes" else "classifier_fashion"
    no_training = dataclasses.replace(profile, train_missing=False)
    for dep, dep_recipe in ((f"autoencoder_{recipe.autoencoder.dataset}", recipe.autoencoder), (referee, None)):
        try:
            find(dep, no_training, recipe=dep_recipe)
        except (checkpoints.CheckpointNotFoundError, checkpoints.CheckpointMismatchError) as err:
            raise checkpoints.CheckpointNotFoundError(
                f"a multi-process run trains one checkpoint; {dep!r}, which it builds on, is missing for this "
                f"profile's config. Train it first "
                f"with one process (`python -m crossflow_mini --profile {profile.name} train {dep}`), then launch "
                f"again") from err
    with distributed.main_process_first():
        t2i.prepare(recipe, "train", _autoencoder(recipe, profile))


def evaluate(name: str, profile: Profile | None = None) -> dict[str, Any]:
    """Re-measure the checkpoint ``name`` (it must exist for this profile's recipe)."""
    profile = profile or get_profile()
    entry = get(name)
    recipe = entry.recipe(profile)
    return entry.evaluate(load(name, profile, recipe=recipe), recipe, profile)

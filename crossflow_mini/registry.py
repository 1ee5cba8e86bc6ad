"""The registry: every named checkpoint, and the one place a checkpoint name is resolved to a recipe and a folder.

The CLI (``python -m crossflow_mini train NAME``), the pipelines (``from_pretrained(NAME)``), the studies and the
notebooks all come here, so a number in ``data/results`` and the same number in a notebook come from the same code.

Words: a *recipe* is the config dataclass that determines a checkpoint's weights (model + training run + data; its
hash names the checkpoint); it is written out in its task's ``recipe.py``. A *task* (:class:`Task`) says how a kind of
checkpoint is built, trained and measured. A *named checkpoint* (:class:`NamedCheckpoint`) ties a name to its task,
its shipped recipe and the checkpoints it builds on (``needs``). A *profile* (:mod:`crossflow_mini.profiles`) changes
sizes only.

* :func:`recipe` - the recipe of a name for a profile (and any ``--set`` overrides);
* :func:`find` / :func:`load` - its weights: shipped (``data/checkpoints/<name>``) when the recipe matches, else the
  cache (``data/cache/checkpoints/<name>-<hash>``), else - where the profile allows it - a training run (dependencies
  first). The model comes back in eval mode on the profile's device, with its sampling defaults
  (``model.sampling``, the checkpoint's ``sampling.json``);
* :func:`train_and_save` - train a recipe (resumable), measure it, and save it: to the cache by default, to
  ``data/checkpoints`` and ``data/results`` only with ``overwrite=True``; a run with overrides gets its own name;
* :func:`folder` - the folder that holds a name's weights (what pipelines load).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from . import checkpoints, distributed
from .configs import config_hash, from_dict, with_overrides
from .core.build import build_model
from .eval.classifier import FashionClassifier
from .eval.judge import JudgeNet
from .nn.autoencoder import ImageAutoencoder
from .nn.text_autoencoder import TextAutoencoder
from .paths import ROOT, cache_dir
from .profiles import Profile, get_profile
from .results import results_path, write_results
from .tasks import autoencoder as autoencoder_task
from .tasks import common, judge as judge_task
from .tasks.captioning import evaluate as caption_eval, recipe as caption_recipes, train as caption_train
from .tasks.depth import evaluate as depth_eval, recipe as depth_recipes, train as depth_train
from .tasks.sr import evaluate as sr_eval, recipe as sr_recipes, train as sr_train
from .tasks.t2i import evaluate as t2i_eval, folder as t2i_folder, recipe as t2i_recipes, train as t2i_train


@dataclass(frozen=True)
class Task:
    """How one kind of checkpoint is built, trained and measured.

    ``build(recipe)``: the untrained model; ``train(recipe, *, name, device, **needs) -> TrainResult`` (resumable
    under ``name``); ``evaluate(model, recipe, *, sizes, device, **needs) -> metrics``; ``sizes``: the
    :class:`~crossflow_mini.profiles.Profile` field with its evaluation sizes (None: none); ``pipeline``: the class
    that serves it (``crossflow_mini.pipelines``)."""

    name: str
    build: Callable[[Any], torch.nn.Module]
    train: Callable[..., Any]
    evaluate: Callable[..., dict[str, Any]]
    sizes: str | None = None
    pipeline: str | None = None


def _evaluate_autoencoder(model: torch.nn.Module, recipe: Any, **_: Any) -> dict[str, Any]:
    return autoencoder_task.evaluate_autoencoder(model, recipe)


def _evaluate_judge(model: torch.nn.Module, recipe: Any, **_: Any) -> dict[str, Any]:
    return judge_task.evaluate_judge(model, recipe)


AUTOENCODER = Task("image autoencoder", lambda r: ImageAutoencoder(r.model), autoencoder_task.train,
                   _evaluate_autoencoder)
JUDGE = Task("ShapesWorld judge", lambda r: JudgeNet(r.model), judge_task.train, _evaluate_judge)
CLASSIFIER = Task("Fashion-MNIST classifier", lambda r: FashionClassifier(r.model), t2i_train.train_classifier,
                  t2i_train.evaluate_classifier)
TEXT_TO_IMAGE = Task("text-to-image", lambda r: build_model(r.model), t2i_train.train, t2i_eval.evaluate,
                     sizes="t2i_eval", pipeline="CrossFlowPipeline")
FOLDER_TEXT_TO_IMAGE = Task("text-to-image (your folder)", lambda r: build_model(r.model), t2i_folder.train,
                            t2i_folder.evaluate_folder_t2i, pipeline=None)
DEPTH = Task("depth", lambda r: build_model(r.model), depth_train.train, depth_eval.evaluate, sizes="depth_eval",
             pipeline="DepthPipeline")
SUPER_RESOLUTION = Task("super-resolution", lambda r: build_model(r.model), sr_train.train, sr_eval.evaluate,
                        sizes="sr_eval", pipeline="SuperResolutionPipeline")
TEXT_AUTOENCODER = Task("text autoencoder", lambda r: TextAutoencoder(r.model), caption_train.train_text_autoencoder,
                        caption_eval.evaluate_text_autoencoder_checkpoint)
CAPTIONING = Task("captioning", lambda r: caption_train.build_captioner(r.model), caption_train.train,
                  caption_eval.evaluate, sizes="caption_eval", pipeline="CaptioningPipeline")
#: The direct and autoregressive captioners have no flow: the captioning pipeline does not serve them (captions_of
#: does).
CAPTIONING_NO_FLOW = dataclasses.replace(CAPTIONING, pipeline=None)


@dataclass(frozen=True)
class NamedCheckpoint:
    """A named checkpoint: its task, its shipped recipe and what it builds on.

    ``needs``: keyword -> checkpoint name of each checkpoint the task is given (its autoencoder, its referee, its text
    autoencoder). Where the recipe has a field of the keyword's name (``autoencoder``, ``text_autoencoder``), that
    field holds the dependency's recipe: the registry fills it with the dependency's recipe for the profile, so the
    two always match. ``local``: a last step that fills in the machine's own parts (your folders)."""

    name: str
    description: str
    task: Task
    recipe: Any
    needs: Mapping[str, str] = field(default_factory=dict)
    local: Callable[[Any], Any] | None = None


def _t2i(name: str, description: str, recipe: Any) -> NamedCheckpoint:
    dataset = recipe.autoencoder.dataset
    referee = "judge_shapes" if dataset == "shapes" else "classifier_fashion"
    return NamedCheckpoint(name, description, TEXT_TO_IMAGE, recipe,
                           {"autoencoder": f"autoencoder_{dataset}", "referee": referee})


def _captioner(name: str, description: str, recipe: Any) -> NamedCheckpoint:
    needs = {"autoencoder": "autoencoder_shapes"}
    if recipe.text_autoencoder is not None:
        needs["text_autoencoder"] = "text_autoencoder_shapes"
    return NamedCheckpoint(name, description, CAPTIONING if recipe.is_flow else CAPTIONING_NO_FLOW, recipe, needs)


CHECKPOINTS: dict[str, NamedCheckpoint] = {c.name: c for c in (
    NamedCheckpoint("autoencoder_shapes", "AutoencoderKL for ShapesWorld, 3 x 32 x 32 <-> 4 x 8 x 8", AUTOENCODER,
                    autoencoder_task.AUTOENCODER_SHAPES),
    NamedCheckpoint("autoencoder_fashion", "AutoencoderKL for Fashion-MNIST, 1 x 32 x 32 (padded 28 x 28) <-> "
                    "4 x 8 x 8", AUTOENCODER, autoencoder_task.AUTOENCODER_FASHION),
    NamedCheckpoint("judge_shapes", "ShapesWorld judge: reads shape, colour, size, position and count back from an "
                    "image", JUDGE, judge_task.JUDGE_SHAPES),
    _t2i("t2i_shapes", "CrossFlow text-to-image on ShapesWorld: Text VE with patch queries (a source laid out like "
         "the image) + velocity transformer, no noise, no cross-attention", t2i_recipes.T2I_SHAPES),
    _t2i("t2i_shapes_flatten", "CrossFlow text-to-image on ShapesWorld with the paper's Text VE head (flatten + "
         "linear, the public code's): the reference row", t2i_recipes.T2I_SHAPES_FLATTEN),
    _t2i("t2i_baseline_shapes", "standard flow matching on ShapesWorld: noise -> image with cross-attention to the "
         "MiniLM tokens, CrossFlow's size and training run", t2i_recipes.T2I_BASELINE_SHAPES),
    NamedCheckpoint("classifier_fashion", "Fashion-MNIST classifier trained on the real training photos: the "
                    "class-accuracy referee", CLASSIFIER, t2i_recipes.CLASSIFIER_FASHION),
    _t2i("t2i_fashion", "CrossFlow text-to-image on Fashion-MNIST (captions from class names)",
         t2i_recipes.T2I_FASHION),
    _t2i("t2i_baseline_fashion", "standard flow matching on Fashion-MNIST, CrossFlow's size and training run",
         t2i_recipes.T2I_BASELINE_FASHION),
    NamedCheckpoint("t2i_folder", "CrossFlow text-to-image on your own image-caption folder with local pretrained "
                    "parts (CLIP / T5 / MiniLM text tower, SD-VAE; docs/SCALING_UP.md); paper-sized in the paper "
                    "profile", FOLDER_TEXT_TO_IMAGE, t2i_recipes.T2I_FOLDER, local=t2i_recipes.with_local_parts),
    NamedCheckpoint("depth_crossflow", "CrossFlow monocular depth on DepthWorld: Image VE (RGB -> depth-shaped "
                    "Gaussian) + UNet velocity, no condition input", DEPTH, depth_recipes.DEPTH_CROSSFLOW),
    NamedCheckpoint("depth_baseline", "standard flow matching for depth (Marigold-style): noise -> depth, RGB "
                    "concatenated; CrossFlow's size and training run", DEPTH, depth_recipes.DEPTH_BASELINE),
    NamedCheckpoint("depth_regression", "regression baseline for depth: the baseline's UNet predicting log depth "
                    "directly (L1)", DEPTH, depth_recipes.DEPTH_REGRESSION),
    NamedCheckpoint("sr_crossflow", "CrossFlow 4x super-resolution of photo patches (8 -> 32 px): flows from the "
                    "bicubic-upsampled low-res image itself; UNet, no concatenated input", SUPER_RESOLUTION,
                    sr_recipes.SR_CROSSFLOW),
    NamedCheckpoint("sr_baseline", "standard flow matching for super-resolution: noise -> high-res, the upsampled "
                    "image concatenated (SR3-style); CrossFlow's UNet and training run", SUPER_RESOLUTION,
                    sr_recipes.SR_BASELINE),
    NamedCheckpoint("sr_regression", "regression baseline for super-resolution: the same UNet predicting the high-res "
                    "patch in one pass", SUPER_RESOLUTION, sr_recipes.SR_REGRESSION),
    NamedCheckpoint("text_autoencoder_shapes", "text autoencoder for captioning: Text VE (MiniLM tokens -> 8 x 4 x 4 "
                    "Gaussian text latent) + non-autoregressive text decoder, rich ShapesWorld captions",
                    TEXT_AUTOENCODER, caption_recipes.TEXT_AUTOENCODER_SHAPES),
    _captioner("caption_crossflow", "CrossFlow image -> text: Image VE (image latent -> text-latent-shaped Gaussian) + "
               "velocity transformer, no cross-attention; decoded by text_autoencoder_shapes",
               caption_recipes.CAPTION_CROSSFLOW),
    _captioner("caption_baseline", "standard flow matching for captioning: noise -> text latent, cross-attention to "
               "the image's patches; CrossFlow's size and steps, the same decoder", caption_recipes.CAPTION_BASELINE),
    _captioner("caption_direct", "direct captioner: image -> the non-autoregressive text decoder, trained end to end; "
               "CrossFlow's size and steps", caption_recipes.CAPTION_DIRECT),
    _captioner("caption_autoregressive", "autoregressive transformer captioner (word by word, cross-attention to the "
               "image's patches); CrossFlow's size and steps", caption_recipes.CAPTION_AUTOREGRESSIVE),
)}


# ------------------------------------------------------------------------------------------------ names
class UnknownCheckpointError(KeyError):
    """A name that is neither a named checkpoint nor a named run in the cache."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def closest(name: str, known: list[str] | tuple[str, ...]) -> str:
    """`` Did you mean 'x'?`` for the closest of ``known`` (or nothing)."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


def get(name: str) -> NamedCheckpoint:
    """The named checkpoint ``name``; an unknown name lists the known ones (and the closest)."""
    if name not in CHECKPOINTS:
        raise UnknownCheckpointError(
            f"unknown checkpoint {name!r}.{closest(name, list(CHECKPOINTS))} Known: {', '.join(sorted(CHECKPOINTS))} "
            f"(`python -m crossflow_mini list`)")
    return CHECKPOINTS[name]


def _has_field(cfg: Any, name: str) -> bool:
    return dataclasses.is_dataclass(cfg) and name in {f.name for f in dataclasses.fields(cfg)}


def recipe(name: str, profile: Profile | None = None, overrides: dict[str, Any] | None = None) -> Any:
    """The recipe of checkpoint ``name`` for ``profile`` (default: the active one): the shipped recipe (its task's
    ``recipe.py``), the profile's size overrides, the profile's recipes of the checkpoints it builds on, then
    ``overrides`` (dot-paths, as ``--set``)."""
    profile = profile or get_profile()
    entry = get(name)
    r = entry.recipe
    sized = profile.recipes.get(name)
    if isinstance(sized, dict):
        r = with_overrides(r, sized)
    elif sized is not None:
        r = sized
    deps = {key: recipe(dep, profile) for key, dep in entry.needs.items()
            if _has_field(r, key) and getattr(r, key) is not None}
    if deps:
        r = dataclasses.replace(r, **deps)
    if entry.local is not None:
        r = entry.local(r)
    return with_overrides(r, overrides) if overrides else r


_recipe_of = recipe  # for functions whose ``recipe`` argument hides the function


def named_run_dirs(name: str) -> list[Path]:
    """Cached folders of a run trained with overrides under its own name (``train BASE --set ... --name NAME``),
    newest first."""
    root = cache_dir() / "checkpoints"
    found = [d for d in root.glob(f"{name}-*") if (d / checkpoints.CONFIG_FILE).exists()] if root.exists() else []
    return sorted(found, key=lambda d: d.stat().st_mtime, reverse=True)


def named_run(name: str) -> tuple[NamedCheckpoint, Any, Path]:
    """``(base entry, recipe, folder)`` of the newest run trained under ``name`` with overrides."""
    for directory in named_run_dirs(name):
        meta = checkpoints.read_meta(directory, name)
        base = meta.get("base")
        if meta.get("name") == name and base in CHECKPOINTS:
            entry = CHECKPOINTS[base]
            try:
                r = from_dict(type(entry.recipe), meta["config"])
            except (ValueError, TypeError) as err:
                raise checkpoints.CheckpointMismatchError(
                    f"the run {name!r} in {directory} was written by another version of crossflow_mini ({err}); "
                    f"train it again: `python -m crossflow_mini train {base} --set ... --name {name}`") from err
            return entry, r, directory
    known = sorted(CHECKPOINTS)
    raise UnknownCheckpointError(f"unknown checkpoint {name!r}: it is not a named checkpoint "
                                 f"({', '.join(known)}) and no run was trained under that name "
                                 f"(`python -m crossflow_mini train BASE --set KEY=VALUE --name {name}`).{closest(name, known)}")


# ------------------------------------------------------------------------------------------------ finding
def _needs(entry: NamedCheckpoint, r: Any, profile: Profile, allow_train: bool) -> dict[str, torch.nn.Module]:
    """The models the task is given, by keyword: each dependency at the recipe the registry filled in."""
    out = {}
    sub = profile if allow_train else dataclasses.replace(profile, train_missing=False)
    for key, dep in entry.needs.items():
        dep_recipe = getattr(r, key, None) if _has_field(r, key) else None
        if _has_field(r, key) and dep_recipe is None:
            continue  # e.g. the direct captioner has no text autoencoder
        out[key] = load(dep, sub, recipe=dep_recipe)
    return out


def _train_fn(entry: NamedCheckpoint, name: str, profile: Profile) -> Callable[[Any], tuple[torch.nn.Module, dict]]:
    """``recipe -> (model, metrics)``: train (timed, resumable under ``name``) and measure. A helper process of a
    multi-process run trains its share and measures nothing."""

    def run(r: Any) -> tuple[torch.nn.Module, dict[str, Any]]:
        needs = _needs(entry, r, profile, allow_train=True)
        result, record = common.timed_fit(lambda: entry.task.train(r, name=name, device=profile.device, **needs),
                                          r.train.steps, r.train.batch_size, profile.device)
        if not distributed.is_main_process():
            return result.model, {}
        sizes = getattr(profile, entry.task.sizes) if entry.task.sizes else None
        metrics = entry.task.evaluate(result.ema, r, sizes=sizes, device=profile.device, **needs)
        return result.ema, {**record, **metrics}

    return run


def find(name: str, profile: Profile | None = None, *, recipe: Any = None) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The checkpoint ``name`` built from ``recipe`` (default: :func:`recipe` for the profile) and its ``config.json``
    (with the metrics measured when it was trained, ``sampling`` and ``directory``).

    Shipped weights, then the cache, then - where ``profile.train_missing`` allows it - a training run whose result
    goes to the cache. A name that is not a named checkpoint may be a run trained with overrides under that name.
    The model comes back in eval mode on ``profile.device``."""
    profile = profile or get_profile()
    if name not in CHECKPOINTS and recipe is None:
        entry, r, directory = named_run(name)
        state, meta = checkpoints.load_checkpoint(directory, r, name=name)
        model = entry.task.build(r)
        model.load_state_dict(state)
        meta = checkpoints.attach(model, directory, r, meta)
        return model.to(profile.device).eval(), meta
    entry = get(name)
    r = _recipe_of(name, profile) if recipe is None else recipe
    model, meta = checkpoints.load_or_train(name, r, entry.task.build, _train_fn(entry, name, profile),
                                            allow_train=profile.train_missing)
    return model.to(profile.device).eval(), meta


def load(name: str, profile: Profile | None = None, *, recipe: Any = None) -> torch.nn.Module:
    """:func:`find` without the meta: the model alone."""
    return find(name, profile, recipe=recipe)[0]


def folder(name: str, profile: Profile | None = None, *, recipe: Any = None) -> Path:
    """The folder holding the weights of ``name`` for the profile (found, or trained where the profile allows)."""
    return Path(find(name, profile, recipe=recipe)[1]["directory"])


def components(name: str, profile: Profile | None = None, pipeline: str | None = None) -> dict[str, Path]:
    """The folders a pipeline loads for checkpoint ``name``: ``"flow"`` (its own weights) and each checkpoint whose
    recipe its recipe embeds (``autoencoder``, ``text_autoencoder``). ``pipeline``: the pipeline class asking; a
    checkpoint it does not serve is a ``ValueError`` naming the ones it does."""
    profile = profile or get_profile()
    if name in CHECKPOINTS:
        entry, r = get(name), _recipe_of(name, profile)
        flow = None
    else:
        entry, r, flow = named_run(name)
    if pipeline is not None and entry.task.pipeline != pipeline:
        served = sorted(n for n, e in CHECKPOINTS.items() if e.task.pipeline == pipeline)
        where = f"the {entry.task.pipeline} serves it" if entry.task.pipeline else \
            f"load it with crossflow_mini.registry.load({entry.name!r})"
        raise ValueError(f"{name!r} is a {entry.task.name} checkpoint ({entry.description}), which {pipeline} does not "
                         f"serve ({where}); {pipeline} serves {', '.join(served)}")
    out = {"flow": Path(flow) if flow is not None else folder(name, profile, recipe=r)}
    for key, dep in entry.needs.items():
        if _has_field(r, key) and getattr(r, key) is not None:
            out[key] = folder(dep, profile, recipe=getattr(r, key))
    return out


def missing(name: str, profile: Profile | None = None, overrides: dict[str, Any] | None = None) -> list[str]:
    """The checkpoints ``name`` builds on (recursively, dependencies first) that are neither shipped nor cached for
    the profile's recipes."""
    profile = profile or get_profile()
    entry, r = get(name), recipe(name, profile, overrides)
    out: list[str] = []
    for key, dep in entry.needs.items():
        dep_recipe = getattr(r, key) if _has_field(r, key) else recipe(dep, profile)
        if dep_recipe is None:
            continue
        for sub in missing(dep, profile):
            if sub not in out:
                out.append(sub)
        if not any(checkpoints.matches(d, dep_recipe) for d in (checkpoints.shipped_dir(dep),
                                                                 checkpoints.cached_dir(dep, dep_recipe))):
            if dep not in out:
                out.append(dep)
    return out


# ---------------------------------------------------------------------------------------------- training
def train_and_save(name: str, profile: Profile | None = None, *, overrides: dict[str, Any] | None = None,
                   run_name: str | None = None, overwrite: bool = False, fresh: bool = False) -> tuple[Path, dict]:
    """Train checkpoint ``name`` (resuming an interrupted run unless ``fresh``), measure it and save it.

    By default the result goes to the cache (``data/cache/checkpoints/<name>-<hash>``), which :func:`find` reads
    next; ``overwrite=True`` ships it instead: ``data/checkpoints/<name>`` and ``data/results/<name>.json`` (only for
    the course / full / paper profiles, and only for the recipe as written - not with ``overrides``). With
    ``overrides`` the run gets its own ``run_name`` (required), so a shipped checkpoint is never replaced; it is found
    again by that name (:func:`find`, ``from_pretrained``). Returns ``(folder, metrics)``."""
    profile = profile or get_profile()
    entry = get(name)
    if overrides and not run_name:
        raise ValueError(f"a run with --set overrides needs its own name: add --name (e.g. --name {name}_custom), so "
                         f"that it never replaces the shipped {name!r}")
    if run_name is not None:
        if run_name in CHECKPOINTS:
            raise ValueError(f"--name {run_name!r} is a named checkpoint; choose a new name for your run")
        if not run_name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"--name {run_name!r}: use letters, digits, '_' and '-' only")
    if overwrite and (overrides or profile.name == "smoke"):
        raise ValueError("--overwrite ships the recipe as written (course / full profile): it cannot be combined with "
                         "--set or the smoke profile")
    r = recipe(name, profile, overrides)
    out_name = run_name or name
    if fresh:
        with distributed.main_process_first():  # one process deletes the old run, before any process reads it
            if distributed.is_main_process():
                shutil.rmtree(checkpoints.run_dir(out_name, r), ignore_errors=True)
    out = checkpoints.shipped_dir(name) if overwrite else checkpoints.cached_dir(out_name, r)
    if distributed.num_processes() > 1:  # under `accelerate launch`: every process trains, the main one saves
        _ready_for_processes(entry, r, profile)
        if not distributed.is_main_process():
            needs = _needs(entry, r, profile, allow_train=False)
            entry.task.train(r, name=out_name, device=profile.device, **needs)
            return out, {}
    extra = {"base": name, "overrides": overrides} if run_name else None
    command = f"python -m crossflow_mini --profile {profile.name} train {name}" + "".join(
        f" --set {k}={v!r}" for k, v in (overrides or {}).items()) + (f" --name {run_name}" if run_name else "")
    model, metrics = _train_fn(entry, out_name, profile)(r)
    checkpoints.save_checkpoint(out, model.state_dict(), r, name=out_name, kind=type(model).__name__,
                                metrics=metrics, sampling=checkpoints.trained_sampling(r, metrics), extra=extra,
                                command=command)
    if overwrite:
        write_checkpoint_results(name, profile, r, metrics, out)
    return out, metrics


def write_checkpoint_results(name: str, profile: Profile, r: Any, metrics: dict[str, Any], directory: Path) -> Path:
    """``data/results/<name>.json`` of a shipped checkpoint: its metrics, recipe, sampling and command."""
    try:
        where = str(Path(directory).resolve().relative_to(ROOT))
    except ValueError:
        where = Path(directory).name
    sampling = checkpoints.read_sampling(directory)
    extra: dict[str, Any] = {"checkpoint": where}
    if sampling is not None:
        extra["sampling"] = dataclasses.asdict(sampling)
    return write_results(name, profile.name, r, metrics, "train", profile.device, **extra)


def promote(name: str, profile: Profile | None = None) -> Path:
    """Ship the cached checkpoint of ``name`` (trained with ``train NAME``, same profile): copy it to
    ``data/checkpoints/<name>`` and write ``data/results/<name>.json`` from the metrics it recorded."""
    profile = profile or get_profile()
    r = recipe(name, profile)
    source = checkpoints.cached_dir(name, r)
    if not (source / checkpoints.WEIGHTS_FILE).exists():
        raise checkpoints.CheckpointNotFoundError(
            f"no trained {name!r} in the cache for the {profile.name} profile's recipe ({source}); train it first: "
            f"`python -m crossflow_mini --profile {profile.name} train {name}`")
    _, meta = checkpoints.load_checkpoint(source, r, name=name)  # refuses a damaged or mismatched copy
    target = checkpoints.shipped_dir(name)
    tmp = target.with_name(target.name + ".promoting")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    old = target.with_name(target.name + ".old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    write_checkpoint_results(name, profile, r, meta["metrics"], target)
    return target


def _ready_for_processes(entry: NamedCheckpoint, r: Any, profile: Profile) -> None:
    """Before a multi-process training run: the checkpoints it builds on must exist (training one would need all the
    processes at once), and the main process fills the data caches first, which the others then read."""
    gaps = [dep for dep in missing(entry.name, profile)]
    if gaps:
        raise checkpoints.CheckpointNotFoundError(
            f"a multi-process run trains one checkpoint; {', '.join(repr(g) for g in gaps)}, which it builds on, "
            f"{'is' if len(gaps) == 1 else 'are'} missing for this profile's recipes. Train "
            f"{'it' if len(gaps) == 1 else 'them'} first with one process: "
            + "; ".join(f"`python -m crossflow_mini --profile {profile.name} train {g}`" for g in gaps)
            + ", then launch again")
    with distributed.main_process_first():
        if isinstance(r, t2i_recipes.FolderT2IRecipe):  # pretrained parts only: nothing to train first
            t2i_folder.prepare(r, "train", device=profile.device)
        elif entry.task is TEXT_TO_IMAGE:
            needs = _needs(entry, r, profile, allow_train=False)
            from .tasks.t2i.data import prepare

            prepare(r, "train", needs["autoencoder"])


def evaluate(name: str, profile: Profile | None = None) -> dict[str, Any]:
    """Re-measure the checkpoint ``name`` (it must exist for this profile's recipe)."""
    profile = profile or get_profile()
    entry = get(name)
    r = recipe(name, profile)
    model = load(name, profile, recipe=r)
    needs = _needs(entry, r, profile, allow_train=profile.train_missing)
    sizes = getattr(profile, entry.task.sizes) if entry.task.sizes else None
    return entry.task.evaluate(model, r, sizes=sizes, device=profile.device, **needs)


def describe(name: str, profile: Profile | None = None) -> str:
    """Where a checkpoint's recipe and weights are, in words (``python -m crossflow_mini show NAME``)."""
    profile = profile or get_profile()
    entry = get(name)
    r = recipe(name, profile)
    module = type(entry.recipe).__module__
    lines = [f"{name}: {entry.description}", f"  task: {entry.task.name}; recipe: {module} "
             f"(hash {config_hash(r)} for the {profile.name} profile)"]
    if entry.needs:
        lines.append("  builds on: " + ", ".join(f"{k} = {v}" for k, v in entry.needs.items()))
    lines.append(f"  shipped folder: {checkpoints.shipped_dir(name)}; results: {results_path(name)}")
    return "\n".join(lines)


__all__ = ["Task", "NamedCheckpoint", "CHECKPOINTS", "UnknownCheckpointError", "closest", "get", "recipe",
           "named_run_dirs", "named_run", "find", "load", "folder", "components", "missing", "train_and_save",
           "write_checkpoint_results", "promote", "evaluate", "describe"]

"""The command line: ``python -m crossflow_mini {list,show,train,promote,evaluate,reproduce,bench}``.

    python -m crossflow_mini list                        # the named checkpoints and studies, and where they stand
    python -m crossflow_mini show t2i_shapes             # where its recipe is written, what it builds on
    python -m crossflow_mini train t2i_shapes            # train (resumes if interrupted; --fresh restarts) into the
                                                         # cache, measure, and say how to ship it
    python -m crossflow_mini train t2i_shapes --set source.kl_weight=1e-2 --name my_run
                                                         # the same recipe with a setting changed, under its own name
                                                         # (load it with CrossFlowPipeline.from_pretrained("my_run"))
    python -m crossflow_mini promote t2i_shapes          # ship the cached result: data/checkpoints + data/results
    python -m crossflow_mini train t2i_shapes --overwrite   # train and ship in one go (maintainers)
    python -m crossflow_mini evaluate autoencoder_shapes # re-measure a checkpoint
    python -m crossflow_mini reproduce --overwrite       # train every shipped checkpoint from scratch and ship it, then
                                                         # run the studies (reproduce t2i_ablation: one study;
                                                         # reproduce t2i: the comparison and scaling studies)
    python -m crossflow_mini bench                       # speed figures for the README

The profile comes from ``CROSSFLOW_PROFILE`` (or ``--profile``). ``train`` uses the fastest layout of this machine
(:mod:`crossflow_mini.cli.layouts`: two processes of one thread each on a 2-core CPU, started under ``accelerate
launch`` by the command itself; ``--layout 1x2`` keeps one process). The same ``train`` command runs on several GPUs
when ``accelerate launch`` starts it, e.g.
``accelerate launch --multi_gpu --num_processes 8 --mixed_precision bf16 -m crossflow_mini train t2i_shapes``
(docs/SCALING_UP.md); ``--mixed-precision`` and ``--grad-accum`` do the same for a plain one-process run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

import torch

from .. import distributed
from ..profiles import PROFILE_ENV, PROFILES
from .layouts import Layout, fastest_layout, launch, threads_from_env


def _profile(args):
    if args.profile:
        os.environ[PROFILE_ENV] = args.profile
    from ..profiles import get_profile

    return get_profile()


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (1 = no accumulation), got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m crossflow_mini", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", choices=PROFILES, help=f"overrides ${PROFILE_ENV}")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the named checkpoints, runs and studies")
    p_show = sub.add_parser("show", help="where a checkpoint's recipe is written and what it builds on")
    p_show.add_argument("name")
    p_train = sub.add_parser("train", help="train a named checkpoint (resumes an interrupted run)")
    p_train.add_argument("name")
    p_train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                         help="change one setting of the recipe by dot-path, e.g. --set source.kl_weight=1e-2 "
                              "(repeatable; needs --name)")
    p_train.add_argument("--name", dest="run_name", help="the name of a run with --set (never a shipped name)")
    p_train.add_argument("--overwrite", action="store_true",
                         help="ship the result: replace data/checkpoints/NAME and data/results/NAME.json")
    p_train.add_argument("--fresh", action="store_true",
                         help="discard an earlier run's saved state (data/cache/runs) and start from step 0")
    p_train.add_argument("--mixed-precision", choices=("no", "bf16", "fp16"),
                         help="autocast precision (default: accelerate launch's --mixed_precision, else fp32)")
    p_train.add_argument("--grad-accum", type=_positive, metavar="K",
                         help="forward/backward passes per optimiser step (the global batch is unchanged)")
    p_train.add_argument("--layout", metavar="PxT", help="P processes of T threads each, e.g. 2x1 or 1x2 (default: "
                         "the fastest on this machine - two processes on a CPU with 2+ cores; make bench measures)")
    p_trust = sub.add_parser("trust", help="record the checksum of a checkpoint folder you trust (one without it "
                                           "does not load)")
    p_trust.add_argument("folder")
    p_promote = sub.add_parser("promote", help="ship the cached result of `train NAME`")
    p_promote.add_argument("name")
    p_eval = sub.add_parser("evaluate", help="re-measure a named checkpoint")
    p_eval.add_argument("name")
    p_rep = sub.add_parser("reproduce", help="train every shipped checkpoint from scratch, run every study, and "
                                             "write data/results")
    p_rep.add_argument("names", nargs="*", help="only these checkpoints or studies (default: all)")
    p_rep.add_argument("--overwrite", action="store_true",
                       help="ship the checkpoints it trains (else they go to the cache)")
    p_rep.add_argument("--layout", metavar="PxT", help="how each checkpoint trains (default: the fastest here)")
    p_bench = sub.add_parser("bench", help="print speed figures")
    p_bench.add_argument("--quick", action="store_true", help="smaller sizes, for a check that it runs")
    p_bench.add_argument("--out", help="also write the figures to this JSON file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "layout", None):
        try:
            Layout.parse(args.layout)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2

    from .. import checkpoints
    from ..configs import OverrideError, parse_overrides
    from ..utils import DamagedFileError

    try:  # every expected failure (a bad profile, name, setting or file) is one line on stderr and exit status 2
        profile = _profile(args)
        from .. import registry
        from ..studies import catalog

        if args.command == "list":
            _list(profile, registry, catalog)
        elif args.command == "show":
            print(registry.describe(args.name, profile))
        elif args.command == "train":
            from ..distributed import GRAD_ACCUM_ENV, PRECISION_ENV, is_main_process

            if args.mixed_precision:  # the training loop reads both (ParallelConfig.from_env)
                os.environ[PRECISION_ENV] = args.mixed_precision
            if args.grad_accum:
                os.environ[GRAD_ACCUM_ENV] = str(args.grad_accum)
            overrides = parse_overrides(args.overrides)
            relaunched = _spread(args, profile, registry, args.name, overrides, argv)
            if relaunched is not None:
                return relaunched
            out, metrics = registry.train_and_save(args.name, profile, overrides=overrides, run_name=args.run_name,
                                                   overwrite=args.overwrite, fresh=args.fresh)
            if is_main_process():  # the other processes of a launched run save nothing
                print(json.dumps(metrics, indent=2))
                print(f"saved {out}")
                if args.run_name:
                    print(f"load it by its name: CrossFlowPipeline.from_pretrained({args.run_name!r}) (or the "
                          f"pipeline of its task), registry.load({args.run_name!r})")
                elif not args.overwrite and profile.name != "smoke":
                    print(f"to ship it (data/checkpoints/{args.name} and data/results/{args.name}.json): "
                          f"`python -m crossflow_mini --profile {profile.name} promote {args.name}`")
        elif args.command == "trust":
            digest = checkpoints.record_checksum(args.folder)
            print(f"recorded weights_sha256 {digest} in {args.folder}/config.json: it now loads, and is checked on "
                  f"every load")
        elif args.command == "promote":
            print(f"shipped {registry.promote(args.name, profile)}")
        elif args.command == "evaluate":
            print(json.dumps(registry.evaluate(args.name, profile), indent=2))
        elif args.command == "reproduce":
            names = [n for name in args.names for n in catalog.STUDY_GROUPS.get(name, (name,))]
            for name in names:
                if name not in catalog.STUDIES and name not in registry.CHECKPOINTS:
                    known = [*catalog.STUDIES, *catalog.STUDY_GROUPS, *registry.CHECKPOINTS]
                    raise registry.UnknownCheckpointError(
                        f"unknown study or checkpoint {name!r}.{registry.closest(name, known)} Studies: "
                        f"{', '.join(sorted(catalog.STUDIES))} (and {', '.join(catalog.STUDY_GROUPS)}); checkpoints: "
                        f"{', '.join(sorted(registry.CHECKPOINTS))}")
            for name in names or [*registry.CHECKPOINTS, *catalog.STUDIES]:
                if name in catalog.STUDIES:
                    print(f"{name}:\n{json.dumps(catalog.run_study(name, profile), indent=2)}")
                    continue
                layout = _layout(args.layout, profile)
                if layout.processes > 1:
                    _train_missing(registry, profile, name, {})
                    status = launch(layout, ["crossflow_mini", "--profile", profile.name, "train", name, "--fresh",
                                             "--layout", str(layout), *(["--overwrite"] if args.overwrite else [])])
                    if status:
                        return status
                    continue
                torch.set_num_threads(layout.threads)
                out, metrics = registry.train_and_save(name, profile, overwrite=args.overwrite, fresh=True)
                print(f"{name}: saved {out}\n{json.dumps(metrics, indent=2)}")
        elif args.command == "bench":
            from .bench import run_benchmarks

            figures = run_benchmarks(quick=args.quick)
            if args.out:
                from ..utils import atomic_write_text

                atomic_write_text(args.out, json.dumps(figures, indent=2) + "\n")
    except (KeyError, ValueError, FileNotFoundError, OverrideError, checkpoints.CheckpointError,
            DamagedFileError) as err:
        print(f"error: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2
    return 0


def _layout(text: str | None, profile) -> Layout:
    """The layout a training run uses: ``--layout``, else the fastest here (one process under smoke: a few steps
    are not worth starting processes for)."""
    if text:
        return Layout.parse(text)
    if profile.name == "smoke":
        return Layout(1, 1)
    return fastest_layout()


def _train_missing(registry, profile, name: str, overrides: dict) -> None:
    """Train - with one process, before a multi-process launch - every checkpoint ``name`` builds on that is
    neither shipped nor cached, dependencies first (a launched run trains exactly one checkpoint)."""
    for dep in registry.missing(name, profile, overrides):
        print(f"{name} builds on {dep}, which is missing: training it first (one process)", flush=True)
        registry.find(dep, dataclasses.replace(profile, train_missing=True))


def _spread(args, profile, registry, name: str, overrides: dict, argv: list[str] | None) -> int | None:
    """Start this ``train`` command again under ``accelerate launch`` when its layout has several processes and it is
    not running under a launcher yet; return the launch's exit status (None: train here, in this process)."""
    layout = _layout(args.layout, profile)
    if distributed.num_processes() > 1:  # a launched child: its threads come from the launcher
        torch.set_num_threads(threads_from_env() or layout.threads)
        return None
    if layout.processes == 1:
        torch.set_num_threads(layout.threads)
        return None
    registry.get(name)  # an unknown name fails here, once, not in every process
    _train_missing(registry, profile, name, overrides)
    rest = list(sys.argv[1:] if argv is None else argv)
    if "--layout" not in rest:
        rest += ["--layout", str(layout)]
    if "--profile" not in rest:
        rest = ["--profile", profile.name, *rest]
    print(f"training {name} with {layout.processes} processes of {layout.threads} thread(s) (accelerate launch; "
          f"--layout 1x{layout.processes * layout.threads} keeps one process)", flush=True)
    return launch(layout, ["crossflow_mini", *rest])


def _list(profile, registry, catalog) -> None:
    """Print each named checkpoint and where it stands, the runs trained under names of their own, then each study.
    A damaged checkpoint is reported (with its file and what to do) and the listing goes on."""
    from .. import checkpoints
    from ..results import results_path

    for name, entry in registry.CHECKPOINTS.items():
        cfg = registry.recipe(name, profile)
        state, damaged = "missing", None
        for label, directory in (("shipped", checkpoints.shipped_dir(name)),
                                 ("cached", checkpoints.cached_dir(name, cfg))):
            if not any((directory / f).exists() for f in (checkpoints.WEIGHTS_FILE, checkpoints.CONFIG_FILE)):
                continue
            try:
                checkpoints.load_checkpoint(directory, cfg, name=name)
            except checkpoints.CheckpointDamagedError as err:  # what loading it would hit: say so, go on
                state, damaged = "damaged", err
                break
            except checkpoints.UnverifiedCheckpointError:
                state = f"{label} (no checksum: `trust` it)"
                break
            except checkpoints.CheckpointError:
                continue
            state = label
            break
        if state == "missing" and (checkpoints.shipped_dir(name) / checkpoints.WEIGHTS_FILE).exists():
            state = "shipped for another config"
        print(f"{name:24s} {state:24s} {entry.description}")
        if damaged is not None:
            print(f"{'':25s}damaged: {damaged.problem} ({damaged.path}). {damaged.hint}")
    root = checkpoints.cache_dir() / "checkpoints"
    for directory in sorted(root.glob("*-*")) if root.exists() else []:
        try:
            meta = checkpoints.read_meta(directory)
        except checkpoints.CheckpointError:
            continue
        if meta.get("base") in registry.CHECKPOINTS:
            print(f"{meta['name']:24s} {'run (cached)':24s} {meta['base']} with {meta.get('overrides')}")
    for name, study in catalog.STUDIES.items():
        state = "results stored" if results_path(name).exists() else "not run"
        print(f"{name:24s} {state:24s} study: {study.description}")


__all__ = ["main", "parser"]

"""Command line: ``python -m crossflow_mini {list,train,evaluate,reproduce,bench}``.

    python -m crossflow_mini list                        # the named checkpoints and where they stand
    python -m crossflow_mini train autoencoder_shapes    # train (resumes if interrupted; --fresh restarts), ship,
                                                         # write data/results
    python -m crossflow_mini evaluate autoencoder_shapes # re-measure a checkpoint
    python -m crossflow_mini reproduce                   # train every shipped checkpoint from scratch, then
                                                         # run the studies (reproduce t2i_ablation: one study;
                                                         # reproduce t2i: the comparison and scaling studies)
    python -m crossflow_mini bench                       # speed figures for the README

The profile comes from ``CROSSFLOW_PROFILE`` (or ``--profile``). The same ``train`` command runs on several GPUs
(or CPU processes) when ``accelerate launch`` starts it, e.g.
``accelerate launch --multi_gpu --num_processes 8 --mixed_precision bf16 -m crossflow_mini train t2i_shapes``
(docs/SCALING_UP.md); ``--mixed-precision`` and ``--grad-accum`` do the same for a plain one-process run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings

from .profiles import PROFILE_ENV, PROFILES


def _profile(args):
    if args.profile:
        os.environ[PROFILE_ENV] = args.profile
    from .profiles import get_profile

    return get_profile()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crossflow_mini", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", choices=PROFILES, help=f"overrides ${PROFILE_ENV}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the named checkpoints")
    p_train = sub.add_parser("train", help="train a named checkpoint (resumes an interrupted run)")
    p_train.add_argument("name")
    p_train.add_argument("--fresh", action="store_true",
                         help="discard an earlier run's saved state (data/cache/runs) and start from step 0")
    p_train.add_argument("--mixed-precision", choices=("no", "bf16", "fp16"),
                         help="autocast precision (default: accelerate launch's --mixed_precision, else fp32)")
    p_train.add_argument("--grad-accum", type=int, metavar="K",
                         help="forward/backward passes per optimiser step (the global batch is unchanged)")
    p_eval = sub.add_parser("evaluate", help="re-measure a named checkpoint")
    p_eval.add_argument("name")
    p_rep = sub.add_parser("reproduce", help="train every shipped checkpoint from scratch, run every study, and "
                                             "write data/results")
    p_rep.add_argument("names", nargs="*", help="only these checkpoints or studies (default: all)")
    p_bench = sub.add_parser("bench", help="print speed figures")
    p_bench.add_argument("--quick", action="store_true", help="smaller sizes, for a check that it runs")
    p_bench.add_argument("--out", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    from . import checkpoints
    from .utils import DamagedFileError

    try:  # every expected failure (a bad profile, name or file) is one line on stderr and exit status 2
        profile = _profile(args)
        from . import registry as recipes

        if args.command == "list":
            _list(profile, recipes)
        elif args.command == "train":
            from .distributed import GRAD_ACCUM_ENV, PRECISION_ENV, is_main_process

            if args.mixed_precision:  # the training loop reads both (ParallelConfig.from_env)
                os.environ[PRECISION_ENV] = args.mixed_precision
            if args.grad_accum:
                os.environ[GRAD_ACCUM_ENV] = str(args.grad_accum)
            out, metrics = recipes.train_and_save(args.name, profile, fresh=args.fresh)
            if is_main_process():  # the other processes of a launched run save nothing
                print(f"saved {out}")
                print(json.dumps(metrics, indent=2))
        elif args.command == "evaluate":
            print(json.dumps(recipes.evaluate(args.name, profile), indent=2))
        elif args.command == "reproduce":
            names = [n for name in args.names for n in recipes.STUDY_GROUPS.get(name, (name,))]
            for name in names or [*recipes.CHECKPOINTS, *recipes.STUDIES]:
                if name in recipes.STUDIES:
                    print(f"{name}:\n{json.dumps(recipes.run_study(name, profile), indent=2)}")
                    continue
                out, metrics = recipes.train_and_save(name, profile, fresh=True)
                print(f"{name}: saved {out}\n{json.dumps(metrics, indent=2)}")
        elif args.command == "bench":
            from .cli.bench import run_benchmarks

            figures = run_benchmarks(quick=args.quick)
            if args.out:
                from .utils import atomic_write_text

                atomic_write_text(args.out, json.dumps(figures, indent=2) + "\n")
    except (KeyError, ValueError, FileNotFoundError, checkpoints.CheckpointError, DamagedFileError) as err:
        print(f"error: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2
    return 0


def _list(profile, recipes) -> None:
    """Print each named checkpoint and where it stands, then each study. A damaged checkpoint is reported (with
    its file and the command that rebuilds it) and the listing goes on."""
    from . import checkpoints

    for name, entry in recipes.CHECKPOINTS.items():
        cfg = entry.recipe(profile)
        state, damaged = "missing", None
        for label, directory in (("shipped", checkpoints.shipped_dir(name)),
                                 ("cached", checkpoints.cached_dir(name, cfg))):
            if not any((directory / f).exists() for f in (checkpoints.WEIGHTS_FILE, checkpoints.CONFIG_FILE)):
                continue
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", checkpoints.UnverifiedCheckpointWarning)
                    checkpoints.load_checkpoint(directory, cfg, name=name)
            except checkpoints.CheckpointDamagedError as err:  # what loading it would hit: say so, go on
                state, damaged = "damaged", err
                break
            except checkpoints.CheckpointError:
                continue
            unverified = any(issubclass(w.category, checkpoints.UnverifiedCheckpointWarning) for w in caught)
            state = f"{label} (no checksum)" if unverified else label
            break
        if state == "missing" and (checkpoints.shipped_dir(name) / checkpoints.WEIGHTS_FILE).exists():
            state = "shipped for another config"
        print(f"{name:24s} {state:24s} {entry.description}")
        if damaged is not None:
            print(f"{'':25s}damaged: {damaged.problem} ({damaged.path}). {checkpoints.repair_hint(name, damaged.path)}")
    for name, study in recipes.STUDIES.items():
        state = "results stored" if recipes.results_path(name).exists() else "not run"
        print(f"{name:24s} {state:24s} study: {study.description}")


if __name__ == "__main__":
    sys.exit(main())

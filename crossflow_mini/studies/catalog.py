"""The catalog of studies (``python -m crossflow_mini reproduce NAME``): each writes ``data/results/NAME.json`` and
ships no checkpoint. :func:`run_study` runs one; :func:`results_for` gives a notebook the stored result (or, under
the ``smoke`` profile before any result exists, runs the study at smoke size without writing it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from .. import registry
from ..configs import config_hash, to_dict
from ..profiles import Profile, get_profile
from ..results import load_results, results_path, write_results
from . import ablation, arithmetic, captioning, captioning_schedule, comparison, depth, dynamics, scaling, sr, tradeoff, variants


@dataclass(frozen=True)
class Study:
    """A study: what it measures, ``run(profile) -> (config, metrics)``, and ``config(profile)`` alone (what a
    results file stores beside the numbers, cheap to build)."""

    description: str
    run: Callable[[Profile], tuple[Any, dict[str, Any]]]
    config: Callable[[Profile], Any]


STUDIES: dict[str, Study] = {
    "t2i_ablation": Study("mini paper Table 3a/3b: plain encoder vs encoder + noise vs Text VE, and the Text VE's "
                          "loss", ablation.run, ablation.config),
    "t2i_comparison": Study("CrossFlow vs standard flow matching at equal size and steps on ShapesWorld and "
                            "Fashion-MNIST: mini-GenEval, class accuracy, FID with floor, ms/image", comparison.run, comparison.config),
    "t2i_scaling": Study("mini paper Fig. 3: both methods at 3 sizes x 3 training lengths, mini-GenEval", scaling.run, scaling.config),
    "t2i_variants": Study("what it takes for CrossFlow to compose: Text VE variants (the paper's, the public code's KL, "
                          "a patch-query head, alignment to the image latent, ...) beside the baseline at one budget, "
                          "mini-GenEval on test prompts", variants.run, variants.config),
    "t2i_tradeoff": Study("composition against arithmetic: the Text VE's alignment weight x KL weight on the rich "
                          "captions at one budget, beside the paper's head and the baseline - mini-GenEval and "
                          "Table-8 arithmetic on validation and test prompts; the rule that picks the shipped default",
                          tradeoff.run, tradeoff.config),
    "depth": Study("mini paper Table 5: CrossFlow vs standard flow matching vs regression on DepthWorld (test split, "
                   "as predicted and aligned) and zero-shot on the Middlebury Motorcycle", depth.run, depth.config),
    "sr": Study("mini paper Table 6: 4x super-resolution of photo patches - bicubic, regression (L1, L2), standard "
                "flow matching, CrossFlow from the upsampled image (sources: none / fixed noise / VE); PSNR, SSIM, "
                "FID and KID with floors", sr.run, sr.config),
    "sr_dynamics": Study("super-resolution training dynamics: validation PSNR against steps (EMA and raw weights) for "
                         "the levers of the recipe - identity start, learning rate, unconditional share, time "
                         "sampler - and against the number of Euler steps", lambda p: dynamics.run(p, "sr"),
                         lambda p: dynamics.config(p, "sr")),
    "depth_dynamics": Study("depth training dynamics: validation delta1 / AbsRel (predicted and aligned) against steps "
                            "for the levers of the recipe", lambda p: dynamics.run(p, "depth"),
                            lambda p: dynamics.config(p, "depth")),
    "captioning": Study("mini paper Table 4: CrossFlow image -> text vs standard flow matching, the direct and the "
                        "autoregressive captioner (BLEU-4, ROUGE-L, CIDEr-D, scene accuracy by parsing), the text "
                        "autoencoder's reconstruction, and the cycle text -> image -> text", captioning.run, captioning.config),
    "captioning_schedule": Study("the CrossFlow captioner's training schedule, measured once: text autoencoder frozen "
                                 "(shipped) vs trained jointly with the flow, same start and steps",
                                 captioning_schedule.run, captioning_schedule.config),
    "arithmetic": Study("mini paper Table 8 and Fig. 5-6: latent addition, subtraction and attribute edits with the "
                        "shipped t2i_shapes model, judged (held-out combinations apart), beside the trivial answer; "
                        "the strength sweep; lerp / slerp interpolation read along the path", arithmetic.run, arithmetic.config),
}
#: Names that stand for several studies (``reproduce t2i`` runs the comparison and the scaling study).
STUDY_GROUPS: dict[str, tuple[str, ...]] = {"t2i": ("t2i_comparison", "t2i_scaling")}


def get(name: str) -> Study:
    """The study ``name``; an unknown name lists the studies (and the closest)."""
    if name not in STUDIES:
        raise registry.UnknownCheckpointError(
            f"unknown study {name!r}.{registry.closest(name, list(STUDIES))} Studies: {', '.join(sorted(STUDIES))}")
    return STUDIES[name]


def run_study(name: str, profile: Profile | None = None) -> dict[str, Any]:
    """Run the study ``name`` for ``profile`` and write its results file (not under ``smoke``: a smoke run only
    checks that the study works)."""
    profile = profile or get_profile()
    cfg, metrics = get(name).run(profile)
    if profile.name != "smoke":
        write_results(name, profile.name, cfg, metrics, "reproduce", profile.device)
    return metrics


def results_for(name: str, profile: Profile | None = None) -> dict[str, Any]:
    """What a notebook shows as the stored result of ``name`` (a study or a checkpoint).

    ``data/results/<name>.json`` where it exists. Under the ``smoke`` profile, before the full results exist, the
    study (or the checkpoint's own measurements) is run at smoke size instead and returned without being written, so
    that every notebook runs end to end in CI; its ``profile`` says ``smoke``. Any other profile raises the error that
    names the command."""
    profile = profile or get_profile()
    verb = "reproduce" if name in STUDIES else "train"
    if results_path(name).exists() or profile.name != "smoke":
        return load_results(name, verb)
    if name in STUDIES:
        cfg, metrics = STUDIES[name].run(profile)
    else:
        cfg, (_, meta) = registry.recipe(name, profile), registry.find(name, profile)
        metrics = meta["metrics"]
    return {"name": name, "profile": profile.name, "config_hash": config_hash(cfg), "config": to_dict(cfg),
            "command": f"CROSSFLOW_PROFILE=smoke python -m crossflow_mini {verb} {name}", "metrics": metrics}


__all__ = ["Study", "STUDIES", "STUDY_GROUPS", "get", "run_study", "results_for"]

"""The captioning study (``python -m crossflow_mini reproduce captioning``, paper Table 4): the four captioners side by
side, the text autoencoder's reconstruction, the paper's numbers beside ours, and the cycle text -> image -> text.

* :func:`comparison_rows` - one row per captioner: parameters it captions with, BLEU-4 / ROUGE-L / CIDEr-D (x 100,
  against the scene's paraphrases), scene exact match per scene kind and on held-out combinations, the parse rate,
  ms per image; the paper's Table 4 rows (COCO, a different data set and scale) after ours, never mixed with them.
* :func:`run_cycle` - prompts of test scenes -> the text-to-image model -> images -> a captioner -> captions, judged
  both ways against the prompt's scene: the IMAGE by the ShapesWorld judge (:func:`read_as_scene`), the CAPTION by the
  grammar's parser; beside it the same captioner on the real renders of the same scenes (its ceiling).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .. import registry
from ..pipelines import CrossFlowPipeline
from ..datasets import shapes as sw
from ..datasets.shapes_text import scene_matches
from ..eval.captions import PAPER_CAPTIONING, scene_scores
from ..eval.judge import JudgeNet, ReadObject, read_scenes
from ..profiles import Profile
from ..tasks.captioning.data import image_latents
from ..tasks.captioning.evaluate import captions_of, evaluate_captioner, evaluate_text_autoencoder
from .configs import CaptioningStudyConfig

#: The four captioners of the comparison, in table order, and how the table names them.
CAPTIONERS: dict[str, str] = {
    "caption_crossflow": "CrossFlow (image VE -> flow -> text latent -> NAR decoder)",
    "caption_baseline": "standard flow matching (noise -> text latent, cross-attention to the image)",
    "caption_direct": "direct (image -> NAR decoder, end to end)",
    "caption_autoregressive": "autoregressive transformer (word by word)",
}
SCENE_GROUPS = ("single", "pair", "count", "heldout_combinations")


def comparison_rows(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Table rows from each captioner's evaluation (:func:`~crossflow_mini.tasks.captioning.evaluate.evaluate_captioner`):
    ours first, then the paper's Table 4 (quoted, not measured)."""
    rows = []
    for name, res in results.items():
        test = res["test"]
        row = {"method": CAPTIONERS.get(name, name), "checkpoint": name, "source": "ours (ShapesWorld test split)",
               "parameters": res["parameters"]["captioning"], "guidance_scale": res.get("chosen_scale"),
               **test["metrics"], "scene_exact": test["scene"]["scene"], "parse_rate": test["scene"]["parsed"],
               "ms_per_image": test["ms_per_image"]}
        for group in SCENE_GROUPS:
            row[f"scene_exact_{group}"] = test["groups"].get(group, {}).get("scene")
        rows.append(row)
    for method, numbers in PAPER_CAPTIONING.items():
        rows.append({"method": method, "source": "paper Table 4 (COCO Karpathy test; quoted, not measured)",
                     **numbers})
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The README table of :func:`comparison_rows`: ours, then the paper's (blank where the paper gives no number)."""
    cols = [("BLEU-4", "B@4", 1), ("ROUGE-L", "R-L", 1), ("CIDEr", "CIDEr-D", 1), ("scene_exact", "scene", 3),
            ("scene_exact_single", "single", 3), ("scene_exact_pair", "pair", 3), ("scene_exact_count", "count", 3),
            ("scene_exact_heldout_combinations", "held-out", 3), ("parse_rate", "parsed", 3)]
    lines = ["| method | parameters | " + " | ".join(c[1] for c in cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    for row in rows:
        params = f"{row['parameters'] / 1e6:.2f}M" if row.get("parameters") else ""
        cells = [f"{row[key]:.{digits}f}" if isinstance(row.get(key), (int, float)) else "" for key, _, digits in cols]
        lines.append(f"| {row['method']} | {params} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def readme_table(results: dict[str, Any]) -> str:
    """The README table of a stored ``reproduce captioning`` result (``metrics`` of data/results/captioning.json),
    named like the depth and super-resolution tasks' ``readme_table``."""
    return markdown_table(results["table"])


# ------------------------------------------------------------------------------------------------- cycle
def read_as_scene(read: list[ReadObject]) -> dict[str, Any] | None:
    """What the judge read in an image, in the layout of :func:`~crossflow_mini.datasets.shapes_text.parse_caption`
    (so :func:`~crossflow_mini.datasets.shapes_text.scene_matches` scores images and captions alike): the objects left
    to right; the kind - one object: single, identical objects: count, else pair; a single object's position region,
    a pair's relation (object 0 REL object 1). None if the judge found nothing."""
    if not read:
        return None
    objects = [{"shape": sw.SHAPES[o.shape], "colour": sw.COLOURS[o.colour], "size": sw.SIZES[o.size]} for o in read]
    alike = len({(o["shape"], o["colour"]) for o in objects}) == 1
    read_kind = "single" if len(read) == 1 else "count" if alike else "pair"
    position = relation = None
    if read_kind == "single":
        position = sw.POSITIONS[int(sw.position_of(np.array([read[0].centre]))[0])]
    if read_kind == "pair" and len(read) == 2:
        relation = sw.RELATIONS[int(sw.relation_of(np.array(read[0].centre), np.array(read[1].centre)))]
    return {"kind": read_kind, "n_objects": len(read), "objects": objects, "position": position, "relation": relation}


def image_scene_scores(judge: JudgeNet, images: torch.Tensor, attributes: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Images ``(B, 3, H, W)`` in [-1, 1] judged against the scenes they should show, with the keys of
    :func:`~crossflow_mini.eval.captions.scene_scores` (``scene``: everything right; ``parsed``: the judge found an
    object)."""
    rows = [scene_matches(read_as_scene(read), a) for read, a in zip(read_scenes(judge, images), attributes)]
    out: dict[str, float] = {}
    for key in rows[0]:
        values = [r[key] for r in rows if r[key] is not None]
        out[key] = round(float(np.mean(values)), 4) if values else float("nan")
    out["n"] = float(len(rows))
    return out


def cycle_indices(split: sw.ShapesWorldSplit, per_kind: int) -> np.ndarray:
    """The first ``per_kind`` scenes of each kind of a split."""
    return np.concatenate([np.flatnonzero(split.kinds == k)[:per_kind] for k in range(len(sw.SCENE_KINDS))])


def run_cycle(text_to_image: Callable[[list[str]], torch.Tensor], caption: Callable[[torch.Tensor], list[str]],
              judge: JudgeNet, prompts_split: sw.ShapesWorldSplit, idx: np.ndarray) -> dict[str, Any]:
    """Prompt -> image -> caption for the scenes ``idx`` of ``prompts_split`` (whose captions are the prompts).

    ``text_to_image(prompts) -> images (B, 3, H, W) in [-1, 1]``; ``caption(images) -> captions``. Per scene kind:
    the generated image judged against the prompt's scene, the caption of the generated image parsed against it, and
    the caption of the REAL render of the same scene (the captioner's ceiling)."""
    t0 = time.perf_counter()
    prompts = [prompts_split.captions[int(i)] for i in idx]
    attrs = [prompts_split.attributes(int(i)) for i in idx]
    generated = text_to_image(prompts)
    real = prompts_split.images_tensor()[torch.from_numpy(np.asarray(idx))]
    caps_generated, caps_real = caption(generated), caption(real)
    kinds = prompts_split.kinds[idx]
    out: dict[str, Any] = {"by_kind": {}}
    for k, kind in enumerate(sw.SCENE_KINDS):
        sel = np.flatnonzero(kinds == k)
        if not len(sel):
            continue
        a = [attrs[j] for j in sel]
        out["by_kind"][kind] = {
            "n": int(len(sel)),
            "image_vs_prompt": image_scene_scores(judge, generated[sel], a),
            "caption_of_generated_vs_prompt": _rounded(scene_scores([caps_generated[j] for j in sel], a)),
            "caption_of_real_vs_prompt": _rounded(scene_scores([caps_real[j] for j in sel], a)),
        }
    out["examples"] = [{"prompt": p, "caption_of_generated": cg, "caption_of_real": cr}
                       for p, cg, cr in list(zip(prompts, caps_generated, caps_real))[::max(1, len(prompts) // 9)]]
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


# ------------------------------------------------------------------------------------------------- study
TRAINING_KEYS = ("train_steps", "train_seconds_all_parts", "train_seconds_this_run", "seconds_per_step", "device",
                 "torch_threads")


def run_study(find: Callable[[str], tuple[torch.nn.Module, dict[str, Any]]], recipes: dict[str, Any],
              autoencoder: torch.nn.Module, eval_cfg: Any, study_cfg: CaptioningStudyConfig,
              judge: JudgeNet | None = None, t2i_pipe: Any = None, device: Any = None) -> dict[str, Any]:
    """The numbers of ``data/results/captioning.json``. ``find(name) -> (model, meta)`` gives each checkpoint
    (``text_autoencoder_shapes`` and the :data:`CAPTIONERS`); ``recipes`` their recipes. Every captioner is measured
    anew by :func:`~crossflow_mini.tasks.captioning.evaluate.evaluate_captioner` (guidance chosen on validation images) beside
    its recorded training time. With a ``judge`` and a text-to-image pipeline (``CrossFlowPipeline``), the cycle runs
    too, with ``study_cfg.cycle_captioner`` at its chosen scale."""
    text_ae, text_meta = find("text_autoencoder_shapes")
    out: dict[str, Any] = {"text_autoencoder": evaluate_text_autoencoder(text_ae, recipes["text_autoencoder_shapes"])}
    out["text_autoencoder"]["training"] = {k: text_meta["metrics"].get(k) for k in TRAINING_KEYS}
    results, models = {}, {}
    for name in CAPTIONERS:
        model, meta = find(name)
        recipe = recipes[name]
        results[name] = evaluate_captioner(model, recipe, autoencoder, text_ae if recipe.is_flow else None, eval_cfg,
                                           device)
        results[name]["training"] = {k: meta["metrics"].get(k) for k in TRAINING_KEYS}
        models[name] = model
    out["captioners"] = results
    out["table"] = comparison_rows(results)
    if judge is not None and t2i_pipe is not None and study_cfg.cycle_per_kind:
        name = study_cfg.cycle_captioner
        model, recipe = models[name], recipes[name]
        scale = results[name].get("chosen_scale")
        prompts = sw.load_shapes("test", t2i_pipe.recipe.shapes)  # the prompts in the text-to-image model's wording
        g_image = torch.Generator().manual_seed(study_cfg.seed)

        def text_to_image(texts: list[str]) -> torch.Tensor:
            arr = t2i_pipe(texts, guidance_scale=study_cfg.cycle_scale, generator=g_image, output_type="np").images
            return torch.from_numpy(arr).permute(0, 3, 1, 2) * 2 - 1

        def caption(images: torch.Tensor) -> list[str]:
            return captions_of(model, recipe, image_latents(autoencoder, images), text_ae if recipe.is_flow else None,
                               guidance_scale=scale, generator=torch.Generator().manual_seed(study_cfg.seed),
                               device=device)

        out["cycle"] = run_cycle(text_to_image, caption, judge, prompts, cycle_indices(prompts, study_cfg.cycle_per_kind))
        out["cycle"] |= {"captioner": name, "caption_guidance_scale": scale,
                         "t2i_guidance_scale": study_cfg.cycle_scale or t2i_pipe.sampling.guidance_scale}
    return out


def _rounded(d: dict[str, float]) -> dict[str, float]:
    return {k: (round(v, 4) if isinstance(v, float) and v == v else v) for k, v in d.items()}


def config(profile: Profile) -> dict[str, Any]:
    """What the study measures for a profile (stored beside its numbers): its sizes and every recipe."""
    names = ("text_autoencoder_shapes", *CAPTIONERS)
    return {"study": profile.caption_study, "eval": profile.caption_eval,
            **{n: registry.recipe(n, profile) for n in names}}


def run(profile: Profile) -> tuple[Any, dict[str, Any]]:
    """The study for a profile: ``(config, metrics)`` of ``data/results/captioning.json`` (with the cycle through the
    shipped text-to-image model where ``caption_study.cycle_per_kind`` asks for it)."""
    cfg = config(profile)
    recipes = {n: cfg[n] for n in ("text_autoencoder_shapes", *CAPTIONERS)}
    cycle = bool(profile.caption_study.cycle_per_kind)
    return cfg, run_study(lambda name: registry.find(name, profile), recipes,
                          registry.load("autoencoder_shapes", profile), profile.caption_eval, profile.caption_study,
                          registry.load("judge_shapes", profile) if cycle else None,
                          CrossFlowPipeline.from_pretrained("t2i_shapes", profile) if cycle else None, profile.device)


__all__ = ["CAPTIONERS", "SCENE_GROUPS", "comparison_rows", "markdown_table", "readme_table",
           "read_as_scene", "image_scene_scores", "cycle_indices", "run_cycle", "run_study", "config", "run"]

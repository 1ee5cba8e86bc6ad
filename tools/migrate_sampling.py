"""One-off migration: sampling settings leave the checkpoints' hashed configs (run once, then deleted).

The redesign moved a flow checkpoint's sampling settings - the guidance weight (``GuidanceConfig.scale``,
``BaselineConfig.scale``), ``sample_steps``, ``sampler`` and ``n_samples`` - out of its recipe's hashed config into
``sampling.json`` beside the weights. The weights do not change; their config's JSON and hash do. For every shipped
checkpoint this script

1. checks that the stored config, with exactly those keys removed, IS the config the code now builds for it (any
   other difference stops the migration: that would be a different recipe, not a move);
2. rewrites ``model.safetensors`` with the same tensors and the new hash in its header, and checks that every tensor
   reads back bit for bit;
3. writes ``sampling.json``: the steps, solver and averaged flows the old config held, and the guidance weight chosen
   on validation data (``metrics.chosen_scale``) where the evaluation chose one, else the old config's;
4. rewrites ``config.json`` (new config, hash, checksum and command; the metrics untouched);

and then rewrites every ``data/results/*.json`` whose stored config changed the same way (new config and hash, the
metrics untouched). ``--check`` only reports.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from crossflow_mini import checkpoints, registry
from crossflow_mini.configs import config_hash, to_dict
from crossflow_mini.core.sampling import SamplingConfig
from crossflow_mini.paths import CHECKPOINT_DIR, RESULTS_DIR
from crossflow_mini.profiles import get_profile
from crossflow_mini.studies import catalog

SAMPLING_KEYS = ("sample_steps", "sampler", "n_samples")


def strip(d):
    """A stored recipe dict without the sampling settings that moved out (recursively for study configs)."""
    if isinstance(d, list):
        return [strip(x) for x in d]
    if not isinstance(d, dict):
        return d
    out = {k: strip(v) for k, v in d.items() if k not in SAMPLING_KEYS}
    model = out.get("model")
    if isinstance(model, dict) and ("velocity" in model or "network" in model):
        model.pop("scale", None)
        if isinstance(model.get("guidance"), dict):
            model["guidance"].pop("scale", None)
    for key in ("guidance",):  # a bare model config (study rows)
        if isinstance(out.get(key), dict) and "p_uncond" in out[key]:
            out[key].pop("scale", None)
    return out


def old_sampling(old: dict, metrics: dict) -> SamplingConfig:
    model = old.get("model", {})
    scale = metrics.get("chosen_scale")
    if scale is None:
        scale = model.get("scale", model.get("guidance", {}).get("scale", 1.0))
    return SamplingConfig(guidance_scale=float(scale), steps=int(old.get("sample_steps", 20)),
                          sampler=old.get("sampler", "euler"), n_samples=int(old.get("n_samples", 1)))


def migrate_checkpoint(name: str, profile, write: bool) -> str:
    directory = CHECKPOINT_DIR / name
    meta = json.loads((directory / checkpoints.CONFIG_FILE).read_text())
    recipe = registry.recipe(name, profile)
    new = to_dict(recipe)
    if meta["config"] == new and meta["config_hash"] == config_hash(recipe):
        return "unchanged"
    if strip(meta["config"]) != new:
        raise SystemExit(f"{name}: the stored config differs from the code's by more than the sampling settings")
    sampling = old_sampling(meta["config"], meta["metrics"])
    if getattr(recipe, "sampling", None) is not None and (sampling.steps, sampling.sampler, sampling.n_samples) != (
            recipe.sampling.steps, recipe.sampling.sampler, recipe.sampling.n_samples):
        raise SystemExit(f"{name}: stored steps/solver {sampling} differ from the recipe's {recipe.sampling}")
    if not write:
        return f"would migrate: hash {meta['config_hash']} -> {config_hash(recipe)}, {sampling}"
    weights = directory / checkpoints.WEIGHTS_FILE
    with safe_open(str(weights), framework="pt") as fh:
        header = dict(fh.metadata() or {})
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    header["config_hash"] = config_hash(recipe)
    blob = save(tensors, metadata=header)
    tmp = weights.with_suffix(".tmp")
    tmp.write_bytes(blob)
    with safe_open(str(tmp), framework="pt") as fh:
        for k in tensors:
            if not torch.equal(fh.get_tensor(k), tensors[k]) or fh.get_tensor(k).dtype != tensors[k].dtype:
                raise SystemExit(f"{name}: tensor {k} does not read back bit for bit")
    tmp.replace(weights)
    checkpoints.write_sampling(directory, sampling)
    meta.update(config=new, config_hash=config_hash(recipe), command=f"python -m crossflow_mini train {name} --overwrite")
    meta[checkpoints.CHECKSUM_KEY] = hashlib.sha256(blob).hexdigest()
    meta["migrated"] = "sampling settings moved from the hashed config to sampling.json; weights unchanged"
    (directory / checkpoints.CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return f"migrated: {sampling}"


def migrate_results(name: str, cfg, write: bool, sampling: SamplingConfig | None = None) -> str:
    path = RESULTS_DIR / f"{name}.json"
    blob = json.loads(path.read_text())
    new = to_dict(cfg)
    schedule = blob["config"].get("schedule") if name == "captioning_schedule" else None
    if schedule is not None and schedule.get("scale") is None:
        # the study then ran at "the captioner's default", which was GuidanceConfig's 4.0 (its results say "w=4");
        # the setting is now written out
        schedule["scale"] = 4.0
    if blob["config"] == new and blob["config_hash"] == config_hash(cfg):
        return "unchanged"
    if strip(blob["config"]) != new:
        raise SystemExit(f"results {name}: the stored config differs from the code's by more than the sampling "
                         f"settings")
    if not write:
        return f"would rewrite config (hash {blob['config_hash']} -> {config_hash(cfg)})"
    blob["config"], blob["config_hash"] = new, config_hash(cfg)
    if sampling is not None:
        blob["sampling"] = {"guidance_scale": sampling.guidance_scale, "steps": sampling.steps,
                            "sampler": sampling.sampler, "n_samples": sampling.n_samples}
    path.write_text(json.dumps(blob, indent=2) + "\n")
    return "rewritten"


def main() -> int:
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--check", action="store_true", help="report only")
    write = not args.parse_args().check
    full = get_profile("full", device="cpu")
    for name in sorted(p.name for p in CHECKPOINT_DIR.iterdir() if p.is_dir()):
        print(f"{name:24s} {migrate_checkpoint(name, full, write)}")
        if (RESULTS_DIR / f"{name}.json").exists():
            sampling = checkpoints.read_sampling(CHECKPOINT_DIR / name) if write else None
            print(f"{'':24s} results: {migrate_results(name, registry.recipe(name, full), write, sampling)}")
    for name, study in catalog.STUDIES.items():
        if (RESULTS_DIR / f"{name}.json").exists():
            print(f"{name:24s} study results: {migrate_results(name, study.config(full), write)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

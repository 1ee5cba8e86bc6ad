"""Carry the two shipped CrossFlow text-to-image checkpoints over to the general core's config layout.

Before the core redesign a CrossFlow model owned a ``text_ve`` and an ``image_tower``; now it owns a ``source``
encoder (the Text VE) whose contrastive ``tower`` lives inside it. The networks are the same, parameter for
parameter, so the trained weights carry over by renaming keys; the config is rewritten in the new layout (the
new hash), and the metrics measured on the weights stay. The script then re-measures the test mini-GenEval at the
chosen guidance scale with the new code and refuses to write unless it reproduces the recorded number.

    python tools/migrate_checkpoints.py            # t2i_shapes and t2i_fashion

The weights were trained by the pre-redesign code; ``config.json`` says so under ``migrated_from``.
Retraining with ``python -m crossflow_mini train <name>`` gives a model of the same recipe from the new code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from safetensors.torch import load_file

from crossflow_mini import checkpoints
from crossflow_mini.profiles import get_profile
from crossflow_mini import registry

RENAMES = (("text_ve.", "source."), ("image_tower.", "source.tower."))


def rename(key: str) -> str:
    for old, new in RENAMES:
        if key.startswith(old):
            return new + key[len(old):]
    return key


def _no_times(x):
    """A metrics tree without its wall-clock entries (those differ run to run)."""
    if isinstance(x, dict):
        return {k: _no_times(v) for k, v in x.items() if k != "seconds"}
    return x


def migrate(name: str) -> None:
    folder = checkpoints.shipped_dir(name)
    meta = json.loads((folder / "config.json").read_text())
    if "source" in meta["config"]["model"]:
        print(f"{name}: already in the new layout")
        return
    profile = get_profile("full")
    entry = registry.get(name)
    recipe = entry.recipe(profile)
    model = entry.build(recipe)
    weights = {rename(k): v for k, v in load_file(folder / "model.safetensors").items()}
    model.load_state_dict({k: v.float() for k, v in weights.items()}, strict=True)
    dtype = next(iter(weights.values())).dtype
    old = meta["metrics"]
    print(f"{name}: weights load into the new model; re-measuring...", flush=True)
    check = entry.evaluate(model, recipe, profile)
    key = next(k for k in ("test_at_chosen_scale", "test_class_accuracy", "test") if k in old)
    if _no_times(check.get(key)) != _no_times(old[key]):
        sys.exit(f"{name}: {key} does not reproduce:\n  recorded {old[key]}\n  measured {check.get(key)}")
    print(f"{name}: {key} reproduces exactly")
    checkpoints.save_checkpoint(folder, model.state_dict(), recipe, name=name, kind=meta["kind"],
                                metrics=old, dtype=dtype)
    new = json.loads((folder / "config.json").read_text())
    new["migrated_from"] = {"config_hash": meta["config_hash"], "weights_sha256": meta.get("weights_sha256"),
                            "how": "tools/migrate_checkpoints.py: keys renamed (text_ve. -> source., "
                                   "image_tower. -> source.tower.), weights unchanged"}
    (folder / "config.json").write_text(json.dumps(new, indent=2, sort_keys=True) + "\n")
    registry.write_results(name, profile, recipe, old, folder)


if __name__ == "__main__":
    for n in sys.argv[1:] or ["t2i_shapes", "t2i_fashion"]:
        migrate(n)

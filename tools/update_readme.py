"""Fill the README's tables from the files the project's commands wrote (nothing typed by hand):

* data/results/<name>.json         (python -m crossflow_mini train NAME)   -> results table
* data/results/notebook_times.json (make notebooks / make notebook-times-smoke) -> run-time table
* data/results/bench.json          (make bench)                              -> benchmark table

Each table sits between `<!-- begin:NAME -->` and `<!-- end:NAME -->` markers in README.md.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "data" / "results"
README = ROOT / "README.md"


def _load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def results_table() -> str:
    rows = ["| checkpoint | data | metric (test split) | ours | paper (reference) | command |", "|---|---|---|---|---|---|"]
    for name in ("autoencoder_shapes", "autoencoder_fashion"):
        r = _load(f"{name}.json")
        if r is None:
            continue
        m = r["metrics"]
        rows.append(f"| {name} | {m['dataset']} | reconstruction PSNR, {m['n_images']} test images | "
                    f"{m['psnr_db']:.2f} dB | - (SD-VAE, not reported) | `{r['command']}` |")
        if "psnr_db_heldout_combinations" in m:
            rows.append(f"| {name} | shapes, held-out combinations | reconstruction PSNR | "
                        f"{m['psnr_db_heldout_combinations']:.2f} dB | - | same |")
    j = _load("judge_shapes.json")
    if j is not None:
        for label, key in (("test split", "test"), ("held-out combinations", "test_heldout_combinations")):
            m = j["metrics"][key]
            accs = ", ".join(f"{k} {m[k]:.3f}" for k in ("count", "shape", "colour", "size", "position"))
            rows.append(f"| judge_shapes | shapes, {label} ({m['n_images']} renders) | judge accuracy per attribute | "
                        f"{accs} | - (GenEval uses a detector) | `{j['command']}` |")
    return "\n".join(rows)


def runtimes_table() -> str:
    t = _load("notebook_times.json") or {}
    names = sorted(set(t.get("course", {})) | set(t.get("smoke", {})))
    rows = ["| notebook | course profile | smoke profile |", "|---|---|---|"]
    for n in names:
        c, s = t.get("course", {}).get(n), t.get("smoke", {}).get(n)
        rows.append(f"| {n} | {f'{c:.0f} s' if c is not None else '-'} | {f'{s:.0f} s' if s is not None else '-'} |")
    rows.append("")
    rows.append(f"Machine: {t.get('machine', '?')}. Made by `make notebooks` and `make notebook-times-smoke` "
                f"(kernel start-up included).")
    return "\n".join(rows)


def bench_table() -> str:
    b = _load("bench.json")
    if b is None:
        return "(run `make bench`)"
    return "\n".join([
        "| what | figure |", "|---|---|",
        f"| ShapesWorld rendering (images + captions + attributes) | {b['shapes_images_per_s']:,.0f} images/s |",
        f"| MiniLM text encoder, cold | {b['text_cold_captions_per_s']:,.0f} captions/s |",
        f"| MiniLM text encoder, cached | {b['text_cached_captions_per_s']:,.0f} captions/s |",
        f"| Autoencoder training (shipped recipe, batch 32) | {b['autoencoder_train_samples_per_s']:,.0f} samples/s |",
        "", f"Machine: {b.get('machine', '?')}. Made by `make bench`."])


def fill(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- begin:{name} -->\n)(?:.*?\n)?(<!-- end:{name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no <!-- begin:{name} --> ... <!-- end:{name} --> markers")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def main() -> int:
    text = README.read_text()
    for name, fn in (("results", results_table), ("runtimes", runtimes_table), ("bench", bench_table)):
        text = fill(text, name, fn())
    README.write_text(text)
    print("README.md tables updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fill the README's tables from the files the project's commands wrote (nothing typed by hand):

* data/results/<name>.json         (python -m crossflow_mini train NAME)   -> results table
* data/results/t2i_ablation.json   (python -m crossflow_mini reproduce t2i_ablation) -> ablation table
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
    t = _load("t2i_shapes.json")
    if t is not None:
        m = t["metrics"]
        w = m["chosen_scale"]
        for label, key in (("CFG off (w = 1)", "test_cfg_off"),
                           (f"CFG on (w = {w:g}, chosen on val)", "test_at_chosen_scale")):
            for group, r in m[key].items():
                accs = ", ".join(f"{k} {r[k]:.3f}" for k in ("colour", "shape", "position", "all"))
                rows.append(f"| t2i_shapes | shapes, single-object prompts, {group.replace('_', ' ')} "
                            f"({r['n_prompts']}) | judge accuracy, {label} | {accs} | GenEval single object 0.98 "
                            f"(Table 2, different benchmark) | `{t['command']}` |")
    return "\n".join(rows)


def ablation_table() -> str:
    a = _load("t2i_ablation.json")
    if a is None:
        return "(run `CROSSFLOW_PROFILE=full python -m crossflow_mini reproduce t2i_ablation`)"
    m = a["metrics"]
    paper = {"3a:plain": 66.65, "3a:noise": 59.91, "3a:ve": 40.78, "3b:text_text": 34.67, "3b:image_text": 33.41}
    rows = ["| run | z0 from | Text VE loss | colour | shape | position | all | paper FID-10K (70M, Table 3a/3b) |",
            "|---|---|---|---|---|---|---|---|"]
    for label, r in m["runs"].items():
        rows.append(f"| {label} | {r['text_ve']['variant']} | {r['text_ve']['enc_loss']} | {r['colour']:.3f} | "
                    f"{r['shape']:.3f} | {r['position']:.3f} | {r['all']:.3f} | {paper.get(label, '-')} |")
    rows += ["", f"{m['train_steps']} training steps per run, judged at w = {m['guidance_scale']:g} on "
             f"{next(iter(m['runs'].values()))['n_prompts']} single-object *validation* prompts; higher is better "
             f"here, lower is better for the paper's FID. Made by `{a['command']}`."]
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
        *([f"| CrossFlow training (shipped t2i_shapes recipe) | {b['t2i_train_samples_per_s']:,.0f} samples/s; "
           f"{b['t2i_train_gflop_per_step']:.1f} GFLOP per step = {b['t2i_train_gflops']:.1f} GFLOP/s, "
           f"{b['t2i_train_gflops'] / b['matmul_peak_gflops']:.0%} of the measured fp32 matmul peak "
           f"({b['matmul_peak_gflops']:.0f} GFLOP/s) |",
           f"| CrossFlow sampling, {b['t2i_sample_steps']} Euler steps, batch 250 | "
           f"{b['t2i_sample_ms_per_image_w1']:.2f} ms/image without guidance, "
           f"{b['t2i_sample_ms_per_image_cfg']:.2f} ms/image with CFG |"] if "t2i_train_gflops" in b else []),
        "", f"Machine: {b.get('machine', '?')}. Made by `make bench`."])


def fill(text: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- begin:{name} -->\n)(?:.*?\n)?(<!-- end:{name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no <!-- begin:{name} --> ... <!-- end:{name} --> markers")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def main() -> int:
    text = README.read_text()
    for name, fn in (("results", results_table), ("ablation", ablation_table), ("runtimes", runtimes_table),
                     ("bench", bench_table)):
        text = fill(text, name, fn())
    README.write_text(text)
    print("README.md tables updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())

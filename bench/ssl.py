"""Frozen Whisper encoders (offline weights) + linear probe on the shared corpora.

For each corpus and backbone: extract every hidden layer, mean+std pooled, once (timed: audio
seconds per wall second), then run ``configs/bench/<corpus>_<backbone>.yaml`` with ``serkit run``'s
pipeline. The layer and C are chosen by a speaker-grouped inner grid search on the training folds
only. Writes bench/results/ssl.md beside the EmoBox published figures; run directories go to
runs/bench/.

    .venv/bin/python bench/ssl.py [--corpora emodb savee] [--backbones whisper_base whisper_tiny]
                                  [--extract-only] [--variants default logreg no_spknorm]
"""
from __future__ import annotations

import os
import sys

# this file is named like the standard library's ssl module: keep bench/ off the import path
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path

import torch
from rich.console import Console

from serkit.config import load_config
from serkit.evaluation.protocol import load_manifest, run_experiment
from serkit.features import ssl as ssl_features
from serkit.features.base import make_extractor
from serkit.features.extract import extract_manifest

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ["emodb", "savee", "ravdess", "tess", "cremad"]
#: EmoBox intra-corpus UA % (frozen encoders; Ma et al. 2024), shared/benchmarks/README.md
EMOBOX = {
    "ravdess": {"wav2vec2-base": 54.33, "HuBERT-base": 65.43, "WavLM-large": 72.00, "Whisper-large-v3": 75.32},
    "cremad": {"wav2vec2-base": 61.95, "HuBERT-base": 71.13, "WavLM-large": 74.50, "Whisper-large-v3": 76.75},
    "emodb": {"wav2vec2-base": 82.06, "HuBERT-base": 87.73, "WavLM-large": 92.58, "Whisper-large-v3": 91.26},
    "savee": {"wav2vec2-base": 44.89, "HuBERT-base": 58.90, "WavLM-large": 66.74, "Whisper-large-v3": 74.07},
    "tess": {"wav2vec2-base": 97.92, "HuBERT-base": 99.62, "WavLM-large": 99.78, "Whisper-large-v3": 99.96},
}
#: variant -> overrides on the corpus config
VARIANTS = {
    "default": [],
    "no_spknorm": ["features.speaker_norm=false"],
    # single layers only (the configs' grid also has concatenations and the layer average)
    "single": ["model.grid={layer__layer: %(layers)s, clf__C: [1.0, 10.0]}"],
    "logreg": ["model.params={n_layers: %(L)d, clf: logreg, C: 0.1, tol: 0.001, max_iter: 300}",
               "model.grid.clf__C=[0.01, 0.1]"],
}


def pct(m: dict) -> str:
    return f"{100 * m['mean']:.1f} ± {100 * m['std']:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpora", nargs="*", default=CORPORA)
    ap.add_argument("--backbones", nargs="*", default=["whisper_base"])
    ap.add_argument("--variants", nargs="*", default=["default"], choices=list(VARIANTS))
    ap.add_argument("--extract-only", action="store_true")
    ap.add_argument("--from-runs", action="store_true",
                    help="only collect existing runs/bench/<name>/metrics.json into the tables")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "ssl.md"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    ssl_features.register_models()
    console = Console()
    results_json = Path(args.out).with_suffix(".json")
    rows: dict = {}  # this process's entries, merged into the file at each save

    def save() -> dict:
        merged = json.loads(results_json.read_text()) if results_json.exists() else {}
        merged.update(rows)
        results_json.write_text(json.dumps(merged, indent=1))
        write(args.out, merged)
        return merged
    t0 = time.time()
    for corpus in args.corpora:
        for bb in args.backbones:
            cfg_path = ROOT / f"configs/bench/{corpus}_{bb}.yaml"
            cfg = load_config(cfg_path, ["report=false"])
            if args.from_runs:
                for v in args.variants:
                    name = f"{corpus}_{bb}" + ("" if v == "default" else f"_{v}")
                    mj = ROOT / "runs" / "bench" / name / "metrics.json"
                    if mj.exists():
                        rows[f"{corpus}/{bb}/{v}"] = _row(json.loads(mj.read_text()), corpus, bb, v, [])
                save()
                continue
            manifest, _ = load_manifest(cfg)
            ext = make_extractor(cfg.features.kind, cfg.features.params)
            console.rule(f"{corpus} {bb}: extraction ({len(manifest)} files)")
            te = time.time()
            res = extract_manifest(manifest, ext, cfg.audio.model_dump(), cache_dir=cfg.features.cache_dir,
                                   n_jobs=1, progress=True)
            wall = time.time() - te
            audio_s = float(manifest["duration"].sum())
            fresh = len(manifest) - res.cached
            speed = {"files": len(manifest), "fresh": fresh, "audio_s": round(audio_s, 1),
                     "wall_s": round(wall, 1), "backbone_calls": ext.backbone_calls}
            key_x = f"{corpus}/{bb}/extraction"
            known = json.loads(results_json.read_text()) if results_json.exists() else {}
            if ext.backbone_calls > 0.5 * len(manifest):  # a real (not cached) extraction
                speed["audio_s_per_wall_s"] = round(audio_s / wall, 2)
                rows[key_x] = speed
            elif key_x not in known:
                rows[key_x] = speed
            console.print(speed)
            save()
            if args.extract_only:
                continue
            L = int(cfg.model.params.get("n_layers", 7))
            for v in args.variants:
                ov = [o % {"L": L, "layers": list(range(1, L))} for o in VARIANTS[v]]
                name = f"{corpus}_{bb}" + ("" if v == "default" else f"_{v}")
                c = load_config(cfg_path, ov + [f"name={name}", "report=false"])
                console.rule(name)
                r = run_experiment(c, ROOT / "runs" / "bench" / name, progress=False, console=console)
                rows[f"{corpus}/{bb}/{v}"] = _row(r.metrics, corpus, bb, v, ov)
                save()
    save()
    console.print(Path(args.out).read_text())
    console.print(f"total {time.time() - t0:.0f} s")


def _row(m: dict, corpus: str, bb: str, v: str, ov: list[str]) -> dict:
    return {"corpus": corpus, "backbone": bb, "variant": v, "ua": m["ua"], "wa": m["wa"],
            "macro_f1": m["macro_f1"], "wall_time_s": m["wall_time_s"], "protocol": m["protocol"],
            "overrides": ov, "best_params": [f.get("best_params") for f in m["folds"]]}


def write(out: str, rows: dict) -> None:
    lines = ["# Frozen Whisper encoders + linear probe (bench/ssl.py)", "",
             "Every hidden layer of the (offline) Whisper encoder is mean+std pooled over the valid frames "
             "and cached once; a speaker-grouped inner grid search on the training folds picks the layer "
             "and C (the test fold never drives selection); features are z-normalised per speaker (no "
             "labels) unless noted. UA = balanced accuracy, WA = accuracy; % mean ± std over outer folds. "
             "Wall time on the shared 2-core CPU machine (load average 4-8 during these runs), probe only "
             "(features cached). Default probe: RBF SVM (C in {1, 10}); EmoBox column: published frozen-encoder UA (Ma et al. 2024).", "",
             "| corpus | backbone | variant | protocol | UA % | WA % | macro-F1 % | layers chosen (per fold) | wall s | EmoBox UA % (W2V2-b / HuBERT-b / WavLM-L / Whisper-L-v3) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for k, r in rows.items():
        if k.endswith("/extraction"):
            continue
        p = r["protocol"]
        proto = f"{p['kind']} ({p['n_folds']} folds, " + \
            ("speaker-independent)" if p["speaker_independent"] else "**speaker-dependent**)")
        chosen = ", ".join(str((bp or {}).get("layer__layer", "-")).replace(", ", "+")
                           for bp in r["best_params"])
        e = EMOBOX.get(r["corpus"], {})
        pub = " / ".join(f"{v:.1f}" for v in e.values())
        lines.append(f"| {r['corpus']} | {r['backbone']} | {r['variant']} | {proto} | {pct(r['ua'])} | "
                     f"{pct(r['wa'])} | {pct(r['macro_f1'])} | {chosen} | {r['wall_time_s']:.0f} | {pub} |")
    lines += ["", "## Extraction speed (all layers, one file at a time, CPU; shared machine, so indicative only)", "",
              "| corpus | backbone | files | audio s | wall s | audio s / wall s | note |",
              "|---|---|---|---|---|---|---|"]
    for k, r in rows.items():
        if k.endswith("/extraction"):
            corpus, bb, _ = k.split("/")
            lines.append(f"| {corpus} | {bb} | {r['files']} | {r['audio_s']} | {r['wall_s']} | "
                         f"{r.get('audio_s_per_wall_s', 'cached')} | {r.get('note', '')} |")
    lines += ["", "## Notes", "",
              "- Variants: `default` = `configs/bench/<corpus>_<backbone>.yaml`: the layer(s) are chosen "
              "among single layers 1..L-1, the concatenations of layers 1-3, 2-4 and 1..L-1, and the layer "
              "average, with C in {1, 10}, by a 3-fold speaker-grouped inner CV on the training folds; "
              "`single` restricts the grid to single layers; `no_spknorm` turns off per-speaker "
              "z-normalisation; `logreg` swaps the RBF SVM for logistic regression.",
              "- RAVDESS (1200 training files per fold) is too slow for that grid on this machine: its configs "
              "search single layers only (whisper-tiny: C in {1, 10}; whisper-base: C fixed to 10).",
              "- Extraction: with torch at 2 threads on the loaded 2-core machine the threads oversubscribe; "
              "1 thread was 3-4x faster (`SSLFeatures(num_threads=1)`).",
              "- Layers: 0 = the Whisper encoder's input embedding (conv stem + positions), L-1 = last layer "
              "(after the final LayerNorm). For emotion, the inner CV mostly picks early-middle layers.",
              "- TESS (`loso`) has one training speaker per fold, so no speaker-grouped inner CV is possible: "
              "its config fixes the layer (not chosen on TESS).",
              "- EmoBox figures come from much larger frozen encoders (Whisper large-v3: 32 layers, 1.5 B "
              "parameters) on the EmoBox folds; EmoBox's EmoDB folds are speaker-dependent, serkit's EmoDB "
              "row is speaker-independent (group_kfold), so the EmoDB comparison favours EmoBox.",
              "- Reproduce a row: `serkit run configs/bench/<corpus>_<backbone>.yaml` (features are cached "
              "under $SERKIT_CACHE; the backbone runs once per file for all layers).", ""]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

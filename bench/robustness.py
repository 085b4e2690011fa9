"""Robustness of a recipe: re-score the test folds of a finished run under degraded audio.

The shipped default model is trained on all the data, so its robustness is measured on its RECIPE:
a ``serkit run`` of ``configs/default.yaml`` (5 speaker-grouped folds over the five corpora) trains
one head per fold on clean training-fold features and saves it (``folds/<fold>/model``). This
script takes a stratified subset of the run's test utterances (``--per-corpus`` clips per corpus,
spread evenly over its labels, seeded), degrades each clip under every condition of
:data:`serkit.evaluation.degrade.CONDITIONS` (babble / white / pink noise at 20, 10 and 0 dB SNR,
8 kHz telephone band, Opus at 16 and 8 kbit/s, gain ±20 dB, clipping, 2 s and 1 s crops,
reverberation), extracts the recipe's features from the degraded audio (cached per condition) and
scores each clip with the model of the fold that held it out. UA is pooled over the subset (each
clip judged by a model that never heard its speaker); "clean" is the same subset undegraded.

Babble for a clip is the sum of ``--babble-talkers`` utterances of speakers from the other corpora
(other speakers of the same corpus when the run has one corpus), chosen with the clip's seed.

    nice -n 10 .venv/bin/python bench/robustness.py RUN_DIR [--per-corpus 30] [--seed 42]
        [--conditions babble_20dB telephone_8k ...] [--out bench/results/robustness.md]

Writes the Markdown table (``--out``) and the rows as JSON beside it (``.json``). The scoring is
:func:`serkit.evaluation.robustness.score_run` (also ``serkit robustness RUN_DIR``); this script
adds ``--train-augment`` and the page collecting several recipes.
"""
from __future__ import annotations

import os
import sys

# bench/ holds a file named like the standard library's ssl module: keep bench/ off the import path
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _HERE]

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from serkit.config import RunConfig  # noqa: E402
from serkit.evaluation.degrade import CONDITIONS, add_noise, telephone  # noqa: E402
from serkit.evaluation.robustness import (TARGETS, RunFeatures, clip_seed, fold_models,  # noqa: E402
                                          load_run, markdown_table, run_subset, score_run)
from serkit.features.cache import default_cache_dir  # noqa: E402
from serkit.features.pipeline import FeaturePipeline  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _rel(p: Path) -> str:
    try:
        return p.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return p.as_posix()


def train_copy(feats: RunFeatures, row) -> np.ndarray:
    """Features of one augmented copy of a training clip (cached): white or pink noise at an SNR
    drawn from [5, 20] dB, the telephone band, or both (chosen with the clip's seed). No babble:
    its talkers could be test speakers."""
    f = feats.file("train_augment", row.key)
    if f.exists():
        return np.load(f, allow_pickle=False)
    sr = feats.pipeline.sample_rate
    x = feats.load(row.path)
    rng = np.random.default_rng(clip_seed(row.key, feats.seed) + 7)
    kind = int(rng.integers(4))     # 0 white, 1 pink, 2 telephone, 3 telephone + pink
    if kind in (2, 3):
        x = telephone(x, sr)
    if kind != 2:
        x = add_noise(x, sr, rng, snr=float(rng.uniform(5, 20)), noise="white" if kind == 0 else "pink")
    out = feats.extract(x)
    f.parent.mkdir(parents=True, exist_ok=True)
    np.save(f, out, allow_pickle=False)
    return out


def _heads(run_dir: Path) -> str:
    """How the run's fold models were trained (clean audio, or with the recipe's augmented copies)."""
    aug = json.loads((run_dir / "metrics.json").read_text()).get("augment") or {}
    if not aug.get("copies"):
        return "the run's fold models (trained on clean audio only)"
    return (f"the run's fold models (trained on the clean training clips plus {aug['copies']} augmented "
            f"cop{'y' if aug['copies'] == 1 else 'ies'} of each: {', '.join(aug.get('transforms') or {})}; "
            "babble talkers from training speakers only)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path, help="a finished `serkit run` of the recipe (models saved per fold)")
    ap.add_argument("--per-corpus", type=int, default=30)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--conditions", nargs="*", default=list(CONDITIONS))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "robustness.md")
    ap.add_argument("--label", default=None, help="name of the recipe in the table (default: the run's)")
    ap.add_argument("--cache", type=Path, default=default_cache_dir().parent)
    ap.add_argument("--train-augment", action="store_true",
                    help="retrain each fold's head on its clean training clips plus one augmented copy "
                         "of each (white/pink noise at 5-20 dB SNR and/or telephone band) and score that")
    args = ap.parse_args(argv)

    run = load_run(args.run_dir)
    sub = run_subset(run, args.per_corpus, args.seed)
    feats = RunFeatures(run["pipeline"], args.cache, args.seed)
    if args.train_augment:
        models = train_augmented(run["config"], run["pipeline"], run["manifest"], run["predictions"], feats)
    else:
        models = fold_models(args.run_dir, sorted(sub["fold"].unique()))
    done = []

    def on_row(record: dict) -> None:
        new = [r for r in record["rows"] if r["condition"] not in done]
        for r in new:
            done.append(r["condition"])
            print(f"  {r['condition']:18s} UA {100 * r['ua']:5.1f}  ECE {100 * r['ece']:5.1f}  "
                  f"({r['wall_s']:.0f} s)", flush=True)
        _write(args, argv, record)

    # the target conditions run first, so that an interrupted run has them (rows are
    # written after every condition and shown in the table's order)
    score_run(args.run_dir, args.conditions, seed=args.seed, per_corpus=args.per_corpus, cache=args.cache,
              models=models, on_row=on_row, say=lambda m: print(m, flush=True))
    return 0


def train_augmented(cfg: RunConfig, pipeline: FeaturePipeline, manifest: pd.DataFrame, pred: pd.DataFrame,
                    feats: RunFeatures) -> dict:
    """One head per fold of the run, the recipe's model and calibration, trained on the fold's clean
    training features plus one augmented copy of each training clip (same speaker groups)."""
    from serkit.evaluation.estimators import build_estimator, fit_calibrated
    from serkit.evaluation.protocol import seed_everything

    fs = pipeline.fit(manifest).transform_manifest(manifest, progress=False)   # clean, from the cache
    man = fs.manifest
    t0 = time.time()
    aug = np.stack([train_copy(feats, r) for r in man.itertuples()])
    print(f"augmented copies of {len(man)} clips in {time.time() - t0:.0f} s", flush=True)
    y = man["label"].astype(str).to_numpy()
    groups = man["speaker"].astype(str).to_numpy()
    fold_of = dict(zip(pred["key"], pred["fold"]))
    folds = np.array([fold_of.get(k, "") for k in man["key"]])
    models = {}
    for k, f in enumerate(sorted(set(folds) - {""})):
        tr = np.flatnonzero(folds != f)
        seed_everything(cfg.seed + k)
        est = build_estimator(cfg, speaker_independent=True)
        X = np.concatenate([fs.X[tr], aug[tr]])
        est, _ = fit_calibrated(est, X, np.concatenate([y[tr], y[tr]]),
                                np.concatenate([groups[tr], groups[tr]]), None, cfg.calibration, cfg.seed + k)
        models[f] = est
        print(f"  {f}: head trained on {len(tr)} clean + {len(tr)} augmented clips", flush=True)
    return models


def _write(args, argv, rec: dict) -> None:
    record = {
        "run_dir": str(args.run_dir), "recipe": args.label or rec["name"], "seed": args.seed,
        "per_corpus": args.per_corpus, "n_clips": rec["n_clips"],
        "run_ua": rec["run_ua"], "calibration": rec.get("calibration"),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "command": "python " + shlex.join([_rel(Path(sys.argv[0])), *(argv or sys.argv[1:])]),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "rows": rec["rows"], "complete": rec["complete"],
        "heads": ("retrained per fold on the clean training clips plus one augmented copy of each (white "
                  "or pink noise at an SNR drawn from 5-20 dB, the telephone band, or telephone + pink "
                  "noise; no babble), the recipe's model and calibration otherwise"
                  if args.train_augment else _heads(args.run_dir)),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    js = args.out.with_suffix(".json")
    old = json.loads(js.read_text()) if js.exists() else {}
    old = old if isinstance(old, dict) and "recipes" in old else {"recipes": {}}
    old["recipes"][record["recipe"]] = record
    js.write_text(json.dumps(old, indent=1))
    args.out.write_text(render(old))
    if rec["complete"]:
        print(f"wrote {args.out} and {js}")


def render(data: dict) -> str:
    """The Markdown page for every recipe recorded in the JSON."""
    lines = ["# Robustness: UA under degraded audio (bench/robustness.py)", "",
             "Each recipe is run with `serkit run` (5 speaker-grouped folds over the five corpora; each "
             "fold's head trained as the recipe says, on training-fold speakers only), then a stratified subset of its test "
             "utterances is re-scored under each condition by the model of the fold that held it out "
             "(never trained on that speaker). UA = unweighted accuracy (mean per-class recall) pooled "
             "over the subset; *% of clean* = UA under the condition / UA of the same clips undegraded. "
             "ECE: expected calibration error, 15 bins. Targets of the issue: ≥ 90 % of clean UA at "
             "20 dB SNR and on telephone-band audio (**bold** = met, *italic* = missed).", "",
             "The first run below was made by `serkit train configs/default.yaml --run-dir RUN_DIR` (its `main` "
             "evaluation: the default model's recipe with augmented training copies and temperature scaling; "
             "its fold UAs equal the card's); the other two are the previous, clean-trained default's recipe "
             "(stop 16), without and with the bench's older `--train-augment` flag. "
             "Conditions (serkit.evaluation.degrade): babble = 4 talkers from the other corpora; white / "
             "pink Gaussian noise; SNR over the whole clip; telephone = 8 kHz, 300-3400 Hz; Opus via "
             "libsndfile at the nominal bitrate; gain in float (no clipping); clipping = hard clip at the "
             "level 5 % of samples exceed; crops at a random start; reverberation = synthetic room "
             "response with RT60 0.6 s. Degraded features are cached per condition, so a rerun only "
             "scores. The subset is small (100 clips per corpus): differences of a few points between "
             "conditions are within noise.", ""]
    for name, rec in data["recipes"].items():
        rows = rec["rows"]
        lines += [f"## {name}", "",
                  f"Run `{rec['run_dir']}` (UA over all test folds {100 * rec['run_ua']['mean']:.1f} ± "
                  f"{100 * rec['run_ua']['std']:.1f} %); {rec['n_clips']} test clips "
                  f"({rec['per_corpus']} per corpus, spread over the labels), seed {rec['seed']}, "
                  f"{rec['date']}. Command: `{rec['command']}`."
                  + ("" if rec.get("complete", True) else " **Interrupted: only the conditions listed ran.**"),
                  "", f"Heads: {rec.get('heads', 'the run' + chr(39) + 's fold models')}.", "",
                  ]
        lines += markdown_table(rows, TARGETS)
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

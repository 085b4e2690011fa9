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

Writes the Markdown table (``--out``) and the rows as JSON beside it (``.json``).
"""
from __future__ import annotations

import os
import sys

# bench/ holds a file named like the standard library's ssl module: keep bench/ off the import path
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _HERE]

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from serkit.config import RunConfig  # noqa: E402
from serkit.evaluation import metrics as M  # noqa: E402
from serkit.evaluation.degrade import CONDITIONS, add_noise, babble, degrade, telephone  # noqa: E402
from serkit.features.cache import default_cache_dir, params_hash  # noqa: E402
from serkit.features.pipeline import FeaturePipeline  # noqa: E402
from serkit.io.audio import load_audio  # noqa: E402
from serkit.models.capabilities import model_input  # noqa: E402
from serkit.models.persist import load_estimator  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: the issue's targets: share of clean UA kept (conditions -> fraction)
TARGETS = {"babble_20dB": 0.9, "white_20dB": 0.9, "pink_20dB": 0.9, "telephone_8k": 0.9}


def _rel(p: Path) -> str:
    try:
        return p.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return p.as_posix()


def _seed(key: str, seed: int) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}|{key}".encode(), digest_size=4).digest(), "little")


def subset(pred: pd.DataFrame, manifest: pd.DataFrame, per_corpus: int, seed: int) -> pd.DataFrame:
    """``per_corpus`` test rows per corpus, spread evenly over its labels (seeded)."""
    df = pred[["fold", "key", "speaker", "true"]].merge(manifest[["key", "path", "corpus"]], on="key")
    rng = np.random.default_rng(seed)
    parts = []
    for _, part in df.groupby("corpus", sort=True):
        labels = sorted(part["true"].unique())
        quota = {lab: per_corpus // len(labels) + (i < per_corpus % len(labels)) for i, lab in enumerate(labels)}
        for lab, rows in part.groupby("true", sort=True):
            take = min(quota[lab], len(rows))
            parts.append(rows.iloc[rng.permutation(len(rows))[:take]])
    return pd.concat(parts).sort_values("key").reset_index(drop=True)


class Features:
    """Features of degraded clips, cached as ``<cache>/robustness/<pipeline>/<condition>/<key>.npy``."""

    def __init__(self, pipeline: FeaturePipeline, cache: Path, seed: int):
        self.pipeline = pipeline
        self.ext = pipeline.extractors[0]
        spec = {"audio": pipeline.audio, "extractor": self.ext.cache_params(), "seed": seed}
        self.root = cache / "robustness" / params_hash(spec)
        self.seed = seed

    def __call__(self, condition: str, row, manifest: pd.DataFrame) -> np.ndarray:
        d = self.root / condition
        f = d / (hashlib.blake2b(row.key.encode(), digest_size=10).hexdigest() + ".npy")
        if f.exists():
            return np.load(f, allow_pickle=False)
        sr = self.pipeline.sample_rate
        x = load_audio(row.path, **self.pipeline.audio)
        s = _seed(row.key, self.seed) + sum(map(ord, condition))
        if condition != "clean":
            noise = None
            if condition.startswith("babble"):
                noise = self._babble(row, manifest, len(x), np.random.default_rng(s))
            x = degrade(condition, x, sr, seed=s, babble_signal=noise)
        feats = np.asarray(self.ext(np.asarray(x, np.float32), sr), dtype=np.float32)
        d.mkdir(parents=True, exist_ok=True)
        np.save(f, feats, allow_pickle=False)
        return feats

    def train_copy(self, row) -> np.ndarray:
        """Features of one augmented copy of a training clip (cached): white or pink noise at an SNR
        drawn from [5, 20] dB, the telephone band, or both (chosen with the clip's seed). No babble:
        its talkers could be test speakers."""
        d = self.root / "train_augment"
        f = d / (hashlib.blake2b(row.key.encode(), digest_size=10).hexdigest() + ".npy")
        if f.exists():
            return np.load(f, allow_pickle=False)
        sr = self.pipeline.sample_rate
        x = load_audio(row.path, **self.pipeline.audio)
        rng = np.random.default_rng(_seed(row.key, self.seed) + 7)
        kind = int(rng.integers(4))     # 0 white, 1 pink, 2 telephone, 3 telephone + pink
        if kind in (2, 3):
            x = telephone(x, sr)
        if kind != 2:
            x = add_noise(x, sr, rng, snr=float(rng.uniform(5, 20)), noise="white" if kind == 0 else "pink")
        feats = np.asarray(self.ext(np.asarray(x, np.float32), sr), dtype=np.float32)
        d.mkdir(parents=True, exist_ok=True)
        np.save(f, feats, allow_pickle=False)
        return feats

    def _babble(self, row, manifest: pd.DataFrame, n: int, rng, talkers: int = 4) -> np.ndarray:
        other = manifest[manifest["corpus"] != row.corpus]
        if other.empty:
            other = manifest[manifest["speaker"].astype(str) != str(row.speaker)]
        speakers = other["speaker"].astype(str).unique()
        chosen = rng.choice(speakers, size=min(talkers, len(speakers)), replace=False)
        sources = []
        for spk in chosen:
            rows = other[other["speaker"].astype(str) == spk]
            path = rows["path"].iloc[int(rng.integers(len(rows)))]
            sources.append(load_audio(path, **{**self.pipeline.audio, "silence_dbfs": None,
                                               "min_duration_s": 0.0}))
        return babble(sources, n, rng)


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

    run = args.run_dir
    metrics = json.loads((run / "metrics.json").read_text())
    import yaml

    cfg = RunConfig.model_validate(yaml.safe_load((run / "config.yaml").read_text()))
    pipeline = FeaturePipeline.from_config(cfg.audio, cfg.features)
    manifest = pd.read_csv(run / "manifest.csv", dtype={"key": str, "speaker": str, "label": str})
    pred = pd.read_csv(run / "predictions.csv", dtype={"key": str, "speaker": str, "true": str, "fold": str})
    sub = subset(pred, manifest, args.per_corpus, args.seed)
    classes = list(metrics["classes"])
    feats = Features(pipeline, args.cache, args.seed)
    if args.train_augment:
        models = train_augmented(cfg, pipeline, manifest, pred, feats)
    else:
        models = {f: load_estimator(run / "folds" / f / "model") for f in sorted(sub["fold"].unique())}
    # the target conditions first, so that an interrupted run has them (rows are written
    # after every condition and shown in the table's order)
    wanted = [c for c in args.conditions if c != "clean"]
    conditions = ["clean"] + [c for c in TARGETS if c in wanted] + [c for c in wanted if c not in TARGETS]
    order = {c: i for i, c in enumerate(["clean", *CONDITIONS])}
    print(f"{len(sub)} test clips ({sub.groupby('corpus').size().to_dict()}), {len(models)} fold models, "
          f"{len(conditions)} conditions", flush=True)

    rows = []
    for cond in conditions:
        t0 = time.time()
        X = []
        for r in sub.itertuples():
            X.append(feats(cond, r, manifest))
        X = np.stack(X)
        proba = np.zeros((len(sub), len(classes)))
        for f, est in models.items():
            idx = np.flatnonzero(sub["fold"].to_numpy() == f)
            p = est.predict_proba(model_input(est, X[idx]))
            for j, c in enumerate([str(c) for c in est.classes_]):
                proba[idx, classes.index(c)] = p[:, j]
        y = sub["true"].to_numpy(str)
        yhat = np.asarray(classes)[proba.argmax(1)]
        per_corpus = {c: M.ua(y[m], yhat[m]) for c in sorted(sub["corpus"].unique())
                      for m in [sub["corpus"].to_numpy() == c]}
        rows.append({"condition": cond, "ua": M.ua(y, yhat), "wa": float(np.mean(y == yhat)),
                     "ece": M.ece(y, proba, classes), "per_corpus_ua": per_corpus,
                     "n": int(len(sub)), "wall_s": round(time.time() - t0, 1)})
        print(f"  {cond:18s} UA {100 * rows[-1]['ua']:5.1f}  ECE {100 * rows[-1]['ece']:5.1f}  "
              f"({rows[-1]['wall_s']:.0f} s)", flush=True)
        _write(args, argv, run, metrics, sub, sorted(rows, key=lambda r: order[r["condition"]]),
               done=len(rows) == len(conditions))
    return 0


def train_augmented(cfg: RunConfig, pipeline: FeaturePipeline, manifest: pd.DataFrame, pred: pd.DataFrame,
                    feats: Features) -> dict:
    """One head per fold of the run, the recipe's model and calibration, trained on the fold's clean
    training features plus one augmented copy of each training clip (same speaker groups)."""
    from serkit.evaluation.estimators import build_estimator, fit_calibrated
    from serkit.evaluation.protocol import seed_everything

    fs = pipeline.fit(manifest).transform_manifest(manifest, progress=False)   # clean, from the cache
    man = fs.manifest
    t0 = time.time()
    aug = np.stack([feats.train_copy(r) for r in man.itertuples()])
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


def _write(args, argv, run: Path, metrics: dict, sub: pd.DataFrame, rows: list[dict], done: bool) -> None:
    clean = rows[0]["ua"]
    for r in rows:
        r["share_of_clean"] = r["ua"] / clean if clean else float("nan")
    record = {
        "run_dir": str(run), "recipe": args.label or metrics.get("name"), "seed": args.seed,
        "per_corpus": args.per_corpus, "n_clips": int(len(sub)),
        "run_ua": metrics["ua"], "calibration": metrics.get("calibration"),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "command": "python " + " ".join([_rel(Path(sys.argv[0])), *(argv or sys.argv[1:])]),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "rows": rows, "complete": done,
        "heads": ("retrained per fold on the clean training clips plus one augmented copy of each (white "
                  "or pink noise at an SNR drawn from 5-20 dB, the telephone band, or telephone + pink "
                  "noise; no babble), the recipe's model and calibration otherwise"
                  if args.train_augment else "the run's fold models (trained on clean audio only)"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    js = args.out.with_suffix(".json")
    old = json.loads(js.read_text()) if js.exists() else {}
    old = old if isinstance(old, dict) and "recipes" in old else {"recipes": {}}
    old["recipes"][record["recipe"]] = record
    js.write_text(json.dumps(old, indent=1))
    args.out.write_text(render(old))
    if done:
        print(f"wrote {args.out} and {js}")


def render(data: dict) -> str:
    """The Markdown page for every recipe recorded in the JSON."""
    lines = ["# Robustness: UA under degraded audio (bench/robustness.py)", "",
             "Each recipe is run with `serkit run` (5 speaker-grouped folds over the five corpora; every "
             "head trained on clean training-fold audio only), then a stratified subset of its test "
             "utterances is re-scored under each condition by the model of the fold that held it out "
             "(never trained on that speaker). UA = unweighted accuracy (mean per-class recall) pooled "
             "over the subset; *% of clean* = UA under the condition / UA of the same clips undegraded. "
             "ECE: expected calibration error, 15 bins. Targets of the issue: ≥ 90 % of clean UA at "
             "20 dB SNR and on telephone-band audio (**bold** = met, *italic* = missed).", "",
             "The run below was made by `serkit run configs/default.yaml --out RUN_DIR --no-report` "
             "(the default model's recipe, temperature scaling included; its fold UAs equal the card's). "
             "Conditions (serkit.evaluation.degrade): babble = 4 talkers from the other corpora; white / "
             "pink Gaussian noise; SNR over the whole clip; telephone = 8 kHz, 300-3400 Hz; Opus via "
             "libsndfile at the nominal bitrate; gain in float (no clipping); clipping = hard clip at the "
             "level 5 % of samples exceed; crops at a random start; reverberation = synthetic room "
             "response with RT60 0.6 s. Degraded features are cached per condition, so a rerun only "
             "scores. The subset is small (100 clips per corpus): differences of a few points between "
             "conditions are within noise.", ""]
    for name, rec in data["recipes"].items():
        rows = rec["rows"]
        corpora = sorted(rows[0]["per_corpus_ua"])
        lines += [f"## {name}", "",
                  f"Run `{rec['run_dir']}` (UA over all test folds {100 * rec['run_ua']['mean']:.1f} ± "
                  f"{100 * rec['run_ua']['std']:.1f} %); {rec['n_clips']} test clips "
                  f"({rec['per_corpus']} per corpus, spread over the labels), seed {rec['seed']}, "
                  f"{rec['date']}. Command: `{rec['command']}`."
                  + ("" if rec.get("complete", True) else " **Interrupted: only the conditions listed ran.**"),
                  "", f"Heads: {rec.get('heads', 'the run' + chr(39) + 's fold models')}.", "",
                  "| condition | UA % | % of clean | WA % | ECE % | " + " | ".join(f"{c} UA %" for c in corpora) + " |",
                  "|---|---|---|---|---|" + "---|" * len(corpora)]
        for r in rows:
            share = 100 * r["share_of_clean"]
            target = TARGETS.get(r["condition"])
            cell = f"{share:.1f}"
            if target is not None:
                cell = f"**{cell}**" if share >= 100 * target else f"*{cell}*"
            lines.append(f"| {r['condition']} | {100 * r['ua']:.1f} | {cell} | {100 * r['wa']:.1f} | "
                         f"{100 * r['ece']:.1f} | " + " | ".join(f"{100 * r['per_corpus_ua'][c]:.1f}" for c in corpora) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

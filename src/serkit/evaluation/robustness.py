"""Robustness: UA of a recogniser when its input is degraded (noise, telephone band, Opus, gain,
clipping, crops, reverberation; :data:`serkit.evaluation.degrade.CONDITIONS`).

Two ways to score, one table:

* :func:`score_predictor` — a model directory (``serkit robustness MODEL``): labelled clips (a
  corpus manifest) are mapped onto the model's classes, a stratified subset is taken, and every
  clip is scored by :meth:`Predictor.predict_array` on its degraded waveform (the same decoding
  and preparation as ``serkit predict``). The model card says which corpora (and, for models
  trained since this was added, which speakers) it was trained on: clips of those speakers make
  the numbers optimistic, and the record says so (``warning``).
* :func:`score_run` — a finished ``serkit run`` with its fold models saved (``folds/<fold>/model``;
  ``serkit robustness RUN_DIR`` and ``bench/robustness.py``): a stratified subset of the run's
  test utterances, each scored by the model of the fold that held its speaker out, on features of
  the degraded audio (cached per condition under the feature cache).

Shared pieces: :func:`stratified_subset` (``per_corpus`` clips per corpus spread evenly over its
labels, seeded), :func:`babble_pool` / :func:`make_babble` (babble = ``talkers`` utterances of
speakers from the other corpora, or other speakers of the same corpus when there is one corpus;
chosen with the clip's seed), :func:`condition_seed` (each clip and condition has its own seed, so
a result depends only on ``seed``), :func:`condition_row` (UA, WA, ECE and per-corpus UA of one
condition), :func:`add_share_of_clean`, :func:`markdown_table` and :func:`write_report`.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from serkit.evaluation import metrics as M
from serkit.evaluation.degrade import CONDITIONS, degrade

__all__ = ["NO_LABEL", "OPTIMISTIC", "TARGETS", "LabelledData", "RunFeatures", "add_share_of_clean",
           "babble_pool", "condition_row", "condition_seed", "load_labelled", "make_babble",
           "markdown_table", "order_conditions", "render_report", "score_predictor", "score_run",
           "stratified_subset", "table_cells", "training_overlap", "write_report"]

#: the issue's targets: share of clean UA kept (condition -> fraction)
TARGETS = {"babble_20dB": 0.9, "white_20dB": 0.9, "pink_20dB": 0.9, "telephone_8k": 0.9}
#: the prediction recorded for a clip the recogniser gave no label (no speech found): always wrong
NO_LABEL = ""
#: the warning for evaluation speakers the model was trained on
OPTIMISTIC = "speakers seen in training: optimistic"

Progress = Callable[[int], None]


# ------------------------------------------------------------------------------------- shared
def clip_seed(key: str, seed: int) -> int:
    """A clip's own seed (from its key and the run's seed)."""
    return int.from_bytes(hashlib.blake2b(f"{seed}|{key}".encode(), digest_size=4).digest(), "little")


def condition_seed(key: str, seed: int, condition: str) -> int:
    """The seed of one clip under one condition (noise, babble talkers, crop start, room)."""
    return clip_seed(key, seed) + sum(map(ord, condition))


def order_conditions(wanted: Sequence[str]) -> list[str]:
    """``clean`` first, then the issue's target conditions, then the rest in the order given
    (unknown names raise ValueError listing the known ones)."""
    unknown = [c for c in wanted if c != "clean" and c not in CONDITIONS]
    if unknown:
        raise ValueError(f"unknown condition(s) {', '.join(unknown)}; choose from {', '.join(CONDITIONS)}")
    wanted = list(dict.fromkeys(c for c in wanted if c != "clean"))
    return ["clean"] + [c for c in TARGETS if c in wanted] + [c for c in wanted if c not in TARGETS]


def table_order(rows: list[dict]) -> list[dict]:
    """Rows in the order of :data:`CONDITIONS` (clean first)."""
    order = {c: i for i, c in enumerate(["clean", *CONDITIONS])}
    return sorted(rows, key=lambda r: order[r["condition"]])


def stratified_subset(df: pd.DataFrame, per_corpus: int | None, seed: int, label: str = "label") -> pd.DataFrame:
    """``per_corpus`` rows per corpus (all rows when None or 0), spread evenly over its labels
    (the first ``per_corpus % n_labels`` labels in sorted order get one more), drawn with ``seed``;
    sorted by key."""
    if not per_corpus:
        return df.sort_values("key").reset_index(drop=True)
    rng = np.random.default_rng(seed)
    parts = []
    for _, part in df.groupby("corpus", sort=True):
        labels = sorted(part[label].unique())
        quota = {lab: per_corpus // len(labels) + (i < per_corpus % len(labels)) for i, lab in enumerate(labels)}
        for lab, rows in part.groupby(label, sort=True):
            take = min(quota[lab], len(rows))
            parts.append(rows.iloc[rng.permutation(len(rows))[:take]])
    return pd.concat(parts).sort_values("key").reset_index(drop=True)


def babble_pool(row: Any, pool: pd.DataFrame) -> pd.DataFrame:
    """Where a clip's babble comes from: the utterances of the other corpora, or of the other
    speakers of its corpus when the pool has one corpus."""
    other = pool[pool["corpus"] != row.corpus]
    if other.empty:
        other = pool[pool["speaker"].astype(str) != str(row.speaker)]
    if other.empty:
        raise ValueError(f"no babble source for {row.key}: the data hold no other speaker")
    return other


def make_babble(row: Any, pool: pd.DataFrame, n: int, rng: np.random.Generator,
                load: Callable[[str], np.ndarray], talkers: int = 4) -> np.ndarray:
    """Babble of ``n`` samples for ``row``: ``talkers`` distinct speakers of :func:`babble_pool`,
    one utterance each (``load(path)`` decodes it at the clip's sample rate), summed by
    :func:`serkit.evaluation.degrade.babble`."""
    from serkit.evaluation.degrade import babble

    other = babble_pool(row, pool)
    speakers = other["speaker"].astype(str).unique()
    chosen = rng.choice(speakers, size=min(talkers, len(speakers)), replace=False)
    sources = []
    for spk in chosen:
        paths = other.loc[other["speaker"].astype(str) == spk, "path"].astype(str).tolist()
        first = int(rng.integers(len(paths)))
        for k in range(len(paths)):    # an utterance that cannot be decoded: the speaker's next one
            try:
                sources.append(load(paths[(first + k) % len(paths)]))
                break
            except ValueError:         # AudioError
                continue
    if not sources:
        raise ValueError(f"no babble source of {row.key} could be decoded")
    return babble(sources, n, rng)


def condition_row(condition: str, y: np.ndarray, yhat: np.ndarray, proba: np.ndarray,
                  classes: Sequence[str], corpus: np.ndarray, **extra: Any) -> dict[str, Any]:
    """UA, WA, ECE (15 bins, over the clips given a label) and UA per corpus of one condition."""
    y, yhat = np.asarray(y, str), np.asarray(yhat, str)
    labelled = yhat != NO_LABEL
    return {"condition": condition, "ua": M.ua(y, yhat), "wa": float(np.mean(y == yhat)),
            "ece": M.ece(y[labelled], proba[labelled], list(classes)) if labelled.any() else float("nan"),
            "per_corpus_ua": {c: M.ua(y[m], yhat[m]) for c in sorted(set(corpus))
                              for m in [np.asarray(corpus) == c]},
            "n": int(len(y)), **extra}


def add_share_of_clean(rows: list[dict]) -> list[dict]:
    """``share_of_clean`` = UA / UA of the clean row, on every row (in place; returned)."""
    clean = next((r["ua"] for r in rows if r["condition"] == "clean"), float("nan"))
    for r in rows:
        r["share_of_clean"] = r["ua"] / clean if clean else float("nan")
    return rows


def _pct(v: float) -> str:
    return "—" if v is None or v != v else f"{100 * v:.1f}"


def table_cells(rows: list[dict], targets: dict[str, float] = TARGETS,
                mark=lambda text, met: text) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the table of conditions: UA, % of clean (``mark(text, met)`` styles the
    share where the condition has a target), WA, ECE, clips given no label (when recorded), UA per
    corpus; the Markdown page and the CLI's table both render it."""
    corpora = sorted(rows[0]["per_corpus_ua"]) if rows else []
    no_label = any("no_label" in r for r in rows)
    head = ["condition", "UA %", "% of clean", "WA %", "ECE %"] + (["no label"] if no_label else [])
    body = []
    for r in rows:
        share = _pct(r.get("share_of_clean"))
        target = targets.get(r["condition"])
        if target is not None and share != "—":
            share = mark(share, r["share_of_clean"] >= target)
        cells = [r["condition"], _pct(r["ua"]), share, _pct(r["wa"]), _pct(r["ece"])]
        if no_label:
            cells.append(str(r.get("no_label", "")))
        body.append(cells + [_pct(r["per_corpus_ua"].get(c)) for c in corpora])
    return head + [f"{c} UA %" for c in corpora], body


def markdown_table(rows: list[dict], targets: dict[str, float] = TARGETS) -> list[str]:
    """The table of conditions as Markdown lines (a target met **bold**, missed *italic*)."""
    head, body = table_cells(rows, targets, lambda text, met: f"**{text}**" if met else f"*{text}*")
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + \
        ["| " + " | ".join(cells) + " |" for cells in body]


# ------------------------------------------------------------------------- a model directory
@dataclass
class LabelledData:
    """Labelled clips for a model: the manifest (labels among the model's classes), the clips left
    out (reason -> count) and the files that could not be used (path, why)."""

    manifest: pd.DataFrame
    pool: pd.DataFrame                      # every usable clip, whatever its label (babble sources)
    left_out: dict[str, int] = field(default_factory=dict)
    skipped: list[dict[str, str]] = field(default_factory=list)


def load_labelled(specs: Sequence[tuple[str, str | Path, dict[str, Any]]], card: dict[str, Any],
                  classes: Sequence[str]) -> LabelledData:
    """Scan corpora (``(adapter, root, options)``) with the model's label set and label options
    (its card) and keep the clips whose label is one of ``classes``; the others are counted."""
    from serkit.corpora import load_corpora

    res = load_corpora(list(specs), label_set=card.get("label_set") or "native",
                       label_options=card.get("label_options") or None, check_duplicates=False)
    man = res.manifest
    left_out = {f"{reason} (the model's label set)": n for reason, n in res.excluded.items()}
    known = man["label"].astype(str).isin(list(classes))
    for lab, n in man.loc[~known, "label"].astype(str).value_counts().sort_index().items():
        left_out[f"label {lab!r} is not a class of the model"] = int(n)
    skipped = [{"path": p.path, "error": f"{p.kind}: {p.detail}"} for p in res.problems
               if p.kind != "excluded"]
    return LabelledData(man[known].reset_index(drop=True), man.reset_index(drop=True), left_out, skipped)


def training_overlap(card: dict[str, Any], manifest: pd.DataFrame) -> dict[str, Any] | None:
    """Which evaluation speakers the model may have heard in training, from its card: by speaker id
    where the card lists them (``training_data.speaker_ids``), else by corpus name (every speaker
    of a training corpus counts). None when there is no overlap."""
    td = card.get("training_data") or {}
    speakers = manifest["speaker"].astype(str)
    if td.get("speaker_ids"):
        seen = sorted(set(speakers) & set(map(str, td["speaker_ids"])))
        by = "speaker id"
    else:
        corpora = set(map(str, td.get("corpora") or {}))
        seen = sorted(set(speakers[manifest["corpus"].astype(str).isin(corpora)]))
        by = "corpus name"
    if not seen:
        return None
    clips = int(speakers.isin(seen).sum())
    return {"by": by, "speakers": len(seen), "clips": clips, "of_clips": int(len(manifest)),
            "corpora": sorted(set(manifest.loc[speakers.isin(seen), "corpus"].astype(str))),
            "warning": OPTIMISTIC}


def score_predictor(predictor, data: LabelledData, conditions: Sequence[str], *, seed: int = 42,
                    per_corpus: int | None = 30, talkers: int = 4,
                    progress: Progress | None = None, total: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Score a :class:`~serkit.inference.predictor.Predictor` on a stratified subset of ``data``
    under ``conditions`` (``clean`` is always first). Clips that cannot be decoded, or that get
    no label clean (no speech), are skipped and listed. Returns the record (rows, counts, overlap
    warning) that :func:`write_report` writes. ``total(n)`` hears the number of clip-conditions
    to score once known; ``progress(1)`` after each."""
    from serkit.io.audio import AudioError, read, resample, to_mono

    conds = order_conditions(conditions)
    classes = list(predictor.classes)
    sr = predictor.sample_rate
    sub = stratified_subset(data.manifest, per_corpus, seed)
    skipped = list(data.skipped)
    signals: dict[str, tuple[np.ndarray, int]] = {}
    clean: dict[str, dict[str, Any]] = {}
    keep = []
    for r in sub.itertuples():
        try:
            x, rate = read(r.path)
            out = predictor.predict_array(x, rate, name=str(r.path))
            if out.get("label") is None:
                raise AudioError(f"{r.path}: no label for the clean clip ({out.get('note', 'no speech')})",
                                 "no_speech")
        except (AudioError, ValueError) as exc:
            msg = str(exc)
            skipped.append({"path": str(r.path), "error": msg[len(f"{r.path}: "):]
                            if msg.startswith(f"{r.path}: ") else msg})
            continue
        signals[r.key] = (x, rate)
        clean[r.key] = out
        keep.append(r.Index)
    sub = sub.loc[keep].reset_index(drop=True)
    if sub.empty:
        raise ValueError("no clip of the data could be scored: "
                         + "; ".join(s["error"] for s in skipped[:5]) + ("; ..." if len(skipped) > 5 else ""))
    bad = {s["path"] for s in skipped}
    pool = data.pool[~data.pool["path"].astype(str).isin(bad)]
    babble_cache: dict[str, np.ndarray] = {}

    def load(path: str) -> np.ndarray:
        if path not in babble_cache:
            d, rate = read(path)
            babble_cache[path] = resample(to_mono(d), rate, sr)
        return babble_cache[path]

    if total:
        total(len(sub) * len(conds))
    y = sub["label"].astype(str).to_numpy()
    rows = []
    clips = [{"key": str(r.key), "path": str(r.path), "corpus": str(r.corpus), "speaker": str(r.speaker),
              "label": str(r.label), "predicted": {}} for r in sub.itertuples()]
    for cond in conds:
        t0 = time.time()
        proba = np.zeros((len(sub), len(classes)))
        yhat = np.full(len(sub), NO_LABEL, dtype=object)
        for i, r in enumerate(sub.itertuples()):
            x, rate = signals[r.key]
            if cond == "clean":        # exactly what `serkit predict` gives for the file
                out = clean[r.key]
            else:
                mono = resample(to_mono(x), rate, sr)
                s = condition_seed(r.key, seed, cond)
                noise = (make_babble(r, pool, len(mono), np.random.default_rng(s), load, talkers)
                         if cond.startswith("babble") else None)
                try:
                    out = predictor.predict_array(degrade(cond, mono, sr, seed=s, babble_signal=noise), sr,
                                                  name=f"{r.path} ({cond})")
                except AudioError:     # e.g. not usable any more: no label, like no speech
                    out = {"label": None}
            if out.get("label") is not None:
                yhat[i] = out["label"]
                proba[i] = [out["scores"][c] for c in classes]
            clips[i]["predicted"][cond] = out.get("label")
            if progress:
                progress(1)
        rows.append(condition_row(cond, y, yhat.astype(str), proba, classes, sub["corpus"].to_numpy(),
                                  no_label=int(np.sum(yhat == NO_LABEL)), wall_s=round(time.time() - t0, 1)))
    overlap = training_overlap(predictor.card, sub)
    return {"kind": "model", "model": predictor.name, "model_dir": str(predictor.model_dir),
            "classes": classes, "seed": seed, "per_corpus": per_corpus, "babble_talkers": talkers,
            "n_clips": int(len(sub)), "clips_per_corpus": {str(k): int(v) for k, v in sub.groupby("corpus").size().items()},
            "left_out": data.left_out, "skipped": skipped, "overlap": overlap,
            "warning": overlap["warning"] if overlap else None,
            "rows": add_share_of_clean(table_order(rows)), "clips": clips, "complete": True}


# ----------------------------------------------------------------------------- a run directory
class RunFeatures:
    """Features of degraded clips for the fold models of a run, cached as
    ``<cache>/robustness/<pipeline + seed hash>/<condition>/<key hash>.npy``."""

    def __init__(self, pipeline, cache: Path, seed: int):
        from serkit.features.cache import params_hash

        self.pipeline = pipeline
        self.ext = pipeline.extractors[0]
        spec = {"audio": pipeline.audio, "extractor": self.ext.cache_params(), "seed": seed}
        self.root = Path(cache) / "robustness" / params_hash(spec)
        self.seed = seed

    def file(self, condition: str, key: str) -> Path:
        return self.root / condition / (hashlib.blake2b(key.encode(), digest_size=10).hexdigest() + ".npy")

    def extract(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.ext(np.asarray(x, np.float32), self.pipeline.sample_rate), dtype=np.float32)

    def load(self, path: str, whole: bool = False) -> np.ndarray:
        """A clip prepared as the recipe prepares it (``whole``: no silence floor, no minimum length;
        for babble sources)."""
        from serkit.io.audio import load_audio

        audio = self.pipeline.audio
        if whole:
            audio = {**audio, "silence_dbfs": None, "min_duration_s": 0.0}
        return load_audio(path, **audio)

    def __call__(self, condition: str, row: Any, pool: pd.DataFrame, talkers: int = 4) -> np.ndarray:
        f = self.file(condition, row.key)
        if f.exists():
            return np.load(f, allow_pickle=False)
        sr = self.pipeline.sample_rate
        x = self.load(row.path)
        if condition != "clean":
            s = condition_seed(row.key, self.seed, condition)
            noise = None
            if condition.startswith("babble"):
                noise = make_babble(row, pool, len(x), np.random.default_rng(s),
                                    lambda p: self.load(p, whole=True), talkers)
            x = degrade(condition, x, sr, seed=s, babble_signal=noise)
        feats = self.extract(x)
        f.parent.mkdir(parents=True, exist_ok=True)
        np.save(f, feats, allow_pickle=False)
        return feats


def is_run_dir(path: Path) -> bool:
    """A finished ``serkit run`` directory (metrics, manifest, predictions)."""
    path = Path(path)
    return all((path / f).is_file() for f in ("metrics.json", "manifest.csv", "predictions.csv", "config.yaml"))


def load_run(run_dir: Path) -> dict[str, Any]:
    """The config, feature pipeline, manifest, predictions and metrics of a finished run."""
    import yaml

    from serkit.config import RunConfig
    from serkit.features.pipeline import FeaturePipeline

    run_dir = Path(run_dir)
    if not is_run_dir(run_dir):
        raise ValueError(f"{run_dir} is not a finished serkit run directory (needs metrics.json, "
                         "manifest.csv, predictions.csv and config.yaml)")
    cfg = RunConfig.model_validate(yaml.safe_load((run_dir / "config.yaml").read_text()))
    return {"config": cfg, "pipeline": FeaturePipeline.from_config(cfg.audio, cfg.features),
            "metrics": json.loads((run_dir / "metrics.json").read_text()),
            "manifest": pd.read_csv(run_dir / "manifest.csv", dtype={"key": str, "speaker": str, "label": str}),
            "predictions": pd.read_csv(run_dir / "predictions.csv",
                                       dtype={"key": str, "speaker": str, "true": str, "fold": str})}


def run_subset(run: dict[str, Any], per_corpus: int | None, seed: int) -> pd.DataFrame:
    """The stratified subset of a run's test utterances (fold, key, speaker, true, path, corpus)."""
    df = run["predictions"][["fold", "key", "speaker", "true"]].merge(
        run["manifest"][["key", "path", "corpus"]], on="key")
    return stratified_subset(df, per_corpus, seed, label="true")


def fold_models(run_dir: Path, folds: Sequence[str]) -> dict[str, Any]:
    """The saved model of each fold (``folds/<fold>/model``); ValueError naming a missing one."""
    from serkit.models.persist import load_estimator

    missing = [f for f in folds if not (Path(run_dir) / "folds" / f / "model").exists()]
    if missing:
        raise ValueError(f"{run_dir}: no saved model for fold(s) {', '.join(missing)} (folds/<fold>/model; "
                         "the run must save its fold models)")
    return {f: load_estimator(Path(run_dir) / "folds" / f / "model") for f in folds}


def score_run(run_dir: Path, conditions: Sequence[str], *, seed: int = 42, per_corpus: int | None = 30,
              cache: Path | None = None, models: dict[str, Any] | None = None, talkers: int = 4,
              progress: Progress | None = None, total: Callable[[int], None] | None = None,
              on_row: Callable[[dict[str, Any]], None] | None = None,
              say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Re-score a run's test utterances under ``conditions`` with its fold models (or ``models``:
    fold -> estimator), each clip by the model of the fold that held it out. ``on_row(record)``
    hears the record after every condition (``complete`` False until the last)."""
    from serkit.features.cache import default_cache_dir
    from serkit.models.capabilities import model_input

    run = load_run(run_dir)
    sub = run_subset(run, per_corpus, seed)
    classes = [str(c) for c in run["metrics"]["classes"]]
    feats = RunFeatures(run["pipeline"], cache or default_cache_dir().parent, seed)
    if models is None:
        models = fold_models(run_dir, sorted(sub["fold"].unique()))
    conds = order_conditions(conditions)
    if say:
        say(f"{len(sub)} test clips ({sub.groupby('corpus').size().to_dict()}), {len(models)} fold models, "
            f"{len(conds)} conditions")
    if total:
        total(len(sub) * len(conds))
    record = {"kind": "run", "run_dir": str(run_dir), "name": run["metrics"].get("name"), "classes": classes,
              "seed": seed, "per_corpus": per_corpus, "babble_talkers": talkers, "n_clips": int(len(sub)),
              "clips_per_corpus": {str(k): int(v) for k, v in sub.groupby("corpus").size().items()},
              "run_ua": run["metrics"]["ua"], "calibration": run["metrics"].get("calibration"),
              "warning": None, "rows": [], "complete": False}
    y = sub["true"].to_numpy(str)
    rows = []
    for cond in conds:
        t0 = time.time()
        X = []
        for r in sub.itertuples():
            X.append(feats(cond, r, run["manifest"], talkers))
            if progress:
                progress(1)
        X = np.stack(X)
        proba = np.zeros((len(sub), len(classes)))
        for f, est in models.items():
            idx = np.flatnonzero(sub["fold"].to_numpy() == f)
            if not len(idx):
                continue
            p = est.predict_proba(model_input(est, X[idx]))
            for j, c in enumerate([str(c) for c in est.classes_]):
                proba[idx, classes.index(c)] = p[:, j]
        yhat = np.asarray(classes)[proba.argmax(1)]
        rows.append(condition_row(cond, y, yhat, proba, classes, sub["corpus"].to_numpy(),
                                  wall_s=round(time.time() - t0, 1)))
        record["rows"] = add_share_of_clean(table_order(rows))
        record["complete"] = len(rows) == len(conds)
        if on_row:
            on_row(record)
    return record


# ------------------------------------------------------------------------------------- writing
def render_report(record: dict[str, Any]) -> str:
    """The Markdown page of one record of :func:`score_predictor` or :func:`score_run`."""
    what = (f"model `{record['model']}` ({record['model_dir']})" if record["kind"] == "model"
            else f"the fold models of run `{record['run_dir']}` (each clip scored by the model of the "
                 "fold that held its speaker out)")
    lines = [f"# Robustness: UA under degraded audio — {record.get('model') or record.get('name')}", ""]
    if record.get("warning"):
        ov = record.get("overlap") or {}
        lines += [f"**Warning: {record['warning']}** — {ov.get('clips', '?')} of {ov.get('of_clips', '?')} "
                  f"clips are of {ov.get('speakers', '?')} speaker(s) the model may have been trained on "
                  f"(by {ov.get('by', '?')}; corpora {', '.join(ov.get('corpora', []))}).", ""]
    per = f"{record['per_corpus']} per corpus, spread over the labels" if record.get("per_corpus") else "all clips"
    lines += [f"Scored: {what}. {record['n_clips']} clips ({per}: "
              + ", ".join(f"{c} {n}" for c, n in record["clips_per_corpus"].items())
              + f"), seed {record['seed']}. UA = unweighted accuracy (mean per-class recall); "
              "*% of clean* = UA under the condition / UA of the same clips undegraded (targets: ≥ 90 % at "
              "20 dB SNR and on telephone-band audio, **bold** = met, *italic* = missed); ECE: expected "
              "calibration error, 15 bins. Babble: "
              f"{record.get('babble_talkers', 4)} talkers from the other corpora (other speakers when "
              "there is one corpus).", ""]
    lines += markdown_table(record["rows"])
    if record.get("left_out"):
        lines += ["", "Left out: " + "; ".join(f"{n} clip(s): {why}" for why, n in record["left_out"].items()) + "."]
    if record.get("skipped"):
        lines += ["", f"Skipped ({len(record['skipped'])} file(s)):", ""]
        lines += [f"- `{s['path']}`: {s['error']}" for s in record["skipped"]]
    if not record.get("complete", True):
        lines += ["", "**Interrupted: only the conditions listed ran.**"]
    return "\n".join(lines) + "\n"


def write_report(record: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """``out`` (Markdown) and the record as JSON beside it (``.json``)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    js = out.with_suffix(".json")
    js.write_text(json.dumps(record, indent=1, default=str))
    out.write_text(render_report(record))
    return out, js

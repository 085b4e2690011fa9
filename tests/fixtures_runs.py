"""Synthetic run directories in the format of docs/ARCHITECTURE.md ("Run directory").

``make_run(tmp_path / "run")`` writes config.yaml, manifest.csv, predictions.csv
(with prob_<class> columns), metrics.json (schema v2 by default, ``schema_version=None``
for the v1 layout) and, per fold, history.csv, embeddings.npz, attention.npz (through
serkit's own writer) and gradcam/*.npz (+ one png). Options switch each piece off, make
the classifier perfect, change the metadata that decides comparability (corpora, label
set, protocol, transductive), or add skipped inputs, missing classes, label warnings.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

CLASSES8 = ["angry", "calm", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
CLASSES4 = ["angry", "happy", "neutral", "sad"]


class _AttentionModel:
    """Stands in for a fitted model with attention pooling: ``attention(X)`` returns X."""

    def attention(self, X):
        return X


def _scores(true: np.ndarray, pred: np.ndarray, classes: list[str]) -> dict[str, float]:
    recalls = [np.mean(pred[true == c] == c) for c in classes if (true == c).any()]
    f1s = []
    for c in classes:
        tp = np.sum((pred == c) & (true == c))
        fp = np.sum((pred == c) & (true != c))
        fn = np.sum((pred != c) & (true == c))
        if tp + fp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    return {"ua": float(np.mean(recalls)), "wa": float(np.mean(true == pred)), "macro_f1": float(np.mean(f1s))}


def _per_class(pred: pd.DataFrame, classes: list[str]) -> dict:
    out = {}
    for c in classes:
        tp = int(((pred.pred == c) & (pred.true == c)).sum())
        n_pred, n_true = int((pred.pred == c).sum()), int((pred.true == c).sum())
        p = tp / n_pred if n_pred else 0.0
        r = tp / n_true if n_true else 0.0
        out[c] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "support": n_true}
    return out


def make_run(
    run_dir: Path,
    *,
    name: str = "demo",
    classes: list[str] | None = None,
    n_folds: int = 3,
    speakers_per_fold: int = 2,
    utts_per_speaker_class: int = 3,
    accuracy: float = 0.7,
    perfect: bool = False,
    corpora: list[str] | None = None,
    adapters: list[str] | None = None,
    label_set: str = "native",
    speaker_independent: bool = True,
    protocol_kind: str | None = None,
    transductive: bool = False,
    schema_version: int | None = 2,
    model: str = "cnn4",
    features: str = "logmel",
    published: dict | None = None,
    ua: float | None = None,
    skipped: list[dict] | None = None,
    drop_test_classes: dict[int, list[str]] | None = None,
    speaker_label_warnings: list[dict] | None = None,
    timing: bool = True,
    history: bool = True,
    embeddings: bool = True,
    attention: bool = True,
    attention_format: str = "flat",
    gradcam: bool = True,
    minimal: bool = False,
    emb_dim: int = 16,
    seed: int = 0,
) -> Path:
    """Write a synthetic run directory and return its path.

    ``minimal=True`` writes only predictions.csv and metrics.json. ``ua`` overrides
    the UA recorded in metrics.json (to test sorting in comparisons). ``corpora`` are the
    corpus names (manifest ``corpus`` column, v2 ``corpora``); ``adapters`` the adapter
    names that v1 recorded in ``corpora`` (default: the corpus names).
    ``schema_version``: 2 (default), None for the v1 layout (no schema_version), any other
    number is written as is on top of the v2 layout. ``skipped``: v2 rows ``{path, key,
    stage, kind, reason}`` (v1: ``skipped_files`` ``{path, error}``). ``drop_test_classes``
    ``{fold: [class, ...]}`` removes those classes' utterances of that fold's test
    speakers. ``attention_format="object"`` writes the old pickled object-array layout.
    """
    rng = np.random.default_rng(seed)
    classes = list(classes or CLASSES8)
    corpora = list(corpora or ["ravdess"])
    adapters = list(adapters or corpora)
    skipped = list(skipped or [])
    v1 = schema_version is None
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    C = len(classes)

    # ---- manifest: speakers grouped by fold (speaker-independent) or shared (random split)
    rows = []
    for f in range(n_folds):
        for s in range(speakers_per_fold):
            spk = f"{corpora[0]}_{f * speakers_per_fold + s + 1:02d}"
            for c in classes:
                for r in range(utts_per_speaker_class):
                    key = f"{spk}_{c}_{r}"
                    rows.append(
                        {
                            "key": key,
                            "path": f"/data/{corpora[0]}/{key}.wav",
                            "corpus": corpora[0],
                            "speaker": spk,
                            "gender": "female" if s % 2 else "male",
                            "emotion": c,
                            "label": c,
                            "duration": round(float(rng.uniform(2.5, 4.5)), 3),
                            "_fold": f,
                        }
                    )
    man = pd.DataFrame(rows)
    if not speaker_independent:  # random split: folds drawn over utterances, speakers shared
        man["_fold"] = rng.permutation(np.arange(len(man)) % n_folds)
    for f, drop in (drop_test_classes or {}).items():
        man = man[~((man["_fold"] == f) & man["label"].isin(drop))].reset_index(drop=True)

    # ---- predictions
    pred_rows = []
    for _, r in man.iterrows():
        t = classes.index(r["label"])
        logits = rng.normal(0, 1, C)
        correct = perfect or rng.random() < accuracy
        p_idx = t if correct else int(rng.choice([i for i in range(C) if i != t]))
        logits[p_idx] += 4.0 if not perfect else 8.0
        probs = np.exp(logits) / np.exp(logits).sum()
        row = {"fold": int(r["_fold"]), "key": r["key"], "speaker": r["speaker"], "true": r["label"], "pred": classes[p_idx]}
        row.update({f"prob_{c}": float(probs[i]) for i, c in enumerate(classes)})
        pred_rows.append(row)
    pred = pd.DataFrame(pred_rows).sort_values(["fold", "key"]).reset_index(drop=True)
    pred.to_csv(run_dir / "predictions.csv", index=False)

    # ---- metrics.json
    fold_scores = []
    for f in range(n_folds):
        sub = pred[pred["fold"] == f]
        entry = {"fold": f, "n": len(sub), "n_test": len(sub), **_scores(sub["true"].to_numpy(), sub["pred"].to_numpy(), classes)}
        if not v1:
            train = set(man.loc[man["_fold"] != f, "label"])
            entry["missing_classes"] = [c for c in classes if c not in set(sub["true"])]
            entry["missing_train_classes"] = [c for c in classes if c not in train]
        fold_scores.append(entry)

    def agg(m: str) -> dict:
        vals = np.array([s[m] for s in fold_scores])
        return {"mean": float(vals.mean()), "std": float(vals.std())}

    kind = protocol_kind or ("speaker_kfold" if speaker_independent else "random_split")
    protocol = {
        "kind": kind,
        "speaker_independent": speaker_independent,
        "description": f"{n_folds}-fold, " + ("test speakers held out" if speaker_independent else "random utterance split"),
        "n_folds": n_folds,
    }
    metrics = {
        "name": name,
        "description": "",
        "serkit_version": "0.1.0",
        "model": model,
        "features": features,
        "corpora": adapters if v1 else corpora,
        "label_set": label_set,
        "seed": seed,
        "classes": classes,
        "n_utterances": int(len(man)),
        "n_speakers": int(man["speaker"].nunique()),
        "ua": agg("ua"),
        "wa": agg("wa"),
        "macro_f1": agg("macro_f1"),
        "folds": fold_scores,
        "protocol": protocol,
        "published": published,
        "wall_time_s": 754.2,
        "per_class": _per_class(pred, classes),
        "confusion": [[int(((pred.true == t) & (pred.pred == p)).sum()) for p in classes] for t in classes],
    }
    if v1:
        metrics["skipped_files"] = [{"path": e["path"], "error": e.get("reason", "")} for e in skipped]
        metrics["corpus_problems"] = []
    else:
        metrics["schema_version"] = schema_version
        protocol["transductive"] = transductive
        protocol["transductive_note"] = (
            "transductive: uses the test speakers' unlabelled utterances (per-speaker feature normalisation)"
            if transductive
            else None
        )
        metrics["accounting"] = {"rows_scanned": len(man) + len(skipped), "rows_used": len(man), "skipped": skipped}
        lacking = [f"{f['fold']} ({', '.join(f['missing_classes'])})" for f in fold_scores if f["missing_classes"]]
        metrics["missing_classes_note"] = (
            f"Fold(s) {'; '.join(lacking)} lack test utterances of some classes; UA of such a fold is the mean "
            "recall over the classes present." if lacking else None
        )
        if transductive and speaker_label_warnings:
            metrics["speaker_label_warnings"] = speaker_label_warnings
        if timing:
            metrics["timing"] = {"scan_s": 1.2, "features_s": 95.0, "folds_s": 650.3, "total_s": 754.2}
            metrics["extraction"] = [
                {"stream": features, "files": int(len(man)), "audio_s": float(man["duration"].sum()),
                 "wall_s": 95.0, "x_realtime": float(man["duration"].sum()) / 95.0, "cached": 0}
            ]
    if ua is not None:
        metrics["ua"] = {"mean": ua, "std": 0.01}
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    if minimal:
        return run_dir
    man.drop(columns="_fold").to_csv(run_dir / "manifest.csv", index=False)

    config = {  # the layout of serkit.config.RunConfig dumps (the fields reporting reads)
        "name": name,
        "seed": seed,
        "data": {"corpora": [{"name": a, "root": a} for a in adapters], "label_set": label_set},
        "features": {"kind": features, "params": {}, "speaker_norm": transductive},
        "model": {"name": model, "params": {}},
        "protocol": {"kind": kind, "n_folds": n_folds},
        "description": "",
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    # ---- per fold files
    centers = rng.normal(0, 3, (C, emb_dim))
    for f in range(n_folds):
        d = run_dir / "folds" / str(f)
        d.mkdir(parents=True, exist_ok=True)
        sub = pred[pred["fold"] == f]
        if history:
            ep = np.arange(1, 13)
            pd.DataFrame(
                {
                    "epoch": ep,
                    "train_loss": 2.0 * np.exp(-ep / 4) + 0.1 + rng.normal(0, 0.02, len(ep)),
                    "val_loss": 2.0 * np.exp(-ep / 5) + 0.4 + rng.normal(0, 0.03, len(ep)),
                    "train_acc": np.clip(1 - 0.85 * np.exp(-ep / 4) + rng.normal(0, 0.015, len(ep)), 0, 1),
                    "val_acc": np.clip(0.72 + 0.03 * f - 0.6 * np.exp(-ep / 5) + rng.normal(0, 0.02, len(ep)), 0, 1),
                    "lr": 1e-3 * 0.9**ep,
                }
            ).to_csv(d / "history.csv", index=False)
        if embeddings:
            lab_idx = np.array([classes.index(t) for t in sub["true"]])
            emb = centers[lab_idx] + rng.normal(0, 1.0, (len(sub), emb_dim))
            np.savez(
                d / "embeddings.npz",
                keys=sub["key"].to_numpy(str),
                embedding=emb.astype(np.float32),
                true=sub["true"].to_numpy(str),
                pred=sub["pred"].to_numpy(str),
            )
        if attention:
            ws = []
            for _ in range(len(sub)):
                T = int(rng.integers(40, 90))
                w = np.exp(rng.normal(0, 1, T) + 2 * np.exp(-((np.arange(T) - T / 2) ** 2) / 50))
                ws.append((w / w.sum()).astype(np.float32))
            if attention_format == "object":  # the layout serkit wrote before: needs pickle to read
                weights = np.empty(len(ws), dtype=object)
                weights[:] = ws
                np.savez(d / "attention.npz", keys=sub["key"].to_numpy(str), weights=weights, labels=sub["true"].to_numpy(str))
            else:
                from serkit.evaluation.explain import save_attention

                save_attention(_AttentionModel(), ws, sub["key"].to_numpy(object), sub["true"].to_numpy(object), d)
        if gradcam:
            g = d / "gradcam"
            g.mkdir(exist_ok=True)
            wrong = sub[sub["true"] != sub["pred"]].head(1)
            for i, (_, r) in enumerate(pd.concat([sub.iloc[[0, len(sub) // 2]], wrong]).iterrows()):
                spec = rng.normal(0, 1, (64, 100)).cumsum(axis=1) / 10
                c0 = int(rng.integers(2, 9))
                cam = np.outer(np.hanning(8), np.roll(np.hanning(12), c0 - 6))  # coarser than the input, as real CAMs are
                np.savez(g / f"{r['key']}.npz", map=cam, spec=spec, label=r["true"], pred=r["pred"], key=r["key"])
            if f == 0:
                _write_png(g / "extra_example.png")
    return run_dir


def _write_png(path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 1.5), dpi=60)
    FigureCanvasAgg(fig)
    fig.add_subplot().imshow(np.outer(np.hanning(20), np.hanning(30)), cmap="jet")
    fig.savefig(path)

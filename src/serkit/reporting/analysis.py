"""The numbers behind the report, as data frames (no HTML, no figures).

Scores come from :mod:`serkit.evaluation.metrics` — the definitions the run itself used
(UA = mean recall over the classes present in the test set, WA = accuracy, macro-F1 over
the classes present) — recomputed from ``predictions.csv`` where it exists, else read
from ``metrics.json``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from serkit.evaluation import metrics as M

from .run import Run, natural_sorted
from .schema import missing_text

__all__ = ["PER_FOLD_COLUMNS", "calibration", "per_fold", "per_class", "confusion", "roc_pr", "speaker_overlap", "embedding_maps"]

PER_FOLD_COLUMNS = ["fold", "n", "ua", "wa", "macro_f1", "missing_classes", "missing_train_classes"]


def _quiet(func, *args, **kw):
    with warnings.catch_warnings():  # e.g. "y_pred contains classes not in y_true"
        warnings.simplefilter("ignore")
        return func(*args, **kw)


def _has_predictions(run: Run) -> bool:
    return run.predictions is not None and {"true", "pred"} <= set(run.predictions.columns)


def _fold_column(df: pd.DataFrame) -> pd.Series:
    return df["fold"].astype(str) if "fold" in df else pd.Series(["0"] * len(df), index=df.index)


def per_fold(run: Run) -> pd.DataFrame:
    """``fold, n, ua, wa, macro_f1`` (fractions) and the classes missing from each fold's test
    and training sets (``"none"``, ``"angry, sad"`` or ``"not recorded"``)."""
    rows = []
    if _has_predictions(run):
        df = run.predictions
        folds = _fold_column(df)
        for f in natural_sorted(folds.unique()):
            sub = df[folds == f]
            rows.append({"fold": f, "n": len(sub), **_quiet(M.headline, sub["true"].to_numpy(str), sub["pred"].to_numpy(str), run.classes or None)})
    else:
        for i, f in enumerate(run.fold_records):
            rows.append({"fold": str(f.get("fold", i)), "n": f.get("n", np.nan),
                         **{m: float(f[m]) if f.get(m) is not None else np.nan for m in M.HEADLINE}})
    for r in rows:
        rec = run.fold_record(r["fold"])
        r["missing_classes"] = missing_text(rec.get("missing_classes"))
        r["missing_train_classes"] = missing_text(rec.get("missing_train_classes"))
    return pd.DataFrame(rows, columns=PER_FOLD_COLUMNS)


def _per_class_frame(scores: dict, classes: list[str]) -> pd.DataFrame:
    pc = scores["per_class"]
    return pd.DataFrame(
        {
            "class": classes,
            "precision": [pc[c]["precision"] for c in classes],
            "recall": [pc[c]["recall"] for c in classes],
            "f1": [pc[c]["f1"] for c in classes],
            "support": [pc[c]["support"] for c in classes],
        }
    )


def per_class(run: Run) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """(pooled per-class precision / recall / F1 / support, the same per fold for the classes
    each fold's test set has); pooled from metrics.json without predictions.csv."""
    classes = run.classes
    if _has_predictions(run) and classes and len(run.predictions):
        df = run.predictions
        pooled = _per_class_frame(_quiet(M.compute, df["true"], df["pred"], classes), classes)
        frames = []
        folds = _fold_column(df)
        for fold in natural_sorted(folds.unique()):
            sub = df[folds == fold]
            fr = _per_class_frame(_quiet(M.compute, sub["true"], sub["pred"], classes), classes)
            frames.append(fr[fr["support"] > 0].assign(fold=fold))
        cols = ["fold", "class", "precision", "recall", "f1", "support"]
        return pooled, pd.concat(frames, ignore_index=True)[cols]
    pc = run.metrics.get("per_class")
    if isinstance(pc, dict) and pc:
        rows = [
            {"class": str(c), **{k: v.get(k, np.nan) for k in ("precision", "recall", "f1", "support")}}
            for c, v in pc.items()
            if isinstance(v, dict)
        ]
        return (pd.DataFrame(rows) if rows else None), None
    return None, None


def confusion(run: Run) -> tuple[np.ndarray, str] | tuple[None, str]:
    """(counts, where they come from), or (None, why not)."""
    classes = run.classes
    if _has_predictions(run) and classes and len(run.predictions):
        df = run.predictions
        return np.asarray(_quiet(M.compute, df["true"], df["pred"], classes)["confusion"]), "pooled over folds from predictions.csv"
    cm = run.metrics.get("confusion")
    if isinstance(cm, list) and cm and classes:
        cm = np.asarray(cm, dtype=float)
        if cm.shape != (len(classes), len(classes)):
            return None, "metrics.json confusion matrix does not match its class list; not shown."
        return cm, "from metrics.json"
    return None, "No confusion matrix: predictions.csv and metrics.json confusion are both absent."


def roc_pr(run: Run) -> tuple[dict, dict, pd.DataFrame | None, pd.DataFrame | None]:
    """One-vs-rest ROC and precision–recall curves per class from the ``prob_<class>`` columns,
    pooled over folds: ``({class: (fpr, tpr, auc)}, {class: (recall, precision, ap, prevalence)},
    roc frame, pr frame)``."""
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve, roc_curve

    df = run.predictions
    if df is None or "true" not in df:
        return {}, {}, None, None
    roc, pr, roc_rows, pr_rows = {}, {}, [], []
    true = df["true"].astype(str).to_numpy()
    for c in run.classes:
        col = f"prob_{c}"
        if col not in df:
            continue
        score = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        ok = ~np.isnan(score)
        y = (true[ok] == c).astype(int)
        if y.sum() == 0 or y.sum() == len(y):
            continue
        fpr, tpr, thr = roc_curve(y, score[ok])
        a = float(auc(fpr, tpr))
        roc[c] = (fpr, tpr, a)
        roc_rows.append(pd.DataFrame({"class": c, "fpr": fpr, "tpr": tpr, "threshold": thr, "auc": a}))
        prec, rec, thr2 = precision_recall_curve(y, score[ok])
        ap = float(average_precision_score(y, score[ok]))
        pr[c] = (rec, prec, ap, float(y.mean()))
        pr_rows.append(pd.DataFrame({"class": c, "recall": rec, "precision": prec,
                                     "threshold": np.append(thr2, np.nan), "average_precision": ap}))
    roc_df = pd.concat(roc_rows, ignore_index=True) if roc_rows else None
    pr_df = pd.concat(pr_rows, ignore_index=True) if pr_rows else None
    return roc, pr, roc_df, pr_df


def speaker_overlap(run: Run) -> tuple[int, int] | None:
    """(folds whose test speakers also appear outside that fold's test set in manifest.csv,
    folds checked); None without predictions.csv / manifest.csv speakers."""
    df, man = run.predictions, run.manifest
    if df is None or man is None or "speaker" not in man or "key" not in man or "key" not in df:
        return None
    spk_of = dict(zip(man["key"], man["speaker"]))
    folds = _fold_column(df)
    overlapping, total = 0, 0
    for f in folds.unique():
        test_keys = set(df.loc[folds == f, "key"])
        test_spk = {spk_of.get(k) for k in test_keys} - {None}
        other_spk = set(man.loc[~man["key"].isin(test_keys), "speaker"])
        total += 1
        overlapping += bool(test_spk & other_spk)
    return overlapping, total


def embedding_maps(X: np.ndarray, seed: int, tsne: bool) -> dict[str, Any]:
    """2-D maps of embeddings: ``pca`` (xy, explained variance %) when possible, ``tsne``
    (xy, perplexity) when asked for and possible."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    n, d = X.shape
    out: dict[str, Any] = {}
    if n >= 3 and d >= 2:
        pca = PCA(n_components=2, random_state=seed)
        out["pca"] = (pca.fit_transform(X), pca.explained_variance_ratio_ * 100)
    if tsne and n >= 6 and d >= 2:
        Xt = PCA(n_components=min(50, n - 1), random_state=seed).fit_transform(X) if d > 50 else X
        perplexity = float(max(2.0, min(30.0, (n - 1) / 3.0)))
        model = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed,
                     method="exact" if n <= 300 else "barnes_hut")  # exact is faster on small sets
        out["tsne"] = (model.fit_transform(Xt), perplexity)
    return out


def calibration(run: Run) -> tuple[pd.DataFrame | None, dict | None]:
    """Per-fold expected calibration error (15 bins, recomputed from the ``prob_<class>`` columns
    of predictions.csv; uncalibrated ECE and temperature from metrics.json when the run was
    temperature-scaled) and the pooled reliability bins; ``(None, None)`` without probabilities."""
    df = run.predictions
    classes = run.classes
    if not _has_predictions(run) or not classes or not all(f"prob_{c}" in df for c in classes):
        return None, None
    cols = [f"prob_{c}" for c in classes]
    rows = []
    folds = _fold_column(df)
    for f in natural_sorted(folds.unique()):
        sub = df[folds == f]
        rec = run.fold_record(f)
        rows.append({"fold": f, "n": len(sub),
                     "ece": M.ece(sub["true"].to_numpy(str), sub[cols].to_numpy(float), classes),
                     "ece_uncalibrated": rec.get("ece_uncalibrated"), "temperature": rec.get("temperature")})
    rel = M.reliability(df["true"].to_numpy(str), df[cols].to_numpy(float), classes)
    rel["ece"] = M.ece(df["true"].to_numpy(str), df[cols].to_numpy(float), classes)
    return pd.DataFrame(rows, columns=["fold", "n", "ece", "ece_uncalibrated", "temperature"]), rel

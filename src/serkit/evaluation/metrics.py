"""UA, WA, macro-F1, per-class scores, confusion matrix, one-vs-rest ROC-AUC, expected calibration
error (ECE, 15 equal-width confidence bins) and reliability bins; mean ± std over folds."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score,
                             precision_recall_fscore_support, roc_auc_score)

HEADLINE = ("ua", "wa", "macro_f1")


def compute(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str],
            proba: np.ndarray | None = None) -> dict:
    """Metrics of one fold. ``classes`` fixes the order of per-class arrays and ``proba`` columns.

    UA = unweighted (balanced) accuracy = mean per-class recall over the classes present in
    ``y_true``; WA = accuracy; macro-F1 over the classes present in ``y_true`` or ``y_pred``.
    Values are fractions in [0, 1].
    """
    y_true, y_pred = np.asarray(y_true, dtype=str), np.asarray(y_pred, dtype=str)
    classes = [str(c) for c in classes]
    scores = headline(y_true, y_pred, classes)  # raises on empty input
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=classes, zero_division=0)
    out = {
        **scores,
        "n": int(len(y_true)),
        "per_class": {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                          "support": int(s[i])} for i, c in enumerate(classes)},
        "confusion": confusion_matrix(y_true, y_pred, labels=classes).tolist(),
    }
    if proba is not None:
        out["roc_auc"] = roc_auc_ovr(y_true, np.asarray(proba), classes)
        out["ece"] = ece(y_true, proba, classes)
    return out


def headline(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str] | None = None) -> dict:
    """UA, WA and macro-F1 of one set of predictions (the definitions :func:`compute` reports).

    ``classes`` limits macro-F1 to these labels (those present in ``y_true`` or ``y_pred``);
    None takes every label that occurs. Fractions in [0, 1].
    """
    y_true, y_pred = np.asarray(y_true, dtype=str), np.asarray(y_pred, dtype=str)
    if len(y_true) == 0:
        raise ValueError("no predictions to score")
    seen = set(y_true) | set(y_pred)
    present = sorted(seen) if classes is None else [str(c) for c in classes if str(c) in seen]
    return {
        "ua": ua(y_true, y_pred),
        "wa": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
    }


def ua(y_true: Sequence[str], y_pred: Sequence[str]) -> float:
    """Unweighted accuracy: mean recall over the classes present in ``y_true`` (predictions of a
    class the test set lacks count as errors; scikit-learn's warning about it is expected here)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        return float(balanced_accuracy_score(y_true, y_pred))


def roc_auc_ovr(y_true: Sequence[str], proba: np.ndarray, classes: Sequence[str]) -> dict:
    """One-vs-rest ROC-AUC per class and their macro mean (classes absent from y_true are skipped)."""
    y_true = np.asarray(y_true, dtype=str)
    per = {}
    for i, c in enumerate(classes):
        pos = y_true == c
        if pos.all() or not pos.any():
            continue
        per[str(c)] = float(roc_auc_score(pos.astype(int), proba[:, i]))
    return {"per_class": per, "macro": float(np.mean(list(per.values()))) if per else float("nan")}


def mean_std(values: Sequence[float]) -> dict:
    """Mean and (population, ddof=0) standard deviation over folds."""
    a = np.asarray(values, dtype=float)
    return {"mean": float(a.mean()), "std": float(a.std()), "n": int(a.size)}


def aggregate(folds: list[dict], classes: Sequence[str]) -> dict:
    """Mean ± std of the headline metrics over folds, plus pooled per-class and confusion."""
    out = {k: mean_std([f[k] for f in folds]) for k in HEADLINE}
    aucs = [f["roc_auc"]["macro"] for f in folds if "roc_auc" in f and np.isfinite(f["roc_auc"]["macro"])]
    if aucs:
        out["roc_auc_macro"] = mean_std(aucs)
    for key in ("ece", "ece_uncalibrated", "temperature"):  # probability calibration (15 bins)
        vals = [f[key] for f in folds if f.get(key) is not None]
        if vals:
            out[key] = mean_std(vals)
    conf = np.sum([np.asarray(f["confusion"]) for f in folds], axis=0)
    out["confusion"] = conf.tolist()
    out["per_class"] = {}
    for i, c in enumerate(classes):
        tp = conf[i, i]
        prec = tp / conf[:, i].sum() if conf[:, i].sum() else 0.0
        rec = tp / conf[i].sum() if conf[i].sum() else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out["per_class"][str(c)] = {"precision": float(prec), "recall": float(rec), "f1": float(f1),
                                    "support": int(conf[i].sum())}
    return out


#: equal-width confidence bins of the expected calibration error (Guo et al., 2017)
ECE_BINS = 15


def reliability(y_true: Sequence[str], proba: np.ndarray, classes: Sequence[str],
                n_bins: int = ECE_BINS) -> dict:
    """Reliability of the top-class confidence in ``n_bins`` equal-width bins of (0, 1].

    Bin ``b`` holds the predictions whose confidence ``c`` satisfies ``b/n < c <= (b+1)/n``
    (a confidence of exactly 0 goes into the first bin). Per bin: ``count``, ``confidence`` (mean
    top probability) and ``accuracy`` (share of top-class predictions that are right); empty bins
    have ``None`` for both.
    """
    proba = np.asarray(proba, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=str)
    if proba.ndim != 2 or len(proba) != len(y_true) or proba.shape[1] != len(classes):
        raise ValueError(f"proba must be [n, {len(classes)}] for {len(y_true)} labels, got {proba.shape}")
    conf = proba.max(axis=1)
    correct = np.asarray(classes, dtype=str)[proba.argmax(axis=1)] == y_true
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        m = which == b
        n = int(m.sum())
        bins.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": n,
                     "confidence": float(conf[m].mean()) if n else None,
                     "accuracy": float(correct[m].mean()) if n else None})
    return {"n_bins": n_bins, "bins": bins}


def ece(y_true: Sequence[str], proba: np.ndarray, classes: Sequence[str], n_bins: int = ECE_BINS) -> float:
    """Expected calibration error: ``sum_b |B_b|/n * |accuracy(B_b) - confidence(B_b)|`` over
    ``n_bins`` equal-width bins of the top-class confidence (:func:`reliability`). In [0, 1]."""
    rel = reliability(y_true, proba, classes, n_bins)
    n = sum(b["count"] for b in rel["bins"])
    if n == 0:
        raise ValueError("no predictions to score")
    return float(sum(b["count"] / n * abs(b["accuracy"] - b["confidence"])
                     for b in rel["bins"] if b["count"]))

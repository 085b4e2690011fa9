"""Per-fold files of a run directory, read without pickle.

Every ``.npz`` is opened with ``np.load(..., allow_pickle=False)``: an array stored as a
pickled object array cannot be read that way and is reported as unreadable instead of
being unpickled (a run directory is a file a user may have been sent).

``attention.npz`` (written by :func:`serkit.evaluation.explain.save_attention`):
``weights`` float32 1-D (all utterances' weights one after the other), ``offsets`` int64
(n + 1; utterance ``i`` is ``weights[offsets[i]:offsets[i + 1]]``), ``keys`` and ``labels``
unicode arrays. The older layout (``weights`` an object array) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .run import Run

__all__ = ["read_npz", "Attention", "read_attention", "Embeddings", "read_embeddings", "read_gradcam", "read_history"]


def read_npz(path: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """``(arrays, names of arrays that need pickle)``; nothing is unpickled."""
    arrays, refused = {}, []
    with np.load(path, allow_pickle=False) as z:
        for name in z.files:
            try:
                arrays[name] = z[name]
            except ValueError:  # "Object arrays cannot be loaded when allow_pickle=False"
                refused.append(name)
    return arrays, refused


@dataclass
class Attention:
    """Attention weights of one fold file, or why they could not be read (``error``)."""

    path: Path
    keys: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    weights: list[np.ndarray] = field(default_factory=list)
    error: str | None = None


def read_attention(path: str | Path) -> Attention:
    """Read an ``attention.npz`` in the pickle-free layout (module docstring)."""
    path = Path(path)
    try:
        arrays, refused = read_npz(path)
    except (OSError, ValueError) as exc:
        return Attention(path, error=f"{path} could not be read ({exc})")
    if refused:
        return Attention(
            path,
            error=f"{path} stores {', '.join(refused)} as pickled object arrays (an older serkit "
            "format) and cannot be read safely; it was not loaded. Re-run to rewrite it.",
        )
    missing = [k for k in ("weights", "offsets", "keys", "labels") if k not in arrays]
    if missing:
        return Attention(path, error=f"{path} lacks {', '.join(missing)}; not a serkit attention file.")
    w, off = arrays["weights"], arrays["offsets"]
    keys, labels = [str(k) for k in arrays["keys"]], [str(x) for x in arrays["labels"]]
    n = len(keys)
    ok = (
        w.ndim == 1
        and w.dtype.kind == "f"
        and off.ndim == 1
        and off.dtype.kind in "iu"
        and len(off) == n + 1
        and len(labels) == n
        and off[0] == 0
        and off[-1] == len(w)
        and bool(np.all(np.diff(off) >= 0))
    )
    if not ok:
        return Attention(path, error=f"{path}: weights / offsets / keys / labels do not fit together; not shown.")
    weights = [np.asarray(w[off[i] : off[i + 1]], dtype=float) for i in range(n)]
    return Attention(path, keys, labels, weights)


@dataclass
class Embeddings:
    fold: str
    embedding: np.ndarray  # (n, d)
    keys: np.ndarray
    true: np.ndarray
    pred: np.ndarray
    note: str = ""


def read_embeddings(run: Run) -> tuple[Embeddings | None, list[str]]:
    """The first fold's ``embeddings.npz`` that has rows, and notes on files not used.

    Keys and labels stored as pickled object arrays (as evaluation/protocol.py has written
    embeddings.npz so far) are not unpickled: they are taken from that fold's rows of
    predictions.csv, which ``serkit run`` writes in the same order, when the counts (and any
    readable predicted labels) agree.
    """
    notes = []
    for fold, d in run.fold_dirs.items():
        p = d / "embeddings.npz"
        if not p.is_file():
            continue
        arrays, refused = read_npz(p)
        if "embedding" in refused:
            notes.append(f"{p}: the embedding is a pickled object array; not read.")
            continue
        emb = arrays.get("embedding")
        if emb is None or len(emb) == 0:
            continue
        emb = np.asarray(emb, dtype=float).reshape(len(emb), -1)
        n = len(emb)
        cols = {k: np.asarray(arrays[k]).astype(str) for k in ("keys", "true", "pred") if k in arrays}
        note = ""
        if {"keys", "true"} & set(refused):
            rows = _fold_predictions(run, fold)
            pred_ok = "pred" not in cols or (rows is not None and np.array_equal(rows["pred"].to_numpy(str), cols["pred"]))
            if rows is None or len(rows) != n or not pred_ok:
                notes.append(f"{p}: keys / labels are pickled object arrays and predictions.csv does not line "
                             "up with them; not shown.")
                continue
            cols.update(keys=rows["key"].to_numpy(str), true=rows["true"].to_numpy(str))
            cols.setdefault("pred", rows["pred"].to_numpy(str))
            note = (" Keys and labels of this file are stored as pickled object arrays and were not read; "
                    "they are taken from this fold's rows of predictions.csv, in order.")
        true = cols.get("true", np.full(n, "?"))
        return Embeddings(fold, emb, cols.get("keys", np.arange(n).astype(str)), true, cols.get("pred", true), note), notes
    return None, notes


def _fold_predictions(run: Run, fold: str) -> pd.DataFrame | None:
    df = run.predictions
    if df is None or not {"key", "true", "pred"} <= set(df.columns):
        return None
    if "fold" not in df:
        return df if len(run.fold_dirs) == 1 else None
    return df[df["fold"].astype(str) == str(fold)]


def _scalar(v: np.ndarray) -> str:
    a = np.asarray(v)
    return str(a.item() if a.ndim == 0 else a.ravel()[0])


def read_gradcam(run: Run, limit: int) -> tuple[list[dict], list[tuple[str, Path]], list[dict], list[str]]:
    """(npz maps, stand-alone png files, one table row per shown file, notes) over all folds."""
    items, pngs, rows, notes = [], [], [], []
    for fold, d in run.fold_dirs.items():
        g = d / "gradcam"
        if not g.is_dir():
            continue
        npz_files = sorted(g.glob("*.npz"))
        stems = {p.stem for p in npz_files}
        for p in npz_files:
            if len(items) >= limit:
                break
            z, refused = read_npz(p)
            if "map" not in z:
                if refused:
                    notes.append(f"{p}: pickled object arrays; not read.")
                continue
            it = {
                "map": np.asarray(z["map"], dtype=float),
                "spec": np.asarray(z.get("spec", np.zeros_like(z["map"])), dtype=float),
                "key": _scalar(z["key"]) if "key" in z else p.stem,
                "label": _scalar(z["label"]) if "label" in z else "?",
                "pred": _scalar(z["pred"]) if "pred" in z else "?",
            }
            items.append(it)
            rows.append({"fold": fold, "file": str(p.relative_to(run.path)), "key": it["key"], "true": it["label"], "pred": it["pred"]})
        for p in sorted(g.glob("*.png")):
            if p.stem not in stems and len(pngs) < limit:
                pngs.append((fold, p))
                rows.append({"fold": fold, "file": str(p.relative_to(run.path)), "key": p.stem, "true": "", "pred": ""})
    return items, pngs, rows, notes


def read_history(run: Run) -> pd.DataFrame | None:
    """Per-epoch curves of all folds (``fold`` column first), None without history.csv files."""
    frames = []
    for fold, d in run.fold_dirs.items():
        p = d / "history.csv"
        if p.is_file():
            h = pd.read_csv(p)
            if "epoch" not in h:
                h["epoch"] = np.arange(1, len(h) + 1)
            h.insert(0, "fold", fold)
            frames.append(h)
    return pd.concat(frames, ignore_index=True) if frames else None

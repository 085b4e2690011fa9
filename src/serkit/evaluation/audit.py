"""Checks that make a run's numbers honest: where every input row went, which classes a fold
lacks, and speakers whose labels make test-time speaker normalisation misleading."""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd

#: problem kinds that describe a file without leaving it out of the manifest
INFORMATIONAL = frozenset({"duplicate", "warning"})


def accounting(problems: Sequence[dict], excluded: dict[str, int], rows_used: int,
               feature_skips: Sequence[dict]) -> dict:
    """Every input row: used, or skipped with a reason (stage ``scan`` or ``features``).

    ``excluded`` counts rows left out on purpose (a label set that drops calm, subsampling); they
    are counted, not listed.
    """
    skipped = [{"path": p["path"], "key": None, "stage": "scan", "kind": p["kind"],
                "reason": p.get("detail", "")} for p in problems if p["kind"] not in INFORMATIONAL]
    skipped += [dict(s) for s in feature_skips]
    n_excluded = int(sum(excluded.values()))
    return {"rows_scanned": rows_used + len(skipped) + n_excluded, "rows_used": int(rows_used),
            "excluded": {k: int(v) for k, v in excluded.items()}, "skipped": skipped}


def missing_classes(y: np.ndarray, idx: np.ndarray, classes: Sequence[str]) -> list[str]:
    present = set(np.asarray(y)[idx])
    return [c for c in classes if c not in present]


def missing_classes_note(folds: Sequence[dict]) -> str | None:
    """One sentence when any fold's test (or train) set lacks classes."""
    parts = []
    for f in folds:
        bits = []
        if f.get("missing_classes"):
            bits.append(f"test set lacks {', '.join(f['missing_classes'])}")
        if f.get("missing_train_classes"):
            bits.append(f"training set lacks {', '.join(f['missing_train_classes'])}")
        if bits:
            parts.append(f"{f['fold']}: {'; '.join(bits)}")
    if not parts:
        return None
    return ("Some folds do not contain every class (" + " | ".join(parts) + "); UA of such a fold "
            "is the mean recall over the classes its test set has, so folds are not comparable.")


def speaker_label_warnings(manifest: pd.DataFrame, threshold: float) -> list[dict]:
    """Speakers whose label distribution is at least ``threshold`` (total variation distance)
    away from their corpus's: per-speaker normalisation then removes emotion, not speaker."""
    out = []
    for _, part in manifest.groupby("corpus"):
        corpus = part["label"].value_counts(normalize=True)
        for spk, sp in part.groupby("speaker"):
            dist = sp["label"].value_counts(normalize=True)
            tv = 0.5 * float(dist.reindex(corpus.index, fill_value=0.0).sub(corpus).abs().sum()
                             + dist.drop(corpus.index, errors="ignore").sum())
            if tv >= threshold:
                out.append({"speaker": str(spk), "distance": round(tv, 3),
                            "labels": {str(k): int(v) for k, v in Counter(sp["label"]).most_common()}})
    return sorted(out, key=lambda w: -w["distance"])

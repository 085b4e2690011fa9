"""The versions of ``metrics.json`` that reporting reads, mapped onto one record.

Two versions exist and nothing else is read (no guessing at other layouts):

* **v2** — ``"schema_version": 2``; records ``protocol.transductive``, the corpus names,
  ``accounting`` (rows scanned / used, every skipped input), per-fold missing classes,
  ``timing`` and ``extraction`` (``/work/CONTRACTS.md``, "Run directory schema v2").
* **v1** — no ``schema_version``. Mapped as follows: ``transductive`` is
  ``config.yaml`` ``features.speaker_norm`` (unknown without config.yaml);
  ``skipped_files`` ``[{path, error}]`` become skipped rows with stage ``features`` and kind
  ``unreadable``; rows used = ``n_utterances``, rows scanned = used + skipped (drops while
  scanning the corpus were not recorded in v1); the corpora are the names in manifest.csv's
  ``corpus`` column (v1 ``corpora`` holds adapter names such as ``csv``); a fold's missing
  test classes are read off predictions.csv, its missing training classes are unknown.

Any other ``schema_version`` raises :class:`RunFormatError` naming the run directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["RunFormatError", "SCHEMA_VERSIONS", "TRANSDUCTIVE_NOTE", "schema_version", "normalize", "missing_text"]

SCHEMA_VERSIONS = (1, 2)
TRANSDUCTIVE_NOTE = (
    "transductive: uses the test speakers' unlabelled utterances (per-speaker feature normalisation)"
)
#: adapter names that do not name a corpus (a user's CSV / folder corpus)
GENERIC_ADAPTERS = frozenset({"csv", "folder"})


class RunFormatError(ValueError):
    """metrics.json of a run directory is not in a schema version reporting reads."""


def _fail(run_dir: Path, msg: str) -> RunFormatError:
    return RunFormatError(f"{run_dir}: {msg}")


def schema_version(metrics: dict, run_dir: Path) -> int:
    """1 when ``schema_version`` is absent, else the recorded version if it is one we read."""
    if "schema_version" not in metrics:
        return 1
    v = metrics["schema_version"]
    if isinstance(v, bool) or not isinstance(v, int) or v not in SCHEMA_VERSIONS:
        raise _fail(
            run_dir,
            f"metrics.json has schema_version {v!r}; this serkit reads versions "
            f"{', '.join(map(str, SCHEMA_VERSIONS))} (version 1 = no schema_version)",
        )
    return v


def _str_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    raise TypeError


def _skipped_row(entry: dict) -> dict:
    return {k: entry.get(k) for k in ("path", "key", "stage", "kind", "reason")}


def _protocol(metrics: dict, run_dir: Path) -> dict:
    p = metrics.get("protocol")
    if p is None:
        return {}
    if not isinstance(p, dict):
        raise _fail(run_dir, f"metrics.json protocol must be an object, not {type(p).__name__}")
    return dict(p)


def _v2(metrics: dict, run_dir: Path) -> dict:
    protocol = _protocol(metrics, run_dir)
    if not isinstance(protocol.get("transductive"), bool):
        raise _fail(run_dir, "schema_version 2 metrics.json needs protocol.transductive (true/false)")
    corpora = metrics.get("corpora")
    if not isinstance(corpora, list) or not all(isinstance(c, str) for c in corpora):
        raise _fail(run_dir, "schema_version 2 metrics.json needs corpora: a list of corpus names")
    acc = metrics.get("accounting")
    if not (
        isinstance(acc, dict)
        and isinstance(acc.get("rows_scanned"), int)
        and isinstance(acc.get("rows_used"), int)
        and isinstance(acc.get("skipped"), list)
        and all(isinstance(e, dict) for e in acc["skipped"])
    ):
        raise _fail(run_dir, "schema_version 2 metrics.json needs accounting {rows_scanned, rows_used, skipped: [...]}")
    if protocol["transductive"] and not protocol.get("transductive_note"):
        protocol["transductive_note"] = TRANSDUCTIVE_NOTE
    folds = []
    for f in metrics.get("folds") or []:
        try:
            folds.append(
                {
                    **f,
                    "missing_classes": _str_list(f.get("missing_classes")),
                    "missing_train_classes": _str_list(f.get("missing_train_classes")),
                }
            )
        except (TypeError, AttributeError):
            raise _fail(run_dir, "metrics.json folds must be objects whose missing_classes / "
                        "missing_train_classes are lists of labels") from None
    timing = metrics.get("timing")
    extraction = metrics.get("extraction")
    return {
        "protocol": protocol,
        "corpora": list(corpora),
        "corpora_known": True,
        "accounting": {
            "rows_scanned": acc["rows_scanned"],
            "rows_used": acc["rows_used"],
            "skipped": [_skipped_row(e) for e in acc["skipped"]],
        },
        "folds": folds,
        "missing_classes_note": metrics.get("missing_classes_note") or None,
        "speaker_label_warnings": [w for w in metrics.get("speaker_label_warnings") or [] if isinstance(w, dict)],
        "timing": timing if isinstance(timing, dict) else None,
        "extraction": [e for e in extraction if isinstance(e, dict)] if isinstance(extraction, list) else [],
        "notes": [],
    }


def _v1(metrics: dict, run_dir: Path, config: dict | None, manifest: pd.DataFrame | None,
        predictions: pd.DataFrame | None) -> dict:
    protocol = _protocol(metrics, run_dir)
    notes = []
    if config is None:
        protocol["transductive"] = None
        notes.append("v1 run without config.yaml: whether features were normalised per test speaker "
                     "(transductive) is not recorded.")
    else:
        features = config.get("features")
        protocol["transductive"] = bool(isinstance(features, dict) and features.get("speaker_norm") is True)
    protocol["transductive_note"] = TRANSDUCTIVE_NOTE if protocol["transductive"] else None

    recorded = [str(c) for c in metrics.get("corpora") or []]
    if manifest is not None and "corpus" in manifest and manifest["corpus"].notna().any():
        corpora, known = list(dict.fromkeys(manifest["corpus"].dropna().astype(str))), True
    else:
        corpora = recorded
        known = bool(recorded) and not (GENERIC_ADAPTERS & {c.lower() for c in recorded})
        if recorded and not known:
            notes.append("v1 run: metrics.json names the corpus adapter (csv / folder), not the corpus, "
                         "and manifest.csv is absent; this run is not ranked against others.")

    skipped = [
        {"path": e.get("path"), "key": None, "stage": "features", "kind": "unreadable", "reason": e.get("error")}
        for e in metrics.get("skipped_files") or []
        if isinstance(e, dict)
    ]
    used = metrics.get("n_utterances")
    if not isinstance(used, int) and manifest is not None:
        used = len(manifest)
    accounting = None
    if isinstance(used, int):
        accounting = {"rows_scanned": used + len(skipped), "rows_used": used, "skipped": skipped}
        notes.append("v1 run: only inputs that failed feature extraction were recorded; rows dropped "
                     "while scanning the corpus are not counted.")

    folds = [{**f, "missing_classes": None, "missing_train_classes": None}
             for f in metrics.get("folds") or [] if isinstance(f, dict)]
    classes = [str(c) for c in metrics.get("classes") or []]
    if predictions is not None and classes and {"fold", "true"} <= set(predictions.columns):
        present = predictions.groupby(predictions["fold"].astype(str))["true"].agg(lambda s: set(s.astype(str)))
        for f in folds:
            name = str(f.get("fold"))
            if name in present:
                f["missing_classes"] = [c for c in classes if c not in present[name]]
    return {
        "protocol": protocol,
        "corpora": corpora,
        "corpora_known": known,
        "accounting": accounting,
        "folds": folds,
        "missing_classes_note": None,
        "speaker_label_warnings": [],
        "timing": None,
        "extraction": [],
        "notes": notes,
    }


def normalize(metrics: dict, run_dir: Path, *, config: dict | None = None, manifest: pd.DataFrame | None = None,
              predictions: pd.DataFrame | None = None) -> dict:
    """The fields reporting needs, from a v1 or v2 ``metrics.json`` (see the module docstring).

    Returns a dict with ``version, protocol`` (``kind, speaker_independent, description,
    n_folds, transductive`` (bool, or None when unknown), ``transductive_note``), ``corpora``,
    ``corpora_known``, ``accounting`` (None when unknown), ``folds`` (each with
    ``missing_classes`` / ``missing_train_classes``: lists, or None when unknown),
    ``missing_classes_note``, ``speaker_label_warnings``, ``timing``, ``extraction`` and
    ``notes`` (how a v1 record was mapped).
    """
    if not isinstance(metrics, dict):
        raise _fail(run_dir, "metrics.json does not hold a JSON object")
    version = schema_version(metrics, run_dir)
    out = _v2(metrics, run_dir) if version == 2 else _v1(metrics, run_dir, config, manifest, predictions)
    out["version"] = version
    return out


def missing_text(labels: Sequence[str] | None) -> str:
    """``"none"``, ``"angry, sad"`` or ``"not recorded"``."""
    if labels is None:
        return "not recorded"
    return ", ".join(labels) if labels else "none"

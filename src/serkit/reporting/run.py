"""Read one run directory (format: ``docs/ARCHITECTURE.md``) and summarise it.

:func:`load_run` reads ``metrics.json`` (required; schema v1 or v2, see :mod:`.schema`),
and whichever of ``config.yaml``, ``predictions.csv``, ``manifest.csv`` and ``folds/*/``
exist. :func:`run_summary` gives the headline numbers and metadata that the report and
``serkit compare`` print. Nothing here unpickles anything.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .schema import RunFormatError, normalize

__all__ = [
    "Run",
    "RunFormatError",
    "load_run",
    "run_summary",
    "fold_name",
    "natural_sorted",
    "format_wall_time",
    "protocol_text",
    "published_percent",
]


@dataclass
class Run:
    """Everything read from one run directory (missing files are ``None`` / empty).

    ``protocol``, ``corpora``, ``accounting``, ``fold_records`` ... are the schema-normalised
    view of ``metrics.json`` (:func:`serkit.reporting.schema.normalize`); ``metrics`` is the raw file.
    """

    path: Path
    metrics: dict
    version: int
    config: dict | None = None
    predictions: pd.DataFrame | None = None
    manifest: pd.DataFrame | None = None
    classes: list[str] = field(default_factory=list)
    fold_dirs: dict[str, Path] = field(default_factory=dict)
    protocol: dict = field(default_factory=dict)
    corpora: list[str] = field(default_factory=list)
    corpora_known: bool = True
    accounting: dict | None = None
    fold_records: list[dict] = field(default_factory=list)
    missing_classes_note: str | None = None
    speaker_label_warnings: list[dict] = field(default_factory=list)
    timing: dict | None = None
    extraction: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def meta(self, key: str, default: Any = None) -> Any:
        """A metadata entry of metrics.json, ``default`` when absent or empty."""
        value = self.metrics.get(key)
        return default if value in (None, "", [], {}) else value

    @property
    def name(self) -> str:
        return str(self.meta("name") or self.path.name)

    @property
    def transductive(self) -> bool | None:
        return self.protocol.get("transductive")

    @property
    def folds(self) -> list[str]:
        if self.predictions is not None and "fold" in self.predictions:
            return natural_sorted(self.predictions["fold"].astype(str).unique())
        if self.fold_records:
            return [str(f.get("fold", i)) for i, f in enumerate(self.fold_records)]
        return list(self.fold_dirs)

    def fold_record(self, fold: str) -> dict:
        """The metrics.json entry of a fold (empty when not recorded)."""
        return next((f for f in self.fold_records if str(f.get("fold")) == str(fold)), {})


def fold_name(fold: Any) -> str:
    """``"fold 0"`` for bare ids, the id itself when it already reads ``fold1``."""
    f = str(fold)
    return f if f.lower().startswith("fold") else f"fold {f}"


def natural_sorted(values) -> list[str]:
    def key(v: str):
        try:
            return (0, float(v), v)
        except ValueError:
            return (1, 0.0, v)

    return sorted((str(v) for v in values), key=key)


def _read_yaml(path: Path) -> dict | None:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):  # a broken config must not break the report
        return None
    return data if isinstance(data, dict) else None


def load_run(run_dir: str | os.PathLike) -> Run:
    """Read a run directory.

    Raises
    ------
    FileNotFoundError
        No such directory, or no metrics.json in it.
    RunFormatError
        metrics.json is not valid JSON or not in schema version 1 or 2.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"run directory not found: {path}")
    if not (path / "metrics.json").is_file():
        raise FileNotFoundError(f"{path} is not a serkit run directory (no metrics.json)")
    try:
        metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunFormatError(f"{path}: metrics.json is not valid JSON ({exc})") from None
    config = _read_yaml(path / "config.yaml") if (path / "config.yaml").is_file() else None
    predictions = manifest = None
    if (path / "predictions.csv").is_file():
        str_cols = {"key": str, "speaker": str, "true": str, "pred": str, "fold": str}
        predictions = pd.read_csv(path / "predictions.csv", dtype=str_cols, keep_default_na=False, na_values=[""])
    if (path / "manifest.csv").is_file():
        manifest = pd.read_csv(
            path / "manifest.csv",
            dtype={"key": str, "speaker": str, "label": str, "corpus": str},
            keep_default_na=False,
            na_values=[""],
        )
    rec = normalize(metrics, path, config=config, manifest=manifest, predictions=predictions)
    run = Run(
        path=path,
        metrics=metrics,
        version=rec["version"],
        config=config,
        predictions=predictions,
        manifest=manifest,
        protocol=rec["protocol"],
        corpora=rec["corpora"],
        corpora_known=rec["corpora_known"],
        accounting=rec["accounting"],
        fold_records=rec["folds"],
        missing_classes_note=rec["missing_classes_note"],
        speaker_label_warnings=rec["speaker_label_warnings"],
        timing=rec["timing"],
        extraction=rec["extraction"],
        notes=rec["notes"],
    )
    folds_dir = path / "folds"
    if folds_dir.is_dir():
        dirs = {p.name: p for p in folds_dir.iterdir() if p.is_dir()}
        run.fold_dirs = {k: dirs[k] for k in natural_sorted(dirs)}
    run.classes = _classes(run)
    return run


def _classes(run: Run) -> list[str]:
    cls = run.metrics.get("classes")
    if isinstance(cls, list) and cls:
        return [str(c) for c in cls]
    df = run.predictions
    if df is not None and {"true", "pred"} <= set(df.columns):
        return sorted(set(df["true"].dropna()) | set(df["pred"].dropna()))
    return []


# ====================================================================== formatting helpers
def published_percent(pub: Any) -> float | None:
    """A published figure (``config.published.value``) in percent; values up to 1 are fractions."""
    if not isinstance(pub, dict):
        return None
    try:
        v = float(pub.get("value"))
    except (TypeError, ValueError):
        return None
    if math.isnan(v):
        return None
    return v * 100.0 if v <= 1.0 else v


def _mean_std(entry: Any) -> tuple[float, float]:
    if isinstance(entry, dict):
        mean, std = entry.get("mean"), entry.get("std")
        return (float(mean) if mean is not None else float("nan"), float(std) if std is not None else float("nan"))
    return float("nan"), float("nan")


def format_wall_time(seconds: Any) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return "not recorded"
    if s != s:
        return "not recorded"
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(int(round(s)), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min {sec:02d} s" if h else f"{m} min {sec:02d} s"


def _fmt_obj(value: Any) -> str:
    """Model / features entries may be strings or dicts."""
    if value is None or value == "" or value == {}:
        return "not recorded"
    if isinstance(value, dict):
        name = value.get("name") or value.get("kind")
        rest = {k: v for k, v in value.items() if k not in ("name", "kind")}
        params = ", ".join(f"{k}={v}" for k, v in rest.items() if not isinstance(v, (dict, list)))
        return f"{name} ({params})" if name and params else (str(name) if name else params)
    if isinstance(value, (list, tuple)):
        return " + ".join(_fmt_obj(v) for v in value)
    return str(value)


def protocol_text(protocol: dict) -> tuple[bool | None, str]:
    """``(speaker_independent, plain-words description)`` of a protocol record."""
    si = protocol.get("speaker_independent")
    extra = " — ".join(str(x) for x in (protocol.get("kind"), protocol.get("description")) if x)
    if si is True:
        text = "Speaker-independent: no speaker appears in both training and test"
    elif si is False:
        text = "Speaker-dependent random split — the same speakers are in training and test; accuracy is inflated"
    else:
        text = "Protocol not recorded: speaker independence unknown"
    return (si if isinstance(si, bool) else None), text + (f" ({extra})" if extra else "")


def run_summary(run: Run) -> dict[str, Any]:
    """Headline numbers (fractions, from metrics.json) and metadata of a run.

    Used by the report and by ``serkit compare``; ``corpora_key`` and ``transductive``
    decide which runs may be ranked together.
    """
    out: dict[str, Any] = {}
    for m in ("ua", "wa", "macro_f1"):
        out[m], out[f"{m}_std"] = _mean_std(run.metrics.get(m))
    si, ptext = protocol_text(run.protocol)
    corpora_key = tuple(sorted(c.lower() for c in run.corpora))
    if not run.corpora_known:  # cannot tell which corpus: never ranked with another run
        corpora_key = ("?", str(run.path.resolve()))
    acc = run.accounting or {}
    out.update(
        name=run.name,
        schema_version=run.version,
        model=_fmt_obj(run.meta("model")),
        features=_fmt_obj(run.meta("features")),
        corpora=" + ".join(run.corpora) if run.corpora else "not recorded",
        corpora_list=list(run.corpora),
        corpora_key=corpora_key,
        corpora_known=run.corpora_known,
        label_set=str(run.meta("label_set") or "not recorded"),
        classes=list(run.classes),
        protocol=run.protocol,
        protocol_kind=str(run.protocol.get("kind") or "unknown"),
        speaker_independent=si,
        protocol_text=ptext,
        transductive=run.transductive,
        transductive_note=run.protocol.get("transductive_note"),
        n_folds=len(run.folds),
        seed=run.meta("seed"),
        wall_time_s=run.metrics.get("wall_time_s"),
        serkit_version=run.metrics.get("serkit_version"),
        published=run.metrics.get("published") or None,
        n_predictions=int(len(run.predictions)) if run.predictions is not None else None,
        rows_scanned=acc.get("rows_scanned"),
        rows_used=acc.get("rows_used"),
        n_skipped=len(acc["skipped"]) if acc else None,
        path=str(run.path),
    )
    return out


def clean_nan(obj: Any) -> Any:
    """NaN → None, recursively (for JSON)."""
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, np.floating):
        return None if np.isnan(obj) else float(obj)
    if isinstance(obj, dict):
        return {k: clean_nan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_nan(v) for v in obj]
    return obj

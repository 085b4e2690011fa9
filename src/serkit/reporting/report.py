"""One self-contained HTML report per run directory.

:func:`write_report` reads a run directory (format: ``docs/ARCHITECTURE.md``),
recomputes every analysis from ``predictions.csv`` and the per-fold files, writes
``RUN_DIR/report.html`` (figures embedded as base64 PNG, inline CSS, no external
resources) and the data behind every figure into ``RUN_DIR/report_data/``.

Only what is there is shown: a run with just ``predictions.csv`` and
``metrics.json`` renders, with a short note where a section has no input.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import html as H
from . import plots
from .colors import colors_for

__all__ = ["Run", "load_run", "run_summary", "write_report", "as_fraction", "fold_name", "format_wall_time", "protocol_text"]

MAX_EMBED_POINTS = 2000
MAX_GRADCAM = 12
MAX_ATTENTION = 8

_DATA_FILES = (
    "summary.json",
    "per_fold.csv",
    "per_class.csv",
    "per_class_folds.csv",
    "confusion.csv",
    "confusion_normalized.csv",
    "roc.csv",
    "pr.csv",
    "curves.csv",
    "pca.csv",
    "tsne.csv",
    "activation.csv",
    "feature_variance.csv",
    "attention.csv",
    "gradcam.csv",
)


# ====================================================================== loading
@dataclass
class Run:
    """Everything read from one run directory (missing parts are ``None`` / empty)."""

    path: Path
    metrics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    predictions: pd.DataFrame | None = None
    manifest: pd.DataFrame | None = None
    classes: list[str] = field(default_factory=list)
    fold_dirs: dict[str, Path] = field(default_factory=dict)

    # ---- metadata, from metrics.json first, then config.yaml
    def meta(self, key: str, default: Any = None) -> Any:
        if self.metrics.get(key) not in (None, "", [], {}):
            return self.metrics[key]
        cfg = self.config
        if cfg.get(key) not in (None, "", [], {}):
            return cfg[key]
        for sub in ("experiment", "data", "model", "features", "evaluation"):
            block = cfg.get(sub)
            if isinstance(block, dict) and block.get(key) not in (None, "", [], {}):
                return block[key]
        return default

    @property
    def name(self) -> str:
        return str(self.meta("name") or self.path.name)

    @property
    def protocol(self) -> dict:
        p = self.metrics.get("protocol")
        if isinstance(p, dict):
            return p
        if isinstance(p, str):
            return {"kind": p}
        cfg_p = self.config.get("protocol") or (self.config.get("evaluation") or {}).get("protocol")
        if isinstance(cfg_p, dict):
            return cfg_p
        if isinstance(cfg_p, str):
            return {"kind": cfg_p}
        return {}

    @property
    def folds(self) -> list[str]:
        if self.predictions is not None and "fold" in self.predictions:
            return _natural_sorted(self.predictions["fold"].astype(str).unique())
        if self.predictions is not None and len(self.predictions):
            return ["0"]  # one test set without a fold column
        mf = self.metrics.get("folds")
        if isinstance(mf, list) and mf:
            return [str(f.get("fold", i)) if isinstance(f, dict) else str(i) for i, f in enumerate(mf)]
        return list(self.fold_dirs)


def fold_name(fold: Any) -> str:
    """``"fold 0"`` for bare ids, the id itself when it already reads ``fold1``."""
    f = str(fold)
    return f if f.lower().startswith("fold") else f"fold {f}"


def _natural_sorted(values) -> list[str]:
    def key(v: str):
        try:
            return (0, float(v), v)
        except ValueError:
            return (1, 0.0, v)

    return sorted((str(v) for v in values), key=key)


def _read_yaml(path: Path) -> dict:
    try:
        import yaml

        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except Exception:  # a broken config must not break the report
        return {}


def load_run(run_dir: str | os.PathLike) -> Run:
    """Read a run directory; every file is optional."""
    path = Path(run_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"run directory not found: {path}")
    run = Run(path=path)
    if (path / "metrics.json").is_file():
        run.metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8")) or {}
    if (path / "config.yaml").is_file():
        run.config = _read_yaml(path / "config.yaml")
    str_cols = {"key": str, "speaker": str, "true": str, "pred": str, "fold": str}
    if (path / "predictions.csv").is_file():
        run.predictions = pd.read_csv(path / "predictions.csv", dtype=str_cols, keep_default_na=False, na_values=[""])
    if (path / "manifest.csv").is_file():
        run.manifest = pd.read_csv(
            path / "manifest.csv", dtype={"key": str, "speaker": str, "label": str}, keep_default_na=False, na_values=[""]
        )
    folds_dir = path / "folds"
    if folds_dir.is_dir():
        dirs = {p.name: p for p in folds_dir.iterdir() if p.is_dir()}
        run.fold_dirs = {k: dirs[k] for k in _natural_sorted(dirs)}
    run.classes = _classes(run)
    return run


def _classes(run: Run) -> list[str]:
    cls = run.metrics.get("classes")
    if isinstance(cls, list) and cls:
        return [str(c) for c in cls]
    df = run.predictions
    if df is not None:
        probs = [c[5:] for c in df.columns if c.startswith("prob_")]
        if probs:
            return probs
        if {"true", "pred"} <= set(df.columns):
            return sorted(set(df["true"].dropna()) | set(df["pred"].dropna()))
    pc = run.metrics.get("per_class")
    if isinstance(pc, dict):
        return [str(c) for c in pc]
    return []


# ====================================================================== helpers
def as_fraction(value: Any) -> float:
    """A score as a fraction in [0, 1]; values above 1 are taken as percentages."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return float("nan")
    if math.isnan(v):
        return v
    return v / 100.0 if v > 1.0 else v


def _mean_std(entry: Any) -> tuple[float, float]:
    if isinstance(entry, dict):
        return as_fraction(entry.get("mean")), as_fraction(entry.get("std"))
    if entry is None:
        return float("nan"), float("nan")
    return as_fraction(entry), float("nan")


def _pct(v: float, digits: int = 2) -> str:
    return "–" if v is None or v != v else f"{v * 100:.{digits}f}"


def _pm(mean: float, std: float) -> str:
    if mean != mean:
        return "–"
    return _pct(mean) if std != std else f"{_pct(mean)} ± {_pct(std)}"


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
    """Model / features entries may be strings, lists or dicts."""
    if value is None or value == "" or value == {}:
        return "not recorded"
    if isinstance(value, dict):
        name = value.get("name") or value.get("kind") or value.get("type")
        rest = {k: v for k, v in value.items() if k not in ("name", "kind", "type")}
        if name and not rest:
            return str(name)
        params = ", ".join(f"{k}={v}" for k, v in rest.items() if not isinstance(v, (dict, list)))
        return f"{name} ({params})" if name and params else (str(name) if name else params)
    if isinstance(value, (list, tuple)):
        return " + ".join(_fmt_obj(v) for v in value)
    return str(value)


def _fmt_list(value: Any) -> str:
    if value is None or value == [] or value == "":
        return "not recorded"
    if isinstance(value, (list, tuple)):
        return " + ".join(str(v) for v in value)
    return str(value)


def protocol_text(protocol: dict) -> tuple[bool | None, str]:
    """``(speaker_independent, plain-words description)`` of a protocol record."""
    si = protocol.get("speaker_independent")
    kind = protocol.get("kind")
    desc = protocol.get("description")
    extra = " — ".join(str(x) for x in (kind, desc) if x)
    if si is True:
        text = "Speaker-independent: no speaker appears in both training and test"
    elif si is False:
        text = (
            "Speaker-dependent random split — the same speakers are in training and test; accuracy is inflated"
        )
    else:
        text = "Protocol not recorded: speaker independence unknown"
    return (si if isinstance(si, bool) else None), text + (f" ({extra})" if extra else "")


def _scores(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    labels = sorted(set(true) | set(pred))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "ua": float(balanced_accuracy_score(true, pred)),
            "wa": float(accuracy_score(true, pred)),
            "macro_f1": float(f1_score(true, pred, labels=labels, average="macro", zero_division=0)),
        }


def _per_fold(run: Run) -> pd.DataFrame:
    """fold, n, ua, wa, macro_f1 (fractions) from predictions, else from metrics.json."""
    df = run.predictions
    rows = []
    if df is not None and {"true", "pred"} <= set(df.columns):
        folds = df["fold"].astype(str) if "fold" in df else pd.Series(["0"] * len(df))
        for f in _natural_sorted(folds.unique()):
            sub = df[folds == f]
            rows.append({"fold": f, "n": len(sub), **_scores(sub["true"].to_numpy(str), sub["pred"].to_numpy(str))})
        return pd.DataFrame(rows, columns=["fold", "n", "ua", "wa", "macro_f1"])
    mf = run.metrics.get("folds")
    if isinstance(mf, list):
        for i, f in enumerate(mf):
            if isinstance(f, dict):
                rows.append(
                    {
                        "fold": str(f.get("fold", i)),
                        "n": f.get("n", f.get("n_test", np.nan)),
                        "ua": as_fraction(f.get("ua")),
                        "wa": as_fraction(f.get("wa")),
                        "macro_f1": as_fraction(f.get("macro_f1")),
                    }
                )
    return pd.DataFrame(rows, columns=["fold", "n", "ua", "wa", "macro_f1"])


def _corpora_key(corpora: Any) -> tuple[str, ...]:
    if not corpora:
        return ()
    if isinstance(corpora, (list, tuple)):
        return tuple(sorted(str(c).lower() for c in corpora))
    return (str(corpora).lower(),)


def run_summary(run: Run) -> dict[str, Any]:
    """Headline numbers and metadata of a run (used by the report and by compare).

    Scores are fractions. ``metrics.json`` is the run's own record and is preferred;
    they are recomputed from ``predictions.csv`` where it lacks them.
    """
    per_fold = _per_fold(run)
    out: dict[str, Any] = {}
    for m in ("ua", "wa", "macro_f1"):
        mean, std = _mean_std(run.metrics.get(m))
        if mean != mean and len(per_fold) and per_fold[m].notna().any():
            vals = per_fold[m].to_numpy(dtype=float)
            mean, std = float(np.nanmean(vals)), float(np.nanstd(vals)) if len(vals) > 1 else float("nan")
        out[m] = mean
        out[f"{m}_std"] = std
    si, ptext = protocol_text(run.protocol)
    out.update(
        name=run.name,
        model=_fmt_obj(run.meta("model")),
        features=_fmt_obj(run.meta("features")),
        corpora=_fmt_list(run.meta("corpora")),
        corpora_key=_corpora_key(run.meta("corpora")),
        label_set=str(run.meta("label_set") or "not recorded"),
        classes=list(run.classes),
        protocol=run.protocol,
        protocol_kind=str(run.protocol.get("kind") or "unknown"),
        speaker_independent=si,
        protocol_text=ptext,
        n_folds=len(run.folds),
        seed=run.meta("seed"),
        wall_time_s=run.metrics.get("wall_time_s"),
        serkit_version=run.metrics.get("serkit_version"),
        published=run.metrics.get("published") or None,
        n_predictions=int(len(run.predictions)) if run.predictions is not None else None,
        path=str(run.path),
    )
    return out


# ====================================================================== context
class _Ctx:
    def __init__(self, run: Run, out: Path, seed: int, tsne: bool):
        self.run = run
        self.data_dir = run.path / "report_data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for name in _DATA_FILES:  # no stale data from an earlier report
            (self.data_dir / name).unlink(missing_ok=True)
        self.rel = os.path.relpath(self.data_dir, out.parent).replace(os.sep, "/")
        self.seed = seed
        self.tsne = tsne
        self.written: list[str] = []
        self.n_images = 0

    def csv(self, name: str, df: pd.DataFrame, index: bool = False) -> tuple[str, str]:
        df.to_csv(self.data_dir / name, index=index)
        self.written.append(name)
        return name, f"{self.rel}/{name}"

    def json(self, name: str, obj: Any) -> tuple[str, str]:
        (self.data_dir / name).write_text(json.dumps(obj, indent=2, default=_json_default), encoding="utf-8")
        self.written.append(name)
        return name, f"{self.rel}/{name}"

    def fig(self, fig, alt: str, caption: str, links=(), cls: str = "") -> str:
        self.n_images += 1
        return H.figure(plots.to_data_uri(fig), alt, caption, links, cls)


def _json_default(o: Any):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if np.isnan(o) else float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def _clean_nan(obj: Any) -> Any:
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: _clean_nan(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_nan(v) for v in obj]
    return obj


# ====================================================================== sections
def _header(ctx: _Ctx, summary: dict) -> str:
    run = ctx.run
    cmap = colors_for(run.classes)
    classes_html = " ".join(f"{H.swatch(cmap[c])}{H.esc(c)}" for c in run.classes) or "not recorded"
    version = summary["serkit_version"]
    if not version:
        from serkit import __version__

        version = f"not recorded (report written by serkit {__version__})"
    description = run.meta("description")
    counts = []
    for key, word in (("n_utterances", "utterances"), ("n_speakers", "speakers")):
        if isinstance(run.metrics.get(key), (int, float)):
            counts.append(f"{int(run.metrics[key])} {word}")
    if not counts and run.predictions is not None:
        counts.append(f"{len(run.predictions)} test predictions")
        if "speaker" in run.predictions:
            counts.append(f"{run.predictions['speaker'].nunique()} speakers")
    items = [
        ("Experiment", H.esc(summary["name"])),
        *([("Description", H.esc(description))] if description else []),
        ("Model", H.esc(summary["model"])),
        ("Features", H.esc(summary["features"])),
        ("Corpora", H.esc(summary["corpora"] + (f" ({', '.join(counts)})" if counts else ""))),
        ("Label set", f"{H.esc(summary['label_set'])} ({len(run.classes)} classes): {classes_html}"),
        ("Protocol", H.esc(summary["protocol_text"])),
        ("Folds", H.esc(summary["n_folds"] or "not recorded")),
        ("Seed", H.esc(summary["seed"] if summary["seed"] is not None else "not recorded")),
        ("serkit version", H.esc(version)),
        ("Wall time", H.esc(format_wall_time(summary["wall_time_s"]))),
        ("Run directory", H.esc(run.path.resolve())),
    ]
    si = summary["speaker_independent"]
    if si is True:
        banner = H.ok("Speaker-independent: no speaker appears in both training and test.")
    elif si is False:
        banner = H.warning(
            "Speaker-dependent random split — the same speakers are in training and test; accuracy is inflated."
        )
    else:
        banner = H.warning("Protocol not recorded: it is unknown whether test speakers were seen in training.")
    return (
        f"<h1>{H.esc(summary['name'])}</h1>\n"
        f'<p class="sub">serkit run report · {H.esc(summary["corpora"])} · {H.esc(summary["label_set"])}</p>\n'
        + banner
        + _speaker_audit(run, si)
        + H.definition_list(items, raw=True)
    )


def _speaker_audit(run: Run, claimed_si: bool | None) -> str:
    """Check test speakers against the rest of manifest.csv, fold by fold."""
    df, man = run.predictions, run.manifest
    if df is None or man is None or "speaker" not in man or "key" not in man or "key" not in df:
        return ""
    spk_of = dict(zip(man["key"], man["speaker"]))
    folds = df["fold"].astype(str) if "fold" in df else pd.Series(["0"] * len(df))
    overlapping, total = 0, 0
    for f in folds.unique():
        test_keys = set(df.loc[folds == f, "key"])
        test_spk = {spk_of.get(k) for k in test_keys} - {None}
        other_spk = set(man.loc[~man["key"].isin(test_keys), "speaker"])
        total += 1
        if test_spk & other_spk:
            overlapping += 1
    if overlapping == 0:
        return H.note(
            f"Check against manifest.csv: in none of the {total} fold(s) does a test speaker appear among the "
            "utterances outside that fold's test set."
        )
    msg = (
        f"Check against manifest.csv: in {overlapping} of {total} fold(s), test speakers also appear among the "
        "utterances outside that fold's test set (training / validation)."
    )
    return H.warning(msg + " This contradicts the recorded speaker-independent protocol.") if claimed_si else H.note(msg)


def _metrics_section(ctx: _Ctx, summary: dict) -> str:
    run = ctx.run
    per_fold = _per_fold(run)
    out = []
    rows, classes = [], []
    for _, r in per_fold.iterrows():
        rows.append([fold_name(r["fold"]), "" if pd.isna(r["n"]) else int(r["n"]), _pct(r["ua"]), _pct(r["wa"]), _pct(r["macro_f1"])])
        classes.append("")
    n_total = int(per_fold["n"].sum()) if len(per_fold) and per_fold["n"].notna().all() else ""
    rows.append(
        [
            "mean ± std over folds",
            n_total,
            _pm(summary["ua"], summary["ua_std"]),
            _pm(summary["wa"], summary["wa_std"]),
            _pm(summary["macro_f1"], summary["macro_f1_std"]),
        ]
    )
    classes.append("summary")
    out.append(H.table(["", "test utterances", "UA (%)", "WA (%)", "macro-F1 (%)"], rows, row_classes=classes))
    out.append(
        H.note(
            "UA: unweighted accuracy (mean of per-class recall). WA: weighted accuracy (overall accuracy). "
            "Per-fold values are recomputed from predictions.csv; the summary row is taken from metrics.json where recorded."
        )
    )
    if len(per_fold) and per_fold["ua"].notna().any() and summary["ua"] == summary["ua"]:
        recomputed = float(np.nanmean(per_fold["ua"]))
        if abs(recomputed - summary["ua"]) > 0.005:
            out.append(
                H.warning(
                    f"metrics.json records UA {_pct(summary['ua'])} % but predictions.csv gives a fold mean of "
                    f"{_pct(recomputed)} %."
                )
            )
    pub = summary["published"]
    if isinstance(pub, dict) and pub.get("value") is not None:
        out.append(
            H.note(
                f"Published figure: {pub.get('metric', 'score')} {pub.get('value')} % under "
                f"“{pub.get('protocol', 'the authors’ protocol')}” ({pub.get('source', 'source not recorded')}). "
                "Not directly comparable when the protocols differ."
            )
        )
    links = [ctx.csv("per_fold.csv", per_fold)]
    if len(per_fold) > 1:
        out.append(ctx.fig(plots.fold_metrics(per_fold), "bar chart of UA, WA and macro-F1 per fold", "Scores per fold.", links))
    return "".join(out)


def _per_class_frames(run: Run) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    from sklearn.metrics import precision_recall_fscore_support

    df = run.predictions
    classes = run.classes
    if df is not None and {"true", "pred"} <= set(df.columns) and classes:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p, r, f, s = precision_recall_fscore_support(
                df["true"].astype(str), df["pred"].astype(str), labels=classes, zero_division=0
            )
        pooled = pd.DataFrame({"class": classes, "precision": p, "recall": r, "f1": f, "support": s})
        rows = []
        folds = df["fold"].astype(str) if "fold" in df else pd.Series(["0"] * len(df))
        for fold in _natural_sorted(folds.unique()):
            sub = df[folds == fold]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p, r, f, s = precision_recall_fscore_support(
                    sub["true"].astype(str), sub["pred"].astype(str), labels=classes, zero_division=0
                )
            for c, pi, ri, fi, si in zip(classes, p, r, f, s):
                if si > 0:
                    rows.append({"fold": fold, "class": c, "precision": pi, "recall": ri, "f1": fi, "support": si})
        return pooled, pd.DataFrame(rows)
    pc = run.metrics.get("per_class")
    if isinstance(pc, dict) and pc:
        rows = []
        for c, v in pc.items():
            if isinstance(v, dict):
                rows.append(
                    {
                        "class": str(c),
                        "precision": as_fraction(v.get("precision")),
                        "recall": as_fraction(v.get("recall")),
                        "f1": as_fraction(v.get("f1", v.get("f1-score"))),
                        "support": v.get("support", np.nan),
                    }
                )
        return (pd.DataFrame(rows) if rows else None), None
    return None, None


def _roc_pr(run: Run) -> tuple[dict, dict, pd.DataFrame | None, pd.DataFrame | None]:
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
        pr_rows.append(
            pd.DataFrame(
                {"class": c, "recall": rec, "precision": prec, "threshold": np.append(thr2, np.nan), "average_precision": ap}
            )
        )
    roc_df = pd.concat(roc_rows, ignore_index=True) if roc_rows else None
    pr_df = pd.concat(pr_rows, ignore_index=True) if pr_rows else None
    return roc, pr, roc_df, pr_df


def _per_class_section(ctx: _Ctx, pooled: pd.DataFrame | None, per_fold_class: pd.DataFrame | None, roc: dict, pr: dict) -> str:
    if pooled is None or pooled.empty:
        return H.note("No per-class results: predictions.csv (true, pred) and metrics.json per_class are both absent.")
    cmap = colors_for(pooled["class"])
    pooled = pooled.copy()
    pooled["auc"] = [roc[c][2] if c in roc else np.nan for c in pooled["class"]]
    pooled["average_precision"] = [pr[c][2] if c in pr else np.nan for c in pooled["class"]]
    rows = []
    for _, r in pooled.iterrows():
        rows.append(
            [
                f"{H.swatch(cmap[r['class']])}{H.esc(r['class'])}",
                _pct(r["precision"], 1),
                _pct(r["recall"], 1),
                _pct(r["f1"], 1),
                "" if pd.isna(r["support"]) else int(r["support"]),
                "–" if pd.isna(r["auc"]) else f"{r['auc']:.3f}",
                "–" if pd.isna(r["average_precision"]) else f"{r['average_precision']:.3f}",
            ]
        )
    out = [
        H.table(
            ["class", "precision (%)", "recall (%)", "F1 (%)", "support", "ROC AUC", "average precision"],
            rows,
            raw_cols=(0,),
        )
    ]
    links = [ctx.csv("per_class.csv", pooled)]
    out.append(
        ctx.fig(
            plots.per_class_bars(pooled),
            "grouped bar chart of per-class precision, recall and F1",
            "Per-class precision, recall and F1, pooled over folds; bar colour is the emotion, shade and hatch the metric.",
            links,
        )
    )
    if per_fold_class is not None and not per_fold_class.empty and per_fold_class["fold"].nunique() > 1:
        links = [ctx.csv("per_class_folds.csv", per_fold_class)]
        classes = [c for c in pooled["class"] if c in set(per_fold_class["class"])]
        out.append(
            ctx.fig(
                plots.per_class_f1_boxplot(per_fold_class, classes),
                "box plot of per-class F1 across folds",
                "Per-class F1 across folds (folds where the class has test utterances).",
                links,
            )
        )
    return "".join(out)


def _confusion_section(ctx: _Ctx) -> str:
    from sklearn.metrics import confusion_matrix

    run = ctx.run
    df = run.predictions
    classes = run.classes
    if df is not None and {"true", "pred"} <= set(df.columns) and classes:
        cm = confusion_matrix(df["true"].astype(str), df["pred"].astype(str), labels=classes)
        source = "pooled over folds from predictions.csv"
    elif isinstance(run.metrics.get("confusion"), list) and run.metrics["confusion"] and classes:
        cm = np.asarray(run.metrics["confusion"], dtype=float)
        if cm.shape != (len(classes), len(classes)):
            return H.note("metrics.json confusion matrix does not match its class list; not shown.")
        source = "from metrics.json"
    else:
        return H.note("No confusion matrix: predictions.csv and metrics.json confusion are both absent.")
    counts = pd.DataFrame(cm, index=pd.Index(classes, name="true"), columns=classes)
    rows = counts.sum(axis=1).to_numpy(dtype=float)[:, None]
    norm = pd.DataFrame(
        np.divide(cm, rows, out=np.zeros_like(cm, dtype=float), where=rows > 0), index=counts.index, columns=classes
    )
    links = [ctx.csv("confusion.csv", counts, index=True), ctx.csv("confusion_normalized.csv", norm, index=True)]
    return ctx.fig(
        plots.confusion(cm, classes),
        "confusion matrices, counts and row-normalised",
        f"Confusion matrix {source}: rows are true labels, columns predicted labels; right, each row divided by its total (recall on the diagonal).",
        links,
    )


def _roc_pr_section(ctx: _Ctx, roc: dict, pr: dict, roc_df, pr_df) -> str:
    if not roc:
        return H.note("No ROC / precision–recall curves: predictions.csv has no prob_<class> columns.")
    out = [
        ctx.fig(
            plots.roc_pr_curves(roc, pr, ctx.run.classes),
            "one-vs-rest ROC curves and precision-recall curves per class",
            "Left: one-vs-rest ROC curves with area under the curve (AUC). Right: precision–recall curves with "
            "average precision (AP); dotted lines are each class's prevalence (chance level). "
            "Computed from the predicted probabilities, pooled over folds.",
            [ctx.csv("roc.csv", roc_df), ctx.csv("pr.csv", pr_df)],
        )
    ]
    macro = np.mean([v[2] for v in roc.values()])
    out.insert(0, H.note(f"Macro-average one-vs-rest AUC: {macro:.3f} over {len(roc)} classes."))
    return "".join(out)


def _training_section(ctx: _Ctx) -> str:
    frames = []
    for fold, d in ctx.run.fold_dirs.items():
        p = d / "history.csv"
        if p.is_file():
            h = pd.read_csv(p)
            if "epoch" not in h:
                h["epoch"] = np.arange(1, len(h) + 1)
            h.insert(0, "fold", fold)
            frames.append(h)
    if not frames:
        return H.note("No training curves: no folds/*/history.csv (models without epochs, e.g. classical ones).")
    curves = pd.concat(frames, ignore_index=True)
    return ctx.fig(
        plots.training_curves(curves),
        "training and validation loss and accuracy per epoch",
        "Loss and accuracy per epoch: solid lines training, dashed validation; one colour per fold.",
        [ctx.csv("curves.csv", curves)],
    )


def _load_embeddings(run: Run) -> tuple[str, dict] | None:
    for fold, d in run.fold_dirs.items():
        p = d / "embeddings.npz"
        if p.is_file():
            with np.load(p, allow_pickle=True) as z:
                data = {k: z[k] for k in z.files}
            if "embedding" in data and len(data["embedding"]) > 0:
                return fold, data
    return None


def _embedding_section(ctx: _Ctx) -> tuple[str, str]:
    """Returns (embedding maps html, activation analysis html)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    run = ctx.run
    loaded = _load_embeddings(run)
    if loaded is None:
        msg = "No embeddings: no folds/*/embeddings.npz."
        return H.note(msg), H.note(msg)
    fold, data = loaded
    emb = np.asarray(data["embedding"], dtype=float).reshape(len(data["embedding"]), -1)
    n, d = emb.shape
    keys = np.asarray(data.get("keys", np.arange(n))).astype(str)
    true = np.asarray(data.get("true", np.full(n, "?"))).astype(str)
    pred = np.asarray(data.get("pred", true)).astype(str)
    classes = [c for c in run.classes if c in set(true) | set(pred)] or sorted(set(true) | set(pred))
    n_folds_emb = sum((p / "embeddings.npz").is_file() for p in run.fold_dirs.values())
    rng = np.random.default_rng(ctx.seed)
    idx = np.sort(rng.choice(n, MAX_EMBED_POINTS, replace=False)) if n > MAX_EMBED_POINTS else np.arange(n)
    X = np.nan_to_num(emb[idx])
    base = pd.DataFrame({"fold": fold, "key": keys[idx], "true": true[idx], "pred": pred[idx]})
    where = (
        f"Test utterances of {fold_name(fold)} ({len(idx)} of {n}"
        + (", random subsample" if len(idx) < n else "")
        + f"; {d}-dimensional embeddings)."
        + (
            f" Only this fold is shown: each of the {n_folds_emb} fold models has its own embedding space."
            if n_folds_emb > 1
            else ""
        )
    )
    out = [H.note(where)]
    if len(idx) >= 3 and d >= 2:
        pca = PCA(n_components=2, random_state=ctx.seed)
        xy = pca.fit_transform(X)
        ev = pca.explained_variance_ratio_ * 100
        pdf = base.assign(pc1=xy[:, 0], pc2=xy[:, 1])
        links = [ctx.csv("pca.csv", pdf)]
        out.append(
            ctx.fig(
                plots.embedding_scatter(
                    xy, true[idx], pred[idx], classes, "PCA", (f"PC 1 ({ev[0]:.1f} % variance)", f"PC 2 ({ev[1]:.1f} % variance)")
                ),
                "PCA of embeddings coloured by true and predicted label",
                "PCA of the embeddings; left coloured by true label, right by predicted label (black rings: misclassified).",
                links,
            )
        )
    else:
        out.append(H.note("Too few points or dimensions for PCA."))
    if not ctx.tsne:
        out.append(H.note("t-SNE not computed (disabled)."))
    elif len(idx) >= 6 and d >= 2:
        Xt = X
        if d > 50:
            Xt = PCA(n_components=min(50, len(idx) - 1), random_state=ctx.seed).fit_transform(X)
        perplexity = float(max(2.0, min(30.0, (len(idx) - 1) / 3.0)))
        tsne = TSNE(
            n_components=2,
            perplexity=perplexity,
            init="pca",
            learning_rate="auto",
            random_state=ctx.seed,
            method="exact" if len(idx) <= 300 else "barnes_hut",  # exact is faster on small sets
        )
        xy = tsne.fit_transform(Xt)
        tdf = base.assign(x=xy[:, 0], y=xy[:, 1])
        links = [ctx.csv("tsne.csv", tdf)]
        out.append(
            ctx.fig(
                plots.embedding_scatter(xy, true[idx], pred[idx], classes, "t-SNE", ("t-SNE 1", "t-SNE 2")),
                "t-SNE of embeddings coloured by true and predicted label",
                f"t-SNE (perplexity {perplexity:.0f}) of the embeddings; left coloured by true label, right by predicted label.",
                links,
            )
        )
    else:
        out.append(H.note("Too few points for t-SNE."))

    # activation heat-map and feature variance (study 003), on all test utterances of the fold
    act = []
    labs = [c for c in classes if (true == c).any()]
    mean_abs = np.vstack([np.abs(emb[true == c]).mean(axis=0) for c in labs]) if labs else np.zeros((0, d))
    act_df = pd.DataFrame(mean_abs, index=pd.Index(labs, name="class"), columns=[f"dim_{i}" for i in range(d)])
    links = [ctx.csv("activation.csv", act_df, index=True)]
    if labs:
        if d > 256:
            spread = mean_abs.std(axis=0)
            dims = np.sort(np.argsort(spread)[::-1][:128])
            sub = f"\n(the 128 of {d} dimensions whose class means differ most)"
        else:
            dims = np.arange(d)
            sub = ""
        act.append(
            ctx.fig(
                plots.activation_heatmap(mean_abs[:, dims], labs, dims.tolist(), sub),
                "heat-map of mean absolute activation per class and dimension",
                f"Mean |activation| of each embedding dimension per true class, {fold_name(fold)}.",
                links,
            )
        )
    var = emb.var(axis=0)
    links = [ctx.csv("feature_variance.csv", pd.DataFrame({"dimension": np.arange(d), "variance": var}))]
    flat = var.size > 1 and var.max() > 0 and (var.max() - var.min()) / var.max() < 0.01
    act.append(
        ctx.fig(
            plots.feature_variance(var),
            "variance of each embedding dimension",
            f"Variance of each embedding dimension over the test utterances of {fold_name(fold)}."
            + (" All dimensions have the same variance: these embeddings look standardised." if flat else ""),
            links,
        )
    )
    return "".join(out), "".join(act)


def _scalar(v: Any) -> Any:
    a = np.asarray(v)
    return a.item() if a.ndim == 0 else (a.ravel()[0] if a.size == 1 else v)


def _attention_section(ctx: _Ctx) -> str:
    items = []
    for fold, d in ctx.run.fold_dirs.items():
        p = d / "attention.npz"
        if not p.is_file():
            continue
        with np.load(p, allow_pickle=True) as z:  # weights is an object array of 1-D arrays
            keys = [str(k) for k in z["keys"]] if "keys" in z.files else None
            weights = list(z["weights"]) if "weights" in z.files else []
            labels = [str(x) for x in z["labels"]] if "labels" in z.files else ["?"] * len(weights)
        keys = keys or [f"utterance {i}" for i in range(len(weights))]
        seen = {it["label"] for it in items}
        for k, w, lab in zip(keys, weights, labels):  # one example per class first
            if lab not in seen and len(items) < MAX_ATTENTION:
                items.append({"fold": fold, "key": k, "label": lab, "weights": np.asarray(w, dtype=float).ravel()})
                seen.add(lab)
        if len(items) >= MAX_ATTENTION:
            break
    if not items:
        return H.note("No attention weights: no folds/*/attention.npz (model without attention pooling).")
    order = {c: i for i, c in enumerate(ctx.run.classes)}
    items.sort(key=lambda it: order.get(it["label"], len(order)))
    rows = [
        pd.DataFrame({"fold": it["fold"], "key": it["key"], "label": it["label"], "frame": np.arange(len(it["weights"])), "weight": it["weights"]})
        for it in items
    ]
    return ctx.fig(
        plots.attention_weights(items),
        "attention pooling weights over time for example utterances",
        "Attention-pooling weights α over frames for one example utterance per class; dotted line: uniform weight.",
        [ctx.csv("attention.csv", pd.concat(rows, ignore_index=True))],
    )


def _gradcam_section(ctx: _Ctx) -> str:
    npz_items, pngs, rows = [], [], []
    for fold, d in ctx.run.fold_dirs.items():
        g = d / "gradcam"
        if not g.is_dir():
            continue
        npz_files = sorted(g.glob("*.npz"))
        stems = {p.stem for p in npz_files}
        for p in npz_files:
            if len(npz_items) >= MAX_GRADCAM:
                break
            with np.load(p, allow_pickle=True) as z:
                if "map" not in z.files:
                    continue
                spec = z["spec"] if "spec" in z.files else np.zeros_like(z["map"])
                it = {
                    "map": np.asarray(z["map"], dtype=float),
                    "spec": np.asarray(spec, dtype=float),
                    "key": str(_scalar(z["key"])) if "key" in z.files else p.stem,
                    "label": str(_scalar(z["label"])) if "label" in z.files else "?",
                    "pred": str(_scalar(z["pred"])) if "pred" in z.files else "?",
                }
            npz_items.append(it)
            rows.append({"fold": fold, "file": str(p.relative_to(ctx.run.path)), "key": it["key"], "true": it["label"], "pred": it["pred"]})
        for p in sorted(g.glob("*.png")):
            if p.stem not in stems and len(pngs) < MAX_GRADCAM:
                pngs.append((fold, p))
                rows.append({"fold": fold, "file": str(p.relative_to(ctx.run.path)), "key": p.stem, "true": "", "pred": ""})
    if not npz_items and not pngs:
        return H.note("No Grad-CAM maps: no folds/*/gradcam/ (not a convolutional model, or not requested).")
    links = [ctx.csv("gradcam.csv", pd.DataFrame(rows))]
    out = []
    if npz_items:
        out.append(
            ctx.fig(
                plots.gradcam_gallery(npz_items),
                "Grad-CAM maps over input spectrograms",
                "Grad-CAM maps (colour, red = most relevant) over the input features (grey); red titles are misclassified.",
                links,
            )
        )
    if pngs:
        figs = []
        for fold, p in pngs:
            ctx.n_images += 1
            figs.append(H.figure(plots.png_data_uri(p.read_bytes()), f"Grad-CAM image {p.stem}", f"{fold_name(fold)}: {p.name}"))
        out.append('<div class="gallery">' + "".join(figs) + "</div>")
    return "".join(out)


# ====================================================================== entry point
def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, *, tsne: bool = True, seed: int | None = None) -> Path:
    """Write a self-contained HTML report of a run directory.

    Parameters
    ----------
    run_dir
        A run directory written by ``serkit run`` (``docs/ARCHITECTURE.md``).
    out
        Path of the HTML file; default ``RUN_DIR/report.html``.
    tsne
        Compute the t-SNE map (the slowest part; PCA is always drawn).
    seed
        Seed of subsampling and t-SNE; default the run's seed, else 0.

    Returns
    -------
    Path
        The HTML file. The data behind every figure is in ``RUN_DIR/report_data/``.
    """
    run = load_run(run_dir)
    out_path = Path(out) if out is not None else run.path / "report.html"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if seed is None:
        try:
            seed = int(run.meta("seed"))
        except (TypeError, ValueError):
            seed = 0
    ctx = _Ctx(run, out_path, seed, tsne)
    summary = run_summary(run)

    pooled, per_fold_class = _per_class_frames(run)
    roc, pr, roc_df, pr_df = _roc_pr(run)
    emb_html, act_html = _embedding_section(ctx)
    sections = [
        ("metrics", "Metrics", _metrics_section(ctx, summary)),
        ("per-class", "Per-class results", _per_class_section(ctx, pooled, per_fold_class, roc, pr)),
        ("confusion", "Confusion matrix", _confusion_section(ctx)),
        ("roc-pr", "ROC and precision–recall curves", _roc_pr_section(ctx, roc, pr, roc_df, pr_df)),
        ("training", "Training curves", _training_section(ctx)),
        ("embeddings", "Embedding maps", emb_html),
        ("activations", "Activations and feature variance", act_html),
        ("attention", "Attention pooling", _attention_section(ctx)),
        ("gradcam", "Grad-CAM", _gradcam_section(ctx)),
    ]
    ctx.json(
        "summary.json",
        _clean_nan({**{k: v for k, v in summary.items() if k != "corpora_key"}, "figures": ctx.n_images, "data_files": list(ctx.written)}),
    )
    body = _header(ctx, summary)
    body += H.toc([(a, t) for a, t, _ in sections])
    body += "".join(H.section(a, t, c) for a, t, c in sections)
    files = ", ".join(f'<a href="{H.esc(ctx.rel)}/{H.esc(n)}">{H.esc(n)}</a>' for n in ctx.written)
    from serkit import __version__

    footer = (
        f"Written by serkit {H.esc(__version__)} on {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}. "
        f"Data behind the figures (in {H.esc(ctx.rel)}/): {files}."
    )
    out_path.write_text(H.page(f"serkit report — {summary['name']}", body, footer), encoding="utf-8")
    return out_path

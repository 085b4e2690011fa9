"""State shared by the report's sections while one report is written: where the data files
go, how figures are embedded, and number formatting."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import html as H
from . import plots
from .run import Run

__all__ = ["DATA_FILES", "ReportContext", "pct", "pm"]

#: every file a report may write into RUN_DIR/report_data/ (stale ones are removed first)
DATA_FILES = (
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
    "skipped.csv",
)


def _json_default(o: Any):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return None if np.isnan(o) else float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


class ReportContext:
    """Writes data files into ``RUN_DIR/report_data`` and embeds figures, counting both."""

    def __init__(self, run: Run, out: Path, seed: int, tsne: bool):
        self.run = run
        self.data_dir = run.path / "report_data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for name in DATA_FILES:  # no stale data from an earlier report
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

    def link(self, name: str, href: str) -> str:
        return f'<a href="{H.esc(href)}">{H.esc(name)}</a>'


def pct(v: float | None, digits: int = 2) -> str:
    """A fraction as a percentage without the sign; ``–`` for missing values."""
    return "–" if v is None or v != v else f"{v * 100:.{digits}f}"


def pm(mean: float, std: float) -> str:
    if mean != mean:
        return "–"
    return pct(mean) if std != std else f"{pct(mean)} ± {pct(std)}"

"""Figures of the run report and the comparison page.

Every function takes plain data (numpy arrays, pandas frames, lists of class names)
and returns a :class:`matplotlib.figure.Figure`. Figures are built with the
object-oriented API on the Agg canvas, never through ``pyplot``: no global figure
registry, nothing to leak, no display needed. :func:`to_data_uri` renders a figure
as an embeddable PNG data URI. Figures of the model internals (embeddings, activations,
attention, Grad-CAM) are in :mod:`.plots_model`.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .colors import colors_for

__all__ = [
    "new_figure",
    "to_png_bytes",
    "to_data_uri",
    "png_data_uri",
    "per_class_bars",
    "per_class_f1_boxplot",
    "fold_metrics",
    "confusion",
    "roc_pr_curves",
    "training_curves",
    "comparison_bars",
]

DPI = 110
#: widest figure (inches) that the report shows at 100 % (its column is ~1120 px)
MAX_W = 10.2
_RC = {
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.labelsize": 9.5,
    "legend.fontsize": 8.5,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
}


def new_figure(width: float, height: float) -> Figure:
    """A figure attached to an Agg canvas (no pyplot state)."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _style(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(True, color="#e6e6e6", linewidth=0.7)
    ax.set_axisbelow(True)


def to_png_bytes(fig: Figure) -> bytes:
    """PNG bytes of a figure; the figure is cleared afterwards to free its memory."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    fig.clear()
    return buf.getvalue()


def to_data_uri(fig: Figure) -> str:
    """``data:image/png;base64,...`` URI of a figure (the figure is released)."""
    return png_data_uri(to_png_bytes(fig))


def png_data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _with_rc(func):
    """Apply the report's font sizes while a figure is built."""
    import functools

    import matplotlib as mpl

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with mpl.rc_context(_RC):
            return func(*args, **kwargs)

    return wrapper


def _rotate_xticks(ax, labels: Sequence[str]) -> None:
    longest = max((len(str(lab)) for lab in labels), default=0)
    if len(labels) > 5 or longest > 7:
        for tick in ax.get_xticklabels():
            tick.set_rotation(35)
            tick.set_ha("right")
            tick.set_rotation_mode("anchor")


# ---------------------------------------------------------------- metrics
@_with_rc
def per_class_bars(per_class: pd.DataFrame) -> Figure:
    """Grouped bars of precision / recall / F1 per class.

    ``per_class`` has a ``class`` column and ``precision, recall, f1`` in [0, 1].
    Bars take the emotion's colour; the metric is shown by shade and hatch.
    """
    classes = [str(c) for c in per_class["class"]]
    cmap = colors_for(classes)
    metrics = [("precision", 0.40, "///"), ("recall", 0.70, ".."), ("f1", 1.0, "")]
    n = len(classes)
    fig = new_figure(max(6.0, 0.85 * n + 2.5), 3.8)
    ax = fig.add_subplot()
    width = 0.26
    x = np.arange(n)
    for i, (metric, alpha, hatch) in enumerate(metrics):
        vals = per_class[metric].to_numpy(dtype=float) * 100
        ax.bar(
            x + (i - 1) * width,
            vals,
            width,
            color=[cmap[c] for c in classes],
            alpha=alpha,
            hatch=hatch,
            edgecolor="#333333",
            linewidth=0.5,
        )
    ax.set_xticks(x, classes)
    _rotate_xticks(ax, classes)
    ax.set_ylim(0, 105)
    ax.set_ylabel("score (%)")
    ax.set_xlabel("class")
    ax.set_title("Per-class precision, recall and F1 (pooled over folds)")
    handles = [
        Patch(facecolor="#666666", alpha=a, hatch=h, edgecolor="#333333", label=m if m != "f1" else "F1")
        for m, a, h in metrics
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    _style(ax)
    ax.grid(False, axis="x")
    return fig


@_with_rc
def per_class_f1_boxplot(per_fold_class: pd.DataFrame, classes: Sequence[str]) -> Figure:
    """Box plot of per-class F1 over folds (study 002). Columns: fold, class, f1."""
    cmap = colors_for(classes)
    data = [per_fold_class.loc[per_fold_class["class"] == c, "f1"].to_numpy(dtype=float) * 100 for c in classes]
    fig = new_figure(max(6.0, 0.75 * len(classes) + 2.0), 3.6)
    ax = fig.add_subplot()
    bp = ax.boxplot(data, patch_artist=True, widths=0.55, medianprops={"color": "black"}, showfliers=False)
    for patch, c in zip(bp["boxes"], classes):
        patch.set_facecolor(cmap[c])
        patch.set_alpha(0.75)
    rng = np.random.default_rng(0)
    for i, vals in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(vals)), vals, s=12, color="black", zorder=3)
    ax.set_xticks(np.arange(1, len(classes) + 1), list(classes))
    _rotate_xticks(ax, classes)
    ax.set_ylim(-2, 102)
    ax.set_ylabel("F1 (%)")
    ax.set_xlabel("class")
    ax.set_title("Per-class F1 across folds (one dot per fold)")
    _style(ax)
    ax.grid(False, axis="x")
    return fig


@_with_rc
def fold_metrics(per_fold: pd.DataFrame) -> Figure:
    """UA / WA / macro-F1 per fold as grouped bars. Columns: fold, ua, wa, macro_f1."""
    folds = [str(f) for f in per_fold["fold"]]
    fig = new_figure(max(5.5, 0.6 * len(folds) + 3.0), 3.2)
    ax = fig.add_subplot()
    x = np.arange(len(folds))
    names = [("ua", "UA", "#4c72b0"), ("wa", "WA", "#9fb7d9"), ("macro_f1", "macro-F1", "#55a868")]
    w = 0.26
    for i, (col, lab, color) in enumerate(names):
        ax.bar(x + (i - 1) * w, per_fold[col].to_numpy(dtype=float) * 100, w, color=color, label=lab)
    ax.set_xticks(x, folds)
    ax.set_xlabel("fold")
    ax.set_ylabel("score (%)")
    ax.set_ylim(0, 105)
    ax.set_title("Scores per fold")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    _style(ax)
    ax.grid(False, axis="x")
    return fig


@_with_rc
def confusion(counts: np.ndarray, classes: Sequence[str]) -> Figure:
    """Two panels: counts and row-normalised (recall) confusion matrices."""
    counts = np.asarray(counts, dtype=float)
    n = len(classes)
    rows = counts.sum(axis=1, keepdims=True)
    norm = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    side = min(max(3.6, 0.55 * n + 1.8), (MAX_W - 0.4) / 2)
    fig = new_figure(2 * side + 0.4, side)
    axes = fig.subplots(1, 2)
    fs = 9.5 if n <= 8 else (7.5 if n <= 12 else 6)
    panels = [
        (counts, "Counts", "Blues", lambda v: f"{int(round(v))}"),
        (norm * 100, "Row-normalised (% of true class)", "Blues", lambda v: f"{v:.0f}"),
    ]
    for ax, (mat, title, cmap, fmt) in zip(axes, panels):
        vmax = mat.max() if mat.size and mat.max() > 0 else 1.0
        im = ax.imshow(mat, cmap=cmap, vmin=0, vmax=vmax, aspect="equal")
        for i in range(n):
            for j in range(n):
                v = mat[i, j]
                ax.text(
                    j,
                    i,
                    fmt(v),
                    ha="center",
                    va="center",
                    fontsize=fs,
                    color="white" if v > 0.6 * vmax else "#222222",
                )
        ax.set_xticks(np.arange(n), list(classes))
        ax.set_yticks(np.arange(n), list(classes))
        for tick in ax.get_xticklabels():
            tick.set_rotation(45)
            tick.set_ha("right")
            tick.set_rotation_mode("anchor")
        ax.set_xlabel("predicted label")
        ax.set_ylabel("true label")
        ax.set_title(title)
        fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


@_with_rc
def roc_pr_curves(
    roc: dict[str, tuple[np.ndarray, np.ndarray, float]],
    pr: dict[str, tuple[np.ndarray, np.ndarray, float, float]],
    classes: Sequence[str],
) -> Figure:
    """One-vs-rest ROC (left) and precision–recall (right) curves per class.

    ``roc[class] = (fpr, tpr, auc)``; ``pr[class] = (recall, precision, ap, prevalence)``.
    One legend, outside the axes, gives AUC and AP per class.
    """
    cmap = colors_for(classes)
    fig = new_figure(MAX_W, 4.4)
    ax_roc, ax_pr = fig.subplots(1, 2)
    ax_roc.plot([0, 1], [0, 1], linestyle=":", color="#999999", linewidth=1)
    handles = []
    for c in classes:
        if c in roc:
            fpr, tpr, auc = roc[c]
            ax_roc.plot(fpr, tpr, color=cmap[c], linewidth=1.6)
        if c in pr:
            rec, prec, ap, prev = pr[c]
            ax_pr.plot(rec, prec, color=cmap[c], linewidth=1.6, drawstyle="steps-post")
            ax_pr.axhline(prev, color=cmap[c], linestyle=":", linewidth=0.8, alpha=0.6)
        if c in roc or c in pr:
            parts = [f"AUC {roc[c][2]:.3f}" if c in roc else "", f"AP {pr[c][2]:.3f}" if c in pr else ""]
            handles.append(Line2D([], [], color=cmap[c], linewidth=2, label=f"{c}  ({', '.join(p for p in parts if p)})"))
    handles.append(Line2D([], [], color="#999999", linestyle=":", label="chance"))
    ax_roc.set_xlabel("false positive rate")
    ax_roc.set_ylabel("true positive rate")
    ax_roc.set_title("One-vs-rest ROC")
    ax_pr.set_xlabel("recall")
    ax_pr.set_ylabel("precision")
    ax_pr.set_title("Precision–recall")
    for ax in (ax_roc, ax_pr):
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.02)
        ax.set_aspect("equal")
        _style(ax)
    ax_pr.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, title="class")
    return fig


@_with_rc
def reliability_diagram(rel: dict) -> Figure:
    """Accuracy against mean confidence per confidence bin (bars, with the diagonal of perfect
    calibration and the gap shaded), and how many predictions fall into each bin (below)."""
    bins = rel["bins"]
    width = 1.0 / rel["n_bins"]
    centres = np.array([(b["lo"] + b["hi"]) / 2 for b in bins])
    acc = np.array([np.nan if b["accuracy"] is None else b["accuracy"] for b in bins])
    conf = np.array([np.nan if b["confidence"] is None else b["confidence"] for b in bins])
    counts = np.array([b["count"] for b in bins])
    fig = new_figure(5.6, 5.6)
    ax, ax_n = fig.subplots(2, 1, gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    ok = ~np.isnan(acc)
    ax.bar(centres[ok], acc[ok], width=width * 0.95, color="#4c72b0", edgecolor="white", label="accuracy")
    gap_lo, gap_hi = np.minimum(acc, conf), np.maximum(acc, conf)
    ax.bar(centres[ok], (gap_hi - gap_lo)[ok], bottom=gap_lo[ok], width=width * 0.95, color="#dd8452",
           alpha=0.45, hatch="//", edgecolor="#dd8452", label="gap to mean confidence")
    ax.plot([0, 1], [0, 1], linestyle=":", color="#555555", linewidth=1, label="perfect calibration")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(f"Reliability (ECE {100 * rel['ece']:.2f} %, {rel['n_bins']} bins)"
                 if "ece" in rel else "Reliability")
    ax.legend(loc="upper left", frameon=False)
    ax_n.bar(centres, counts, width=width * 0.95, color="#8c8c8c")
    ax_n.set_xlabel("confidence (top-class probability)")
    ax_n.set_ylabel("predictions")
    ax_n.set_xlim(0, 1)
    for a in (ax, ax_n):
        _style(a)
    return fig


# ---------------------------------------------------------------- training
@_with_rc
def training_curves(curves: pd.DataFrame) -> Figure:
    """Loss and accuracy per epoch, train (solid) and validation (dashed), one colour per fold.

    ``curves`` is the long table written to ``curves.csv``: fold, epoch and any of
    ``train_loss, val_loss, train_acc, val_acc``.
    """
    folds = list(dict.fromkeys(curves["fold"].astype(str)))
    cmap = colormaps["viridis"]
    fold_color = {f: cmap(i / max(1, len(folds) - 1) * 0.85) for i, f in enumerate(folds)}
    fig = new_figure(MAX_W, 3.8)
    axes = fig.subplots(1, 2)
    for ax, kind, label in ((axes[0], "loss", "loss"), (axes[1], "acc", "accuracy (%)")):
        for f in folds:
            sub = curves[curves["fold"].astype(str) == f].sort_values("epoch")
            for split, style in (("train", "-"), ("val", "--")):
                col = f"{split}_{kind}"
                if col not in sub or sub[col].isna().all():
                    continue
                y = sub[col].to_numpy(dtype=float)
                if kind == "acc" and np.nanmax(y) <= 1.0:
                    y = y * 100
                ax.plot(sub["epoch"], y, linestyle=style, color=fold_color[f], linewidth=1.5, marker="o", markersize=2.5)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.set_title("Loss" if kind == "loss" else "Accuracy")
        _style(ax)
    handles = [Line2D([], [], color=fold_color[f], linewidth=2, label=f if f.lower().startswith("fold") else f"fold {f}") for f in folds]
    handles += [
        Line2D([], [], color="#444444", linestyle="-", label="train"),
        Line2D([], [], color="#444444", linestyle="--", label="validation"),
    ]
    axes[1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return fig


# ---------------------------------------------------------------- comparison
@_with_rc
def comparison_bars(rows: list[dict]) -> Figure:
    """UA (mean ± std) of comparable runs; published figures marked as diamonds.

    ``rows``: dicts with ``label``, ``ua``, ``ua_std`` (fractions, may be NaN) and
    optional ``published`` (percent) and ``published_metric``.
    """
    n = len(rows)
    fig = new_figure(8.5, 0.38 * n + 1.3)
    ax = fig.add_subplot()
    y = np.arange(n)[::-1]
    ua = np.array([r["ua"] * 100 if r["ua"] == r["ua"] else np.nan for r in rows])
    err = np.array([r["ua_std"] * 100 if r["ua_std"] == r["ua_std"] else 0.0 for r in rows])
    ax.barh(y, ua, xerr=err, color="#4c72b0", height=0.6 if n > 1 else 0.4, capsize=3, label="UA (mean ± std over folds)")
    for yi, v in zip(y, ua):
        if v == v:
            ax.text(1, yi, f"{v:.1f}", va="center", ha="left", color="white", fontsize=8)
    pub = [(yi, r["published"]) for yi, r in zip(y, rows) if r.get("published") is not None]
    if pub:
        ax.scatter(
            [p for _, p in pub],
            [yi for yi, _ in pub],
            marker="D",
            color="#dd8452",
            zorder=3,
            label="published figure (authors' protocol)",
        )
    ax.set_yticks(y, [r["label"] for r in rows])
    ax.set_xlim(0, 100)
    ax.set_xlabel("score (%)")
    handles, labels = ax.get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: not labels[i].startswith("UA"))
    ax.legend([handles[i] for i in order], [labels[i] for i in order], loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=2, frameon=False)
    _style(ax)
    ax.grid(False, axis="y")
    return fig

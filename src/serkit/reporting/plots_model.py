"""Figures of the model internals for the run report: embedding maps, activation heat-map,
feature variance, attention weights, Grad-CAM maps (same conventions as :mod:`.plots`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .colors import colors_for
from .plots import MAX_W, _style, _with_rc, new_figure

__all__ = ["embedding_scatter", "activation_heatmap", "feature_variance", "attention_weights", "gradcam_gallery"]


# ---------------------------------------------------------------- embeddings
@_with_rc
def embedding_scatter(
    xy: np.ndarray,
    true: Sequence[str],
    pred: Sequence[str],
    classes: Sequence[str],
    method: str,
    axis_labels: tuple[str, str] = ("dimension 1", "dimension 2"),
) -> Figure:
    """Two panels: points coloured by true label and by predicted label."""
    cmap = colors_for(classes)
    xy = np.asarray(xy, dtype=float)
    true = np.asarray(true).astype(str)
    pred = np.asarray(pred).astype(str)
    n = len(xy)
    size = 14 if n <= 500 else (8 if n <= 1500 else 5)
    fig = new_figure(MAX_W, 4.6)
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    for ax, labels, title in ((axes[0], true, "true label"), (axes[1], pred, "predicted label")):
        for c in classes:
            m = labels == c
            if m.any():
                ax.scatter(xy[m, 0], xy[m, 1], s=size, color=cmap[c], alpha=0.8, linewidths=0, label=c)
        wrong = true != pred
        if title == "predicted label" and wrong.any():
            ax.scatter(xy[wrong, 0], xy[wrong, 1], s=size * 2.2, facecolors="none", edgecolors="black", linewidths=0.4)
        ax.set_title(f"{method}, coloured by {title}")
        ax.set_xlabel(axis_labels[0])
        ax.set_ylabel(axis_labels[1])
        _style(ax)
    handles = [Line2D([], [], marker="o", linestyle="", color=cmap[c], label=c) for c in classes]
    if (true != pred).any():
        handles.append(
            Line2D([], [], marker="o", linestyle="", markerfacecolor="none", markeredgecolor="black", label="misclassified")
        )
    axes[1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, title="class")
    return fig


@_with_rc
def activation_heatmap(mean_abs: np.ndarray, classes: Sequence[str], dims: Sequence[int], subtitle: str) -> Figure:
    """Mean |activation| per class × dimension (study 003)."""
    mat = np.asarray(mean_abs, dtype=float)
    fig = new_figure(MAX_W, max(2.6, 0.32 * len(classes) + 1.6))
    ax = fig.add_subplot()
    im = ax.imshow(mat, aspect="auto", cmap="magma", interpolation="nearest")
    ax.set_yticks(np.arange(len(classes)), list(classes))
    nd = len(dims)
    step = max(1, int(np.ceil(nd / 16)))
    ticks = np.arange(0, nd, step)
    ax.set_xticks(ticks, [str(dims[i]) for i in ticks])
    ax.set_xlabel("embedding dimension")
    ax.set_ylabel("true class")
    ax.set_title(f"Mean |activation| per class and dimension{subtitle}")
    fig.colorbar(im, ax=ax, label="mean |activation|", shrink=0.9)
    return fig


@_with_rc
def feature_variance(variance: np.ndarray) -> Figure:
    """Per-dimension variance in dimension order and sorted (study 003)."""
    var = np.asarray(variance, dtype=float)
    fig = new_figure(MAX_W, 3.4)
    axes = fig.subplots(1, 2)
    if len(var) <= 40:
        axes[0].bar(np.arange(len(var)), var, width=0.9, color="#4c72b0", linewidth=0)
    else:  # too many bars to draw one by one at this size
        axes[0].fill_between(np.arange(len(var)), 0, var, step="mid", color="#4c72b0", linewidth=0)
    axes[0].set_xlabel("embedding dimension")
    axes[0].set_ylabel("variance over test utterances")
    axes[0].set_title("Variance per dimension")
    srt = np.sort(var)[::-1]
    axes[1].plot(np.arange(1, len(srt) + 1), srt, color="#4c72b0")
    axes[1].set_xlabel("rank")
    axes[1].set_ylabel("variance")
    axes[1].set_title("Variance, sorted")
    if len(srt) > 1 and srt.min() > 0 and srt.max() / srt.min() > 100:
        axes[1].set_yscale("log")
    else:
        axes[1].set_ylim(bottom=0, top=max(srt.max() * 1.05, 1e-12) if len(srt) else 1)
    for ax in axes:
        ax.ticklabel_format(axis="y", useOffset=False) if ax.get_yscale() == "linear" else None
        _style(ax)
    return fig


@_with_rc
def attention_weights(items: list[dict]) -> Figure:
    """Attention-pooling weights over time for a few utterances.

    ``items``: dicts with ``key``, ``label`` and ``weights`` (1-D array).
    """
    n = len(items)
    ncols = 2 if n > 1 else 1
    nrows = int(np.ceil(n / ncols))
    fig = new_figure(MAX_W if ncols == 2 else 6.0, 2.2 * nrows + 0.4)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    cmap = colors_for([it["label"] for it in items])
    for ax, it in zip(axes, items):
        w = np.asarray(it["weights"], dtype=float).ravel()
        t = np.arange(len(w))
        ax.fill_between(t, 0, w, color=cmap[it["label"]], alpha=0.35, linewidth=0)
        ax.plot(t, w, color=cmap[it["label"]], linewidth=1.2)
        ax.axhline(1.0 / max(1, len(w)), color="#888888", linestyle=":", linewidth=0.8)
        ax.set_title(f"{it['key']}  ·  {it['label']}", fontsize=9)
        ax.set_xlabel("frame")
        ax.set_ylabel("weight α")
        _style(ax)
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig


@_with_rc
def gradcam_gallery(items: list[dict]) -> Figure:
    """Grad-CAM maps over their input spectrograms.

    ``items``: dicts with ``spec`` (freq × time), ``map`` (any 2-D shape), ``key``,
    ``label``, ``pred``.
    """
    n = len(items)
    ncols = min(3, n)
    nrows = int(np.ceil(n / ncols))
    fig = new_figure(min(MAX_W, 3.3 * ncols + 0.3), 2.7 * nrows + 0.3)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, it in zip(axes, items):
        spec = np.asarray(it["spec"], dtype=float)
        cam = np.asarray(it["map"], dtype=float)
        if spec.ndim > 2:
            spec = spec.reshape(-1, spec.shape[-1])
        if cam.ndim > 2:
            cam = cam.reshape(-1, cam.shape[-1])
        if cam.ndim == 1:
            cam = cam[None, :]
        extent = (0, spec.shape[1], 0, spec.shape[0])
        ax.imshow(spec, origin="lower", aspect="auto", cmap="gray_r", extent=extent, interpolation="nearest")
        rng = np.ptp(cam)
        camn = (cam - cam.min()) / rng if rng > 0 else np.zeros_like(cam)
        rgba = colormaps["jet"](camn)
        rgba[..., 3] = 0.65 * camn  # transparent where the map is low: the input stays visible
        ax.imshow(rgba, origin="lower", aspect="auto", extent=extent, interpolation="bilinear")
        ok = str(it["label"]) == str(it["pred"])
        ax.set_title(
            f"{it['key']}\ntrue {it['label']} · pred {it['pred']}",
            fontsize=8.5,
            color="#222222" if ok else "#b00020",
        )
        ax.set_xlabel("frame")
        ax.set_ylabel("feature bin")
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig

"""A picture of an emotion timeline (``serkit predict --timeline --plot``, ``serkit demo``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from serkit.reporting.colors import colors_for

__all__ = ["plot_timeline"]


def plot_timeline(result: dict[str, Any], out: str | Path, title: str | None = None) -> Path:
    """Two panels sharing the time axis: segments coloured by emotion (grey hatching where there
    is no speech), and each class's probability per segment as a step curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    segs = result.get("segments", [])
    classes = sorted({c for s in segs if s.get("scores") for c in s["scores"]})
    colors = colors_for(classes)
    end = max((s["end"] for s in segs), default=float(result.get("duration") or 1.0))
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 4.2), sharex=True,
                                   gridspec_kw={"height_ratios": [1, 2.4]})
    for s in segs:
        if s.get("label"):
            ax1.axvspan(s["start"], s["end"], color=colors[s["label"]], alpha=0.9, lw=0)
            if s["end"] - s["start"] > 0.04 * end:
                ax1.text((s["start"] + s["end"]) / 2, 0.5, s["label"], ha="center", va="center",
                         fontsize=8, color="white", weight="bold")
        else:
            ax1.axvspan(s["start"], s["end"], facecolor="white", edgecolor="#cccccc", hatch="///", lw=0)
    ax1.set_yticks([])
    ax1.set_ylabel("emotion")
    for c in classes:
        xs, ys = [], []
        for s in segs:
            p = (s.get("scores") or {}).get(c)
            xs += [s["start"], s["end"]]
            ys += [float("nan") if p is None else p] * 2
        ax2.plot(xs, ys, color=colors[c], lw=1.6, label=c)
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("probability")
    ax2.set_xlabel("time (s)")
    ax2.set_xlim(0, end)
    handles = [Patch(color=colors[c], label=c) for c in classes] + [
        Patch(facecolor="white", edgecolor="#999999", hatch="///", label="no speech")]
    ax2.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncol=len(handles),
               frameon=False, fontsize=8)
    overall = result.get("label") or "no speech"
    fig.suptitle(title or f"{Path(result.get('path') or 'recording').name}: overall {overall}", fontsize=10)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out

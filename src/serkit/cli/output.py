"""Prediction results as a table, JSON, JSON lines or CSV (one schema: see serkit.inference.predictor)."""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from rich.table import Table

FORMATS = ("table", "json", "jsonl", "csv")


def _fmt_s(t: float | None) -> str:
    if t is None:
        return ""
    m, s = divmod(float(t), 60)
    return f"{int(m)}:{s:05.2f}"


def results_table(results: Sequence[dict[str, Any]], classes: Sequence[str], top: int = 3) -> Table:
    t = Table(title=f"{len(results)} file(s)", show_lines=False)
    for col in ("file", "emotion", "confidence", f"top {top}", "length"):
        t.add_column(col, overflow="fold", justify="right" if col in ("confidence", "length") else "left")
    for r in results:
        if "error" in r:
            t.add_row(r.get("path") or "", "[red]cannot read[/]", "", r["error"].split(": ", 1)[-1], "")
            continue
        if r.get("label") is None:
            t.add_row(r.get("path") or "", "[dim]—[/]", "", r.get("note", "no speech"),
                      _fmt_s(r.get("duration")))
            continue
        best = sorted(r["scores"].items(), key=lambda kv: -kv[1])[:top]
        t.add_row(r.get("path") or "", f"[bold]{r['label']}[/]", f"{r['confidence']:.2f}",
                  "  ".join(f"{k} {v:.2f}" for k, v in best), _fmt_s(r.get("duration")))
    return t


def timeline_table(result: dict[str, Any]) -> Table:
    head = result.get("label") or "no speech"
    t = Table(title=f"{result.get('path') or 'input'} — overall: {head}"
                    + (f" ({result['confidence']:.2f})" if result.get("confidence") else ""))
    for col in ("start", "end", "emotion", "confidence"):
        t.add_column(col, justify="right" if col != "emotion" else "left")
    for s in result.get("segments", []):
        label = f"[bold]{s['label']}[/]" if s.get("label") else f"[dim]{s.get('note', 'no speech')}[/]"
        conf = f"{s['confidence']:.2f}" if s.get("confidence") is not None else ""
        t.add_row(_fmt_s(s["start"]), _fmt_s(s["end"]), label, conf)
    return t


def to_json(results: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(results), indent=1) + "\n"


def to_jsonl(results: Sequence[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in results)


def to_csv(results: Sequence[dict[str, Any]], classes: Sequence[str], timeline: bool = False) -> str:
    """One row per file (or per segment with ``timeline``); failed files keep their row with
    ``error``; probabilities in ``prob_<class>`` columns."""
    base = ["path", "start", "end"] if timeline else ["path"]
    cols = base + ["label", "confidence", "duration", "speech", "note", "error"] + [f"prob_{c}" for c in classes]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in results:
        rows = [r]
        if timeline and "segments" in r:
            rows = [{"path": r.get("path"), **s, "duration": round(s["end"] - s["start"], 3),
                     "speech": s.get("label") is not None} for s in r["segments"]]
        for row in rows:
            out = {k: row.get(k) for k in cols if not k.startswith("prob_")}
            for c in classes:
                out[f"prob_{c}"] = (row.get("scores") or {}).get(c)
            w.writerow(out)
    return buf.getvalue()


def render(results: Sequence[dict[str, Any]], fmt: str, classes: Sequence[str], timeline: bool) -> str:
    if fmt == "json":
        return to_json(results)
    if fmt == "jsonl":
        return to_jsonl(results)
    if fmt == "csv":
        return to_csv(results, classes, timeline)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")

"""The report's header (what was run, under which protocol, on how many inputs, with which
warnings) and the sections on the run itself: skipped inputs and run time."""

from __future__ import annotations

from typing import Any

import pandas as pd

from . import html as H
from .analysis import speaker_overlap
from .colors import colors_for
from .context import ReportContext
from .run import Run, format_wall_time
from .schema import TRANSDUCTIVE_NOTE

__all__ = ["header", "inputs_text", "skipped_section", "timing_section"]

TRANSDUCTIVE_WHY = (
    " — test-time adaptation: each test speaker's features were normalised with statistics of that "
    "speaker's own test clips. A saved model cannot do this for one new clip; these scores are not "
    "ranked with inductive results."
)


def inputs_text(run: Run) -> str:
    """``"118 of 120 inputs used"``, or ``"not recorded"``."""
    acc = run.accounting
    if acc is None:
        return "not recorded"
    return f"{acc['rows_used']} of {acc['rows_scanned']} inputs used"


def _transductive_banner(run: Run) -> str:
    t = run.transductive
    if t is True:
        note = run.protocol.get("transductive_note") or TRANSDUCTIVE_NOTE
        return H.warning(note[:1].upper() + note[1:] + TRANSDUCTIVE_WHY)
    if t is None:
        return H.warning(
            "Not recorded whether features were normalised per test speaker (transductive): "
            "treat these scores as possibly transductive."
        )
    return ""


def _speaker_audit(run: Run, claimed_si: bool | None) -> str:
    """Test speakers checked against the rest of manifest.csv, fold by fold."""
    found = speaker_overlap(run)
    if found is None:
        return ""
    overlapping, total = found
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


def _label_warnings(run: Run) -> str:
    ws = run.speaker_label_warnings
    if not ws:
        return ""
    items = []
    for w in ws:
        labels = w.get("labels") if isinstance(w.get("labels"), dict) else {}
        counts = ", ".join(f"{k} {v}" for k, v in sorted(labels.items(), key=lambda kv: -_num(kv[1])))
        dist = w.get("distance")
        dist_text = f" (distance {float(dist):.2f})" if isinstance(dist, (int, float)) else ""
        items.append(f"{w.get('speaker', '?')}{dist_text}: {counts or 'labels not recorded'}")
    return H.warning_list(
        f"{len(ws)} speaker(s) recorded a label mix far from the corpus's. Per-speaker normalisation over such a "
        "speaker's own clips removes much of what separates their emotions, so their scores (and the average) "
        "can fall below chance:",
        items,
    )


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


def header(ctx: ReportContext, summary: dict) -> str:
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
    t = run.transductive
    adapt = {True: run.protocol.get("transductive_note") or TRANSDUCTIVE_NOTE,
             False: "none (inductive: each clip's features do not depend on other test clips)"}.get(t, "not recorded")
    inputs = H.esc(inputs_text(run))
    if run.accounting is not None:
        n = len(run.accounting["skipped"])
        inputs += f' (<a href="#skipped">{n} skipped</a>)' if n else " (none skipped)"
    items = [
        ("Experiment", H.esc(summary["name"])),
        *([("Description", H.esc(description))] if description else []),
        ("Model", H.esc(summary["model"])),
        ("Features", H.esc(summary["features"])),
        ("Corpora", H.esc(summary["corpora"] + (f" ({', '.join(counts)})" if counts else ""))),
        ("Inputs", inputs),
        ("Label set", f"{H.esc(summary['label_set'])} ({len(run.classes)} classes): {classes_html}"),
        ("Protocol", H.esc(summary["protocol_text"])),
        ("Test-time adaptation", H.esc(adapt)),
        ("Folds", H.esc(summary["n_folds"] or "not recorded")),
        ("Seed", H.esc(summary["seed"] if summary["seed"] is not None else "not recorded")),
        ("serkit version", H.esc(version)),
        ("Wall time", H.esc(format_wall_time(summary["wall_time_s"]))),
        ("Run directory", H.esc(run.path.resolve())),
        ("Run format", H.esc(f"schema version {run.version}" + (" (no schema_version recorded)" if run.version == 1 else ""))),
    ]
    si = summary["speaker_independent"]
    if si is True:
        banner = H.ok("Speaker-independent: no speaker appears in both training and test.")
    elif si is False:
        banner = H.warning("Speaker-dependent random split — the same speakers are in training and test; accuracy is inflated.")
    else:
        banner = H.warning("Protocol not recorded: it is unknown whether test speakers were seen in training.")
    sub = [summary["corpora"], summary["label_set"], inputs_text(run)] + (["transductive"] if t else [])
    return (
        f"<h1>{H.esc(summary['name'])}</h1>\n"
        f'<p class="sub">serkit run report · {" · ".join(H.esc(s) for s in sub)}</p>\n'
        + banner
        + _transductive_banner(run)
        + _speaker_audit(run, si)
        + _label_warnings(run)
        + "".join(H.note(n) for n in run.notes)
        + H.definition_list(items, raw=True)
    )


def skipped_section(ctx: ReportContext) -> str:
    """Every input row that was not used, with the stage that dropped it and why."""
    acc = ctx.run.accounting
    if acc is None:
        return H.note("Not recorded: metrics.json has no input accounting (rows scanned / used, skipped files).")
    skipped = acc["skipped"]
    scanned, used = acc["rows_scanned"], acc["rows_used"]
    out = [H.note(f"{used} of {scanned} inputs used (rows scanned: {scanned}, rows used: {used}, skipped: {len(skipped)}).")]
    if scanned - used != len(skipped):
        out.append(H.warning(f"The accounting does not add up: {scanned} scanned − {used} used ≠ {len(skipped)} skipped rows listed."))
    if not skipped:
        out.append("<p>Skipped inputs: none.</p>\n")
        return "".join(out)
    df = pd.DataFrame(skipped, columns=["path", "key", "stage", "kind", "reason"])
    name, href = ctx.csv("skipped.csv", df)
    rows = [[r["path"] or "–", r["stage"] or "–", r["kind"] or "–", r["reason"] or "–"] for r in skipped]
    out.append(H.table(["path", "stage", "kind", "reason"], rows, text_cols=(0, 1, 2, 3), cls="wide"))
    out.append(f'<p class="note">Data: {ctx.link(name, href)}.</p>\n')
    return "".join(out)


def _seconds(v: Any) -> str:
    return format_wall_time(v) if v is not None else "–"


def timing_section(ctx: ReportContext) -> str:
    run = ctx.run
    out = []
    if run.timing:
        stages = [("scan_s", "scanning the corpus"), ("features_s", "feature extraction"),
                  ("folds_s", "training and testing all folds"), ("total_s", "total")]
        rows = [[label, _seconds(run.timing.get(k))] for k, label in stages if k in run.timing]
        rows += [[k, _seconds(v)] for k, v in run.timing.items() if k not in dict(stages)]
        out.append(H.table(["stage", "wall time"], rows, row_classes=["summary" if r[0] == "total" else "" for r in rows]))
    if run.extraction:
        rows = []
        for e in run.extraction:
            xrt = e.get("x_realtime")
            rows.append([
                e.get("stream", "?"), e.get("files", "–"), e.get("cached", "–"), _seconds(e.get("audio_s")),
                _seconds(e.get("wall_s")), f"{float(xrt):.1f}×" if isinstance(xrt, (int, float)) else "–",
            ])
        out.append(H.table(["feature stream", "files", "from cache", "audio", "wall time", "speed (× real time)"], rows))
        out.append(H.note("Speed: seconds of audio per second of wall time."))
    if not out:
        return H.note("No timing recorded" + (" (schema v1 run)." if run.version == 1 else "."))
    return "".join(out)

"""Comparison tables over several run directories (Markdown and HTML, same content).

Runs are ranked only against comparable runs: same corpora (by the corpus names the
run recorded), same label set (and classes), same protocol kind, speaker independence
and transductive or not (test-time per-speaker normalisation over the test speakers'
own clips). Each such group is its own section, sorted by UA (descending); published
figures are shown beside the runs that reproduce them, labelled with the authors'
protocol, never ranked.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import html as H
from . import plots
from .run import format_wall_time, load_run, published_percent, run_summary

__all__ = ["collect", "group_runs", "write_comparison", "comparability_key"]

COLUMNS = ["rank", "run", "model", "features", "corpora", "label set", "protocol", "UA (%)", "WA (%)", "macro-F1 (%)", "folds", "published", "wall time"]

_TEXT = ("run", "model", "features", "corpora", "label set", "protocol", "published")


def _pm(mean: float, std: float) -> str:
    if mean != mean:
        return "–"
    return f"{mean * 100:.2f}" if std != std else f"{mean * 100:.2f} ± {std * 100:.2f}"


def _published(pub: Any) -> str:
    if not isinstance(pub, dict) or pub.get("value") is None:
        return "–"
    value = published_percent(pub)
    text = f"{pub.get('metric', 'score')} " + (f"{value:.2f} %" if value is not None else str(pub.get("value")))
    extra = ", ".join(str(pub[k]) for k in ("protocol", "source") if pub.get(k))
    return f"{text} ({extra})" if extra else text


def comparability_key(s: dict) -> tuple:
    """Runs with equal keys may be ranked together."""
    return (
        s["corpora_key"],
        s["label_set"].lower(),
        tuple(sorted(s["classes"])),
        s["protocol_kind"].lower(),
        s["speaker_independent"],
        s["transductive"],
    )


def collect(run_dirs: Iterable[str | os.PathLike]) -> list[dict]:
    """Summaries (``report.run_summary``) of the given run directories."""
    return [run_summary(load_run(d)) for d in run_dirs]


def group_runs(summaries: list[dict]) -> list[list[dict]]:
    """Comparable groups, each sorted by UA descending (runs without UA last).

    Groups come in order: speaker-independent first, inductive before transductive (and
    unknown), then by corpora and label set.
    """
    groups: dict[tuple, list[dict]] = {}
    for s in summaries:
        groups.setdefault(comparability_key(s), []).append(s)
    for g in groups.values():
        g.sort(key=lambda s: (s["ua"] != s["ua"], -(s["ua"] if s["ua"] == s["ua"] else 0.0), s["name"]))

    def rank(flag, first) -> int:
        return 0 if flag is first else (1 if flag is (not first) else 2)

    def order(key: tuple):
        return (rank(key[4], True), rank(key[5], False), key[0], key[1], key[3])

    return [groups[k] for k in sorted(groups, key=order)]


_TRANSDUCTIVE = {True: "transductive", False: "", None: "transductive unknown"}


def _group_title(s: dict) -> str:
    si = s["speaker_independent"]
    prot = {True: "speaker-independent", False: "speaker-dependent"}.get(si, "protocol unknown")
    corpora = s["corpora"] if s["corpora_known"] else f"{s['corpora']} (corpus not identified: {s['name']})"
    trans = _TRANSDUCTIVE[s["transductive"]]
    return (
        f"{corpora} · label set {s['label_set']} ({len(s['classes'])} classes) · {prot} ({s['protocol_kind']})"
        + (f" · {trans}" if trans else "")
    )


def _group_note(s: dict) -> str:
    si = s["speaker_independent"]
    if si is True:
        text = "Speaker-independent: no speaker appears in both training and test."
    elif si is False:
        text = "Speaker-dependent random split — the same speakers are in training and test; accuracy is inflated."
    else:
        text = "Protocol not recorded: speaker independence unknown."
    if s["transductive"] is True:
        text += (" Transductive: uses the test speakers' unlabelled utterances (per-speaker feature normalisation); "
                 "ranked only against other transductive runs.")
    elif s["transductive"] is None:
        text += " Not recorded whether the test speakers' own utterances normalised their features (transductive)."
    return text


def _group_ok(s: dict) -> bool:
    return s["speaker_independent"] is True and s["transductive"] is False


def _protocol_short(s: dict) -> str:
    si = {True: "speaker-independent", False: "speaker-dependent"}.get(s["speaker_independent"], "unknown")
    trans = _TRANSDUCTIVE[s["transductive"]]
    return f"{si} ({s['protocol_kind']})" + (f", {trans}" if trans else "")


def _row(rank: int, s: dict) -> list[str]:
    return [
        str(rank) if s["ua"] == s["ua"] else "–",
        s["name"],
        s["model"],
        s["features"],
        s["corpora"],
        s["label_set"],
        _protocol_short(s),
        _pm(s["ua"], s["ua_std"]),
        _pm(s["wa"], s["wa_std"]),
        _pm(s["macro_f1"], s["macro_f1_std"]),
        str(s["n_folds"] or "–"),
        _published(s["published"]),
        format_wall_time(s["wall_time_s"]),
    ]


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


_INTRO = (
    "UA: unweighted accuracy (mean per-class recall); WA: weighted (overall) accuracy; mean ± std over folds, in %. "
    "Runs are ranked only within a section: sections differ in corpora, label set or protocol, or in being "
    "transductive (test speakers' own unlabelled utterances used for feature normalisation), and are not comparable. "
    "Published figures are the authors' own numbers under their protocol (often a speaker-dependent random split); "
    "they are shown for reference, not ranked."
)


def _out_paths(out: str | os.PathLike | None) -> tuple[Path, Path]:
    if out is None:
        stem = Path.cwd() / "comparison"
    else:
        p = Path(out)
        if p.is_dir():
            stem = p / "comparison"
        elif p.suffix.lower() in (".md", ".html", ".htm", ".markdown"):
            stem = p.with_suffix("")
        else:
            stem = p
    stem.parent.mkdir(parents=True, exist_ok=True)
    return stem.with_name(stem.name + ".md"), stem.with_name(stem.name + ".html")


def write_comparison(run_dirs: Iterable[str | os.PathLike], out: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Write a comparison of several runs as Markdown and HTML.

    Parameters
    ----------
    run_dirs
        Run directories written by ``serkit run``.
    out
        Path stem (``results/table`` → ``results/table.md`` and ``.html``), a file
        name ending in ``.md`` / ``.html`` (its stem is used) or a directory;
        default ``comparison.md`` / ``comparison.html`` in the current directory.

    Returns
    -------
    (Path, Path)
        The Markdown and HTML files.
    """
    summaries = collect(run_dirs)
    if not summaries:
        raise ValueError("write_comparison needs at least one run directory")
    groups = group_runs(summaries)
    md_path, html_path = _out_paths(out)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    md = ["# serkit comparison", "", _INTRO, ""]
    body = ["<h1>serkit comparison</h1>", f'<p class="sub">{len(summaries)} runs in {len(groups)} comparable group(s) · {when}</p>']
    body.append(H.note(_INTRO))
    if len(groups) > 1:
        body.append(H.toc([(f"group-{i + 1}", f"{i + 1}. {_group_title(g[0])}") for i, g in enumerate(groups)]))
    for i, g in enumerate(groups, start=1):
        first = g[0]
        title = f"{i}. {_group_title(first)}"
        rows = [_row(r, s) for r, s in enumerate(g, start=1)]
        md += [f"## {title}", "", f"*{_group_note(first)}*", ""]
        md.append("| " + " | ".join(COLUMNS) + " |")
        md.append("|" + "|".join("---" if c in _TEXT else "---:" for c in COLUMNS) + "|")
        md += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
        md.append("")
        md.append("Run directories: " + "; ".join(f"`{s['name']}`: {s['path']}" for s in g))
        md.append("")

        content = (H.ok if _group_ok(first) else H.warning)(_group_note(first))
        content += H.table(COLUMNS, rows, text_cols=[i for i, c in enumerate(COLUMNS) if c in _TEXT], cls="wide")
        bars = [
            {
                "label": s["name"],
                "ua": s["ua"],
                "ua_std": s["ua_std"],
                "published": published_percent(s["published"]),
            }
            for s in g
        ]
        if any(b["ua"] == b["ua"] for b in bars):
            content += H.figure(
                plots.to_data_uri(plots.comparison_bars(bars)),
                f"UA of the runs in group {i}",
                "UA per run (mean ± std over folds); diamonds: published figures (authors' metric and protocol).",
            )
        content += H.note("Run directories: " + "; ".join(f"{s['name']}: {s['path']}" for s in g))
        body.append(H.section(f"group-{i}", title, content))

    md_path.write_text("\n".join(md), encoding="utf-8")
    from serkit import __version__

    html_path.write_text(
        H.page("serkit comparison", "\n".join(body), f"Written by serkit {H.esc(__version__)} on {when}."),
        encoding="utf-8",
    )
    return md_path, html_path

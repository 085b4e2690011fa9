"""Corpus health checks: duplicate audio, and a summary of a scan (dict + rich table).

Used by ``serkit data scan CORPUS ROOT``.
"""
from __future__ import annotations

import hashlib
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping

import numpy as np
import soundfile as sf

from .manifest import Problem, ScanResult

_CHUNK = 1 << 20


def _hash_bytes(path: Path) -> str:
    h = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


_PREFIX_FRAMES = 4096


def _hash_samples(path: Path, frames: int = -1) -> str:
    """Hash of the decoded samples (the first ``frames`` only when ``frames > 0``)."""
    h = hashlib.blake2b(digest_size=20)
    with sf.SoundFile(str(path)) as f:
        if frames > 0:
            h.update(f.read(frames, dtype="int32", always_2d=True).tobytes())
            return h.hexdigest()
        for block in f.blocks(blocksize=1 << 16, dtype="int32", always_2d=True):
            h.update(np.ascontiguousarray(block).tobytes())
    return h.hexdigest()


def _sample_signature(path: Path) -> tuple | None:
    try:
        info = sf.info(str(path))
    except Exception:
        return None
    return (info.frames, info.samplerate, info.channels)


def _refine(groups: list[list[Path]], key) -> list[list[Path]]:
    """Split each candidate group by ``key(path)``; keep sub-groups of two or more."""
    out = []
    for cands in groups:
        by_key: dict[Any, list[Path]] = defaultdict(list)
        for p in cands:
            try:
                k = key(p)
            except Exception:  # unreadable files are reported elsewhere
                continue
            if k is not None:
                by_key[k].append(p)
        out.extend(sorted(g) for g in by_key.values() if len(g) > 1)
    return sorted(out)


def _size(p: Path) -> int | None:
    return os.path.getsize(p) if p.is_file() else None


def find_duplicates(paths: Iterable[str | Path],
                    mode: Literal["bytes", "samples", "both"] = "both",
                    signatures: Mapping[Path, tuple] | None = None) -> list[list[Path]]:
    """Groups of files with the same audio content.

    Parameters
    ----------
    paths : iterable of path
        Files to compare.
    mode : {"bytes", "samples", "both"}
        ``"bytes"``: files of equal size are hashed (blake2b) and grouped by hash; fast, finds
        byte-identical copies (the RAVDESS quirk pair is byte-identical both as the original WAV
        and as the shared FLAC). ``"samples"``: files with equal (frames, rate, channels) are
        compared by a hash of their first decoded samples, then of all decoded samples; finds
        the same audio in different containers or with different metadata (Ogg streams carry
        random serial numbers, so identical Opus audio is never byte-identical). ``"both"``:
        union of the two.
    signatures : mapping, optional
        Precomputed ``path -> (frames, samplerate, channels)`` (saves re-reading headers).

    Returns
    -------
    list of list of Path
        Each group (two or more paths, sorted) holds identical audio; groups are sorted.
    """
    if mode not in ("bytes", "samples", "both"):
        raise ValueError(f"mode must be 'bytes', 'samples' or 'both', not {mode!r}")
    paths = sorted({Path(p) for p in paths})
    groups: list[list[Path]] = []
    if mode in ("bytes", "both"):
        groups += _refine(_refine([paths], _size), _hash_bytes)
    if mode in ("samples", "both"):
        sig = (lambda p: signatures.get(p)) if signatures is not None else _sample_signature
        cands = _refine([paths], sig)
        cands = _refine(cands, lambda p: _hash_samples(p, _PREFIX_FRAMES))
        groups += _refine(cands, _hash_samples)
    return _union(groups)


def _union(groups: list[list[Path]]) -> list[list[Path]]:
    """Merge overlapping groups (a file found by both modes)."""
    merged: list[set[Path]] = []
    for g in groups:
        s = set(g)
        for m in [m for m in merged if m & s]:
            s |= m
            merged.remove(m)
        merged.append(s)
    return sorted(sorted(m) for m in merged)


def duplicate_problems(paths: Iterable[str | Path], mode: str = "both",
                       signatures: Mapping[Path, tuple] | None = None,
                       emotions: Mapping[str, str] | None = None) -> list[Problem]:
    """One ``Problem(kind="duplicate")`` per file that has an identical twin.

    ``emotions`` (path string -> emotion) adds the group's emotions to the detail, which shows
    whether the copies also carry conflicting labels.
    """
    problems = []
    for group in find_duplicates(paths, mode=mode, signatures=signatures):  # type: ignore[arg-type]
        note = ""
        if emotions:
            emos = [emotions.get(str(q), "?") for q in group]
            note = f" (emotions {' / '.join(emos)}{'' if len(set(emos)) == 1 else ': conflict'})"
        for p in group:
            others = ", ".join(q.name for q in group if q != p)
            problems.append(Problem(str(p), "duplicate", f"same audio as {others}{note}"))
    return problems


def summarize(result: ScanResult, corpus: str | None = None) -> dict[str, Any]:
    """Counts of a scan, JSON-serialisable.

    Returns
    -------
    dict
        ``corpus`` (name, or names joined by ``+``), ``utterances``, ``speakers``, ``labels``
        (label -> utterances), ``genders`` (gender -> utterances), ``speaker_genders``
        (gender -> speakers), ``duration_s`` (total), ``mean_duration_s``, ``per_speaker``
        (speaker -> utterances), ``excluded`` (reason -> count) and ``problems`` (list of dicts
        ``path, kind, detail``) and ``problem_kinds`` (kind -> count).
    """
    m = result.manifest
    names = sorted(m["corpus"].unique()) if len(m) else []
    spk = m.drop_duplicates("speaker")
    return {
        "corpus": corpus or "+".join(names) or result.corpus,
        "utterances": int(len(m)),
        "speakers": int(m["speaker"].nunique()),
        "labels": _counts(m["label"]),
        "genders": _counts(m["gender"]),
        "speaker_genders": _counts(spk["gender"]),
        "duration_s": round(float(m["duration"].sum()), 3),
        "mean_duration_s": round(float(m["duration"].mean()), 3) if len(m) else 0.0,
        "per_speaker": _counts(m["speaker"]),
        "excluded": dict(result.excluded),
        "problem_kinds": dict(Counter(p.kind for p in result.problems)),
        "problems": [p.as_dict() for p in result.problems],
    }


def _counts(series) -> dict[str, int]:
    return {str(k): int(v) for k, v in sorted(Counter(series).items())}


def render_summary(summary: dict[str, Any], max_problems: int = 20):
    """A rich renderable (tables) of :func:`summarize`'s output."""
    from rich.console import Group
    from rich.table import Table

    head = Table(title=f"corpus {summary['corpus']}", show_header=False)
    head.add_column("what")
    head.add_column("value", justify="right")
    hours = summary["duration_s"] / 3600
    for what, value in [("utterances", summary["utterances"]), ("speakers", summary["speakers"]),
                        ("duration", f"{hours:.2f} h (mean {summary['mean_duration_s']:.2f} s)"),
                        ("genders (speakers)", _fmt(summary["speaker_genders"])),
                        ("genders (utterances)", _fmt(summary["genders"]))]:
        head.add_row(what, str(value))
    labels = Table(title="labels")
    labels.add_column("label")
    labels.add_column("utterances", justify="right")
    labels.add_column("share", justify="right")
    total = max(summary["utterances"], 1)
    for lab, n in summary["labels"].items():
        labels.add_row(lab, str(n), f"{100 * n / total:.1f}%")
    parts: list = [head, labels]
    if summary["excluded"]:
        excl = Table(title=f"left out on purpose ({sum(summary['excluded'].values())} utterances)")
        excl.add_column("reason", overflow="fold")
        excl.add_column("utterances", justify="right")
        for reason, n in summary["excluded"].items():
            excl.add_row(reason, str(n))
        parts.append(excl)
    if summary["problems"]:
        probs = Table(title=f"problems ({len(summary['problems'])}: "
                            f"{_fmt(summary['problem_kinds'])})")
        for col in ("kind", "path", "detail"):
            probs.add_column(col, overflow="fold")
        for p in summary["problems"][:max_problems]:
            probs.add_row(p["kind"], p["path"], p["detail"])
        if len(summary["problems"]) > max_problems:
            probs.add_row("...", f"{len(summary['problems']) - max_problems} more (use --json)", "")
        parts.append(probs)
    return Group(*parts)


def _fmt(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def print_summary(summary: dict[str, Any], console=None) -> None:
    """Print :func:`render_summary` to ``console`` (a new rich Console by default)."""
    from rich.console import Console

    (console or Console()).print(render_summary(summary))

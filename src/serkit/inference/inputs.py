"""What ``serkit predict`` reads: audio files, folders, glob patterns and manifest CSVs → file paths.

* a file is taken as it is (an unreadable one gets an ``error`` row later, not here);
* a folder is searched recursively for audio files (the extensions of
  :data:`serkit.corpora.base.AUDIO_EXTENSIONS`, hidden files skipped, sorted);
* a pattern with ``*``, ``?`` or ``[`` that is not an existing path is expanded with :mod:`glob`
  (``**`` matches any depth; quote it so the shell leaves it alone: ``"archive/**/*.flac"``);
* a ``.csv`` file is a manifest: its ``path`` column lists the files, relative paths relative to
  the CSV's folder (a serkit corpus manifest works as it is).

The order is kept: inputs in the order given, each expanded in sorted order.
"""
from __future__ import annotations

import csv
import glob
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["InputError", "expand_inputs", "read_manifest"]

_GLOB_CHARS = frozenset("*?[")


class InputError(ValueError):
    """An input that lists no files (a glob matching nothing, a manifest without a ``path`` column...)."""


def read_manifest(csv_path: str | Path) -> list[str]:
    """The ``path`` column of a manifest CSV; relative paths are taken relative to its folder."""
    csv_path = Path(csv_path)
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [f.strip() for f in reader.fieldnames or []]
            if "path" not in fields:
                raise InputError(f"{csv_path}: a manifest CSV needs a 'path' column "
                                 f"(found: {', '.join(fields) or 'no header'})")
            key = (reader.fieldnames or [])[fields.index("path")]
            rows = [(row.get(key) or "").strip() for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{csv_path}: cannot read the manifest ({exc})") from None
    empty = [i + 2 for i, r in enumerate(rows) if not r]
    if empty:
        raise InputError(f"{csv_path}: empty 'path' on line(s) {', '.join(map(str, empty[:5]))}")
    base = csv_path.parent
    return [r if os.path.isabs(r) else str(base / r) for r in rows]


def _is_glob(item: str) -> bool:
    return any(c in item for c in _GLOB_CHARS) and not os.path.exists(item)


def expand_inputs(items: Iterable[str | Path]) -> list[str]:
    """File paths for ``serkit predict`` from files, folders, globs and manifest CSVs (see module doc)."""
    from serkit.corpora.base import find_audio_files

    out: list[str] = []
    for item in items:
        s = str(item)
        p = Path(s)
        if p.is_dir():
            out.extend(str(f) for f in find_audio_files(p))
        elif p.suffix.lower() == ".csv" and p.is_file():
            out.extend(read_manifest(p))
        elif _is_glob(s):
            hits = sorted(h for h in glob.glob(s, recursive=True) if os.path.isfile(h))
            if not hits:
                raise InputError(f"{s}: no file matches this pattern")
            out.extend(hits)
        else:
            out.append(s)
    return out

"""Adapter base class: find audio files, parse their names, build a manifest.

A corpus adapter only has to say how one file name maps to manifest fields
(:meth:`CorpusAdapter.parse`); finding files, reading durations from the headers, reporting
problems, duplicate detection and label sets are done here once for all corpora.
"""
from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd
import soundfile as sf
from tqdm.auto import tqdm

from .manifest import LabelOptions, Problem, ScanResult, assign_labels, validate

#: file name endings treated as audio (compared case-insensitively)
AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {".wav", ".flac", ".ogg", ".opus", ".aiff", ".aif", ".mp3"}
)

#: when one utterance exists in several formats (CREMA-D ships AudioWAV/ and AudioMP3/), the
#: lowest rank wins the key; the others are reported as ``duplicate_key``
_FORMAT_RANK = {".wav": 0, ".flac": 0, ".aiff": 0, ".aif": 0, ".ogg": 1, ".opus": 1, ".mp3": 2}

#: folders that never hold corpus audio (macOS zip residue, VCS)
_IGNORED_DIRS = frozenset({"__MACOSX", ".git", ".svn"})


class FileProblem(Exception):
    """Raised by :meth:`CorpusAdapter.parse`: the file is left out and reported as a Problem.

    Parameters
    ----------
    detail : str
        Human-readable explanation.
    kind : str, optional
        Problem kind (``"no_label"``, ``"unknown_label"``, ``"missing"``...); defaults to the
        class attribute :attr:`kind`.
    """

    kind = "problem"

    def __init__(self, detail: str, kind: str | None = None):
        super().__init__(detail)
        if kind is not None:
            self.kind = kind


class Unparseable(FileProblem, ValueError):
    """The file name does not follow the corpus naming scheme."""

    kind = "unparseable"


class Excluded(Exception):
    """Raised by :meth:`CorpusAdapter.parse` for a valid file the manifest leaves out on purpose.

    Parameters
    ----------
    reason : str
        Short reason, used as the count key in :attr:`ScanResult.excluded` or as the detail of
        the :class:`Problem`.
    report : bool
        ``True``: report the file as ``Problem(kind="excluded")``; ``False``: only count it.
    """

    def __init__(self, reason: str, report: bool = True):
        super().__init__(reason)
        self.reason = reason
        self.report = report


def find_audio_files(root: Path) -> list[Path]:
    """All audio files below ``root`` (recursive, sorted), skipping hidden files such as ``._x.wav``."""
    out = []
    for p in Path(root).rglob("*"):
        if p.suffix.lower() not in AUDIO_EXTENSIONS or p.name.startswith("."):
            continue
        rel = p.relative_to(root).parts
        if any(part in _IGNORED_DIRS or part.startswith(".") for part in rel[:-1]):
            continue
        if p.is_file():
            out.append(p)
    return sorted(out)


def _progress(items: Iterable, total: int, desc: str):
    return tqdm(items, total=total, desc=desc, unit="file", leave=False,
                disable=not sys.stderr.isatty())


def read_info(path: Path, check_readable: bool = False):
    """``soundfile.info`` of a file (header only); with ``check_readable`` also decode the body.

    Raises whatever soundfile raises for a file it cannot open or decode.
    """
    info = sf.info(str(path))
    if check_readable:
        n = 0
        for block in sf.blocks(str(path), blocksize=1 << 16, dtype="float32"):
            n += len(block)
        if n == 0:
            raise RuntimeError("no audio frames decoded")
        if info.frames > 0 and n != info.frames:
            raise RuntimeError(f"decoded {n} frames, header says {info.frames}")
    return info


def read_duration(path: Path, check_readable: bool = False) -> float:
    """Duration in seconds (see :func:`read_info`)."""
    return float(read_info(path, check_readable).duration)


class CorpusAdapter:
    """Base class of all corpus adapters.

    Subclasses set :attr:`name` and implement :meth:`parse`; they may override :meth:`prepare`
    (read side files such as demographics or label files once per scan) and :meth:`find_files`.
    """

    #: corpus name, used as key / speaker prefix and in the ``corpus`` column
    name: str = ""
    #: one-line description of the ``native`` column
    native_doc: str = ""
    #: the terms the corpus is distributed under (a model trained on it inherits them); None for a
    #: user's own corpus, whose terms serkit cannot know
    licence: str | None = None
    #: ``True`` for a user's own corpus whose labels are free strings: the ``native`` label set
    #: keeps them as written (``emotion`` is empty for a label that is not an emotion name);
    #: ``False`` for the built-in corpora, whose labels are canonical emotions
    free_labels: bool = False

    # ---- hooks ---------------------------------------------------------------------------------
    def prepare(self, root: Path) -> list[Problem]:
        """Read corpus side files before parsing; return problems found (default: none)."""
        return []

    def find_files(self, root: Path) -> list[Path]:
        """Audio files of the corpus below ``root``."""
        return find_audio_files(root)

    def parse(self, path: Path, root: Path) -> dict[str, Any]:
        """Map one file to manifest fields.

        Must return at least ``speaker`` (without corpus prefix), ``gender``, ``emotion``
        (canonical; ``None`` only when :attr:`free_labels`) and ``native``; may return ``stem`` (key suffix, default the file stem) and any
        metadata columns. Raise :class:`Unparseable` (or another :class:`FileProblem`) or
        :class:`Excluded`.
        """
        raise NotImplementedError

    # ---- driver --------------------------------------------------------------------------------
    def scan(self, root: str | Path, *, label_set: str = "native",
             label_options: LabelOptions | None = None, check_readable: bool = False,
             check_duplicates: bool | str = True) -> ScanResult:
        """Scan a corpus folder into a manifest.

        Parameters
        ----------
        root : path
            Corpus folder (the original download layout or the shared one).
        label_set : str
            ``native``, ``ekman7`` or ``four`` (see :mod:`serkit.corpora.manifest`).
        label_options : LabelOptions, optional
            What to do with calm / boredom / excited.
        check_readable : bool
            Decode every file fully (slow) instead of reading only the header.
        check_duplicates : bool or str
            Report files with identical audio as ``Problem(kind="duplicate")`` (rows are kept):
            ``True`` = ``"both"`` (byte-identical or same decoded samples), or a mode of
            :func:`serkit.corpora.scan.find_duplicates`; ``False`` skips the check.

        Returns
        -------
        ScanResult
            Manifest (validated) plus problems and excluded counts; never raises for a bad file.
        """
        root = Path(root).expanduser().resolve()
        if not root.exists():
            raise FileNotFoundError(f"{self.name}: corpus root {root} does not exist")
        problems: list[Problem] = list(self.prepare(root))
        excluded: Counter[str] = Counter()
        rows: list[dict[str, Any]] = []
        seen: dict[str, Path] = {}
        files = sorted(self.find_files(root),
                       key=lambda p: (_FORMAT_RANK.get(p.suffix.lower(), 3), str(p)))
        for path in files:
            try:
                fields = self.parse(path, root)
            except FileProblem as err:
                problems.append(Problem(str(path), err.kind, str(err)))
                continue
            except Excluded as ex:
                if ex.report:
                    problems.append(Problem(str(path), "excluded", ex.reason))
                else:
                    excluded[ex.reason] += 1
                continue
            stem = fields.pop("stem", path.stem)
            key = f"{self.name}/{stem}"
            if key in seen:
                problems.append(Problem(str(path), "duplicate_key",
                                        f"{key} already taken by {seen[key]}"))
                continue
            seen[key] = path
            rows.append({"key": key, "path": str(path), "corpus": self.name,
                         **fields, "speaker": f"{self.name}_{fields['speaker']}",
                         "label": fields["emotion"], "duration": np.nan})
        rows.sort(key=lambda r: r["path"])
        signatures: dict[Path, tuple] = {}
        rows = self._add_durations(rows, problems, check_readable, signatures)
        if check_duplicates and rows:
            from .scan import duplicate_problems  # local import: scan imports this module
            mode = "both" if check_duplicates is True else str(check_duplicates)
            problems.extend(duplicate_problems(
                list(signatures), mode=mode, signatures=signatures,
                emotions={r["path"]: r["emotion"] or r["native"] for r in rows}))
        manifest, dropped = assign_labels(_frame(rows), label_set, label_options,
                                          free_labels=self.free_labels)
        excluded.update(dropped)
        return ScanResult(validate(manifest), problems, dict(excluded), corpus=self.name)

    def _add_durations(self, rows: list[dict], problems: list[Problem], check_readable: bool,
                       signatures: dict[Path, tuple]) -> list[dict]:
        kept = []
        desc = f"{self.name}: {'decoding' if check_readable else 'reading headers'}"
        for row in _progress(rows, len(rows), desc):
            if _is_empty_file(row["path"]):
                problems.append(Problem(row["path"], "empty", "file is empty (0 bytes)"))
                continue
            try:
                info = read_info(Path(row["path"]), check_readable)
            except Exception as err:  # soundfile raises LibsndfileError, RuntimeError, ...
                problems.append(Problem(row["path"], "unreadable", f"{type(err).__name__}: {err}"))
                continue
            if info.frames == 0:
                problems.append(Problem(row["path"], "empty", "no audio frames"))
                continue
            row["duration"] = float(info.duration)
            signatures[Path(row["path"])] = (info.frames, info.samplerate, info.channels)
            kept.append(row)
        return kept


def _is_empty_file(path: str) -> bool:
    try:
        return os.path.getsize(path) == 0
    except OSError:  # gone or unreadable: soundfile's own message says which
        return False


_BASE_COLUMNS = ("key", "path", "corpus", "speaker", "gender", "emotion", "native", "label",
                 "duration")


def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for col in _BASE_COLUMNS:
        if col not in df.columns:
            df[col] = pd.Series(dtype=float if col == "duration" else object)
    extra = [c for c in df.columns if c not in _BASE_COLUMNS]
    return df[list(_BASE_COLUMNS) + extra]

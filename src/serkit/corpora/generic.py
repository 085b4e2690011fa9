"""Adapter for a user's own corpus: a CSV file, or one folder per label.

CSV mode (``root`` is a ``.csv`` file): columns ``path, label`` and, strongly recommended,
``speaker`` (optional ``gender`` and ``key``; any other column is kept as metadata). Relative
paths are taken relative to ``base_dir`` (default: the CSV's folder).

Folder mode (``root`` is a folder): ``root/<label>/*.wav`` or ``root/<speaker>/<label>/*.wav``
(the speaker is the folder directly above the label folder).

Speakers: the ``speaker`` column (CSV) or folder level; ``speaker_regex`` (named group
``speaker`` or group 1, searched in the file stem, then in the path) finds them in file names
instead. When no speaker can be found a file gets one speaker named after the corpus, with a
warning: speaker-independent protocols need real speakers.

Labels are free strings (valence classes, stress levels, a user's own taxonomy): ``native`` and,
under the ``native`` label set, ``label`` hold the label as written (whitespace stripped).
``emotion`` holds the canonical emotion when the label is an emotion name
(:func:`serkit.corpora.manifest.canonical_emotion`) and is empty otherwise; the ``ekman7`` and
``four`` label sets map through it and count the labels they cannot map in
``ScanResult.excluded`` (the label named).

Names and keys: the corpus is called ``corpus`` (option) or else after the CSV file's stem / the
folder (slugified). Keys are ``<corpus>/<id>``, unique per file: ``id`` is the CSV's ``key``
column (``key_column``) when given, else the file's path relative to ``base_dir`` without its
extension; files outside ``base_dir`` are named by their path relative to the common parent
folder of all listed files. Two CSV rows naming the same file, or two files given the same key,
are reported as ``duplicate_key``: no row is left out without a :class:`Problem`.
"""
from __future__ import annotations

import os
import re
import warnings
from collections import Counter
from pathlib import Path

import pandas as pd

from .base import CorpusAdapter, FileProblem, Unparseable
from .manifest import (EMOTION_SYNONYMS, LabelOptions, Problem, ScanResult,
                       canonical_emotion)

#: re-exported: the one synonym map lives in :mod:`serkit.corpora.manifest`
SYNONYMS = EMOTION_SYNONYMS

_GENDERS = {"f": "female", "female": "female", "w": "female", "woman": "female",
            "m": "male", "male": "male", "man": "male"}
#: CSV columns that are not copied into the manifest as metadata
_RESERVED = frozenset({"path", "label", "speaker", "gender", "key", "stem", "corpus", "emotion",
                       "native", "duration"})


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "custom"


def relative_keys(paths: list[Path], base: Path) -> dict[Path, str]:
    """Unique key suffix per (absolute, resolved) file.

    The path relative to ``base`` without extension; a file outside ``base`` gets its path
    relative to the common parent folder of all ``paths``. If that still gives one suffix to two
    files (e.g. ``a/x.wav`` and ``a/x.flac``, or an inside and an outside file that coincide),
    every file is named relative to the common parent, keeping the extension where needed.
    """
    if not paths:
        return {}
    common = Path(os.path.commonpath([str(p.parent) for p in paths]))

    def rel(p: Path) -> Path:
        try:
            return p.relative_to(base)
        except ValueError:
            return p.relative_to(common)

    keys = {p: rel(p).with_suffix("").as_posix() for p in paths}
    if len(set(keys.values())) == len(keys):
        return keys
    keys = {p: p.relative_to(common).with_suffix("").as_posix() for p in paths}
    counts = Counter(keys.values())
    return {p: (k if counts[k] == 1 else p.relative_to(common).as_posix()) for p, k in keys.items()}


def _check_name(name: str | None) -> str | None:
    if name is None:
        return None
    name = str(name).strip()
    if not name or any(ch in name for ch in "/\\"):
        raise ValueError(f"corpus name {name!r} must be non-empty and contain no '/' or '\\'")
    return name


class GenericAdapter(CorpusAdapter):
    """Adapter for a CSV-described or folder-per-label corpus.

    Parameters
    ----------
    corpus : str, optional
        The corpus's own name (``corpus`` column, key and speaker prefix); default the CSV file's
        stem (CSV mode) or the folder's name (folder mode), slugified.
    speaker_regex : str, optional
        Regular expression that finds the speaker in the file stem (then in the path) when no
        ``speaker`` column / speaker folder gives one.
    key_column : str, optional
        CSV column holding a unique id per file (default: ``key`` when the CSV has it).
    base_dir : path, optional
        Folder that relative CSV paths (and keys) are relative to; default the CSV's folder.
    """

    native_doc = "the label as written in the CSV or folder name"
    free_labels = True

    def __init__(self, corpus: str | None = None, speaker_regex: str | None = None,
                 key_column: str | None = None, base_dir: str | Path | None = None):
        self._name = _check_name(corpus)
        self.speaker_regex = re.compile(speaker_regex) if speaker_regex else None
        self.key_column = key_column.strip().lower() if key_column else None
        self.base_dir = Path(base_dir).expanduser() if base_dir else None
        self._rows: dict[Path, dict] = {}
        self._keys: dict[Path, str] = {}
        self._base = Path(".")
        self._fallback_speaker = 0

    # -- mode handling -------------------------------------------------------------------------
    def scan(self, root: str | Path, *, label_set: str = "native",
             label_options: LabelOptions | None = None, check_readable: bool = False,
             check_duplicates: bool | str = True) -> ScanResult:
        root = Path(root).expanduser().resolve()
        self._csv = root.suffix.lower() == ".csv"
        if not self._csv and (self.key_column or self.base_dir):
            raise ValueError(f"{root}: key_column and base_dir apply to a CSV corpus only "
                             "(this root is a folder)")
        if self._csv:
            self._base = self.base_dir.resolve() if self.base_dir else root.parent
        else:
            self._base = root
        self.name = self._name or _slug(root.stem if self._csv else root.name)
        self._fallback_speaker = 0
        result = super().scan(root, label_set=label_set, label_options=label_options,
                              check_readable=check_readable, check_duplicates=check_duplicates)
        if self._fallback_speaker:
            what = "a speaker column" if self._csv else "a speaker folder level"
            msg = (f"{self._fallback_speaker} files have no speaker; all were given speaker "
                   f"{self.name}_{self.name}. Speaker-independent protocols need speakers: add "
                   f"{what} or set speaker_regex (config data.corpora[].speaker_regex, "
                   "`serkit data scan --speaker-regex`).")
            warnings.warn(msg, stacklevel=2)
            result.problems.append(Problem(str(root), "warning", msg))
        return result

    def prepare(self, root: Path) -> list[Problem]:
        self._rows, self._keys = {}, {}
        return self._read_csv(root) if self._csv else []

    def _read_csv(self, csv: Path) -> list[Problem]:
        table = pd.read_csv(csv, dtype=str, keep_default_na=False)
        table.columns = [str(c).strip().lower() for c in table.columns]
        for col in ("path", "label"):
            if col not in table.columns:
                raise ValueError(f"{csv}: CSV needs columns path,label[,speaker,gender,key]; "
                                 f"has {list(table.columns)}")
        key_col = self.key_column or ("key" if "key" in table.columns else None)
        if key_col is not None and key_col not in table.columns:
            raise ValueError(f"{csv}: key_column {key_col!r} is not a column of the CSV "
                             f"(columns: {list(table.columns)})")
        problems: list[Problem] = []
        first_line: dict[Path, int] = {}
        for i, rec in enumerate(table.to_dict("records")):
            line = i + 2  # line 1 is the header
            raw = str(rec["path"]).strip()
            if not raw:
                problems.append(Problem(f"{csv}:{line}", "no_path", f"CSV line {line} has no path"))
                continue
            p = Path(raw).expanduser()
            # absolute and normalised, symlinks kept: keys follow the paths as listed
            p = Path(os.path.abspath(p if p.is_absolute() else self._base / p))
            if p in first_line:
                prev = self._rows[p]
                note = ("" if prev["label"].strip() == str(rec["label"]).strip() else
                        f" (labels {prev['label'].strip()!r} / {str(rec['label']).strip()!r}: "
                        "conflict)")
                problems.append(Problem(str(p), "duplicate_key", f"CSV line {line} names the same "
                                        f"file as line {first_line[p]}{note}; line {line} left out"))
                continue
            first_line[p] = line
            self._rows[p] = {**rec, "_line": line}
        self._keys = relative_keys(list(self._rows), self._base)
        if key_col is not None:
            for p, rec in self._rows.items():
                given = str(rec.get(key_col, "")).strip()
                if given:
                    self._keys[p] = given
        return problems

    def find_files(self, root: Path) -> list[Path]:
        return list(self._rows) if self._csv else super().find_files(root)

    # -- parsing -------------------------------------------------------------------------------
    def parse(self, path: Path, root: Path) -> dict:
        return self._parse_csv(path) if self._csv else self._parse_folder(path, root)

    def _speaker_from_name(self, path: Path) -> str | None:
        if self.speaker_regex is None:
            return None
        m = self.speaker_regex.search(path.stem) or self.speaker_regex.search(path.as_posix())
        if not m:
            return None
        return m.groupdict().get("speaker") or (m.group(1) if m.groups() else m.group(0))

    def _fallback(self) -> str:
        self._fallback_speaker += 1
        return self.name

    def _parse_csv(self, path: Path) -> dict:
        rec = dict(self._rows[path])
        line = rec.pop("_line")
        if not path.is_file():
            raise FileProblem(f"listed in the CSV (line {line}) but not found", kind="missing")
        label = str(rec["label"]).strip()
        if not label:
            raise FileProblem(f"CSV line {line} has no label", kind="no_label")
        speaker = (str(rec.get("speaker", "")).strip() or self._speaker_from_name(path)
                   or self._fallback())
        gender = _GENDERS.get(str(rec.get("gender", "")).strip().lower(), "unknown")
        extra = {k: v for k, v in rec.items() if k not in _RESERVED and k != self.key_column}
        return {"stem": self._keys[path], "speaker": speaker, "gender": gender,
                "emotion": canonical_emotion(label), "native": label, **extra}

    def _parse_folder(self, path: Path, root: Path) -> dict:
        rel = path.relative_to(root)
        if len(rel.parts) < 2:
            raise Unparseable("not inside a label folder (expected root/<label>/file)")
        label = path.parent.name.strip()
        speaker = self._speaker_from_name(rel)
        if speaker is None and len(rel.parts) >= 3:
            speaker = rel.parts[-3]
        if speaker is None:
            speaker = self._fallback()
        return {"stem": rel.with_suffix("").as_posix(), "speaker": speaker, "gender": "unknown",
                "emotion": canonical_emotion(label), "native": label}


__all__ = ["GenericAdapter", "SYNONYMS", "canonical_emotion", "relative_keys"]

"""Adapter for a user's own corpus: a CSV file, or one folder per label.

CSV mode (``root`` is a ``.csv`` file): columns ``path, label`` and, strongly recommended,
``speaker`` (optional ``gender``; any other column is kept as metadata). Relative paths are taken
relative to the CSV's folder.

Folder mode (``root`` is a folder): ``root/<label>/*.wav`` or ``root/<speaker>/<label>/*.wav``
(the speaker is the folder directly above the label folder). ``speaker_regex`` (matched against
the file stem; named group ``speaker`` or group 1) overrides that. When no speaker can be found all
files get one speaker named after the root, with a warning: speaker-independent protocols need
real speakers.

Labels go through :data:`SYNONYMS` (serkit.corpora.manifest) to the canonical vocabulary; unknown labels are reported as
``Problem(kind="unknown_label")`` and left out. ``native`` holds the label as written. Keys are
``<name>/<path relative to the root, without extension>`` because stems often repeat across
label folders.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import pandas as pd

from .base import CorpusAdapter, FileProblem, Unparseable
from .manifest import EMOTION_SYNONYMS, LabelOptions, Problem, ScanResult, canonical_emotion

#: re-exported: the one synonym map lives in :mod:`serkit.corpora.manifest`
SYNONYMS = EMOTION_SYNONYMS
_GENDERS = {"f": "female", "female": "female", "w": "female", "woman": "female",
            "m": "male", "male": "male", "man": "male"}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "custom"


class GenericAdapter(CorpusAdapter):
    """Adapter for a CSV-described or folder-per-label corpus.

    Parameters
    ----------
    corpus : str, optional
        Corpus name (key and speaker prefix, ``corpus`` column); default derived from the root
        folder name (the CSV's folder in CSV mode).
    speaker_regex : str, optional
        Regular expression applied to file stems in folder mode to find the speaker.
    """

    native_doc = "the label as written in the CSV or folder name"

    def __init__(self, corpus: str | None = None, speaker_regex: str | None = None):
        self._name = corpus
        self.speaker_regex = re.compile(speaker_regex) if speaker_regex else None
        self._rows: dict[Path, dict] = {}
        self._base = Path(".")
        self._fallback_speaker = 0

    # -- mode handling -------------------------------------------------------------------------
    def scan(self, root: str | Path, *, label_set: str = "native",
             label_options: LabelOptions | None = None, check_readable: bool = False,
             check_duplicates: bool | str = True) -> ScanResult:
        root = Path(root).expanduser().resolve()
        self._csv = root.suffix.lower() == ".csv"
        self._base = root.parent if self._csv else root
        self.name = self._name or _slug(self._base.name)
        self._fallback_speaker = 0
        result = super().scan(root, label_set=label_set, label_options=label_options,
                              check_readable=check_readable, check_duplicates=check_duplicates)
        if self._fallback_speaker:
            msg = (f"{self._fallback_speaker} files have no speaker; all were given speaker "
                   f"{self.name}_{_slug(self._base.name)}. Speaker-independent protocols need "
                   "speakers: add a speaker column / folder level or pass speaker_regex.")
            warnings.warn(msg, stacklevel=2)
            result.problems.append(Problem(str(root), "warning", msg))
        return result

    def prepare(self, root: Path) -> list[Problem]:
        self._rows = {}
        if not self._csv:
            return []
        table = pd.read_csv(root, dtype=str, keep_default_na=False)
        table.columns = [c.strip().lower() for c in table.columns]
        for col in ("path", "label"):
            if col not in table.columns:
                raise ValueError(f"{root}: CSV needs columns path,label[,speaker,gender]; "
                                 f"has {list(table.columns)}")
        for rec in table.to_dict("records"):
            p = Path(rec["path"]).expanduser()
            self._rows[(p if p.is_absolute() else self._base / p).resolve()] = rec
        return []

    def find_files(self, root: Path) -> list[Path]:
        return list(self._rows) if self._csv else super().find_files(root)

    # -- parsing -------------------------------------------------------------------------------
    def parse(self, path: Path, root: Path) -> dict:
        return self._parse_csv(path) if self._csv else self._parse_folder(path, root)

    def _stem(self, path: Path) -> str:
        try:
            return path.relative_to(self._base).with_suffix("").as_posix()
        except ValueError:  # CSV row pointing outside the CSV's folder
            return path.stem

    def _emotion(self, label: str) -> str:
        emotion = canonical_emotion(label)
        if emotion is None:
            raise FileProblem(f"label {label!r} is not a known emotion name", kind="unknown_label")
        return emotion

    def _parse_csv(self, path: Path) -> dict:
        rec = dict(self._rows[path])
        if not path.is_file():
            raise FileProblem("listed in the CSV but not found", kind="missing")
        label = rec.pop("label")
        speaker = str(rec.pop("speaker", "")).strip()
        if not speaker:
            self._fallback_speaker += 1
            speaker = _slug(self._base.name)
        gender = _GENDERS.get(str(rec.pop("gender", "")).strip().lower(), "unknown")
        rec.pop("path")
        extra = {k: v for k, v in rec.items() if k not in ("key", "corpus", "emotion",
                                                          "native", "duration")}
        return {"stem": self._stem(path), "speaker": speaker, "gender": gender,
                "emotion": self._emotion(label), "native": label, **extra}

    def _parse_folder(self, path: Path, root: Path) -> dict:
        rel = path.relative_to(root)
        if len(rel.parts) < 2:
            raise Unparseable("not inside a label folder (expected root/<label>/file)")
        label = path.parent.name
        speaker = None
        if self.speaker_regex is not None:
            m = self.speaker_regex.search(path.stem)
            if m:
                speaker = m.groupdict().get("speaker") or (m.group(1) if m.groups() else m.group(0))
        if speaker is None and len(rel.parts) >= 3:
            speaker = rel.parts[-3]
        if speaker is None:
            self._fallback_speaker += 1
            speaker = _slug(root.name)
        return {"stem": self._stem(path), "speaker": speaker, "gender": "unknown",
                "emotion": self._emotion(label), "native": label}

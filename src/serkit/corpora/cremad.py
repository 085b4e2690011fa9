"""CREMA-D (Cao et al. 2014): ``AAAA_SSS_EEE_LL`` file names, 91 actors, 6 emotions.

Demographics (``gender``, ``age``, ``race``, ``ethnicity``) come from ``VideoDemographics.csv``,
looked up in the corpus root, its parents (up to two levels, for a root pointing at
``AudioWAV/``) and then anywhere below the root. Without it ``gender`` is ``"unknown"``.

``native`` holds the CREMA-D emotion code (``ANG DIS FEA HAP NEU SAD``); ``sentence`` the
sentence code (``IEO`` ...), ``text`` its words; ``intensity`` is low / medium / high /
unspecified (``LO MD HI XX``).
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from .base import CorpusAdapter, Unparseable
from .manifest import Problem

_PATTERN = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{1,2})$")

EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral",
            "SAD": "sad"}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified", "X": "unspecified"}
SENTENCES = {
    "IEO": "It's eleven o'clock", "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting", "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full", "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock", "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket", "ITS": "I think I've seen this before",
    "TSI": "The surface is slick", "WSI": "We'll stop in a couple of minutes",
}
DEMOGRAPHICS_FILE = "VideoDemographics.csv"


def find_demographics(root: Path) -> Path | None:
    """Locate ``VideoDemographics.csv`` for a CREMA-D root (see module docstring)."""
    for folder in [root, *list(root.parents)[:2]]:
        if (folder / DEMOGRAPHICS_FILE).is_file():
            return folder / DEMOGRAPHICS_FILE
    return next(iter(sorted(root.rglob(DEMOGRAPHICS_FILE))), None)


class CremadAdapter(CorpusAdapter):
    """Adapter for CREMA-D (``AudioWAV/*.wav`` or the shared ``audio/*.opus``).

    Parameters
    ----------
    demographics : path, optional
        Explicit ``VideoDemographics.csv``; found automatically when omitted.
    """

    name = "cremad"
    licence = "Open Database License / Database Contents License; Cao et al. (2014), IEEE Trans. Affective Computing 5(4)"
    native_doc = "CREMA-D emotion code (ANG, DIS, FEA, HAP, NEU, SAD)"

    def __init__(self, demographics: str | Path | None = None):
        self.demographics = Path(demographics) if demographics else None
        self._actors: dict[str, dict] = {}

    def prepare(self, root: Path) -> list[Problem]:
        self._actors = {}
        csv = self.demographics or find_demographics(root)
        if csv is None:
            return [Problem(str(root), "warning",
                            f"{DEMOGRAPHICS_FILE} not found: gender unknown for all actors")]
        try:
            table = pd.read_csv(csv)
            for rec in table.to_dict("records"):
                sex = str(rec.get("Sex", "")).strip().lower()
                self._actors[str(int(rec["ActorID"]))] = {
                    "gender": sex if sex in ("female", "male") else "unknown",
                    "age": int(rec["Age"]) if pd.notna(rec.get("Age")) else None,
                    "race": rec.get("Race"),
                    "ethnicity": rec.get("Ethnicity"),
                }
        except Exception as err:  # malformed side file: warn, keep scanning
            return [Problem(str(csv), "warning", f"cannot read demographics: {err}")]
        return []

    def parse(self, path: Path, root: Path) -> dict:
        m = _PATTERN.match(path.stem)
        if not m:
            raise Unparseable("expected AAAA_SSS_EEE_LL")
        actor, sentence, emo, level = m.groups()
        if emo not in EMOTIONS or level not in LEVELS:
            raise Unparseable(f"unknown emotion {emo} or level {level}")
        demo = self._actors.get(actor, {"gender": "unknown", "age": None, "race": None,
                                        "ethnicity": None})
        return {
            "speaker": actor,
            "emotion": EMOTIONS[emo],
            "native": emo,
            "intensity": LEVELS[level],
            "sentence": sentence,
            "text": SENTENCES.get(sentence),
            **demo,
        }

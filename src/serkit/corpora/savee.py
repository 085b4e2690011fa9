"""SAVEE (Haq & Jackson 2009): ``<speaker>_<emotion><nn>`` file names, four male speakers.

Two layouts are read: flat ``DC_a01.wav`` (the shared copy, Kaggle copies) and the original
``AudioData/DC/a01.wav`` where the speaker is the parent folder. Keys are always
``savee/DC_a01``.

``native`` holds the SAVEE emotion code (``a d f h n sa su``); ``sentence`` is code + number
(``a01``), the sentence list entry the speakers read.
"""
from __future__ import annotations

import re
from pathlib import Path

from .base import CorpusAdapter, Unparseable

SPEAKERS = ("DC", "JE", "JK", "KL")
EMOTIONS = {"a": "angry", "d": "disgust", "f": "fear", "h": "happy", "n": "neutral",
            "sa": "sad", "su": "surprise"}
_FLAT = re.compile(r"^([A-Za-z]{2})_(sa|su|a|d|f|h|n)(\d\d)$")
_NESTED = re.compile(r"^(sa|su|a|d|f|h|n)(\d\d)$")


class SaveeAdapter(CorpusAdapter):
    """Adapter for SAVEE (flat ``DC_a01`` names or ``AudioData/DC/a01``)."""

    name = "savee"
    licence = "free for research use; Haq & Jackson (2009/2010), University of Surrey"
    native_doc = "SAVEE emotion code (a, d, f, h, n, sa, su)"

    def parse(self, path: Path, root: Path) -> dict:
        m = _FLAT.match(path.stem)
        if m:
            speaker, code, num = m.groups()
        elif (m := _NESTED.match(path.stem)) is not None:
            speaker = path.parent.name
            code, num = m.groups()
        else:
            raise Unparseable("expected <speaker>_<emotion><nn> or <speaker>/<emotion><nn>")
        speaker = speaker.upper()
        if speaker not in SPEAKERS:
            raise Unparseable(f"unknown speaker {speaker!r}")
        return {
            "stem": f"{speaker}_{code}{num}",
            "speaker": speaker,
            "gender": "male",
            "emotion": EMOTIONS[code],
            "native": code,
            "sentence": f"{code}{num}",
        }

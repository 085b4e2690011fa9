"""EmoDB / Berlin Database of Emotional Speech (Burkhardt et al. 2005): ``SSTTTEV`` names.

Ten speakers (male 03 10 11 12 15), ten texts (``a01``..``b10``), seven emotions coded by German
initial letter, version letter for repeated takes.

``native`` holds the German emotion letter (``W L E A F T N``); ``sentence`` the text code;
``version`` the take letter; ``age`` is from the corpus documentation.
"""
from __future__ import annotations

import re
from pathlib import Path

from .base import CorpusAdapter, Unparseable

_PATTERN = re.compile(r"^(\d\d)([ab]\d\d)([A-Z])([a-z])$")

EMOTIONS = {"W": "angry",      # Wut / Ärger
            "L": "boredom",    # Langeweile
            "E": "disgust",    # Ekel
            "A": "fear",       # Angst
            "F": "happy",      # Freude
            "T": "sad",        # Trauer
            "N": "neutral"}
#: speaker -> (gender, age in years) from the EmoDB documentation
SPEAKERS = {"03": ("male", 31), "08": ("female", 34), "09": ("female", 21), "10": ("male", 32),
            "11": ("male", 26), "12": ("male", 30), "13": ("female", 32), "14": ("female", 35),
            "15": ("male", 25), "16": ("female", 31)}


class EmodbAdapter(CorpusAdapter):
    """Adapter for EmoDB (``wav/03a01Fa.wav`` ...)."""

    name = "emodb"
    licence = "free for research use; Burkhardt et al. (2005), Interspeech"
    native_doc = "EmoDB German emotion letter (W, L, E, A, F, T, N)"

    def parse(self, path: Path, root: Path) -> dict:
        m = _PATTERN.match(path.stem)
        if not m:
            raise Unparseable("expected SSTTTEV, e.g. 03a01Fa")
        speaker, text, emo, version = m.groups()
        if emo not in EMOTIONS:
            raise Unparseable(f"unknown emotion letter {emo!r}")
        if speaker not in SPEAKERS:
            raise Unparseable(f"unknown speaker {speaker!r}")
        gender, age = SPEAKERS[speaker]
        return {"speaker": speaker, "gender": gender, "age": age, "emotion": EMOTIONS[emo],
                "native": emo, "sentence": text, "version": version}

"""TESS (Dupuis & Pichora-Fuller 2010): ``<speaker>_<word>_<emotion>`` file names.

Two female speakers, OAF (64 years) and YAF (26 years); the one published file named
``OA_bite_neutral`` belongs to OAF. The name is parsed from the file stem, never from the folder
(original folders such as ``YAF_pleasant_surprised`` are inconsistent).

``native`` holds the TESS emotion as written in the file name (``angry disgust fear happy neutral
ps sad``; ``ps`` = pleasant surprise -> canonical ``surprise``); ``word`` the target word.
"""
from __future__ import annotations

from pathlib import Path

from .base import CorpusAdapter, Unparseable

SPEAKERS = {"OAF": 64, "YAF": 26}
_SPEAKER_ALIASES = {"OA": "OAF", "YA": "YAF"}
EMOTIONS = {
    "angry": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy",
    "neutral": "neutral", "ps": "surprise", "sad": "sad",
    # spellings seen in redistributed copies
    "pleasant_surprise": "surprise", "pleasant_surprised": "surprise",
}


class TessAdapter(CorpusAdapter):
    """Adapter for TESS (``OAF_angry/OAF_back_angry.wav`` ...)."""

    name = "tess"
    licence = "CC BY-NC-ND 4.0 (non-commercial, no derivatives); Dupuis & Pichora-Fuller (2010), University of Toronto"
    native_doc = "TESS emotion from the file name (angry, disgust, fear, happy, neutral, ps, sad)"

    def parse(self, path: Path, root: Path) -> dict:
        parts = path.stem.split("_")
        if len(parts) < 3:
            raise Unparseable("expected <speaker>_<word>_<emotion>")
        speaker = _SPEAKER_ALIASES.get(parts[0].upper(), parts[0].upper())
        if speaker not in SPEAKERS:
            raise Unparseable(f"unknown speaker {parts[0]!r}")
        for n_emo in (1, 2):  # "ps" or "pleasant_surprise(d)"
            native = "_".join(parts[-n_emo:]).lower()
            if native in EMOTIONS and len(parts) - n_emo >= 2:
                word = "_".join(parts[1:-n_emo])
                break
        else:
            raise Unparseable(f"unknown emotion {parts[-1]!r}")
        return {
            "speaker": speaker,
            "gender": "female",
            "age": SPEAKERS[speaker],
            "emotion": EMOTIONS[native],
            "native": native,
            "word": word.lower(),
        }

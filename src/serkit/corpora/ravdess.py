"""RAVDESS speech (Livingstone & Russo 2018): ``MM-VC-EE-II-SS-RR-AA`` file names.

Only audio-only speech (modality 03, vocal channel 01) goes into the manifest; song or video files
met in an original download are reported as ``Problem(kind="excluded")``. The corpus has 1440
speech files from 24 actors (odd ids male). Known quirk: ``03-01-03-01-02-01-07`` and
``03-01-03-01-02-02-07`` are byte-identical; the scan reports them as duplicates.

``native`` holds RAVDESS's own emotion name (``neutral calm happy sad angry fearful disgust
surprised``); ``emotion`` is canonical (``fearful`` -> ``fear``, ``surprised`` -> ``surprise``).
"""
from __future__ import annotations

import re
from pathlib import Path

from .base import CorpusAdapter, Excluded, Unparseable

_PATTERN = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")

#: code -> (native name, canonical emotion)
EMOTIONS = {
    "01": ("neutral", "neutral"), "02": ("calm", "calm"), "03": ("happy", "happy"),
    "04": ("sad", "sad"), "05": ("angry", "angry"), "06": ("fearful", "fear"),
    "07": ("disgust", "disgust"), "08": ("surprised", "surprise"),
}
INTENSITY = {"01": "normal", "02": "strong"}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
_MODALITY = {"01": "audio-video", "02": "video-only", "03": "audio-only"}
_CHANNEL = {"01": "speech", "02": "song"}


class RavdessAdapter(CorpusAdapter):
    """Adapter for RAVDESS speech (``Actor_NN/*.wav`` or the shared FLAC copy)."""

    name = "ravdess"
    licence = "CC BY-NC-SA 4.0 (non-commercial, share-alike); Livingstone & Russo (2018), PLoS ONE 13(5): e0196391"
    native_doc = "RAVDESS emotion name (neutral, calm, happy, sad, angry, fearful, disgust, surprised)"

    def parse(self, path: Path, root: Path) -> dict:
        m = _PATTERN.match(path.stem)
        if not m:
            raise Unparseable("expected MM-VC-EE-II-SS-RR-AA")
        modality, channel, emo, inten, stmt, rep, actor = m.groups()
        if modality not in _MODALITY or channel not in _CHANNEL:
            raise Unparseable(f"unknown modality {modality} or vocal channel {channel}")
        if (modality, channel) != ("03", "01"):
            raise Excluded(f"not audio-only speech ({_MODALITY[modality]}, {_CHANNEL[channel]})")
        if emo not in EMOTIONS or inten not in INTENSITY or stmt not in STATEMENTS:
            raise Unparseable(f"unknown emotion {emo}, intensity {inten} or statement {stmt}")
        if not 1 <= int(actor) <= 24 or rep not in ("01", "02"):
            raise Unparseable(f"unknown actor {actor} or repetition {rep}")
        native, emotion = EMOTIONS[emo]
        return {
            "speaker": actor,
            "gender": "male" if int(actor) % 2 else "female",
            "emotion": emotion,
            "native": native,
            "intensity": INTENSITY[inten],
            "statement": int(stmt),
            "text": STATEMENTS[stmt],
            "repetition": int(rep),
        }

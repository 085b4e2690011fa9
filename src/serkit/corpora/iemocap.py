"""IEMOCAP (Busso et al. 2008), original release layout.

Utterance audio: ``Session1..5/sentences/wav/<dialog>/<utterance>.wav``; labels:
``Session*/dialog/EmoEvaluation/<dialog>.txt`` with lines such as
``[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]``.
The root may be ``IEMOCAP_full_release`` or any folder above it.

The speaker is the session's actor of the utterance's gender: ``Ses01F_impro01_M003`` is spoken by
``iemocap_Ses01M``. Utterances labelled ``xxx`` (no annotator agreement) are left out and counted
in :attr:`ScanResult.excluded`; wavs without any label line are ``Problem(kind="no_label")``.

``native`` holds the IEMOCAP code (``ang hap exc sad neu fru sur fea dis oth``); extra columns
``session``, ``dialog``, ``improvised``, ``start``, ``end``, ``valence``, ``activation``,
``dominance``.
"""
from __future__ import annotations

import re
from pathlib import Path

from .base import CorpusAdapter, Excluded, FileProblem, Unparseable
from .manifest import Problem

EMOTIONS = {"ang": "angry", "hap": "happy", "exc": "excited", "sad": "sad", "neu": "neutral",
            "fru": "frustrated", "sur": "surprise", "fea": "fear", "dis": "disgust",
            "oth": "other"}
NO_AGREEMENT = "xxx"
_LINE = re.compile(r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(Ses\S+)\s+(\w+)\s+\[([^\]]*)\]")
_UTT = re.compile(r"^Ses(\d\d)([FM])_(\S+)_([FM])(\d+)$")


def read_evaluation(path: Path) -> dict[str, dict]:
    """Parse one ``EmoEvaluation/<dialog>.txt`` into ``{utterance: fields}``."""
    out: dict[str, dict] = {}
    for line in path.read_text(errors="replace").splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue
        start, end, utt, code, vad = m.groups()
        dims = [float(x) for x in re.findall(r"[\d.]+", vad)][:3]
        dims += [float("nan")] * (3 - len(dims))
        out[utt] = {"start": float(start), "end": float(end), "code": code.lower(),
                    "valence": dims[0], "activation": dims[1], "dominance": dims[2]}
    return out


class IemocapAdapter(CorpusAdapter):
    """Adapter for the IEMOCAP original release (utterance-level wavs)."""

    name = "iemocap"
    licence = "licence agreement with USC SAIL (research use); Busso et al. (2008), Language Resources and Evaluation"
    native_doc = "IEMOCAP majority label code (ang, hap, exc, sad, neu, fru, sur, fea, dis, oth)"

    def __init__(self) -> None:
        self._labels: dict[str, dict] = {}

    def prepare(self, root: Path) -> list[Problem]:
        self._labels = {}
        files = sorted(p for p in root.rglob("*.txt")
                       if p.parent.name == "EmoEvaluation" and not p.name.startswith("."))
        for f in files:
            self._labels.update(read_evaluation(f))
        if not files:
            return [Problem(str(root), "warning", "no EmoEvaluation/*.txt label files found")]
        return []

    def find_files(self, root: Path) -> list[Path]:
        # dialog-level wavs (Session*/dialog/wav) are not utterances
        return [p for p in super().find_files(root)
                if p.parent.parent.name == "wav" and p.parent.parent.parent.name == "sentences"]

    def parse(self, path: Path, root: Path) -> dict:
        m = _UTT.match(path.stem)
        if not m:
            raise Unparseable("expected SesNN[FM]_<dialog>_[FM]NNN")
        session, _, rest, spk_gender, _ = m.groups()
        label = self._labels.get(path.stem)
        if label is None:
            raise FileProblem("no line in any EmoEvaluation/*.txt", kind="no_label")
        code = label["code"]
        if code == NO_AGREEMENT:
            raise Excluded("no agreement (xxx)", report=False)
        if code not in EMOTIONS:
            raise Unparseable(f"unknown IEMOCAP label {code!r}")
        return {
            "speaker": f"Ses{session}{spk_gender}",
            "gender": "female" if spk_gender == "F" else "male",
            "emotion": EMOTIONS[code],
            "native": code,
            "session": int(session),
            "dialog": path.stem.rsplit("_", 1)[0],
            "improvised": rest.startswith("impro"),
            "start": label["start"],
            "end": label["end"],
            "valence": label["valence"],
            "activation": label["activation"],
            "dominance": label["dominance"],
        }

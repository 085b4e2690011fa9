"""One colour per emotion, the same in every figure of every run.

The canonical emotions of the manifest vocabulary have fixed colours chosen to be
readable on white and distinguishable from each other. Labels outside that
vocabulary (native labels of a new corpus, merged labels) get a colour from a
fallback palette chosen by a stable hash of the name, so a label keeps its colour
across runs; within one figure, collisions are resolved by probing the next free
palette entry.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

from serkit.corpora.manifest import EMOTION_COLORS, EMOTION_SYNONYMS, canonical_emotion

__all__ = ["ALIASES", "EMOTION_COLORS", "FALLBACK_PALETTE", "canonical_emotion", "color_for",
           "colors_for"]

#: Fixed colours of the canonical emotions and the one synonym map: both live in
#: :mod:`serkit.corpora.manifest` (re-exported here; pages and subtitles use them without
#: importing reporting).
ALIASES = EMOTION_SYNONYMS

#: Colours for labels outside the canonical vocabulary, chosen away from the canonical
#: ones (no greys, reds, oranges or browns that could read as neutral / angry / surprise).
FALLBACK_PALETTE: tuple[str, ...] = (
    "#393b79",  # navy
    "#31a354",  # green
    "#fb8072",  # salmon
    "#1b9e77",  # teal
    "#9c9ede",  # lavender
    "#a6d854",  # lime
    "#4d004b",  # aubergine
    "#80b1d3",  # steel blue
    "#bc80bd",  # orchid
    "#e7298a",  # magenta
    "#bdb76b",  # khaki
    "#8dd3c7",  # aqua
)


def _colour_emotion(label: str) -> str | None:
    """Canonical emotion that gives a label its colour; a merged label (``"happy+excited"``)
    takes the colour of its first part."""
    canon = canonical_emotion(label)
    if canon is None:
        for sep in ("+", "/", "|"):
            if sep in str(label):
                return _colour_emotion(str(label).split(sep)[0])
    return canon


def _fallback_index(label: str) -> int:
    return zlib.crc32(str(label).strip().lower().encode("utf-8")) % len(FALLBACK_PALETTE)


def color_for(label: str) -> str:
    """Colour of one label: fixed for canonical emotions, hashed otherwise."""
    canon = _colour_emotion(label)
    if canon is not None:
        return EMOTION_COLORS[canon]
    return FALLBACK_PALETTE[_fallback_index(label)]


def colors_for(labels: Iterable[str]) -> dict[str, str]:
    """Colours for all labels of one figure, distinct where at all possible."""
    labels = list(dict.fromkeys(str(lab) for lab in labels))
    out: dict[str, str] = {}
    used: set[str] = set()
    # canonical emotions first: their colours are fixed
    for lab in labels:
        canon = _colour_emotion(lab)
        if canon is not None and EMOTION_COLORS[canon] not in used:
            out[lab] = EMOTION_COLORS[canon]
            used.add(out[lab])
    for lab in labels:
        if lab in out:
            continue
        start = _fallback_index(lab)
        for step in range(len(FALLBACK_PALETTE)):
            cand = FALLBACK_PALETTE[(start + step) % len(FALLBACK_PALETTE)]
            if cand not in used:
                break
        else:  # more labels than palette entries: accept a repeat
            cand = FALLBACK_PALETTE[start]
        out[lab] = cand
        used.add(cand)
    return out

"""The one manifest schema every corpus adapter produces, and the label maps.

A manifest is a :class:`pandas.DataFrame` with one row per utterance. Mandatory columns
(:data:`REQUIRED_COLUMNS`):

``key``       unique id, ``"<corpus>/<file stem>"``
``path``      absolute path of the audio file
``corpus``    corpus name (``ravdess``, ``cremad``, ...)
``speaker``   speaker id, prefixed by the corpus (``ravdess_01``) so merged manifests never collide
``gender``    ``"female"``, ``"male"`` or ``"unknown"``
``emotion``   the corpus's own emotion name, mapped to the canonical vocabulary (:data:`CANONICAL`);
              empty (``None``) for a user corpus label that is not an emotion name
              (``positive``, ``high stress``...)
``label``     the training target after applying a label set (``native``, ``ekman7``, ``four``)
``duration``  seconds (from the file header; ``NaN`` if the header could not be read)

``native`` holds the label as the corpus writes it. For the built-in corpora the ``native`` label
set uses ``emotion`` (their labels are canonical emotions); for a user's own corpus (csv / folder
adapters) it keeps ``native`` as written, whatever the labels are, and ``ekman7`` / ``four`` map
them through :func:`canonical_emotion` only when asked.

This module also holds serkit's one emotion vocabulary: :data:`EMOTION_SPELLINGS` /
:data:`EMOTION_SYNONYMS` and :func:`canonical_emotion` (corpora, checkpoint label maps and
reports all use it), and :data:`EMOTION_COLORS`.

Corpus-specific metadata (``intensity``, ``statement``, ``sentence``, ``repetition``, ``age``...)
are extra columns; missing values are ``None``/``NaN``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable

import pandas as pd

REQUIRED_COLUMNS: tuple[str, ...] = (
    "key", "path", "corpus", "speaker", "gender", "emotion", "label", "duration",
)

#: canonical emotion vocabulary shared by all corpora
CANONICAL: tuple[str, ...] = (
    "angry", "calm", "disgust", "fear", "happy", "neutral", "sad", "surprise",
    "boredom", "excited", "frustrated", "other",
)

EKMAN7: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
FOUR: tuple[str, ...] = ("angry", "happy", "neutral", "sad")

#: canonical emotion -> the spellings corpora, label files and checkpoints use for it (the ONE
#: synonym table of serkit; :data:`EMOTION_SYNONYMS` and :func:`canonical_emotion` derive from it)
EMOTION_SPELLINGS: dict[str, tuple[str, ...]] = {
    "angry": ("angry", "anger", "ang", "ans", "mad", "annoyed"),
    "calm": ("calm", "calmness", "cal"),
    "disgust": ("disgust", "disgusted", "dis", "disgusting"),
    "fear": ("fear", "fearful", "fea", "afraid", "scared", "fearfull"),
    "happy": ("happy", "happiness", "hap", "joy", "joyful", "glad"),
    "neutral": ("neutral", "neu", "neutrality"),
    "sad": ("sad", "sadness", "sa"),
    "surprise": ("surprise", "surprised", "sur", "su", "surprize", "ps", "pleasant surprise",
                 "pleasant surprised"),
    "boredom": ("boredom", "bored", "boring"),
    "excited": ("excited", "exc", "excitement"),
    "frustrated": ("frustrated", "fru", "frustration"),
    "other": ("other", "oth", "xxx"),
}


def normalize_label(name: object) -> str:
    """Lower case, every run of non-letters replaced by ``_`` (``"Pleasant-Surprise"`` ->
    ``"pleasant_surprise"``): the form :data:`EMOTION_SYNONYMS` is keyed by."""
    return re.sub(r"[^a-z]+", "_", str(name).strip().lower()).strip("_")


#: normalised spelling (:func:`normalize_label`) -> canonical emotion
EMOTION_SYNONYMS: dict[str, str] = {
    normalize_label(s): canon for canon, names in EMOTION_SPELLINGS.items() for s in names
}


def canonical_emotion(name: object) -> str | None:
    """The canonical emotion a label stands for, or ``None`` when it is not an emotion name.

    Case and punctuation insensitive: ``"Anger"``, ``"ANG"``, ``"pleasant surprise"``,
    ``"Pleasant-Surprise"`` and ``"ps"`` all resolve. Merged labels (``"happy+excited"``) are
    not emotions: they give ``None``.
    """
    return EMOTION_SYNONYMS.get(normalize_label(name))


#: one colour per canonical emotion, the same in every figure, page and subtitle file
#: (readable on white, distinguishable from each other)
EMOTION_COLORS: dict[str, str] = {
    "angry": "#d62728",  # red
    "calm": "#17becf",  # cyan
    "disgust": "#6b8e23",  # olive green
    "fear": "#9467bd",  # purple
    "happy": "#e6a700",  # amber
    "neutral": "#7f7f7f",  # grey
    "sad": "#1f77b4",  # blue
    "surprise": "#ff7f0e",  # orange
    "boredom": "#8c564b",  # brown
    "excited": "#e377c2",  # pink
    "frustrated": "#7b1e3a",  # wine
    "other": "#b5b5b5",  # light grey
}


@dataclass(frozen=True)
class LabelSet:
    """Maps canonical emotions to training labels; emotions mapped to ``None`` are dropped."""

    name: str
    mapping: Callable[[str, "LabelOptions"], str | None]
    description: str = ""


@dataclass(frozen=True)
class LabelOptions:
    """Explicit choices for emotions that a label set does not contain."""

    calm: str = "drop"  # "drop" or "neutral" (merge calm into neutral) for ekman7 / four
    boredom: str = "drop"  # "drop" or "neutral"
    excited: str = "happy"  # for the four-class set: "happy" (IEMOCAP convention) or "drop"


def _native(emotion: str, opts: LabelOptions) -> str | None:
    return emotion


def _merge_or_drop(emotion: str, opts: LabelOptions, allowed: Iterable[str]) -> str | None:
    allowed = set(allowed)
    if emotion in allowed:
        return emotion
    if emotion == "calm" and opts.calm == "neutral":
        return "neutral"
    if emotion == "boredom" and opts.boredom == "neutral":
        return "neutral"
    if emotion == "excited" and opts.excited == "happy" and "happy" in allowed:
        return "happy"
    return None


def _ekman7(emotion: str, opts: LabelOptions) -> str | None:
    return _merge_or_drop(emotion, LabelOptions(opts.calm, opts.boredom, "drop"), EKMAN7)


def _four(emotion: str, opts: LabelOptions) -> str | None:
    return _merge_or_drop(emotion, opts, FOUR)


LABEL_SETS: dict[str, LabelSet] = {
    "native": LabelSet("native", _native, "the corpus's own classes: canonical emotions for the "
                                          "built-in corpora, labels as written for csv / folder"),
    "ekman7": LabelSet("ekman7", _ekman7, "angry, disgust, fear, happy, neutral, sad, surprise"),
    "four": LabelSet("four", _four, "angry, happy (+excited), neutral, sad"),
}


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def assign_labels(manifest: pd.DataFrame, label_set: str = "native",
                  options: LabelOptions | None = None, *,
                  free_labels: bool = False) -> tuple[pd.DataFrame, dict[str, int]]:
    """Recompute ``label`` for a label set; also say why rows were dropped.

    Parameters
    ----------
    manifest : DataFrame
        Rows of one corpus (or several with the same ``free_labels``).
    label_set : str
        ``native``, ``ekman7`` or ``four``.
    options : LabelOptions, optional
        calm / boredom / excited choices.
    free_labels : bool
        ``True`` for a user's own corpus (csv / folder): ``native`` keeps the ``native`` column
        as written; the other label sets map ``emotion`` (``None`` when the label is not an
        emotion name, and then the row is dropped with its label named in the reason).

    Returns
    -------
    (DataFrame, dict)
        The kept rows (index reset) and ``reason -> rows dropped``, e.g.
        ``"label set ekman7 drops calm"`` or ``"label set ekman7: 'positive' is not an emotion
        name"``.
    """
    if label_set not in LABEL_SETS:
        raise ValueError(f"unknown label set {label_set!r}; choose one of {sorted(LABEL_SETS)}")
    opts = options or LabelOptions()
    ls = LABEL_SETS[label_set]
    labels: list[str | None] = []
    dropped: dict[str, int] = {}
    natives = manifest["native"] if "native" in manifest.columns else manifest["emotion"]
    for emotion, native in zip(manifest["emotion"], natives):
        if free_labels and label_set == "native":
            label = None if _missing(native) else str(native)
            reason = "no label"
        elif _missing(emotion):
            label, reason = None, f"label set {label_set}: {str(native)!r} is not an emotion name"
        else:
            label, reason = ls.mapping(emotion, opts), f"label set {label_set} drops {emotion}"
        labels.append(label)
        if label is None:
            dropped[reason] = dropped.get(reason, 0) + 1
    out = manifest.copy()
    out["label"] = labels
    return out[out["label"].notna()].reset_index(drop=True), dropped


def apply_label_set(manifest: pd.DataFrame, label_set: str = "native",
                    options: LabelOptions | None = None, *,
                    free_labels: bool = False) -> pd.DataFrame:
    """Return a copy of ``manifest`` with ``label`` recomputed (see :func:`assign_labels`).

    Rows the label set drops are removed (the index is reset).
    """
    return assign_labels(manifest, label_set, options, free_labels=free_labels)[0]


def validate(manifest: pd.DataFrame) -> pd.DataFrame:
    """Check the schema; raise ``ValueError`` naming what is wrong.

    ``emotion`` must be a canonical emotion or empty (a user corpus label that is not an emotion
    name); ``label`` may be any string.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in manifest.columns]
    if missing:
        raise ValueError(f"manifest lacks required columns {missing}")
    if manifest["key"].duplicated().any():
        dup = manifest.loc[manifest["key"].duplicated(), "key"].head(5).tolist()
        raise ValueError(f"manifest keys are not unique, e.g. {dup}")
    if manifest["speaker"].isna().any():
        raise ValueError("manifest has rows without a speaker")
    bad = sorted({str(e) for e in manifest["emotion"] if not _missing(e)} - set(CANONICAL))
    if bad:
        raise ValueError(f"manifest has emotions outside the canonical vocabulary: {bad} (a label "
                         "that is not an emotion belongs in `native` / `label`, with `emotion` "
                         "empty)")
    return manifest


def merge(manifests: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate manifests of several corpora (union of metadata columns)."""
    frames = [m for m in manifests]
    if not frames:
        raise ValueError("nothing to merge")
    out = pd.concat(frames, ignore_index=True, sort=False)
    return validate(out)


@dataclass
class Problem:
    """Something an adapter could not use; reported, never raised."""

    path: str
    kind: str  # "unreadable", "unparseable", "duplicate", ...
    detail: str = ""

    def as_dict(self) -> dict:
        return {"path": self.path, "kind": self.kind, "detail": self.detail}


@dataclass
class ScanResult:
    """Output of a corpus adapter: the manifest plus the problems found on the way."""

    manifest: pd.DataFrame
    problems: list[Problem] = field(default_factory=list)
    #: files left out on purpose and not worth a Problem each (reason -> count), e.g.
    #: IEMOCAP utterances without annotator agreement (``"no agreement (xxx)"``) or emotions the
    #: label set drops (``"label set ekman7 drops calm"``)
    excluded: dict[str, int] = field(default_factory=dict)
    #: corpus name(s) as in the ``corpus`` column (known even when every row was left out)
    corpus: str = ""

"""One emotion vocabulary: corpora, checkpoint label maps and reports give the same answers."""
from __future__ import annotations

import pytest

from serkit.corpora import generic
from serkit.corpora import manifest as vocab
from serkit.models import pretrained_classifier as pretrained
from serkit.reporting import colors

SPELLINGS = [
    "angry", "Anger", "ANG", "mad", "annoyed", "ans", "calm", "Calmness", "cal", "disgust",
    "Disgusted", "dis", "fear", "Fearful", "afraid", "scared", "fea", "happy", "Happiness", "joy",
    "hap", "glad", "neutral", "neu", "sad", "Sadness", "sa", "surprise", "Surprised", "ps", "PS",
    "sur", "su", "pleasant surprise", "Pleasant-Surprise", "pleasant_surprise", " pleasant surprised",
    "boredom", "bored", "excited", "exc", "excitement", "frustrated", "fru", "frustration", "other",
    "oth", "xxx", "positive", "negative", "high stress", "contempt", "", "happy+excited", "LABEL_0",
]


@pytest.mark.parametrize("name", SPELLINGS)
def test_three_entry_points_agree(name):
    expected = vocab.canonical_emotion(name)
    assert generic.canonical_emotion(name) == expected
    assert pretrained.canonical_emotion(name) == expected
    assert colors.canonical_emotion(name) == expected


def test_answers():
    ce = vocab.canonical_emotion
    assert ce("Pleasant-Surprise") == ce("ps") == ce("pleasant surprise") == "surprise"
    assert ce("ANG") == ce("mad") == "angry" and ce("xxx") == "other"
    assert ce("positive") is None and ce("happy+excited") is None
    assert set(vocab.EMOTION_SYNONYMS.values()) == set(vocab.CANONICAL)


def test_one_map_one_colour_table_re_exported():
    assert generic.SYNONYMS is vocab.EMOTION_SYNONYMS
    assert colors.ALIASES is vocab.EMOTION_SYNONYMS
    assert pretrained.SYNONYMS is vocab.EMOTION_SPELLINGS
    assert colors.EMOTION_COLORS is vocab.EMOTION_COLORS
    assert set(vocab.EMOTION_COLORS) == set(vocab.CANONICAL)
    # merged labels still take the colour of their first part
    assert colors.color_for("happy+excited") == vocab.EMOTION_COLORS["happy"]

"""Corpus adapters against the real corpora in ../shared/datasets (skipped when absent)."""
from __future__ import annotations

from pathlib import Path

import pytest

from serkit.corpora import load_corpora, load_corpus
from serkit.corpora.manifest import validate
from serkit.corpora.scan import summarize

pytestmark = pytest.mark.corpus

_CACHE: dict[tuple, object] = {}


def scan(shared: Path, corpus: str, **kwargs):
    """Scan once per (corpus, options) for the whole module."""
    key = (corpus, tuple(sorted((k, repr(v)) for k, v in kwargs.items())))
    if key not in _CACHE:
        root = shared / corpus
        if not root.is_dir():
            pytest.skip(f"{root} absent")
        _CACHE[key] = load_corpus(corpus, root, **kwargs)
    return _CACHE[key]


def dup_names(result) -> list[str]:
    return sorted(Path(p.path).name for p in result.problems if p.kind == "duplicate")


def test_ravdess(shared_datasets: Path):
    res = scan(shared_datasets, "ravdess")
    s = summarize(res)
    assert (s["utterances"], s["speakers"], len(s["labels"])) == (1440, 24, 8)
    assert s["labels"]["neutral"] == 96 and s["labels"]["calm"] == 192
    assert s["speaker_genders"] == {"female": 12, "male": 12}
    neutral = res.manifest[res.manifest["label"] == "neutral"]
    assert neutral.drop_duplicates("speaker")["gender"].value_counts().to_dict() == {
        "female": 12, "male": 12}
    assert dup_names(res) == ["03-01-03-01-02-01-07.flac", "03-01-03-01-02-02-07.flac"]
    assert {p.kind for p in res.problems} == {"duplicate"}


def test_ravdess_ekman7(shared_datasets: Path):
    ek = scan(shared_datasets, "ravdess", label_set="ekman7", check_duplicates=False)
    assert len(ek.manifest) == 1248 and "calm" not in set(ek.manifest["label"])
    merged = scan(shared_datasets, "ravdess", label_set="ekman7",
                  label_options={"calm": "neutral"}, check_duplicates=False)
    assert len(merged.manifest) == 1440
    assert (merged.manifest["label"] == "neutral").sum() == 288


def test_cremad(shared_datasets: Path):
    res = scan(shared_datasets, "cremad")
    s = summarize(res)
    assert (s["utterances"], s["speakers"], len(s["labels"])) == (7442, 91, 6)
    assert s["speaker_genders"] == {"female": 43, "male": 48}
    assert res.manifest["age"].notna().all()
    kinds = {p.kind for p in res.problems}
    assert kinds <= {"duplicate"}  # three same-audio pairs, see test below


def test_cremad_same_audio_pairs(shared_datasets: Path):
    """Three CREMA-D pairs decode to identical samples under different emotion labels."""
    res = scan(shared_datasets, "cremad")
    assert dup_names(res) == sorted(f"{n}.opus" for n in (
        "1006_TIE_HAP_XX", "1006_TIE_NEU_XX", "1013_WSI_DIS_XX", "1013_WSI_SAD_XX",
        "1017_IWW_ANG_XX", "1017_IWW_FEA_XX"))


def test_tess(shared_datasets: Path):
    s = summarize(scan(shared_datasets, "tess"))
    assert (s["utterances"], s["speakers"]) == (2800, 2)
    assert s["labels"] == {e: 400 for e in ("angry", "disgust", "fear", "happy", "neutral",
                                            "sad", "surprise")}
    assert s["speaker_genders"] == {"female": 2} and not s["problems"]


def test_savee(shared_datasets: Path):
    s = summarize(scan(shared_datasets, "savee"))
    assert (s["utterances"], s["speakers"], len(s["labels"])) == (480, 4, 7)
    assert s["labels"]["neutral"] == 120
    assert all(n == 60 for lab, n in s["labels"].items() if lab != "neutral")
    assert s["speaker_genders"] == {"male": 4} and not s["problems"]


def test_emodb(shared_datasets: Path):
    s = summarize(scan(shared_datasets, "emodb"))
    assert (s["utterances"], s["speakers"]) == (535, 10)
    assert s["labels"] == {"angry": 127, "boredom": 81, "neutral": 79, "happy": 71, "fear": 69,
                           "sad": 62, "disgust": 46}
    assert s["speaker_genders"] == {"female": 5, "male": 5} and not s["problems"]


def test_study_003_merged_ekman7(shared_datasets: Path):
    names = ("ravdess", "tess", "savee", "cremad")
    if not all((shared_datasets / n).is_dir() for n in names):
        pytest.skip("a corpus is absent")
    res = load_corpora([(n, shared_datasets / n) for n in names], label_set="ekman7",
                       check_duplicates=False)
    m = validate(res.manifest)
    assert len(m) == 1248 + 2800 + 480 + 7442 == 11970
    assert m["key"].is_unique
    assert m.groupby("speaker")["corpus"].nunique().max() == 1  # no speaker collisions
    assert m["speaker"].nunique() == 24 + 2 + 4 + 91
    assert set(m["label"]) == {"angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"}
    assert res.excluded == {"ravdess: label set ekman7 drops calm": 192}

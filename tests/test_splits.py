import numpy as np
import pandas as pd
import pytest

from serkit.evaluation.splits import (Fold, SpeakerOverlapError, check_speaker_overlap, make_folds)


def manifest(n_speakers=8, per=6, corpus="c"):
    rows = []
    for s in range(n_speakers):
        for i in range(per):
            rows.append({"key": f"{corpus}/s{s}_{i}", "speaker": f"{corpus}_s{s}",
                         "label": ["angry", "sad", "happy"][i % 3], "corpus": corpus})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("kind,kw,n", [("group_kfold", {"n_folds": 4}, 4), ("loso", {}, 8),
                                       ("speaker_holdout", {"n_folds": 4}, 4)])
def test_speaker_independent_protocols_never_share_speakers(kind, kw, n):
    m = manifest()
    folds, info = make_folds(m, kind, **kw)
    assert info.speaker_independent and len(folds) == n
    covered = np.concatenate([f.test for f in folds])
    assert sorted(covered) == list(range(len(m)))  # every utterance tested exactly once
    for f in folds:
        spk = m["speaker"].to_numpy()
        assert not set(spk[f.train]) & set(spk[f.test])
        if f.valid is not None:
            assert not set(spk[f.valid]) & (set(spk[f.test]) | set(spk[f.train]))


def test_guard_refuses_overlap_unless_declared_speaker_dependent():
    m = manifest()
    bad = Fold("x", np.arange(0, 30), np.arange(25, 48))  # rows 25..29 in both
    with pytest.raises(SpeakerOverlapError, match="both train and test"):
        check_speaker_overlap(m, bad, speaker_dependent=False)
    check_speaker_overlap(m, bad, speaker_dependent=True)


def test_random_split_must_be_declared_and_is_labelled():
    m = manifest()
    with pytest.raises(SpeakerOverlapError):
        make_folds(m, "random")
    folds, info = make_folds(m, "random", speaker_dependent=True, test_size=0.25)
    assert not info.speaker_independent and "speaker-dependent" in info.description
    assert len(folds[0].test) == 12


def test_emobox_partitions_are_checked_against_the_data(tmp_path):
    m = manifest(n_speakers=4, per=3)
    stems = m["key"].str.split("/").str[1]
    # fold 1 holds out speaker s0 (independent); fold 2 mixes s1 utterances into train and test
    rows = [("c", 1, "test" if s.startswith("s0_") else "train", s, "x") for s in stems]
    rows += [("c", 2, "test" if s in ("s1_0", "s2_0") else "train", s, "x") for s in stems]
    csv = tmp_path / "folds.csv"
    pd.DataFrame(rows, columns=["corpus", "fold", "split", "stem", "label"]).to_csv(csv, index=False)
    with pytest.raises(SpeakerOverlapError, match="share speakers"):
        make_folds(m, "emobox", folds_csv=str(csv))
    folds, info = make_folds(m, "emobox", folds_csv=str(csv), speaker_dependent=True)
    assert not info.speaker_independent and len(folds) == 2


def _csv_corpus_manifest():
    """A CSV corpus: keys are relative paths, file stems repeat across speaker folders."""
    rows = []
    for s in range(4):
        for i in range(3):
            rows.append({"key": f"mine/spk{s}/take{i}", "path": f"/data/spk{s}/take{i}.wav",
                         "speaker": f"mine_spk{s}", "label": ["angry", "sad", "happy"][i],
                         "corpus": "mine"})
    return pd.DataFrame(rows)


def _partition(tmp_path, ids, test_speaker="spk0"):
    rows = [("mine", 1, "test" if test_speaker in m else "train", i, "x") for m, i in ids]
    csv = tmp_path / "parts.csv"
    pd.DataFrame(rows, columns=["corpus", "fold", "split", "stem", "label"]).to_csv(csv, index=False)
    return str(csv)


def test_emobox_matches_csv_corpora_by_key_suffix_then_stem(tmp_path):
    m = _csv_corpus_manifest()
    by_key = [(k, k.split("/", 1)[1]) for k in m["key"]]  # "spk0/take1"
    folds, info = make_folds(m, "emobox", folds_csv=_partition(tmp_path, by_key))
    assert info.speaker_independent and sorted(folds[0].test) == [0, 1, 2]

    # file stems are a fallback when they are unique in the corpus
    u = m.assign(path=[f"/data/{k.split('/')[1]}/{k.split('/')[1]}_{k.split('/')[2]}.wav"
                       for k in m["key"]])
    by_stem = [(k, f"{k.split('/')[1]}_{k.split('/')[2]}") for k in u["key"]]  # "spk0_take1"
    folds, _ = make_folds(u, "emobox", folds_csv=_partition(tmp_path, by_stem))
    assert sorted(folds[0].test) == [0, 1, 2] and len(folds[0].train) == 9


def test_emobox_mismatch_says_how_many_rows_matched(tmp_path):
    m = _csv_corpus_manifest()
    ambiguous = [(k, k.rsplit("/", 1)[1]) for k in m["key"]]  # "take1" names four files
    with pytest.raises(ValueError) as err:
        make_folds(m, "emobox", folds_csv=_partition(tmp_path, ambiguous))
    msg = str(err.value)
    assert "0 of 12 partition rows matched" in msg and "12 did not" in msg
    assert "take0" in msg and "mine/spk0/take0" in msg  # examples from both sides
    with pytest.raises(ValueError, match="no folds for corpus 'other'.*'mine'"):
        make_folds(m.assign(corpus="other"), "emobox",
                   folds_csv=_partition(tmp_path, ambiguous))

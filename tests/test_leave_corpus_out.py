"""protocol.kind=leave_corpus_out: one fold per held-out corpus, `common` vs `shared` classes."""
import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from serkit.cli import app
from serkit.config import RunConfig
from serkit.evaluation.splits import SpeakerOverlapError, common_classes, make_folds
from audio_utils import synthetic_corpus

runner = CliRunner()

#: (corpus, speaker, label) per row; common to all three corpora: angry, sad
ROWS = [("a", "a_1", "angry"), ("a", "a_1", "sad"), ("a", "a_2", "happy"), ("a", "a_2", "neutral"),
        ("b", "b_1", "angry"), ("b", "b_1", "sad"), ("b", "b_2", "happy"), ("b", "b_2", "surprise"),
        ("c", "c_1", "angry"), ("c", "c_1", "sad"), ("c", "c_2", "neutral"), ("c", "c_2", "calm")]


def manifest(rows=ROWS):
    return pd.DataFrame([{"key": f"{c}/{i}", "corpus": c, "speaker": s, "label": lab}
                         for i, (c, s, lab) in enumerate(rows)])


def _by_name(folds):
    return {f.name: f for f in folds}


def test_common_classes_folds_hand_checked():
    m = manifest()
    assert common_classes(m) == ["angry", "sad"]
    folds, info = make_folds(m, "leave_corpus_out", classes="common")
    assert info.speaker_independent and info.kind == "leave_corpus_out"
    assert "3 folds" in info.description and "classes: common" in info.description
    f = _by_name(folds)
    assert list(f) == ["heldout_a", "heldout_b", "heldout_c"]
    assert f["heldout_a"].train.tolist() == [4, 5, 8, 9] and f["heldout_a"].test.tolist() == [0, 1]
    assert f["heldout_b"].train.tolist() == [0, 1, 8, 9] and f["heldout_b"].test.tolist() == [4, 5]
    assert f["heldout_c"].train.tolist() == [0, 1, 4, 5] and f["heldout_c"].test.tolist() == [8, 9]
    for name, fold in f.items():
        corpus = m["corpus"].to_numpy()
        assert set(corpus[fold.test]) == {name.removeprefix("heldout_")}   # exactly one corpus
        assert name.removeprefix("heldout_") not in set(corpus[fold.train])
        spk = m["speaker"].to_numpy()
        assert not set(spk[fold.train]) & set(spk[fold.test])
        assert fold.record["heldout_corpus"] == name.removeprefix("heldout_")
        assert fold.record["eval_classes"] == ["angry", "sad"] == fold.record["train_classes"]
        assert fold.record["excluded_test"] == {} and fold.record["n_excluded_test"] == 0
    assert f["heldout_b"].record["train_corpora"] == ["a", "c"]


def test_shared_classes_train_on_everything_test_on_what_training_has():
    m = manifest()
    folds, info = make_folds(m, "leave_corpus_out", classes="shared")
    assert "classes: shared" in info.description
    f = _by_name(folds)
    # held-out a: b and c together have every class of a
    assert f["heldout_a"].train.tolist() == list(range(4, 12))
    assert f["heldout_a"].test.tolist() == [0, 1, 2, 3]
    assert f["heldout_a"].record["eval_classes"] == ["angry", "happy", "neutral", "sad"]
    assert f["heldout_a"].record["n_excluded_test"] == 0
    # held-out b: a and c lack surprise -> row 7 leaves the fold, counted
    assert f["heldout_b"].train.tolist() == [0, 1, 2, 3, 8, 9, 10, 11]
    assert f["heldout_b"].test.tolist() == [4, 5, 6]
    assert f["heldout_b"].record["excluded_test"] == {"surprise": 1}
    assert f["heldout_b"].record["train_classes"] == ["angry", "calm", "happy", "neutral", "sad"]
    assert f["heldout_b"].record["eval_classes"] == ["angry", "happy", "sad"]
    # held-out c: calm only in c
    assert f["heldout_c"].train.tolist() == list(range(0, 8))
    assert f["heldout_c"].test.tolist() == [8, 9, 10]
    assert f["heldout_c"].record == {
        "heldout_corpus": "c", "train_corpora": ["a", "b"], "class_mode": "shared",
        "eval_classes": ["angry", "neutral", "sad"],
        "train_classes": ["angry", "happy", "neutral", "sad", "surprise"],
        "excluded_test": {"calm": 1}, "n_excluded_test": 1}
    # every row of a corpus is tested in its fold unless training lacks its class
    assert sum(len(x.test) + x.record["n_excluded_test"] for x in folds) == len(m)


def test_needs_two_corpora_and_known_class_mode():
    one = manifest([r for r in ROWS if r[0] == "a"])
    with pytest.raises(ValueError, match="at least 2 corpora.*has 1 \\(a\\)"):
        make_folds(one, "leave_corpus_out")
    with pytest.raises(ValueError, match="classes must be one of"):
        make_folds(manifest(), "leave_corpus_out", classes="all")
    with pytest.raises(ValidationError, match="leave_corpus_out needs at least 2 corpora"):
        RunConfig.model_validate({"data": {"corpora": [{"name": "emodb", "root": "emodb"}]},
                                  "protocol": {"kind": "leave_corpus_out"}})
    RunConfig.model_validate({"data": {"corpora": [{"name": "emodb", "root": "emodb"},
                                                   {"name": "savee", "root": "savee"}]},
                              "protocol": {"kind": "leave_corpus_out", "classes": "shared"}})


def test_too_few_common_classes_is_a_clear_error():
    rows = [("a", "a_1", "angry"), ("a", "a_1", "sad"), ("b", "b_1", "angry"), ("b", "b_1", "happy")]
    with pytest.raises(ValueError, match="share 1 class"):
        make_folds(manifest(rows), "leave_corpus_out", classes="common")
    folds, _ = make_folds(manifest(rows), "leave_corpus_out", classes="shared")
    assert [f.record["excluded_test"] for f in folds] == [{"sad": 1}, {"happy": 1}]


def test_overlap_guard_still_runs():
    """Speakers that are not corpus-prefixed and recur across corpora are refused."""
    rows = [(c, "same", lab) for c, _, lab in ROWS]
    with pytest.raises(SpeakerOverlapError, match="both train and test"):
        make_folds(manifest(rows), "leave_corpus_out")


def test_max_folds_and_fold_order():
    folds, info = make_folds(manifest(), "leave_corpus_out", max_folds=2)
    assert [f.name for f in folds] == ["heldout_a", "heldout_b"] and "2 folds" in info.description
    assert np.array_equal(folds[0].test, [0, 1])


def _config(tmp_path, alpha, beta, classes):
    cfg = tmp_path / f"lco_{classes}.yaml"
    cfg.write_text(f"""
name: lco
data:
  corpora:
    - {{name: csv, root: {alpha}, corpus: alpha}}
    - {{name: csv, root: {beta}, corpus: beta}}
features: {{kind: egemaps, cache_dir: {tmp_path / 'cache'}, n_jobs: 1}}
model: {{name: svm, params: {{C: 10.0}}}}
protocol: {{kind: leave_corpus_out, classes: {classes}}}
""")
    return cfg


def test_serkit_run_leave_corpus_out_names_the_heldout_corpus(tmp_path):
    alpha = synthetic_corpus(tmp_path / "alpha", speakers=3, per_label=3, labels=("angry", "sad", "happy"))
    beta = synthetic_corpus(tmp_path / "beta", speakers=3, per_label=3, labels=("angry", "sad", "neutral"))
    out = tmp_path / "common"
    res = runner.invoke(app, ["run", str(_config(tmp_path, alpha, beta, "common")), "--out", str(out),
                              "--quiet", "--no-report"])
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["protocol"]["kind"] == "leave_corpus_out" and m["protocol"]["speaker_independent"]
    assert m["corpora"] == ["alpha", "beta"] and m["classes"] == ["angry", "sad"]
    assert m["accounting"]["excluded"] == {
        "label 'happy' not in every corpus (protocol.classes=common)": 9,
        "label 'neutral' not in every corpus (protocol.classes=common)": 9}
    assert [f["fold"] for f in m["folds"]] == ["heldout_alpha", "heldout_beta"]
    assert [f["heldout_corpus"] for f in m["folds"]] == ["alpha", "beta"]
    for f in m["folds"]:
        assert f["n_train"] == f["n_test"] == 18 and f["missing_classes"] == []
        assert all(s.startswith(f["heldout_corpus"] + "_") for s in f["test_speakers"])
    pred = pd.read_csv(out / "predictions.csv")
    assert set(pred.loc[pred["fold"] == "heldout_beta", "key"].str.split("/").str[0]) == {"beta"}

    out = tmp_path / "shared"
    res = runner.invoke(app, ["run", str(_config(tmp_path, alpha, beta, "shared")), "--out", str(out),
                              "--quiet", "--no-report"])
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["classes"] == ["angry", "happy", "neutral", "sad"] and m["accounting"]["excluded"] == {}
    f = {x["heldout_corpus"]: x for x in m["folds"]}
    assert f["alpha"]["excluded_test"] == {"happy": 9} and f["alpha"]["n_test"] == 18
    assert f["alpha"]["n_train"] == 27 and f["alpha"]["eval_classes"] == ["angry", "sad"]
    assert f["beta"]["excluded_test"] == {"neutral": 9}
    assert f["beta"]["train_classes"] == ["angry", "happy", "sad"]

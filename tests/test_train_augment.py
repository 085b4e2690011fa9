"""Train-time waveform augmentation (``augment:``): config, the babble talker rule, determinism,
``serkit run`` (copies of training rows only, every fold) and ``serkit train`` (recorded in the card)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from audio_utils import synthetic_corpus
from serkit.cli import app
from serkit.config import WAVEFORM_AUGMENTATION_NAMES, AugmentConfig, load_config
from serkit.evaluation.augment import Augmented, augment_features, choose_talkers, with_copies
from serkit.evaluation.splits import make_folds
from serkit.features.pipeline import FeaturePipeline
from serkit.training.augmentation import WAVEFORM_AUGMENTATIONS, babble_talkers, waveform_augmenter

runner = CliRunner()
SPEC = {"white_noise": {"min_snr_db": 5, "max_snr_db": 20, "p": 0.5},
        "pink_noise": {"min_snr_db": 5, "max_snr_db": 20, "p": 0.5},
        "babble": {"min_snr_db": 5, "max_snr_db": 20, "talkers": 2, "p": 1.0},
        "telephone": {"p": 0.5}}


# ------------------------------------------------------------------------------------------ config
def test_config_names_match_the_registry():
    assert tuple(sorted(WAVEFORM_AUGMENTATIONS)) == WAVEFORM_AUGMENTATION_NAMES


def test_config_defaults_off_and_clear_errors(tmp_path):
    cfg = load_config(None)
    assert cfg.augment.copies == 0 and cfg.augment.transforms == {}
    with pytest.raises(ValueError, match=r"augment.transforms: unknown augmentation 'reverbb'; choose from"):
        load_config(None, ["augment.copies=1", "augment.transforms={reverbb: {p: 1}}"])
    with pytest.raises(ValueError, match="needs at least one entry in augment.transforms"):
        load_config(None, ["augment.copies=1"])
    with pytest.raises(ValueError, match="white_noise: p must be a probability"):
        load_config(None, ["augment.copies=1", "augment.transforms={white_noise: {p: 2}}"])
    with pytest.raises(ValueError, match="augment.cpies: unknown setting"):
        load_config(None, ["augment.cpies=1"])
    cfg = load_config(None, ["augment.copies=2", "augment.transforms={telephone: true, gain: false}"])
    assert cfg.augment.active == {"telephone": True}


def test_bad_transform_parameters_fail_before_any_audio(tmp_path):
    from serkit.evaluation.protocol import check_config

    csv = synthetic_corpus(tmp_path / "corpus", speakers=2, per_label=1)
    cfg = load_config(None, [f"data.corpora=[{{name: csv, root: {csv}}}]", "features.kind=handcrafted",
                             "augment.copies=1", "augment.transforms={white_noise: {min_snr: 3}}"])
    with pytest.raises(ValueError, match="augment.transforms: augmentation 'white_noise': bad parameters"):
        check_config(cfg)
    cfg = load_config(None, [f"data.corpora=[{{name: csv, root: {csv}}}]", "features.kind=handcrafted",
                             "features.metadata=[gender]", "augment.copies=1",
                             "augment.transforms={white_noise: true}"])
    with pytest.raises(ValueError, match="not available with features.metadata"):
        check_config(cfg)


# ------------------------------------------------------------------------------------- talker rule
def _manifest(corpora=("a", "b", "c"), speakers=4, per=3) -> pd.DataFrame:
    rows = []
    for c in corpora:
        for s in range(speakers):
            for i in range(per):
                lab = ["x", "y", "z"][i % 3]
                rows.append({"key": f"{c}/s{s}/{i}", "speaker": f"{c}-s{s}", "corpus": c, "label": lab})
    return pd.DataFrame(rows)


def _assert_rule(man, folds, talkers, fallback_ok=False):
    spk = man["speaker"].to_numpy()
    for i, per_copy in talkers.items():
        trains_in = [(tr, te) for tr, te in folds if i in set(tr)]
        assert trains_in, "only training clips get copies"
        for tk in per_copy:
            for j in tk:
                assert j != i
                for tr, te in trains_in:
                    assert j in set(tr)                         # a training clip of that fold
                    assert spk[j] not in set(spk[te])           # never a test speaker of that fold
                if not fallback_ok:
                    assert spk[j] != spk[i]
            assert len({spk[j] for j in tk}) == len(tk) or fallback_ok


@pytest.mark.parametrize("kind", ["group_kfold", "leave_corpus_out", "loso"])
def test_babble_talkers_are_never_test_speakers_of_a_fold_the_clip_trains_in(kind):
    man = _manifest()
    kw = {"n_folds": 3} if kind == "group_kfold" else {}
    folds, _ = make_folds(man, kind, **kw)
    fr = [(f.train, f.test) for f in folds]
    talkers, counts = choose_talkers(man["key"], man["speaker"], fr, np.arange(len(man)), 3, 2, seed=1)
    assert set(talkers) == set(range(len(man)))
    _assert_rule(man, fr, talkers, fallback_ok=kind == "loso")
    spk = man["speaker"].to_numpy()
    if kind == "leave_corpus_out":   # the clip's own corpus only
        corpus = man["corpus"].to_numpy()
        assert all(corpus[j] == corpus[i] for i, pc in talkers.items() for tk in pc for j in tk)
    if kind == "group_kfold":        # the speakers of the clip's own held-out group only
        group = {s: k for k, (_, te) in enumerate(fr) for s in set(spk[te])}
        assert all(group[spk[j]] == group[spk[i]] for i, pc in talkers.items() for tk in pc for j in tk)
        assert all(len(tk) == 3 for pc in talkers.values() for tk in pc) and counts["own_speaker"] == 0
    if kind == "loso":               # every fold trains all other speakers: only the own speaker is left
        assert counts["own_speaker"] == len(man) * 2
        assert all(spk[j] == spk[i] for i, pc in talkers.items() for tk in pc for j in tk)


def test_babble_talkers_with_one_training_speaker_fall_back_to_its_other_clips():
    man = _manifest(corpora=("tess",), speakers=2, per=4)
    s0, s1 = np.flatnonzero(man["speaker"] == "tess-s0"), np.flatnonzero(man["speaker"] == "tess-s1")
    folds = [(s0, s1), (s1, s0)]
    talkers, counts = choose_talkers(man["key"], man["speaker"], folds, np.arange(len(man)), 4, 1, seed=0)
    _assert_rule(man, folds, talkers, fallback_ok=True)
    assert counts == {"own_speaker": 8, "none": 0}
    assert all(len(tk) == 3 for pc in talkers.values() for tk in pc)   # the 3 other clips of the speaker
    # a clip that trains in no fold gets nothing; without folds any other speaker may talk
    talkers, _ = choose_talkers(man["key"], man["speaker"], [(s0[:2], s1)], np.arange(len(man)), 4, 1, 0)
    assert set(talkers) == set(s0[:2].tolist())
    talkers, counts = choose_talkers(man["key"], man["speaker"], None, np.arange(len(man)), 4, 1, 0)
    assert counts["own_speaker"] == 0 and all(len(pc[0]) == 1 for pc in talkers.values())


def test_with_copies_appends_only_training_rows():
    X = np.arange(10, dtype=np.float32)[:, None]
    y = np.array(list("ababababab"))
    g = np.array(list("0011223344"))
    aug = Augmented(X=100 + np.arange(20, dtype=np.float32)[:, None], source=np.repeat(np.arange(10), 2),
                    copy=np.tile([0, 1], 10))
    Xt, yt, gt, clean = with_copies(X, y, g, np.array([0, 1, 4]), aug)
    assert Xt[:, 0].tolist() == [0, 1, 4, 100, 101, 102, 103, 108, 109]
    assert yt.tolist() == list("abaaabbaa")
    assert gt.tolist() == list("002000022")
    assert clean.tolist() == [True] * 3 + [False] * 6


# ------------------------------------------------------------------------------------- determinism
def test_waveform_augmenter_is_seeded_per_call():
    x = np.sin(np.arange(8000) / 7).astype(np.float32)
    b = [np.random.default_rng(1).standard_normal(4000).astype(np.float32)]
    a = waveform_augmenter(SPEC, 0)
    y1 = a(x, 16000, seed=5, babble=b)
    a(x, 16000, seed=9, babble=b)
    assert np.array_equal(y1, waveform_augmenter(SPEC, 3)(x, 16000, seed=5, babble=b))
    assert not np.array_equal(y1, a(x, 16000, seed=6, babble=b))
    assert babble_talkers(SPEC) == 2 and babble_talkers({"white_noise": True}) == 0


def test_augmented_copies_are_reproducible_and_cached(tmp_path):
    csv = synthetic_corpus(tmp_path / "corpus", speakers=3, per_label=2)
    man = pd.read_csv(csv)
    man["path"] = [str(tmp_path / "corpus" / p) for p in man["path"]]
    man["key"] = man["path"]
    pipe = FeaturePipeline({"sample_rate": 16000}, "handcrafted", cache_dir=str(tmp_path / "c1"), n_jobs=1)
    aug = AugmentConfig(copies=2, transforms=SPEC)
    folds, _ = make_folds(man, "loso")
    fr = [(f.train, f.test) for f in folds]
    a1 = augment_features(man, fr, pipe, aug, seed=7, progress=False)
    assert a1.X.shape == (2 * len(man), pipe.extractors[0](np.zeros(16000, np.float32) + .1, 16000).shape[0])
    assert a1.record["computed"] == 2 * len(man) and a1.record["babble"]["talkers"] == 2
    a2 = augment_features(man, fr, pipe, aug, seed=7, progress=False)
    assert a2.record["cached"] == 2 * len(man) and np.array_equal(a1.X, a2.X)
    fresh = FeaturePipeline({"sample_rate": 16000}, "handcrafted", cache_dir=str(tmp_path / "c2"), n_jobs=1)
    a3 = augment_features(man, fr, fresh, aug, seed=7, progress=False)
    assert a3.record["computed"] == 2 * len(man) and np.allclose(a1.X, a3.X)
    a4 = augment_features(man, fr, fresh, aug, seed=8, progress=False)
    assert not np.allclose(a1.X, a4.X)


# ------------------------------------------------------------------------------------- serkit run / train
def _recipe(tmp_path, csv, extra=""):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(f"""
name: tiny
data: {{corpora: [{{name: csv, root: {csv}}}]}}
features: {{kind: handcrafted, cache_dir: {tmp_path / 'cache'}, n_jobs: 1}}
model: {{name: logreg}}
protocol: {{kind: group_kfold, n_folds: 3}}
calibration: {{method: temperature, val_fraction: 0.3}}
augment:
  copies: 1
  transforms:
    white_noise: {{min_snr_db: 10, max_snr_db: 20, p: 0.7}}
    babble: {{talkers: 2, min_snr_db: 10, max_snr_db: 20, p: 0.7}}
    telephone: {{p: 0.3}}
{extra}
""")
    return cfg


def test_serkit_run_trains_every_fold_on_copies_of_its_training_rows_only(tmp_path):
    csv = synthetic_corpus(tmp_path / "corpus", speakers=6, per_label=3)
    out = tmp_path / "run"
    res = runner.invoke(app, ["run", str(_recipe(tmp_path, csv)), "--out", str(out), "--quiet", "--no-report"])
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["augment"]["copies"] == 1 and m["augment"]["rows"] == 54 and m["augment"]["skipped"] == 0
    assert m["augment"]["babble"]["own_speaker"] == 0
    for f in m["folds"]:
        assert f["n_train_clean"] + f["n_test"] == 54            # clean rows as before
        assert f["n_train"] == 2 * f["n_train_clean"] == 2 * f["n_train_augmented"]
        assert f["calibration"]["n"] <= f["n_train_clean"]       # temperature: clean rows only
    pred = pd.read_csv(out / "predictions.csv")
    assert len(pred) == 54 and pred["key"].is_unique              # test rows: clean clips, once each
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["augment"]["copies"] == 1 and "babble" in saved["augment"]["transforms"]
    assert m["ua"]["mean"] > 0.6


def test_serkit_train_records_the_augmentation_in_the_card(tmp_path):
    csv = synthetic_corpus(tmp_path / "corpus", speakers=3, per_label=2)
    out = tmp_path / "model"
    res = runner.invoke(app, ["train", str(_recipe(tmp_path, csv)), "--out", str(out), "--no-eval", "--quiet"])
    assert res.exit_code == 0, res.output
    card = json.loads((out / "model.json").read_text())
    aug = card["training_data"]["augmentation"]
    # talkers are chosen under the recipe's own folds (stricter than needed, and the same copies as
    # the main evaluation's): every copy made here is served from the cache on a second train
    assert aug["copies"] == 1 and aug["rows"] == 18 and aug["babble"]["rule"].startswith("talkers are training")
    assert aug["computed"] == 18 and aug["cached"] == 0
    res = runner.invoke(app, ["train", str(_recipe(tmp_path, csv)), "--out", str(tmp_path / "again"),
                              "--run-dir", str(tmp_path / "eval"), "--quiet"])
    assert res.exit_code == 0, res.output
    again = json.loads((tmp_path / "again" / "model.json").read_text())["training_data"]["augmentation"]
    assert again["cached"] == 18 and again["computed"] == 0
    assert card["training_data"]["utterances"] == 18
    assert "augmented copies" in (out / "README.md").read_text()
    assert yaml.safe_load((out / "config.yaml").read_text())["augment"]["copies"] == 1

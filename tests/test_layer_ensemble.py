"""ssl_layer_ensemble: per-layer probes averaged; a one-member ensemble is the ssl_probe; pickle-free
round trip; bad members are refused."""
from __future__ import annotations

import numpy as np
import pytest

from serkit.models.persist import load_estimator, save_estimator
from serkit.models.registry import make_model
from serkit.models.ssl_probe import LayerEnsemble


def _data():
    rng = np.random.default_rng(0)
    y = np.repeat(["angry", "sad", "happy"], 20)
    X = rng.standard_normal((60, 3 * 8)).astype(np.float32)   # 3 layers of W = 8 (mean ‖ std)
    X[y == "sad", 8:10] += 2.5      # layer 1 separates sad
    X[y == "happy", 16:18] += 2.5   # layer 2 separates happy
    return X, y


def test_single_member_is_the_ssl_probe():
    X, y = _data()
    ens = make_model("ssl_layer_ensemble", {"members": [1], "n_layers": 3, "clf": "svm", "C": 10.0}, seed=7)
    probe = make_model("ssl_probe", {"layer": 1, "n_layers": 3, "clf": "svm", "C": 10.0}, seed=7)
    np.testing.assert_allclose(ens.fit(X, y).predict_proba(X), probe.fit(X, y).predict_proba(X))


def test_probabilities_are_the_members_average():
    X, y = _data()
    ens = LayerEnsemble(members=[1, [1, 2]], n_layers=3, clf="logreg", C=1.0).fit(X, y)
    assert len(ens.estimators_) == 2
    assert ens.estimators_[1][0].transform(X).shape == (60, 16)   # the concatenated member
    want = (ens.estimators_[0].predict_proba(X) + ens.estimators_[1].predict_proba(X)) / 2
    np.testing.assert_allclose(ens.predict_proba(X), want)
    np.testing.assert_allclose(ens.predict_proba(X).sum(axis=1), 1.0, rtol=1e-5)
    assert list(ens.classes_) == ["angry", "happy", "sad"]
    # layers 1 and 2 together separate all three classes; either alone cannot
    assert (ens.predict(X) == y).mean() > 0.9


def test_round_trip_without_pickle(tmp_path):
    X, y = _data()
    ens = make_model("ssl_layer_ensemble", {"members": [1, 2], "n_layers": 3, "C": 10.0}, seed=0).fit(X, y)
    loaded = load_estimator(save_estimator(ens, tmp_path / "m"))
    assert isinstance(loaded, LayerEnsemble)
    np.testing.assert_allclose(loaded.predict_proba(X), ens.predict_proba(X))


@pytest.mark.parametrize("members", [[], "12", [1.5], [[1, "a"]], [[]]])
def test_bad_members(members):
    with pytest.raises(ValueError, match="member"):
        make_model("ssl_layer_ensemble", {"members": members, "n_layers": 3}, seed=0)


def test_bad_classifier():
    with pytest.raises(ValueError, match="clf"):
        make_model("ssl_layer_ensemble", {"members": [1], "clf": "tree"}, seed=0)


def test_utterance_norm_by_hand():
    from serkit.models.ssl_probe import LayerSelect

    X = np.array([[1.0, 3.0, 10.0, 10.0, 10.0, 14.0]], dtype=np.float32)   # 2 layers of W = 3
    out = LayerSelect(layer=[0, 1], n_layers=2, norm="utterance").transform(X)
    # layer 0: mean 14/3, std sqrt(((1-14/3)^2 + (3-14/3)^2 + (10-14/3)^2) / 3)
    a = np.array([1.0, 3.0, 10.0])
    b = np.array([10.0, 10.0, 14.0])
    want = np.concatenate([(a - a.mean()) / a.std(), (b - b.mean()) / b.std()])
    np.testing.assert_allclose(out[0], want, rtol=1e-5)
    # a clip scaled and shifted gives the same features: its own statistics only
    np.testing.assert_allclose(LayerSelect(layer=1, n_layers=2, norm="utterance").transform(3 * X + 5),
                               out[:, 3:], rtol=1e-5)
    # a constant block is left centred, not divided by zero
    assert np.all(LayerSelect(layer=0, n_layers=2, norm="utterance").transform(np.ones((1, 6))) == 0)
    with pytest.raises(ValueError, match="norm"):
        LayerSelect(layer=0, n_layers=2, norm="speaker").transform(X)


def test_norm_reaches_every_member():
    X, y = _data()
    ens = LayerEnsemble(members=[1, 2], n_layers=3, norm="utterance", C=10.0).fit(X, y)
    assert all(e[0].norm == "utterance" for e in ens.estimators_)
    probe = make_model("ssl_probe", {"layer": 1, "n_layers": 3, "clf": "svm", "norm": "utterance"}, seed=0)
    assert probe[0].norm == "utterance"

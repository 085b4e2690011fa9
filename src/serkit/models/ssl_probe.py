"""Probes on all-layer self-supervised features (``features.kind: ssl`` with ``layers: all``).

:class:`LayerSelect` picks a layer (and statistic) inside a scikit-learn pipeline so that
``GroupedGridSearch`` chooses the layer on the training folds only; :func:`ssl_probe` is the
``ssl_probe`` model: LayerSelect → StandardScaler → logistic regression or RBF SVM.
:class:`LayerEnsemble` (model ``ssl_layer_ensemble``) fits one such probe per layer (or group of
layers) and averages their class probabilities.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin

__all__ = ["LayerEnsemble", "LayerSelect", "ssl_layer_ensemble", "ssl_probe"]


class LayerSelect(BaseEstimator, TransformerMixin):
    """Pick one layer (and statistic) from flattened all-layer features (``layers: all``).

    ``X`` is ``[n, n_layers * W]`` (or ``[n, n_layers, W]``) where each layer's block is mean ‖ std
    (``W = 2D``, extractor ``pooling: meanstd``) or the mean alone (``W = D``).

    Parameters
    ----------
    layer : int, list of int or "mean"
        Layer(s) to keep (negative from the end); a list is concatenated.
    n_layers : int
        ``L`` (hidden states of the backbone: transformer layers + 1).
    stat : {"as_is", "mean"}
        ``"mean"`` keeps only the first half of each block (the mean of a meanstd extraction).
    norm : {"none", "utterance"}
        ``"utterance"`` z-normalises each layer's block (after ``stat``) across its own features, per
        utterance: it uses that clip alone (inductive; no other clip or speaker statistics), and
        removes each clip's overall offset and scale of the hidden states.
    """

    def __init__(self, layer: int | list[int] | str = -1, n_layers: int = 7, stat: str = "as_is",
                 norm: str = "none"):
        self.layer = layer
        self.n_layers = n_layers
        self.stat = stat
        self.norm = norm

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        X = np.asarray(X)
        X = X.reshape(len(X), self.n_layers, -1)
        if self.stat == "mean":
            X = X[:, :, : X.shape[2] // 2]
        elif self.stat != "as_is":
            raise ValueError(f"stat must be 'as_is' or 'mean', got {self.stat!r}")
        if self.norm == "utterance":
            mu = X.mean(axis=2, keepdims=True, dtype=np.float64)
            sd = X.std(axis=2, keepdims=True, dtype=np.float64)
            X = ((X - mu) / np.where(sd > 1e-8, sd, 1.0)).astype(np.float32)
        elif self.norm != "none":
            raise ValueError(f"norm must be 'none' or 'utterance', got {self.norm!r}")
        if isinstance(self.layer, str) and self.layer == "mean":
            return X.mean(axis=1)
        if isinstance(self.layer, (list, tuple)):
            return X[:, list(self.layer)].reshape(len(X), -1)
        return X[:, int(self.layer)]


def _classifier(kind: str, seed: int, params: dict[str, Any]):
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    if kind == "logreg":
        return LogisticRegression(random_state=seed, **{"C": 1.0, "max_iter": 2000,
                                                        "class_weight": "balanced", **params})
    if kind == "svm":
        return SVC(probability=True, random_state=seed, **{"kernel": "rbf", "C": 1.0, "gamma": "scale",
                                                           "class_weight": "balanced", **params})
    raise ValueError(f"clf must be 'logreg' or 'svm', got {kind!r}")


def ssl_probe(params: dict[str, Any], seed: int):
    """Linear / RBF probe on all-layer SSL features: LayerSelect → StandardScaler → classifier.

    ``params``: ``layer`` (-1), ``n_layers`` (7 = whisper-base), ``stat`` ("as_is"), ``norm``
    ("none" or "utterance", see :class:`LayerSelect`), ``clf`` ("logreg" or "svm"), other keys go
    to the classifier (``C``...). Grid keys: ``layer__layer``, ``layer__stat``, ``layer__norm``,
    ``clf__C``.
    """
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    p = dict(params)
    sel = LayerSelect(layer=p.pop("layer", -1), n_layers=int(p.pop("n_layers", 7)),
                      stat=p.pop("stat", "as_is"), norm=p.pop("norm", "none"))
    clf = _classifier(p.pop("clf", "logreg"), seed, p)
    return Pipeline([("layer", sel), ("scale", StandardScaler()), ("clf", clf)])


def _check_members(members) -> list[int | list[int]]:
    if isinstance(members, (str, bytes)) or not isinstance(members, (list, tuple)) or not members:
        raise ValueError(f"members must be a non-empty list of layers (int) or layer lists, got {members!r}")
    out: list[int | list[int]] = []
    for m in members:
        if isinstance(m, (list, tuple)) and m and all(isinstance(v, (int, np.integer)) for v in m):
            out.append([int(v) for v in m])
        elif isinstance(m, (int, np.integer)) and not isinstance(m, bool):
            out.append(int(m))
        else:
            raise ValueError(f"bad ensemble member {m!r}: a layer index or a list of layer indices")
    return out


class LayerEnsemble(BaseEstimator, ClassifierMixin):
    """Average of the class probabilities of one probe per member (model ``ssl_layer_ensemble``).

    Each member is a layer index or a list of layer indices (concatenated) of the all-layer SSL
    features; its probe is LayerSelect → StandardScaler → classifier, fitted on the same rows.
    ``members=[2]`` is the single-layer probe of ``ssl_probe``, ``members=[[1, 2, 3]]`` the
    concatenation, ``members=[1, 2, 3]`` three single-layer probes averaged; so one grid over
    ``members`` (GroupedGridSearch, speaker-grouped inner CV) chooses among all of them.

    Parameters
    ----------
    members : list of int or list of int
    n_layers, stat, norm : as :class:`LayerSelect`.
    clf : {"svm", "logreg"}
    C : regularisation of every member's classifier.
    seed : random state of the classifiers (SVM probability calibration).
    """

    def __init__(self, members=(1, 2, 3, 4), n_layers: int = 5, stat: str = "as_is", norm: str = "none",
                 clf: str = "svm", C: float = 1.0, seed: int = 42):
        self.members = members
        self.n_layers = n_layers
        self.stat = stat
        self.norm = norm
        self.clf = clf
        self.C = C
        self.seed = seed

    def _member(self, layer):
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        return Pipeline([("layer", LayerSelect(layer=layer, n_layers=int(self.n_layers), stat=self.stat,
                                                   norm=self.norm)),
                         ("scale", StandardScaler()),
                         ("clf", _classifier(self.clf, self.seed, {"C": float(self.C)}))])

    def fit(self, X, y):
        X = np.asarray(X)
        self.estimators_ = [self._member(m).fit(X, y) for m in _check_members(self.members)]
        self.classes_ = self.estimators_[0].classes_
        return self

    def predict_proba(self, X):
        X = np.asarray(X)
        return np.mean([e.predict_proba(X) for e in self.estimators_], axis=0)

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def ssl_layer_ensemble(params: dict[str, Any], seed: int) -> LayerEnsemble:
    """:class:`LayerEnsemble` from ``params`` (``members``, ``n_layers``, ``stat``, ``norm``, ``clf``,
    ``C``); grid keys are the same names (``members``, ``norm``, ``C``)."""
    p = dict(params)
    _check_members(p.get("members", (1, 2, 3, 4)))
    if p.get("clf", "svm") not in ("svm", "logreg"):
        raise ValueError(f"clf must be 'logreg' or 'svm', got {p['clf']!r}")
    return LayerEnsemble(seed=seed, **p)

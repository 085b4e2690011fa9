"""Probes on all-layer self-supervised features (``features.kind: ssl`` with ``layers: all``).

:class:`LayerSelect` picks a layer (and statistic) inside a scikit-learn pipeline so that
``GroupedGridSearch`` chooses the layer on the training folds only; :func:`ssl_probe` is the
``ssl_probe`` model: LayerSelect → StandardScaler → logistic regression or RBF SVM.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

__all__ = ["LayerSelect", "ssl_probe"]


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
    """

    def __init__(self, layer: int | list[int] | str = -1, n_layers: int = 7, stat: str = "as_is"):
        self.layer = layer
        self.n_layers = n_layers
        self.stat = stat

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        X = np.asarray(X)
        X = X.reshape(len(X), self.n_layers, -1)
        if self.stat == "mean":
            X = X[:, :, : X.shape[2] // 2]
        elif self.stat != "as_is":
            raise ValueError(f"stat must be 'as_is' or 'mean', got {self.stat!r}")
        if isinstance(self.layer, str) and self.layer == "mean":
            return X.mean(axis=1)
        if isinstance(self.layer, (list, tuple)):
            return X[:, list(self.layer)].reshape(len(X), -1)
        return X[:, int(self.layer)]


def ssl_probe(params: dict[str, Any], seed: int):
    """Linear / RBF probe on all-layer SSL features: LayerSelect → StandardScaler → classifier.

    ``params``: ``layer`` (-1), ``n_layers`` (7 = whisper-base), ``stat`` ("as_is"), ``clf``
    ("logreg" or "svm"), other keys go to the classifier (``C``...). Grid keys:
    ``layer__layer``, ``layer__stat``, ``clf__C``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    p = dict(params)
    sel = LayerSelect(layer=p.pop("layer", -1), n_layers=int(p.pop("n_layers", 7)),
                      stat=p.pop("stat", "as_is"))
    kind = p.pop("clf", "logreg")
    if kind == "logreg":
        clf = LogisticRegression(random_state=seed, **{"C": 1.0, "max_iter": 2000,
                                                        "class_weight": "balanced", **p})
    elif kind == "svm":
        clf = SVC(probability=True, random_state=seed, **{"kernel": "rbf", "C": 1.0, "gamma": "scale",
                                                          "class_weight": "balanced", **p})
    else:
        raise ValueError(f"clf must be 'logreg' or 'svm', got {kind!r}")
    return Pipeline([("layer", sel), ("scale", StandardScaler()), ("clf", clf)])

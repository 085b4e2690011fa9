"""Temperature scaling of a fitted classifier's probabilities (Guo et al., 2017).

One scalar ``T > 0`` divides the model's log-probabilities before a softmax:
``p_T = softmax(log p / T)``. For a network whose probabilities are ``softmax(z)`` this is exactly
``softmax(z / T)`` (the log-sum-exp shift cancels), and for any other model it rescales its
log-probabilities the same way. Dividing by a positive number keeps the order of the classes, so
the predicted label never changes; only the confidence does (``T > 1`` softens, ``T < 1`` sharpens).

``T`` is fitted by minimising the negative log-likelihood on held-out data (:func:`fit_temperature`:
a bounded scalar search over ``log T``); which data that is is the caller's business and must
never be the test fold (:mod:`serkit.evaluation.protocol` holds out a speaker-grouped share of the
training data). :class:`TemperatureScaled` wraps a fitted estimator; :mod:`serkit.models.persist`
saves ``T`` as a plain JSON number in ``estimator.json`` and wraps the estimator again on load, so
a model directory's Predictor applies it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["TemperatureScaled", "apply_temperature", "fit_temperature", "nll"]

#: search range of T (log-uniform bounds of the scalar search)
T_MIN, T_MAX = 0.05, 20.0
_EPS = 1e-12


def apply_temperature(proba: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(proba) / T)`` row-wise (float64; rows sum to 1)."""
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    logp = np.log(np.clip(np.asarray(proba, dtype=np.float64), _EPS, None)) / float(temperature)
    logp -= logp.max(axis=1, keepdims=True)
    e = np.exp(logp)
    return e / e.sum(axis=1, keepdims=True)


def nll(proba: np.ndarray, y_idx: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes (column indices ``y_idx``)."""
    p = np.asarray(proba, dtype=np.float64)[np.arange(len(y_idx)), np.asarray(y_idx)]
    return float(-np.log(np.clip(p, _EPS, None)).mean())


def fit_temperature(proba: np.ndarray, y_idx: np.ndarray) -> float:
    """The ``T`` in ``[T_MIN, T_MAX]`` minimising the NLL of ``apply_temperature(proba, T)`` for
    true class columns ``y_idx`` (bounded Brent search over ``log T``)."""
    from scipy.optimize import minimize_scalar

    proba = np.asarray(proba, dtype=np.float64)
    y_idx = np.asarray(y_idx, dtype=int)
    if proba.ndim != 2 or len(proba) != len(y_idx) or len(y_idx) == 0:
        raise ValueError(f"need probabilities [n, k] and n true labels, got {proba.shape} and {len(y_idx)}")
    res = minimize_scalar(lambda lt: nll(apply_temperature(proba, float(np.exp(lt))), y_idx),
                          bounds=(np.log(T_MIN), np.log(T_MAX)), method="bounded",
                          options={"xatol": 1e-4})
    return float(np.exp(res.x))


class TemperatureScaled:
    """A fitted estimator whose ``predict_proba`` is temperature-scaled; everything else (``embed``,
    ``attention``, ``history_``, ...) is the wrapped estimator's."""

    def __init__(self, estimator: Any, temperature: float):
        if not np.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
        self.estimator = estimator
        self.temperature = float(temperature)

    @property
    def classes_(self):
        return self.estimator.classes_

    def predict_proba(self, X) -> np.ndarray:
        return apply_temperature(self.estimator.predict_proba(X), self.temperature)

    def predict(self, X) -> np.ndarray:
        return np.asarray(self.classes_)[self.predict_proba(X).argmax(axis=1)]

    def __getattr__(self, name: str) -> Any:
        if name in ("estimator", "temperature") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.estimator, name)

    def __repr__(self) -> str:
        return f"TemperatureScaled({self.estimator!r}, temperature={self.temperature:.4g})"

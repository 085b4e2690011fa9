"""What an estimator can do beyond ``fit`` / ``predict_proba``, declared once.

The evaluation protocol, the reports and the model export ask these questions; estimators answer
them by what they define, checked here against :class:`typing.Protocol` declarations instead of
scattered ``hasattr`` calls.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["Estimator", "TakesGroups", "TakesValidation", "Embeds", "Attends", "Checkpoints",
           "Exportable", "Preflights", "model_input", "takes_groups", "takes_validation"]


@runtime_checkable
class Estimator(Protocol):
    """scikit-learn classifier rules: ``fit`` returns self, ``predict_proba`` follows ``classes_``."""

    def fit(self, X: Any, y: Any, *args: Any, **kwargs: Any) -> Any: ...

    def predict_proba(self, X: Any) -> np.ndarray: ...


@runtime_checkable
class TakesGroups(Protocol):
    """``fit(X, y, groups=speakers)``: inner validation / search grouped by speaker."""

    accepts_groups: bool


@runtime_checkable
class TakesValidation(Protocol):
    """``fit(X, y, groups=None, validation=(X_val, y_val))``: a protocol's validation speakers
    (``speaker_holdout``) drive early stopping / checkpoint selection."""

    accepts_validation: bool


@runtime_checkable
class Embeds(Protocol):
    """``embed(X)``: the penultimate representation ``(n, d)`` (t-SNE / PCA in reports)."""

    def embed(self, X: Any) -> np.ndarray: ...


@runtime_checkable
class Attends(Protocol):
    """``attention(X)``: attention weights over time per utterance, or None."""

    def attention(self, X: Any) -> Any: ...


@runtime_checkable
class Checkpoints(Protocol):
    """Writes training checkpoints to ``checkpoint_dir`` (resumed by a repeated run)."""

    checkpoint_dir: str | None

    def set_params(self, **params: Any) -> Any: ...


@runtime_checkable
class Exportable(Protocol):
    """``export_state()`` → (JSON-able spec, named float arrays): saved without pickle by
    :mod:`serkit.models.persist`."""

    def export_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]: ...


@runtime_checkable
class Preflights(Protocol):
    """``preflight(sample, n_classes)``: checks its settings against one input row without
    training (estimators whose dry fit would be slow: torch networks, fine-tuning)."""

    def preflight(self, sample: Any, n_classes: int) -> None: ...


def model_input(est: Any, X: Any) -> Any:
    """scikit-learn models get 2-D arrays; torch estimators (which embed) and two-branch inputs
    get ``X`` as it is."""
    if isinstance(est, Embeds) or isinstance(X, dict) or np.ndim(X) <= 2:
        return X
    return np.asarray(X).reshape(len(X), -1)


def takes_groups(est: Any) -> bool:
    return bool(isinstance(est, TakesGroups) and est.accepts_groups)


def takes_validation(est: Any) -> bool:
    return bool(isinstance(est, TakesValidation) and est.accepts_validation)

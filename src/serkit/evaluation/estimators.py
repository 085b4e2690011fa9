"""Building, checking and fitting the configured estimator (used by the protocol and by
``serkit train``)."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid

from serkit.config import RunConfig
from serkit.features.pipeline import FeaturePipeline
from serkit.models import capabilities as cap
from serkit.models.capabilities import model_input
from serkit.models.classical import GroupedGridSearch
from serkit.models.registry import check_name, make_model

__all__ = ["build_estimator", "check_estimator", "fit", "model_input", "preflight"]


def build_estimator(cfg: RunConfig, speaker_independent: bool = True):
    """The configured model, wrapped in a speaker-grouped grid search when ``model.grid`` is set."""
    check_name(cfg.model.name)
    est = make_model(cfg.model.name, cfg.model.params, cfg.seed)
    if cfg.model.grid:
        est = GroupedGridSearch(est, cfg.model.grid, inner_folds=cfg.model.inner_folds,
                                grouped=speaker_independent, scoring=cfg.model.scoring, seed=cfg.seed)
    return est


def check_estimator(est, cfg: RunConfig) -> None:
    """Parameter names of every grid point exist (``set_params`` on a clone); raises ValueError."""
    if not isinstance(est, GroupedGridSearch):
        return
    for point in ParameterGrid(est.param_grid):
        try:
            clone(est.estimator).set_params(**point)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"model.grid point {point} does not fit model {cfg.model.name!r}: {exc}") \
                from None


def fit(est, X, y, groups, validation=None):
    """Fit with speaker groups where the estimator takes them, and the protocol's validation
    speakers (speaker_holdout) where it takes those."""
    kw = {}
    if cap.takes_groups(est) or cap.takes_validation(est):
        kw["groups"] = groups
    if validation is not None and cap.takes_validation(est):
        kw["validation"] = validation
    return est.fit(model_input(est, X), y, **kw)


def _synthetic(X_row, n_classes: int, per_class: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    n = n_classes * per_class

    def noisy(a):
        a = np.asarray(a, dtype=np.float32)
        return a[None] + rng.normal(0, 1e-2 + np.abs(a).mean(), size=(n, *a.shape)).astype(np.float32)

    X = {k: noisy(v) for k, v in X_row.items()} if isinstance(X_row, Mapping) else noisy(X_row)
    y = np.repeat([f"class{i}" for i in range(n_classes)], per_class)
    return X, y


def preflight(est, pipeline: FeaturePipeline, manifest: pd.DataFrame, classes) -> None:
    """Fail in seconds, not after hours of extraction: features of the first usable file, then a
    dry fit of the model on synthetic data of that shape (torch estimators check their network and
    training settings instead). Raises ValueError naming the problem."""
    head = manifest.head(8)
    fs = pipeline.fit(manifest).transform_manifest(head, progress=False)
    if not len(fs.manifest):
        return  # nothing usable among the first files: the full extraction reports why
    row = {k: v[0] for k, v in fs.X.items()} if isinstance(fs.X, Mapping) else fs.X[0]
    base = est.estimator if isinstance(est, GroupedGridSearch) else est
    if isinstance(base, cap.Preflights):
        try:
            base.preflight(row, len(classes))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"model {type(base).__name__}: {exc}") from None
        return
    trial = clone(base)
    if isinstance(est, GroupedGridSearch):
        trial.set_params(**next(iter(ParameterGrid(est.param_grid))))
    X, y = _synthetic(row, min(max(len(classes), 2), 3))
    try:
        trial.fit(model_input(trial, X), y)
    except Exception as exc:  # any failure here would have come after the extraction
        raise ValueError(f"the model cannot be trained on these features "
                         f"(shape {np.shape(row)}): {type(exc).__name__}: {exc}") from None

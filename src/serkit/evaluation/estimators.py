"""Building, checking and fitting the configured estimator (used by the protocol and by
``serkit train``)."""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid

from serkit.config import CalibrationConfig, RunConfig
from serkit.features.pipeline import FeaturePipeline
from serkit.models import capabilities as cap
from serkit.models.capabilities import model_input
from serkit.models.classical import GroupedGridSearch
from serkit.models.registry import check_name, make_model

__all__ = ["build_estimator", "calibration_split", "check_estimator", "fit", "fit_calibrated",
           "model_input", "preflight"]


def build_estimator(cfg: RunConfig, speaker_independent: bool = True):
    """The configured model, wrapped in a speaker-grouped grid search when ``model.grid`` is set."""
    check_name(cfg.model.name)
    est = make_model(cfg.model.name, cfg.model.params, cfg.seed)
    if cfg.model.grid:
        est = GroupedGridSearch(est, cfg.model.grid, inner_folds=cfg.model.inner_folds,
                                grouped=speaker_independent, scoring=cfg.model.scoring, seed=cfg.seed)
    return est


def check_estimator(est, cfg: RunConfig) -> None:
    """Parameter names of every grid point exist (``set_params`` on a clone) and the calibration
    split suits the model; raises ValueError."""
    if cfg.calibration.method != "none" and cfg.calibration.split == "model_validation":
        base = est.estimator if isinstance(est, GroupedGridSearch) else est
        if not (getattr(base, "val_fraction", 0) or 0) > 0:
            raise ValueError(f"calibration.split=model_validation needs a model that holds out "
                             f"validation speakers (a torch network with val_fraction > 0); model "
                             f"{cfg.model.name!r} does not: use calibration.split=holdout")
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


def calibration_split(y: np.ndarray, groups, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(fit rows, calibration rows)`` of the training data: speaker-grouped when ``groups`` has
    at least two speakers, else stratified by label (random when a class is too small)."""
    from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit, StratifiedShuffleSplit

    idx = np.arange(len(y))
    if groups is not None and len(np.unique(np.asarray(groups))) >= 2:
        return next(GroupShuffleSplit(n_splits=1, test_size=share, random_state=seed)
                    .split(idx, y, np.asarray(groups)))
    try:
        return next(StratifiedShuffleSplit(n_splits=1, test_size=share, random_state=seed).split(idx, y))
    except ValueError:
        return next(ShuffleSplit(n_splits=1, test_size=share, random_state=seed).split(idx))


def fit_calibrated(est, X, y, groups, validation, calibration: CalibrationConfig, seed: int,
                   clean: np.ndarray | None = None):
    """:func:`fit`, then (``calibration.method=temperature``) a temperature fitted on inner
    validation rows of the TRAINING data ``X`` only (or the protocol's validation speakers).

    Returns ``(estimator, record)``: the estimator wrapped in
    :class:`~serkit.models.calibration.TemperatureScaled` and ``record = {"temperature", "n",
    "speakers", "split", "rows"}`` (``rows``: indices into ``X`` the temperature was fitted on, None
    for the protocol's validation set), or the plain fitted estimator and None.

    ``clean`` (bool per row of ``X``): rows that are not augmented copies; the temperature is fitted
    on clean rows only (the copies of held-out rows stay out of model fitting with them, as they
    share their speaker group).
    """
    from serkit.features.pipeline import take
    from serkit.models.calibration import TemperatureScaled, fit_temperature

    y = np.asarray(y).astype(str)
    if calibration.method == "none":
        return fit(est, X, y, groups, validation), None
    if calibration.split == "holdout":
        fit_rows, cal_rows = calibration_split(y, groups, calibration.val_fraction, seed)
        fit(est, take(X, fit_rows), y[fit_rows], None if groups is None else np.asarray(groups)[fit_rows],
            validation)
        if clean is not None:
            cal_rows = cal_rows[np.asarray(clean)[cal_rows]]
        X_cal, y_cal, g_cal = take(X, cal_rows), y[cal_rows], \
            None if groups is None else np.asarray(groups)[cal_rows]
    else:  # model_validation: the rows the model held out itself (or the protocol's validation)
        fit(est, X, y, groups, validation)
        base = getattr(est, "best_estimator_", est)
        if validation is not None:
            cal_rows, (X_cal, y_cal), g_cal = None, validation, None
            y_cal = np.asarray(y_cal).astype(str)
        else:
            cal_rows = getattr(base, "val_index_", None)
            if cal_rows is None or not len(cal_rows):
                raise ValueError("calibration.split=model_validation: the model held out no validation "
                                 "rows (val_fraction is 0 or the training set is tiny); use "
                                 "calibration.split=holdout")
            if clean is not None:
                cal_rows = np.asarray(cal_rows)[np.asarray(clean)[np.asarray(cal_rows)]]
            X_cal, y_cal = take(X, cal_rows), y[cal_rows]
            g_cal = None if groups is None else np.asarray(groups)[cal_rows]
    classes = [str(c) for c in est.classes_]
    known = np.isin(y_cal, classes)  # a class the fit part lacks cannot be scored
    proba = np.asarray(est.predict_proba(model_input(est, take(X_cal, np.flatnonzero(known)))))
    y_idx = np.searchsorted(np.asarray(classes), y_cal[known])
    temperature = fit_temperature(proba, y_idx)
    record = {"temperature": temperature, "n": int(known.sum()), "split": calibration.split,
              "speakers": [] if g_cal is None else sorted({str(s) for s in g_cal}),
              "rows": None if cal_rows is None else np.asarray(cal_rows)}
    return TemperatureScaled(est, temperature), record


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

"""scikit-learn models: random forest, SVM (RBF, standardised), logistic regression, MLP;
and :class:`GroupedGridSearch`, a grid search whose inner CV is grouped by speaker."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC



def _flat(X: np.ndarray) -> np.ndarray:
    return X.reshape(len(X), -1)


def random_forest(params: dict[str, Any], seed: int) -> BaseEstimator:
    p = {"n_estimators": 300, "n_jobs": -1, **params}
    return RandomForestClassifier(random_state=seed, **p)


# scikit-learn 1.9 deprecates SVC(probability=True) (removal in 1.11; serkit pins < 1.10)
warnings.filterwarnings("ignore", message="The `probability` parameter was deprecated",
                        category=FutureWarning)


def svm(params: dict[str, Any], seed: int) -> BaseEstimator:
    p = {"kernel": "rbf", "C": 1.0, "gamma": "scale", "class_weight": "balanced", **params}
    return Pipeline([("scale", StandardScaler()),
                     ("clf", SVC(probability=True, random_state=seed, **p))])


def logreg(params: dict[str, Any], seed: int) -> BaseEstimator:
    p = {"C": 1.0, "max_iter": 2000, "class_weight": "balanced", **params}
    return Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(random_state=seed, **p))])


def mlp(params: dict[str, Any], seed: int) -> BaseEstimator:
    p = {"hidden_layer_sizes": (256, 128, 64), "alpha": 1e-3, "early_stopping": True,
         "max_iter": 500, **params}
    if isinstance(p["hidden_layer_sizes"], list):
        p["hidden_layer_sizes"] = tuple(p["hidden_layer_sizes"])
    return Pipeline([("scale", StandardScaler()), ("clf", MLPClassifier(random_state=seed, **p))])


class GroupedGridSearch(BaseEstimator, ClassifierMixin):
    """GridSearchCV whose inner folds are grouped by speaker when ``grouped`` (speaker-independent
    protocols), stratified random otherwise. ``fit(X, y, groups)``; refits the best on all data."""

    accepts_groups = True

    def __init__(self, estimator: BaseEstimator, param_grid: dict, inner_folds: int = 5,
                 grouped: bool = True, scoring: str = "balanced_accuracy", n_jobs: int = 1,
                 seed: int = 42):
        self.estimator, self.param_grid, self.inner_folds = estimator, param_grid, inner_folds
        self.grouped, self.scoring, self.n_jobs, self.seed = grouped, scoring, n_jobs, seed

    def fit(self, X, y, groups=None):
        X = _flat(np.asarray(X))
        if self.grouped:
            if groups is None:
                raise ValueError("grouped grid search needs speaker groups")
            k = min(self.inner_folds, len(np.unique(groups)))
            if k < 2:
                raise ValueError("grouped grid search needs training data from ≥ 2 speakers")
            cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=self.seed)
        else:
            cv = StratifiedKFold(n_splits=self.inner_folds, shuffle=True, random_state=self.seed)
        search = GridSearchCV(clone(self.estimator), self.param_grid, scoring=self.scoring, cv=cv,
                              n_jobs=self.n_jobs, refit=True)
        search.fit(X, y, groups=groups if self.grouped else None)
        self.search_ = search
        self.best_estimator_ = search.best_estimator_
        self.best_params_ = search.best_params_
        self.best_score_ = float(search.best_score_)
        self.classes_ = search.best_estimator_.classes_
        return self

    def predict_proba(self, X):
        return self.best_estimator_.predict_proba(_flat(np.asarray(X)))

    def predict(self, X):
        return self.best_estimator_.predict(_flat(np.asarray(X)))

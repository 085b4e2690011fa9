"""Model registry: name → factory returning a scikit-learn-style estimator.

Factories take ``(params: dict, seed: int)``. Torch networks of ``serkit.models.nn`` are registered
under their network name (``cnn4``, ``alexnet``...) and wrapped in :class:`TorchClassifier`.
"""
from __future__ import annotations

from typing import Any, Callable

from sklearn.base import BaseEstimator

Factory = Callable[[dict[str, Any], int], BaseEstimator]
MODELS: dict[str, Factory] = {}


def register(name: str):
    def deco(fn: Factory) -> Factory:
        MODELS[name] = fn
        return fn

    return deco


def _load_builtin() -> None:
    from serkit.models import classical  # noqa: F401  (registers rf, svm, logreg, mlp_sklearn)

    try:
        from serkit.models.nn.registry import NETWORKS
        from serkit.models.torch_estimator import TorchClassifier
    except ImportError:  # torch extras missing: classical models still work
        return
    for net in NETWORKS:
        if net not in MODELS:
            MODELS[net] = (lambda n: lambda params, seed: TorchClassifier(
                network=n, seed=seed, **params))(net)
    # self-supervised backbones: linear probe over cached layers, fine-tuning (+ head_* networks),
    # and study 001's pretrained SER checkpoint with a retrained classifier
    from serkit.features.ssl import register_models as _ssl
    from serkit.models.nn.finetune import register_models as _finetune
    from serkit.models.pretrained_classifier import register_models as _pretrained

    for register_fn in (_ssl, _finetune, _pretrained):
        register_fn()


def available() -> list[str]:
    _load_builtin()
    return sorted(MODELS)


def make_model(name: str, params: dict[str, Any] | None = None, seed: int = 42) -> BaseEstimator:
    _load_builtin()
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}")
    try:
        return MODELS[name](dict(params or {}), seed)
    except TypeError as exc:
        raise ValueError(f"bad parameters for model {name!r}: {exc}") from None

"""Model registry: name → factory returning a scikit-learn-style estimator.

Two plain tables, no registration calls: :data:`MODELS` names each factory as
``"module:function"`` (``factory(params: dict, seed: int)``, imported on first use), and every
network of :data:`serkit.models.nn.registry.NETWORKS` (``cnn4``, ``alexnet``, ``head_linear``...)
is a model too, wrapped in :class:`~serkit.models.torch_estimator.TorchClassifier`.
"""
from __future__ import annotations

from typing import Any

from serkit._lazy import resolve
from serkit.models.nn.registry import NETWORKS

MODELS: dict[str, str] = {
    "rf": "serkit.models.classical:random_forest",
    "svm": "serkit.models.classical:svm",
    "logreg": "serkit.models.classical:logreg",
    "mlp_sklearn": "serkit.models.classical:mlp",
    # self-supervised backbones: probe over cached layers, fine-tuning, study 001's pretrained
    # SER checkpoint with a retrained classifier
    "ssl_probe": "serkit.models.ssl_probe:ssl_probe",
    "ssl_layer_ensemble": "serkit.models.ssl_probe:ssl_layer_ensemble",
    "ssl_finetune": "serkit.models.nn.finetune:finetune_classifier",
    "pretrained_ser": "serkit.models.pretrained_classifier:pretrained_classifier",
}


def available() -> list[str]:
    """Every model name: the :data:`MODELS` table and the registered networks."""
    return sorted({*MODELS, *NETWORKS})


def check_name(name: str) -> None:
    """Raise ``ValueError`` listing the choices when ``name`` is not a model."""
    if name not in MODELS and name not in NETWORKS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}")


def make_model(name: str, params: dict[str, Any] | None = None, seed: int = 42):
    check_name(name)
    try:
        if name in MODELS:
            return resolve(MODELS[name])(dict(params or {}), seed)
        from serkit.models.torch_estimator import TorchClassifier

        return TorchClassifier(network=name, seed=seed, **dict(params or {}))
    except TypeError as exc:
        raise ValueError(f"bad parameters for model {name!r}: {exc}") from None

"""The extractor contract and the registry of feature kinds.

An extractor turns one float32 mono signal into a fixed-shape array: a vector (functionals,
handcrafted statistics) or a matrix (frequency × frames). ``params()`` must describe everything that
changes the output: it is part of the cache key.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable

import numpy as np


class FeatureExtractor(ABC):
    """Base class: ``__call__(signal, sr) -> np.ndarray`` with the same shape for every input."""

    name: str = "base"
    #: bump when the implementation changes its output
    version: int = 1

    def params(self) -> dict[str, Any]:
        return {}

    def cache_params(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, **self.params()}

    def feature_names(self) -> list[str] | None:
        return None

    @abstractmethod
    def __call__(self, signal: np.ndarray, sr: int) -> np.ndarray:
        ...


FEATURES: dict[str, Callable[..., FeatureExtractor]] = {}


def register(name: str):
    """Class decorator adding an extractor factory to :data:`FEATURES`."""

    def deco(cls):
        cls.name = name
        FEATURES[name] = cls
        return cls

    return deco


def make_extractor(kind: str, params: dict[str, Any] | None = None) -> FeatureExtractor:
    _load_builtin()
    if kind not in FEATURES:
        raise ValueError(f"unknown feature kind {kind!r}; available: {sorted(FEATURES)}")
    try:
        return FEATURES[kind](**(params or {}))
    except TypeError as exc:
        raise ValueError(f"bad parameters for feature kind {kind!r}: {exc}") from None


def _load_builtin() -> None:
    # importing registers the built-in extractors
    from serkit.features import handcrafted, opensmile_features, spectrogram, ssl  # noqa: F401

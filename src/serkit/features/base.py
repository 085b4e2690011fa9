"""The extractor contract and the registry of feature kinds.

An extractor turns one float32 mono signal into a fixed-shape array: a vector (functionals,
handcrafted statistics) or a matrix (frequency × frames). ``params()`` must describe everything that
changes the output: it is part of the cache key.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from serkit._lazy import resolve


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

    def extract_batch(self, signals: list[np.ndarray], sr: int) -> np.ndarray:
        """Features of several prepared signals ``[n, ...]``, computed now (no disk cache);
        extractors that can batch (neural encoders) override it."""
        return np.stack([np.asarray(self(s, sr), dtype=np.float32) for s in signals])


#: feature kind -> ``"module:Class"`` of its extractor (a plain table; classes load on first use)
FEATURES: dict[str, str] = {
    "handcrafted": "serkit.features.handcrafted:Handcrafted",
    "egemaps": "serkit.features.opensmile_features:EGeMAPS",
    "compare": "serkit.features.opensmile_features:ComParE",
    "mfcc": "serkit.features.spectrogram:MFCC",
    "logmel": "serkit.features.spectrogram:LogMel",
    "melimage": "serkit.features.spectrogram:MelImage",
    "ssl": "serkit.features.ssl:SSLFeatures",
    "waveform": "serkit.features.ssl:Waveform",
}


def extractor_class(kind: str) -> type[FeatureExtractor]:
    """The extractor class registered as ``kind``; unknown kinds raise ``ValueError``."""
    if kind not in FEATURES:
        raise ValueError(f"unknown feature kind {kind!r}; available: {', '.join(sorted(FEATURES))}")
    return resolve(FEATURES[kind])


def make_extractor(kind: str, params: dict[str, Any] | None = None) -> FeatureExtractor:
    cls = extractor_class(kind)
    try:
        return cls(**(params or {}))
    except TypeError as exc:
        raise ValueError(f"bad parameters for feature kind {kind!r}: {exc}") from None

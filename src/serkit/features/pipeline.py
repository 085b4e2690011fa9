"""The feature pipeline: audio preparation + extractor stream(s) + metadata codes, as one object.

The same :class:`FeaturePipeline` turns a manifest into model input during training and
evaluation, and one array or file into model input at prediction time; it is fitted with the
model and saved with it (:meth:`FeaturePipeline.spec` is plain JSON).

* ``streams``: the primary feature kind and, for two-branch networks, a secondary one; the model
  then receives ``{"spec": primary, "scalars": secondary (+ metadata)}``.
* ``metadata``: manifest columns label-encoded as extra features; the category lists are learnt by
  :meth:`fit` (no labels involved) and saved.
* ``test_time_speaker_norm`` (TRANSDUCTIVE): every speaker's features are z-normalised with the
  statistics of all that speaker's utterances in the manifest being transformed, test utterances
  included. A single new clip cannot provide that, so such a pipeline is not portable.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from serkit.config import SAMPLE_RATE, TRANSDUCTIVE_NOTE
from serkit.features.base import FeatureExtractor, make_extractor
from serkit.features.extract import check_finite, extract_manifest
from serkit.io.audio import AudioError, load_audio, prepare

__all__ = ["AudioError", "FeaturePipeline", "FeatureSet", "NotPortableError", "n_rows",
           "speaker_normalize", "take"]

SPEC_VERSION = 1


class NotPortableError(ValueError):
    """The pipeline needs something a single new clip cannot provide."""


def take(X, idx):
    """Rows ``idx`` of an array or of every array of a ``{"spec", "scalars"}`` mapping."""
    return {k: v[idx] for k, v in X.items()} if isinstance(X, Mapping) else X[idx]


def n_rows(X) -> int:
    return len(next(iter(X.values()))) if isinstance(X, Mapping) else len(X)


def speaker_normalize(X: np.ndarray, speakers: np.ndarray) -> np.ndarray:
    """Z-normalise each speaker's features with that speaker's own mean and std (no labels used).

    TRANSDUCTIVE when the speakers include test speakers: see the module docstring.
    """
    out = np.empty_like(X, dtype=np.float32)
    for s in np.unique(speakers):
        idx = speakers == s
        axes = (0,) if X.ndim == 2 else tuple(i for i in range(X.ndim) if i != 1)
        mu = X[idx].mean(axis=axes, keepdims=True)
        sd = X[idx].std(axis=axes, keepdims=True)
        out[idx] = (X[idx] - mu) / np.where(sd > 1e-8, sd, 1.0)
    return out


@dataclass
class FeatureSet:
    """Model input for the usable rows of a manifest, and what happened to the others."""

    X: Any  # array [n, ...] or {"spec": ..., "scalars": ...}
    manifest: pd.DataFrame  # the usable rows, in order
    skipped: list[dict] = field(default_factory=list)  # {path, key, stage, kind, reason}
    extraction: list[dict] = field(default_factory=list)  # speed per stream


class FeaturePipeline:
    """Audio preparation → extractor stream(s) → metadata codes (→ transductive speaker norm).

    Parameters
    ----------
    audio : dict
        Keyword arguments of :func:`serkit.io.audio.prepare` (``AudioConfig`` fields).
    kind, params : str, dict
        The primary feature kind (``serkit.features.base.FEATURES``) and its parameters.
    secondary : (kind, params) or None
        Second stream for two-branch networks.
    metadata : sequence of str
        Manifest columns appended (label-encoded) to the last stream.
    test_time_speaker_norm : bool
        TRANSDUCTIVE per-speaker z-normalisation (see the module docstring).
    cache_dir, n_jobs : feature cache root and parallel workers (manifest extraction only).
    """

    def __init__(self, audio: Mapping[str, Any], kind: str, params: Mapping[str, Any] | None = None,
                 secondary: tuple[str, Mapping[str, Any]] | None = None,
                 metadata: Sequence[str] = (), test_time_speaker_norm: bool = False,
                 cache_dir: str | None = None, n_jobs: int = 2):
        self.audio = dict(audio)
        self.streams_spec: list[tuple[str, dict]] = [(kind, dict(params or {}))]
        if secondary is not None:
            self.streams_spec.append((secondary[0], dict(secondary[1] or {})))
        self.metadata = list(metadata)
        self.test_time_speaker_norm = bool(test_time_speaker_norm)
        self.cache_dir = cache_dir
        self.n_jobs = int(n_jobs)
        self.categories_: dict[str, list[str]] | None = None if self.metadata else {}
        self._extractors: list[FeatureExtractor] | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, audio, features) -> "FeaturePipeline":
        """From ``RunConfig.audio`` and ``RunConfig.features``."""
        sec = features.secondary
        return cls(audio.model_dump(), features.kind, features.params,
                   secondary=None if sec is None else (sec.kind, sec.params),
                   metadata=features.metadata, test_time_speaker_norm=features.test_time_speaker_norm,
                   cache_dir=features.cache_dir, n_jobs=features.n_jobs)

    @property
    def extractors(self) -> list[FeatureExtractor]:
        if self._extractors is None:
            self._extractors = [make_extractor(k, p) for k, p in self.streams_spec]
        return self._extractors

    @property
    def two_branch(self) -> bool:
        return len(self.streams_spec) > 1

    @property
    def sample_rate(self) -> int:
        return int(self.audio.get("sample_rate", SAMPLE_RATE))

    def spec(self) -> dict[str, Any]:
        """Plain-JSON description (with the fitted metadata categories): :meth:`from_spec` rebuilds it."""
        return {"spec_version": SPEC_VERSION, "audio": self.audio,
                "streams": [{"kind": k, "params": p, "extractor": e.cache_params()}
                            for (k, p), e in zip(self.streams_spec, self.extractors)],
                "metadata": self.metadata, "categories": self.categories_,
                "test_time_speaker_norm": self.test_time_speaker_norm}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> "FeaturePipeline":
        if spec.get("spec_version") != SPEC_VERSION:
            raise ValueError(f"feature pipeline spec version {spec.get('spec_version')!r} is not "
                             f"supported (this serkit reads version {SPEC_VERSION})")
        streams = spec["streams"]
        pipe = cls(spec["audio"], streams[0]["kind"], streams[0]["params"],
                   secondary=(streams[1]["kind"], streams[1]["params"]) if len(streams) > 1 else None,
                   metadata=spec.get("metadata", []),
                   test_time_speaker_norm=bool(spec.get("test_time_speaker_norm", False)))
        pipe.categories_ = spec.get("categories")
        return pipe

    # ------------------------------------------------------------------ fitting
    def fit(self, manifest: pd.DataFrame) -> "FeaturePipeline":
        """Learn the metadata category lists (no labels are used)."""
        cats = {}
        for c in self.metadata:
            if c not in manifest.columns:
                raise ValueError(f"features.metadata names {c!r}, which the manifest does not have "
                                 f"(columns: {', '.join(manifest.columns)})")
            cats[c] = sorted(manifest[c].astype(str).unique().tolist())
        self.categories_ = cats
        return self

    def metadata_codes(self, manifest: pd.DataFrame) -> np.ndarray:
        """Label-encoded metadata columns ``[n, len(metadata)]`` (unseen categories: -1)."""
        if self.categories_ is None:
            raise RuntimeError("FeaturePipeline.fit() must run before metadata can be encoded")
        cols = []
        for c in self.metadata:
            index = {v: i for i, v in enumerate(self.categories_[c])}
            cols.append(np.array([index.get(v, -1) for v in manifest[c].astype(str)], np.float32))
        return np.stack(cols, axis=1) if cols else np.zeros((len(manifest), 0), np.float32)

    # ------------------------------------------------------------------ portability
    def portability_problems(self) -> list[str]:
        """Why this pipeline cannot turn one new clip into model input (empty: it can)."""
        out = []
        if self.test_time_speaker_norm:
            out.append("features.test_time_speaker_norm is on: " + TRANSDUCTIVE_NOTE + "; one new clip "
                       "of an unknown speaker has no such statistics")
        if self.metadata:
            out.append(f"features.metadata uses manifest columns {self.metadata}, which a new "
                       "recording does not have")
        return out

    def check_portable(self) -> None:
        problems = self.portability_problems()
        if problems:
            raise NotPortableError("this model cannot be used on new recordings: " + "; ".join(problems)
                                   + ". Retrain it without these options.")

    # ------------------------------------------------------------------ transforming
    def _assemble(self, arrays: list[np.ndarray], manifest: pd.DataFrame | None):
        if self.metadata:
            if arrays[-1].ndim != 2:
                raise ValueError("features.metadata can only be appended to vector features "
                                 "(use features.secondary for spectrogram models)")
            arrays[-1] = np.hstack([arrays[-1], self.metadata_codes(manifest)])
        return {"spec": arrays[0], "scalars": arrays[1]} if self.two_branch else arrays[0]

    def transform_manifest(self, manifest: pd.DataFrame, *, progress: bool = True,
                           log=None) -> FeatureSet:
        """Features of every usable row; rows that fail are skipped with their reason."""
        results, extraction = [], []
        for (kind, _), ext in zip(self.streams_spec, self.extractors):
            res = extract_manifest(manifest, ext, self.audio, cache_dir=self.cache_dir,
                                   n_jobs=self.n_jobs, progress=progress)
            results.append(res)
            extraction.append(res.speed(kind))
        ok = np.logical_and.reduce([r.ok for r in results])
        keys = dict(zip(manifest["path"].astype(str), manifest["key"].astype(str)))
        skipped: dict[str, dict] = {}
        for r in results:
            for f in r.failures:
                skipped.setdefault(f["path"], {"path": f["path"], "key": keys.get(f["path"]),
                                               "stage": "features", "kind": f["kind"],
                                               "reason": f["error"]})
        if log is not None:
            for s in skipped.values():
                log(f"skipped: {s['reason']}")
        arrays = [r.features[ok[r.ok]] for r in results]
        used = manifest[ok].reset_index(drop=True)
        if self.test_time_speaker_norm:
            speakers = used["speaker"].astype(str).to_numpy()
            arrays = [speaker_normalize(a, speakers) for a in arrays]
        return FeatureSet(self._assemble(arrays, used), used, list(skipped.values()), extraction)

    def prepare(self, x: np.ndarray, sr: int, name: str = "audio") -> np.ndarray:
        """The prepared signal (:func:`serkit.io.audio.prepare` with this pipeline's settings)."""
        return prepare(x, sr, name=name, **self.audio)

    def transform_prepared(self, signals: Sequence[np.ndarray], names: Sequence[str] | None = None):
        """Model input for already prepared signals (inductive pipelines only)."""
        self.check_portable()
        names = list(names) if names is not None else [f"signal {i}" for i in range(len(signals))]
        arrays = []
        for ext in self.extractors:
            feats = np.asarray(ext.extract_batch(list(signals), self.sample_rate), dtype=np.float32)
            for f, n in zip(feats, names):
                check_finite(f, n)
            arrays.append(feats)
        return self._assemble(arrays, None)

    def transform_array(self, x: np.ndarray, sr: int, name: str = "audio"):
        """Model input (one row) for one signal; raises :class:`AudioError` naming ``name``."""
        return self.transform_prepared([self.prepare(x, sr, name)], [name])

    def transform_file(self, path: str | Path):
        """Model input (one row) for one audio file; raises :class:`AudioError` naming it."""
        self.check_portable()
        return self.transform_prepared([load_audio(path, **self.audio)], [str(path)])


"""Run an extractor over a manifest: cached, parallel over files, with a progress bar.

Every file is decoded and prepared by :func:`serkit.io.audio.load_audio` (which refuses empty,
too-short and silent clips, naming the file); features that come out non-finite are refused too.
A refused file is skipped with its reason, never zero-filled.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from serkit.config import SAMPLE_RATE
from serkit.features.base import FeatureExtractor
from serkit.features.cache import FeatureCache
from serkit.io.audio import AudioError, load_audio

@dataclass
class ExtractionResult:
    """Features for the usable rows of a manifest; failures are listed, not raised."""

    features: np.ndarray  # [n_ok, ...]
    ok: np.ndarray  # bool mask over the manifest rows
    failures: list[dict] = field(default_factory=list)  # {"path", "kind", "error"}
    cached: int = 0
    #: files computed (not from the cache), their audio seconds (header durations) and wall time
    computed: int = 0
    audio_s: float = 0.0
    wall_s: float = 0.0

    def speed(self, stream: str) -> dict:
        """Extraction speed record for metrics.json (``x_realtime`` = audio s per wall s)."""
        xrt = self.audio_s / self.wall_s if self.wall_s > 0 and self.computed else None
        return {"stream": stream, "files": int(len(self.ok)), "computed": int(self.computed),
                "cached": int(self.cached), "audio_s": round(self.audio_s, 1),
                "wall_s": round(self.wall_s, 1), "x_realtime": None if xrt is None else round(xrt, 1)}


def check_finite(feats: np.ndarray, name: str) -> np.ndarray:
    """Refuse NaN / inf features (a too-short or silent clip) with an error naming the file."""
    bad = ~np.isfinite(feats)
    if bad.any():
        raise AudioError(f"{name}: {int(bad.sum())} of {bad.size} feature values are NaN or infinite "
                         "(the clip is probably too short or silent for this extractor)", "not_finite")
    return feats


def compute_one(path: str, extractor: FeatureExtractor, audio: dict[str, Any]) -> np.ndarray:
    """Decode, prepare and extract one file; raises :class:`AudioError` naming it."""
    x = load_audio(path, **audio)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        feats = np.asarray(extractor(x, audio.get("sample_rate", SAMPLE_RATE)), dtype=np.float32)
    for w in caught:  # libraries warn without naming the file (openSMILE: "Segment too short")
        warnings.warn(f"{path}: {w.message}", w.category, stacklevel=2)
    return check_finite(feats, path)


def _compute(path: str, key: str | None, extractor: FeatureExtractor, audio: dict[str, Any],
             cache: FeatureCache | None) -> tuple[np.ndarray | None, tuple[str, str] | None, bool]:
    if cache is not None and key is not None:
        hit = cache.load(key)
        if hit is not None:
            return hit, None, True
    try:
        feats = compute_one(path, extractor, audio)
    except AudioError as exc:
        return None, (exc.kind, str(exc)), False
    except Exception as exc:  # an extractor failing on one file must not lose the batch
        return None, ("extractor_failed",
                      f"{path}: feature extraction failed ({type(exc).__name__}: {exc})"), False
    if cache is not None and key is not None:
        cache.store(key, feats)
    return feats, None, False


def extract_manifest(manifest: pd.DataFrame, extractor: FeatureExtractor, audio: dict[str, Any],
                     *, cache_dir: str | None = None, use_cache: bool = True, n_jobs: int = 2,
                     progress: bool = True, desc: str | None = None) -> ExtractionResult:
    """Extract features for every row of ``manifest`` (column ``path``).

    The cache key combines the file content hash, ``audio`` (decoding parameters) and
    ``extractor.cache_params()``.
    """
    t0 = time.perf_counter()
    paths = manifest["path"].astype(str).tolist()
    # the usability checks (min_duration_s, silence_dbfs) are part of the key: a cached entry is a
    # file that passed them
    cache = FeatureCache(cache_dir, {"audio": audio, "extractor": extractor.cache_params()}) \
        if use_cache else None
    keys: list[str | None] = []
    for p in paths:
        try:
            keys.append(cache.key_for(p) if cache else None)
        except OSError:
            keys.append(None)
    if cache:
        cache.index.save()
    label = desc or f"{extractor.name} features"
    bar = tqdm(total=len(paths), desc=label, disable=not progress, unit="file")
    results: list[tuple[np.ndarray | None, tuple[str, str] | None, bool]] = []
    if n_jobs == 1 or len(paths) < 8:
        for p, k in zip(paths, keys):
            results.append(_compute(p, k, extractor, audio, cache))
            bar.update()
    else:
        gen = Parallel(n_jobs=n_jobs, return_as="generator", batch_size=4)(
            delayed(_compute)(p, k, extractor, audio, cache) for p, k in zip(paths, keys))
        for r in gen:
            results.append(r)
            bar.update()
    bar.close()
    ok = np.array([r[0] is not None for r in results], dtype=bool)
    failures = [{"path": p, "kind": r[1][0], "error": r[1][1]}
                for p, r in zip(paths, results) if r[0] is None]
    arrays = [r[0] for r in results if r[0] is not None]
    if arrays:
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"extractor {extractor.name!r} returned different shapes {sorted(shapes)[:3]}"
                             "; set audio.duration_s (or the extractor's frames) for matrices")
        feats = np.stack(arrays)
    else:
        feats = np.zeros((0,), dtype=np.float32)
    computed = np.array([r[0] is not None and not r[2] for r in results], dtype=bool)
    durations = pd.to_numeric(manifest["duration"], errors="coerce").to_numpy() \
        if "duration" in manifest.columns else np.full(len(paths), np.nan)
    audio_s = float(np.nansum(durations[computed])) if len(paths) else 0.0
    return ExtractionResult(feats, ok, failures, cached=sum(r[2] for r in results),
                            computed=int(computed.sum()), audio_s=audio_s,
                            wall_s=time.perf_counter() - t0)

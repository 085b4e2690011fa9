"""Run an extractor over a manifest: cached, parallel over files, with a progress bar."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from serkit.features.base import FeatureExtractor
from serkit.features.cache import FeatureCache
from serkit.io.audio import AudioError, load_audio


@dataclass
class ExtractionResult:
    """Features for the usable rows of a manifest; failures are listed, not raised."""

    features: np.ndarray  # [n_ok, ...]
    ok: np.ndarray  # bool mask over the manifest rows
    failures: list[dict] = field(default_factory=list)  # {"path", "error"}
    cached: int = 0


def _compute(path: str, key: str | None, extractor: FeatureExtractor, audio: dict[str, Any],
             cache: FeatureCache | None) -> tuple[np.ndarray | None, str | None, bool]:
    if cache is not None and key is not None:
        hit = cache.load(key)
        if hit is not None:
            return hit, None, True
    try:
        x = load_audio(path, **audio)
        feats = np.asarray(extractor(x, audio.get("sample_rate", 16000)), dtype=np.float32)
    except AudioError as exc:
        return None, str(exc), False
    except Exception as exc:  # an extractor failing on one file must not lose the batch
        return None, f"{path}: feature extraction failed ({type(exc).__name__}: {exc})", False
    if not np.all(np.isfinite(feats)):
        feats = np.nan_to_num(feats, nan=0.0, posinf=0.0, neginf=0.0)
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
    paths = manifest["path"].astype(str).tolist()
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
    results: list[tuple[np.ndarray | None, str | None, bool]] = []
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
    failures = [{"path": p, "error": r[1]} for p, r in zip(paths, results) if r[0] is None]
    arrays = [r[0] for r in results if r[0] is not None]
    if arrays:
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"extractor {extractor.name!r} returned different shapes {sorted(shapes)[:3]}"
                             "; set audio.duration_s (or the extractor's frames) for matrices")
        feats = np.stack(arrays)
    else:
        feats = np.zeros((0,), dtype=np.float32)
    return ExtractionResult(feats, ok, failures, cached=sum(r[2] for r in results))

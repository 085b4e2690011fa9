"""Frozen self-supervised / ASR backbone embeddings (wav2vec2, HuBERT, WavLM, data2vec, Whisper).

``ssl`` runs a :func:`serkit.backbones.load_backbone` encoder once per file, pools every hidden
layer over time (masked mean and standard deviation) and returns the layer(s) asked for.

Layer choice without re-running the backbone
--------------------------------------------
The backbone is the expensive part; choosing a layer is not. So the extractor keeps its own
*layer cache*: for each signal (keyed by a hash of the decoded samples, the sample rate and the
backbone) it stores the pooled statistics of ALL layers, ``[L, 2D]`` float32 (mean ‖ std; the
``mean`` pooling is the first half). ``extract_manifest``'s ordinary cache is keyed by
``cache_params()`` (which include ``layers`` and ``pooling``), so changing ``layers`` misses that
cache, decodes the audio again and then hits the layer cache: the backbone is not run again.
Nothing in ``features/extract.py`` or the protocol has to change.

Two other ways to choose layers after extraction:

* ``layers: all`` returns every layer flattened (``L * D'``); ``serkit.models.ssl_probe.LayerSelect``
  (a scikit-learn transformer, model name ``ssl_probe``) picks a layer / statistic inside a pipeline,
  so ``GroupedGridSearch`` can choose the layer on the training folds only
  (``model.grid: {layer__layer: [3, 4, 5, 6]}``);
* :meth:`SSLFeatures.select` maps an all-layer ``[L, 2D]`` array to what the extractor would
  return for its ``layers`` / ``pooling``.

Frame-level features (``frames: true``) return ``[k, T, D]`` float32 for the selected layers (the
layer cache stores them as float16 ``[L, T, D]``); set ``audio.duration_s`` so that every file
has the same ``T``. They are meant for attention pooling heads.

Example config::

    features:
      kind: ssl
      params: {backbone: whisper-base, pooling: meanstd, layers: 4}
      n_jobs: 1          # torch extractors: one process
"""
from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from serkit.config import SAMPLE_RATE
from serkit.features.base import FeatureExtractor
from serkit.features.cache import default_cache_dir, params_hash

__all__ = ["SSLFeatures", "Waveform", "select_pooled", "layer_cache_dir"]

LayerSpec = int | Sequence[int] | str


def _norm_layers(layers: LayerSpec) -> int | list[int] | str:
    if isinstance(layers, str):
        s = layers.strip().lower()
        if s in ("all", "mean", "last"):
            return -1 if s == "last" else s
        try:
            vals = [int(t) for t in s.split(",") if t.strip()]
        except ValueError:
            raise ValueError(f"bad layers {layers!r}: int, list of ints, 'all', 'mean' or 'last'") from None
        return vals[0] if len(vals) == 1 else vals
    if isinstance(layers, (int, np.integer)):
        return int(layers)
    return [int(v) for v in layers]


def select_pooled(stats: np.ndarray, layers: LayerSpec = -1, pooling: str = "mean") -> np.ndarray:
    """Pick layers / statistics from all-layer pooled stats ``[L, 2D]`` (mean ‖ std).

    Returns a 1-D vector: ``D`` (mean) or ``2D`` (meanstd) per selected layer, concatenated; for
    ``layers="mean"`` the statistics averaged over layers; ``"all"`` every layer.
    """
    stats = np.asarray(stats)
    if stats.ndim != 2 or stats.shape[1] % 2:
        raise ValueError(f"expected all-layer stats [L, 2D], got {stats.shape}")
    d = stats.shape[1] // 2
    if pooling == "mean":
        stats = stats[:, :d]
    elif pooling != "meanstd":
        raise ValueError(f"pooling must be 'mean' or 'meanstd', got {pooling!r}")
    spec = _norm_layers(layers)
    if spec == "all":
        out = stats
    elif spec == "mean":
        out = stats.mean(axis=0)
    elif isinstance(spec, int):
        out = stats[spec]
    else:
        out = stats[spec]
    return np.ascontiguousarray(out.reshape(-1), dtype=np.float32)


def layer_cache_dir(root: str | Path | None = None) -> Path:
    """Where the all-layer caches live: ``$SERKIT_CACHE/ssl_layers`` (or ``root``)."""
    return Path(root) if root else default_cache_dir().parent / "ssl_layers"


class SSLFeatures(FeatureExtractor):
    """Pooled hidden states of a pretrained speech encoder.

    Parameters
    ----------
    backbone : str
        Hub id, local folder, or offline name (``whisper-base``, ``whisper-tiny.en``).
    pooling : {"mean", "meanstd"}
        Masked mean, or mean ‖ standard deviation (``2D``) over time.
    layers : int, list of int, "all", "mean" or "last"
        Hidden states to return (0 = embedding output, -1 = last layer); a list is concatenated.
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``...
    frames : bool
        Return frame-level ``[k, T, D]`` features of the selected layers instead of pooled ones.
    layer_cache : bool
        Keep the all-layer cache described in the module docstring.
    cache_dir : str, optional
        Root of the all-layer cache (default ``$SERKIT_CACHE/ssl_layers``).
    num_threads : int
        ``torch.set_num_threads`` in the process that runs the backbone (CPU).
    """

    name = "ssl"

    version = 1

    def __init__(self, backbone: str = "whisper-base", pooling: str = "mean", layers: LayerSpec = -1,
                 device: str = "auto", frames: bool = False, layer_cache: bool = True,
                 cache_dir: str | None = None, num_threads: int = 2):
        if pooling not in ("mean", "meanstd"):
            raise ValueError(f"pooling must be 'mean' or 'meanstd', got {pooling!r}")
        self.backbone = str(backbone)
        self.pooling = pooling
        self.layers = _norm_layers(layers)
        self.device = device
        self.frames = bool(frames)
        self.layer_cache = bool(layer_cache)
        self.cache_dir = cache_dir
        self.num_threads = int(num_threads)
        self._bb = None
        self._lock = threading.Lock()
        #: encoder arithmetic at prediction time ("auto" | "fp32" | "bf16"; serkit.config.InferenceConfig)
        self.precision = "fp32"
        #: number of times the backbone actually ran (tests / benchmarks)
        self.backbone_calls = 0

    # ------------------------------------------------------------------ contract
    def params(self) -> dict[str, Any]:
        return {"backbone": self.backbone, "pooling": self.pooling, "layers": self.layers,
                "frames": self.frames}

    def backbone_params(self) -> dict[str, Any]:
        """What determines the all-layer output (no layer / pooling choice)."""
        return {"name": "ssl_layers", "version": self.version, "backbone": self.backbone}

    def __getstate__(self):  # the backbone is loaded lazily in each worker, never pickled
        state = dict(self.__dict__)
        state["_bb"] = None
        state.pop("_lock", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ backbone
    def _device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def load(self):
        """The backbone (loaded on first use in this process)."""
        if self._bb is None:
            import torch

            from serkit.backbones import load_backbone

            if self._device() == "cpu" and self.num_threads > 0:
                torch.set_num_threads(self.num_threads)
            self._bb = load_backbone(self.backbone, device=self._device())
        return self._bb

    def forward_stats(self, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the backbone on one signal: pooled ``[L, 2D]`` float32 and frames ``[L, T, D]`` fp16."""
        import torch

        bb = self.load()
        with torch.inference_mode():
            hidden, mask = bb.forward_layers([np.asarray(signal, dtype=np.float32)])
        self.backbone_calls += 1
        h = hidden[:, 0, : int(mask[0].sum())].float()  # [L, T, D] valid frames only
        mean = h.mean(dim=1)
        std = h.std(dim=1, unbiased=False) if h.shape[1] > 1 else torch.zeros_like(mean)
        stats = torch.cat([mean, std], dim=-1).cpu().numpy().astype(np.float32)
        return stats, h.to(torch.float16).cpu().numpy()

    def pooled_batch(self, signals: list[np.ndarray], max_layer: int | None = None) -> np.ndarray:
        """Pooled stats ``[B, L, 2D]`` of several signals in one padded forward pass (masked mean /
        std over each signal's own frames: padding changes nothing); ``L`` = every hidden state, or
        those up to ``max_layer``. The encoder runs at ``self.precision``; pooling is float32."""
        import torch

        from serkit.backbones.precision import autocast

        bb = self.load()
        with torch.inference_mode():
            with autocast(self.precision, self._device()):
                hidden, mask = bb.forward_layers([np.asarray(s, dtype=np.float32) for s in signals],
                                                 max_layer=max_layer)
            self.backbone_calls += len(signals)
            h = hidden.float()                                  # [L, B, T, D]
            m = mask.to(h.dtype)[None, :, :, None]              # [1, B, T, 1]
            n = m.sum(dim=2).clamp(min=1.0)                     # [1, B, 1]
            mean = (h * m).sum(dim=2) / n                       # [L, B, D]
            var = (((h - mean[:, :, None]) ** 2) * m).sum(dim=2) / n
            stats = torch.cat([mean, var.clamp(min=0).sqrt()], dim=-1)   # [L, B, 2D]
        return stats.permute(1, 0, 2).cpu().numpy().astype(np.float32)

    def configure(self, precision: str = "auto", threads: int = 0) -> None:
        """Inference settings (never part of the features' identity): encoder precision and threads."""
        from serkit.backbones.precision import resolve_precision

        self.precision = resolve_precision(precision, self._device())
        if threads > 0:
            self.num_threads = int(threads)
            if self._bb is not None and self._device() == "cpu":
                import torch

                torch.set_num_threads(self.num_threads)

    def deepest_layer(self) -> int | None:
        """The deepest hidden state this extractor returns (None: it needs them all)."""
        spec = self.layers
        idx = [spec] if isinstance(spec, int) else spec if isinstance(spec, list) else None
        if not idx or min(idx) < 0:
            return None
        return max(idx)

    # ------------------------------------------------------------------ layer cache
    def _cache_paths(self, signal: np.ndarray, sr: int) -> tuple[Path, Path]:
        h = hashlib.blake2b(digest_size=16)
        h.update(np.ascontiguousarray(signal, dtype=np.float32).tobytes())
        h.update(str(int(sr)).encode())
        d = layer_cache_dir(self.cache_dir) / params_hash(self.backbone_params())
        key = h.hexdigest()
        return d / f"{key}.npy", d / f"{key}.frames.npy"

    @staticmethod
    def _save(path: Path, arr: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp.npy")
        np.save(tmp, arr)
        tmp.replace(path)

    def all_layers(self, signal: np.ndarray, sr: int = SAMPLE_RATE, *, frames: bool = False) -> np.ndarray:
        """All-layer pooled stats ``[L, 2D]`` (or frames ``[L, T, D]`` fp16), from the layer cache
        when possible."""
        if sr != SAMPLE_RATE:
            raise ValueError(f"ssl features need {SAMPLE_RATE} Hz audio, got {sr} Hz (set audio.sample_rate)")
        p_stats, p_frames = self._cache_paths(signal, sr) if self.layer_cache else (None, None)
        want = p_frames if frames else p_stats
        if want is not None and want.exists():
            try:
                return np.load(want)
            except (OSError, ValueError):
                pass
        with self._lock:
            stats, frame_arr = self.forward_stats(signal)
        if self.layer_cache:
            self._save(p_stats, stats)
            if frames:
                self._save(p_frames, frame_arr)
        return frame_arr if frames else stats

    def select(self, stats: np.ndarray) -> np.ndarray:
        """What this extractor returns, computed from all-layer stats ``[L, 2D]``."""
        return select_pooled(stats, self.layers, self.pooling)

    def extract_batch(self, signals: list[np.ndarray], sr: int) -> np.ndarray:
        """Features of new signals (prediction): the backbone runs directly, no layer cache."""
        if self.frames or sr != SAMPLE_RATE:
            return super().extract_batch(signals, sr)
        return np.stack([self.select(st) for st in self.pooled_batch(list(signals), self.deepest_layer())])

    def __call__(self, signal: np.ndarray, sr: int) -> np.ndarray:
        if self.frames:
            fr = self.all_layers(signal, sr, frames=True).astype(np.float32)
            spec = self.layers
            if spec == "all":
                return fr
            if spec == "mean":
                return fr.mean(axis=0, keepdims=True)
            idx = [spec] if isinstance(spec, int) else list(spec)
            return fr[idx]
        return self.select(self.all_layers(signal, sr))


class Waveform(FeatureExtractor):
    """The decoded signal itself (for fine-tuning models on raw audio, e.g. ``ssl_finetune``).

    Every file must have the same length: set ``audio.duration_s`` (crop / zero-pad).
    """

    name = "waveform"

    version = 1

    def __call__(self, signal: np.ndarray, sr: int) -> np.ndarray:
        return np.asarray(signal, dtype=np.float32).reshape(-1)

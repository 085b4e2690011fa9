"""Run an exported ONNX model directory with ONNX Runtime: no torch, no transformers.

``serkit export NAME --format onnx --out DIR`` (:mod:`serkit.inference.onnx_export`) writes::

    DIR/
      model.json        the card, with "runtime": {"name": "onnx", ...}: graph file and checksum,
                        inputs / outputs, the log-mel settings, quantisation, the source model
      model.onnx        encoder (up to the deepest layer the head uses) + pooling + scaler + head
      mel_filters.npy   Whisper's mel filter bank [n_fft / 2 + 1, n_mels] float32 (no pickle)
      README.md         the card in words
      config.yaml       the training recipe of the source model (when it had one)

:func:`load_onnx_model` turns it into the two objects the
:class:`~serkit.inference.predictor.Predictor` uses: :class:`OnnxFeatures` (audio preparation +
Whisper log-mel in NumPy, :mod:`serkit.backbones.logmel`) and :class:`OnnxClassifier` (the graph:
``mel [B, n_mels, T]`` float32 and ``mel_lengths [B]`` int64 in, ``probabilities [B, C]`` out).
Install with ``pip install serkit[onnx]``.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from serkit.config import SAMPLE_RATE
from serkit.backbones.logmel import log_mel_batch
from serkit.io.audio import prepare

__all__ = ["RUNTIME", "OnnxClassifier", "OnnxFeatures", "file_sha256", "load_onnx_model"]

RUNTIME = "onnx"


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class OnnxFeatures:
    """Audio preparation and the Whisper log-mel front end of an exported model (the part of a
    :class:`~serkit.features.pipeline.FeaturePipeline` the Predictor uses)."""

    extractors: list = []  # nothing to verify: the encoder's weights are inside the graph

    def __init__(self, audio: Mapping[str, Any], mel_filters: np.ndarray, *, n_fft: int, hop_length: int,
                 max_frames: int):
        self.audio = dict(audio)
        self.mel_filters = np.asarray(mel_filters, dtype=np.float32)
        self.n_fft, self.hop_length, self.max_frames = int(n_fft), int(hop_length), int(max_frames)

    @property
    def sample_rate(self) -> int:
        return int(self.audio.get("sample_rate", SAMPLE_RATE))

    def prepare(self, x: np.ndarray, sr: int, name: str = "audio") -> np.ndarray:
        """The prepared signal (:func:`serkit.io.audio.prepare` with the model's settings)."""
        return prepare(x, sr, name=name, **self.audio)

    def transform_prepared(self, signals: Sequence[np.ndarray], names: Sequence[str] | None = None
                           ) -> dict[str, np.ndarray]:
        """Graph inputs ``{"mel": [B, n_mels, T], "mel_lengths": [B]}`` for prepared signals."""
        mel, lengths = log_mel_batch(list(signals), self.mel_filters, max_frames=self.max_frames,
                                     n_fft=self.n_fft, hop=self.hop_length)
        return {"mel": mel, "mel_lengths": lengths}


class OnnxClassifier:
    """An ONNX Runtime session with the estimator interface the Predictor needs (``classes_``,
    ``predict_proba``, ``predict``)."""

    def __init__(self, graph: str | Path, classes: Sequence[str], *, num_threads: int | None = None):
        """``num_threads``: ONNX Runtime's intra-op threads (``$SERKIT_ONNX_THREADS`` overrides it;
        0 or None: ONNX Runtime's default, one per physical core)."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        env = os.environ.get("SERKIT_ONNX_THREADS")
        threads = int(env) if env else (num_threads or 0)
        if threads > 0:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(graph), sess_options=opts,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own error types (InvalidProtobuf, Fail, ...)
            raise ValueError(f"ONNX Runtime cannot load {Path(graph).name}: {exc}") from None
        self.classes_ = np.asarray([str(c) for c in classes])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def predict_proba(self, X: Mapping[str, np.ndarray]) -> np.ndarray:
        feeds = {"mel": np.ascontiguousarray(X["mel"], dtype=np.float32),
                 "mel_lengths": np.ascontiguousarray(X["mel_lengths"], dtype=np.int64)}
        (proba,) = self.session.run(None, {k: feeds[k] for k in self.input_names})
        return proba

    def predict(self, X: Mapping[str, np.ndarray]) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def load_onnx_model(model_dir: str | Path, card: Mapping[str, Any],
                    threads: int = 0) -> tuple[OnnxFeatures, OnnxClassifier]:
    """The front end and the classifier of an exported model directory (ValueError / FileNotFoundError
    / ModuleNotFoundError saying what is wrong); ``threads`` > 0 overrides the card's thread count."""
    model_dir = Path(model_dir)
    rt = card["runtime"]
    try:
        import onnxruntime  # noqa: F401
    except ModuleNotFoundError:
        raise ModuleNotFoundError(f"{model_dir} is an ONNX model: install ONNX Runtime "
                                  "(pip install 'serkit[onnx]')") from None
    graph = model_dir / rt["graph"]
    if not graph.is_file():
        raise FileNotFoundError(f"the graph {rt['graph']} is missing")
    if rt.get("sha256") and file_sha256(graph) != rt["sha256"]:
        raise ValueError(f"{rt['graph']} does not match the checksum in model.json (changed or damaged)")
    mel = rt["log_mel"]
    filters = np.load(model_dir / mel["filters"], allow_pickle=False)
    want = (mel["n_fft"] // 2 + 1, mel["n_mels"])
    if filters.shape != want:
        raise ValueError(f"{mel['filters']} has shape {filters.shape}, expected {want}")
    features = OnnxFeatures(card["features"]["audio"], filters, n_fft=mel["n_fft"],
                            hop_length=mel["hop_length"], max_frames=mel["max_frames"])
    return features, OnnxClassifier(graph, card["classes"], num_threads=threads or rt.get("num_threads"))

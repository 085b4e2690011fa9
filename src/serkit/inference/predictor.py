"""The recogniser: load a model directory, predict emotions of arrays, files and long recordings.

>>> from serkit import Predictor
>>> p = Predictor.load()                       # the default model (offline)
>>> p.predict_file("clip.wav")                 # {"path", "label", "scores", "confidence", ...}
>>> p.predict_files(["a.wav", "b.flac"])       # batched by length; bad files get "error"
>>> p.predict_long("meeting.flac")             # + "segments": [{start, end, label, scores}, ...]

Every result follows one schema, shared with ``serkit predict --format json`` and the HTTP API:
``path``, ``label`` (None when there is no speech), ``scores`` (class -> probability),
``confidence`` (the top probability), ``duration`` (seconds), ``speech`` (bool), and either
``error`` (the input could not be read) or ``note`` (why there is no label).

The steps follow the transformers pipeline convention: :meth:`Predictor.preprocess` (decode and
prepare, :mod:`serkit.io.audio`), :meth:`Predictor.score_batch` (features + model),
:meth:`Predictor.postprocess` (labels and scores).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from serkit.config import InferenceConfig, SegmentConfig
from serkit.inference.modeldir import ModelError, load_model_dir, resolve_model
from serkit.io.audio import AudioError, read
from serkit.models.capabilities import model_input

__all__ = ["NO_SPEECH_KINDS", "Predictor", "AudioError", "ModelError"]

#: predict_files decodes this many batches of files at a time (bounded memory on any number of files)
GROUP_BATCHES = 16

#: AudioError kinds that mean "there is nothing to recognise", not "the file is broken"
NO_SPEECH_KINDS = frozenset({"empty", "silent", "too_short"})


def duration_of(path: str | Path) -> float:
    """Seconds of audio in a file, from its header (AudioError for missing / empty / unreadable)."""
    import soundfile as sf

    p = Path(path)
    if not p.exists():
        raise AudioError(f"{p}: file does not exist", "missing")
    if p.is_dir():
        raise AudioError(f"{p}: is a directory, not an audio file", "bad_input")
    if p.stat().st_size == 0:
        raise AudioError(f"{p}: file is empty (0 bytes)", "empty")
    try:
        return float(sf.info(str(p)).duration)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"{p}: not a readable audio file ({exc})", "unreadable") from None


class Predictor:
    """A loaded model directory. Use :meth:`load`; ``classes`` lists what it recognises."""

    def __init__(self, card: dict[str, Any], pipeline, estimator, model_dir: Path | None = None,
                 segments: SegmentConfig | None = None, inference: InferenceConfig | None = None):
        self.card = card
        self.pipeline = pipeline
        self.estimator = estimator
        self.model_dir = model_dir
        self.segments = segments or SegmentConfig()
        self.inference = inference or InferenceConfig()
        self.classes: list[str] = [str(c) for c in estimator.classes_]
        for ext in getattr(pipeline, "extractors", ()):
            if hasattr(ext, "configure"):  # encoder precision / threads (speed only)
                ext.configure(self.inference.precision, self.inference.threads)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, name_or_dir: str | Path | None = None, *, verify_backbone: bool = True,
             segments: SegmentConfig | None = None, inference: InferenceConfig | None = None,
             say: Callable[[str], None] | None = None) -> "Predictor":
        """Load an installed model by name (None: ``serkit-default``) or a model directory.

        ``inference`` sets how it computes (runtime, encoder precision, threads, batch size; see
        :class:`serkit.config.InferenceConfig` and :mod:`serkit.inference.runtime`), never what it
        computes: with the default ``runtime="auto"`` an exportable model (the default model) runs
        on ONNX Runtime from a cached export made on first use (``say`` hears about it)."""
        from serkit.inference.runtime import choose_model_dir

        inference = inference or InferenceConfig()
        model_dir = choose_model_dir(resolve_model(name_or_dir), inference.runtime, say)
        card, pipeline, estimator = load_model_dir(model_dir, threads=inference.threads)
        self = cls(card, pipeline, estimator, model_dir, segments, inference)
        if verify_backbone:
            self._verify_backbone()
        return self

    def _verify_backbone(self) -> None:
        want = (self.card.get("backbone") or {}).get("checksum")
        if not want:
            return
        ext = self.pipeline.extractors[0]
        got = ext.load().weights_checksum()
        if got != want:
            raise ModelError(f"{self.model_dir}: the backbone {self.card['backbone'].get('id')!r} "
                             f"installed here has different weights (checksum {got[:12]}…) from the "
                             f"ones this model was trained on ({want[:12]}…)")

    @property
    def runtime(self) -> str:
        """``onnx`` or ``torch``: what this predictor computes with."""
        return "onnx" if (self.card.get("runtime") or {}).get("name") == "onnx" else "torch"

    @property
    def name(self) -> str:
        return str(self.card.get("name", self.model_dir.name if self.model_dir else "model"))

    @property
    def sample_rate(self) -> int:
        return self.pipeline.sample_rate

    # ------------------------------------------------------------------ steps
    def preprocess(self, x: np.ndarray, sr: int, name: str = "audio") -> np.ndarray:
        """Decoded samples → the prepared float32 mono signal (raises AudioError naming ``name``)."""
        return self.pipeline.prepare(x, sr, name)

    def score_batch(self, signals: Sequence[np.ndarray], names: Sequence[str] | None = None) -> np.ndarray:
        """Probabilities ``[n, len(classes)]`` for prepared 16 kHz signals (features + model)."""
        if not len(signals):
            return np.zeros((0, len(self.classes)), np.float32)
        X = self.pipeline.transform_prepared(list(signals), names)
        p = np.asarray(self.estimator.predict_proba(model_input(self.estimator, X)), dtype=np.float64)
        return p

    def _window_scores(self, windows: list[np.ndarray]) -> np.ndarray:
        """``score_batch`` for windows of a long recording (already 16 kHz mono): each window goes
        through the model's own preparation (padding / cropping) without the usability checks."""
        audio = {k: v for k, v in self.pipeline.audio.items() if k not in ("min_duration_s", "silence_dbfs")}
        from serkit.io.audio import prepare

        prepared = [prepare(w, self.sample_rate, name="window", **audio) for w in windows]
        return self.score_batch(prepared)

    def postprocess(self, proba: np.ndarray, **fields: Any) -> dict[str, Any]:
        """One result dict from one row of probabilities."""
        scores = {c: round(float(v), 6) for c, v in zip(self.classes, proba)}
        j = int(np.argmax(proba))
        return {"label": self.classes[j], "scores": scores, "confidence": round(float(proba[j]), 6),
                "speech": True, **fields}

    def _no_speech(self, path: str | None, duration: float, why: str) -> dict[str, Any]:
        return {"path": path, "label": None, "scores": {}, "confidence": None, "duration": duration,
                "speech": False, "note": f"no speech detected: {why}"}

    # ------------------------------------------------------------------ single inputs
    def _has_speech(self, sig: np.ndarray) -> bool:
        from serkit.inference.segments import speech_regions

        return not self.segments.clip_speech_check or bool(speech_regions(sig, self.segments))

    def predict_array(self, x: np.ndarray, sr: int, name: str | None = None) -> dict[str, Any]:
        """Emotion of one signal (``x``: ``[samples]`` or ``[samples, channels]`` at ``sr`` Hz).

        A signal longer than ``segments.clip_max_s`` is scored as a timeline and summarised (its
        label is the timeline's overall label; no segments in the result)."""
        label = name or "array"
        x = np.asarray(x)
        duration = round(len(x) / sr, 3) if sr > 0 and x.ndim else 0.0
        if duration > self.segments.clip_max_s:
            out = self.predict_long((x, sr))
            out.pop("segments", None)
            return {**out, "path": name}
        try:
            sig = self.preprocess(x, sr, label)
        except AudioError as exc:
            if exc.kind in NO_SPEECH_KINDS:
                return self._no_speech(name, duration, str(exc).split(": ", 1)[-1])
            raise
        if not self._has_speech(sig):
            return self._no_speech(name, duration, "the voice activity detector found none")
        return self.postprocess(self.score_batch([sig], [label])[0], path=name, duration=duration)

    def _summary_of_long(self, path: str) -> dict[str, Any]:
        out = self.predict_long(path)
        out.pop("segments", None)
        return out

    def predict_file(self, path: str | Path) -> dict[str, Any]:
        """Emotion of one audio file; raises :class:`AudioError` naming an unreadable file.

        A file longer than ``segments.clip_max_s`` is streamed as a timeline (bounded memory) and
        summarised by its overall label."""
        path = str(path)
        try:
            if duration_of(path) > self.segments.clip_max_s:
                return self._summary_of_long(path)
            data, sr = read(path)
        except AudioError as exc:
            if exc.kind in NO_SPEECH_KINDS:
                return self._no_speech(path, 0.0, str(exc).split(": ", 1)[-1])
            raise
        return self.predict_array(data, sr, name=path)

    # ------------------------------------------------------------------ batches
    def predict_files(self, paths: Iterable[str | Path], *, batch_size: int | None = None,
                      progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
        """Emotions of many files, in input order. Files are decoded once, sorted by length and
        scored in batches; a file that cannot be read gets ``error`` instead of a label and the
        others go on. ``progress(n)`` is called after every ``n`` files done. Memory stays bounded
        however many files there are: they are taken ``GROUP_BATCHES`` batches at a time."""
        paths = [str(p) for p in paths]
        batch_size = batch_size or self.inference.batch_size
        results: list[dict[str, Any] | None] = [None] * len(paths)
        group = batch_size * GROUP_BATCHES
        for start in range(0, len(paths), group):
            self._predict_group(paths, range(start, min(start + group, len(paths))), results,
                                batch_size, progress)
        return [r for r in results if r is not None]

    def _predict_group(self, paths: list[str], indices: range, results: list, batch_size: int,
                       progress: Callable[[int], None] | None) -> None:
        """Decode the files ``indices`` of ``paths``, then score them sorted by length."""
        ready: list[tuple[int, np.ndarray, float]] = []
        for i in indices:
            p = paths[i]
            try:
                if duration_of(p) > self.segments.clip_max_s:   # long recording: timeline summary
                    results[i] = self._summary_of_long(p)
                    if progress:
                        progress(1)
                    continue
                data, sr = read(p)
                duration = round(len(data) / sr, 3)
                sig = self.preprocess(data, sr, p)
                if not self._has_speech(sig):
                    results[i] = self._no_speech(p, duration, "the voice activity detector found none")
                    if progress:
                        progress(1)
                    continue
                ready.append((i, sig, duration))
            except AudioError as exc:
                if exc.kind in NO_SPEECH_KINDS:
                    results[i] = self._no_speech(p, 0.0, str(exc).split(": ", 1)[-1])
                else:
                    results[i] = {"path": p, "error": str(exc), "kind": exc.kind}
                if progress:
                    progress(1)
        ready.sort(key=lambda r: len(r[1]))
        for k in range(0, len(ready), batch_size):
            chunk = ready[k:k + batch_size]
            try:
                proba = self.score_batch([r[1] for r in chunk], [paths[r[0]] for r in chunk])
                for (i, _, duration), row in zip(chunk, proba):
                    results[i] = self.postprocess(row, path=paths[i], duration=duration)
            except AudioError:  # one bad file in the batch: score them one by one
                for i, sig, duration in chunk:
                    try:
                        results[i] = self.postprocess(self.score_batch([sig], [paths[i]])[0],
                                                      path=paths[i], duration=duration)
                    except AudioError as exc:
                        results[i] = {"path": paths[i], "error": str(exc), "kind": exc.kind}
            if progress:
                progress(len(chunk))

    # ------------------------------------------------------------------ long recordings
    def predict_long(self, source, segments: SegmentConfig | None = None,
                     windows: bool = False) -> dict[str, Any]:
        """Emotion timeline of a recording of any length (a path or ``(samples, sample_rate)``):
        speech regions from the VAD, overlapping windows, smoothed scores, merged segments;
        non-speech stretches have label None. Memory stays bounded (decoded in blocks)."""
        from serkit.inference.segments import predict_timeline

        cfg = segments or self.segments
        tl = predict_timeline(source, self._window_scores, self.classes, cfg)
        out = tl.to_dict(windows=windows)
        if out.get("label") is None and "note" not in out:
            out["note"] = "no speech detected"
        return out

    def subtitles(self, source, fmt: str = "srt", language: str | None = None,
                  styles: dict[str, str] | None = None, segments: SegmentConfig | None = None) -> str:
        """SRT / WebVTT of a recording, each cue tagged with its emotion (see
        :mod:`serkit.inference.subtitles`)."""
        from serkit.inference.subtitles import make_subtitles

        return make_subtitles(source, self._window_scores, self.classes, language=language, fmt=fmt,
                              cfg=segments or self.segments, styles=styles)

"""Streaming voice activity detection: speech regions of an arbitrarily long 16 kHz signal.

A frame scorer gives one speech probability per 512-sample frame (32 ms):

* :class:`SileroFrames` — silero VAD v6, the ONNX model shipped inside ``faster_whisper``
  (``faster_whisper.vad.get_vad_model``; runs on onnxruntime, no torch). Its LSTM state and the
  64-sample context are carried from one block to the next, so the probabilities are identical to
  those of one pass over the whole signal.
* :class:`EnergyFrames` — frame RMS level against a dBFS threshold (no model; synthetic audio).

:class:`SpeechDetector` turns the probabilities into regions with the rules of
``faster_whisper.vad.get_speech_timestamps`` (threshold with hysteresis, minimum silence, minimum
speech, padding of half the pause when two regions are close), fed block by block. Two deliberate
differences: a pause counts from the first frame below the lower threshold and every later frame
below ``threshold`` counts towards it (silero's documented semantics; the reference loop only
checks on frames below the lower threshold, so a region could stay open for ever on frames hovering
between the two thresholds), and a region still open at the end of the signal ends where its pause
began rather than at the last sample.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME = 512  # silero's frame at 16 kHz
_CONTEXT = 64  # samples of the previous frame silero v6 sees with each frame
_MAX_BATCH = 10_000  # frames per ONNX call (as faster_whisper)

__all__ = ["FRAME", "Region", "SileroFrames", "EnergyFrames", "SpeechDetector", "frame_scorer"]


class SileroFrames:
    """Silero v6 speech probabilities per frame; stateful across calls."""

    def __init__(self):
        try:
            from faster_whisper.vad import get_vad_model
        except ImportError as exc:  # pragma: no cover - faster-whisper is a serkit dependency
            raise ModuleNotFoundError(
                "the silero VAD needs faster-whisper and onnxruntime: pip install faster-whisper "
                "(or use the energy VAD: segments.vad=energy)") from exc
        self._session = get_vad_model().session
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(frames), _MAX_BATCH):
            chunk = frames[i:i + _MAX_BATCH]
            context = np.concatenate([self._context[None], chunk[:-1, -_CONTEXT:]], axis=0)
            inp = np.ascontiguousarray(np.concatenate([context, chunk], axis=1), dtype=np.float32)
            probs, self._h, self._c = self._session.run(None, {"input": inp, "h": self._h, "c": self._c})
            self._context = chunk[-1, -_CONTEXT:].copy()
            out.append(np.asarray(probs, dtype=np.float32).reshape(-1))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


class EnergyFrames:
    """1.0 for frames whose RMS level is at least ``threshold_db`` dBFS, else 0.0."""

    def __init__(self, threshold_db: float = -40.0):
        self.threshold_db = threshold_db

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        rms = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))
        return (20 * np.log10(rms + 1e-12) >= self.threshold_db).astype(np.float32)


def frame_scorer(kind: str, energy_threshold_db: float = -40.0):
    """The frame scorer named by ``SegmentConfig.vad``."""
    if kind == "silero":
        return SileroFrames()
    if kind == "energy":
        return EnergyFrames(energy_threshold_db)
    raise ValueError(f"unknown VAD {kind!r} (silero, energy)")


@dataclass
class Region:
    """One speech region in samples: ``[start, end)`` after padding (``end`` None while undecided)."""

    id: int
    raw_start: int
    start: int
    raw_end: int | None = None
    end: int | None = None


class SpeechDetector:
    """Speech regions of a signal pushed in blocks of any length (all sizes in samples).

    After each :meth:`push` (and after :meth:`finish`), :meth:`pop_final` returns the regions whose
    padded bounds are final, in order, and :meth:`growing` the regions that are certain to be kept
    together with a lower bound of their final padded end, so a caller can cut windows from a region
    that is still going on (a continuous hour of speech never has to be held).
    """

    def __init__(self, frame_probs, *, threshold: float = 0.5, neg_threshold: float | None = None,
                 min_speech: int = 0, min_silence: int = 0, pad: int = 0):
        self.frame_probs = frame_probs
        self.threshold = threshold
        self.neg_threshold = max(threshold - 0.15, 0.01) if neg_threshold is None else neg_threshold
        self.min_speech, self.min_silence, self.pad = min_speech, min_silence, pad
        self._carry = np.zeros(0, dtype=np.float32)
        self._n_frames = 0  # frames scored so far
        self._total = 0  # samples pushed so far
        self._open: Region | None = None
        self._temp_end = 0
        self._last_kept: Region | None = None  # its raw_end decides the next region's padded start
        self._pending: list[Region] = []  # kept and closed; padded end not decided yet
        self._final: list[Region] = []
        self._ids = 0
        self.finished = False

    # -- feeding ---------------------------------------------------------------------------------
    def push(self, x: np.ndarray) -> None:
        """Score the complete frames of ``x`` (plus the carried remainder of the previous block)."""
        x = np.concatenate([self._carry, np.asarray(x, dtype=np.float32)])
        self._total += len(x) - len(self._carry)
        n = len(x) // FRAME
        self._carry = x[n * FRAME:].copy()
        if n:
            self._step(self.frame_probs(x[:n * FRAME].reshape(n, FRAME)))
        self._resolve()

    def finish(self) -> None:
        """Score the last partial frame (zero-padded) and close everything."""
        if self.finished:
            return
        if len(self._carry):
            frame = np.zeros((1, FRAME), dtype=np.float32)
            frame[0, :len(self._carry)] = self._carry
            self._carry = np.zeros(0, dtype=np.float32)
            self._step(self.frame_probs(frame))
        if self._open is not None:
            end = min(self._temp_end or self._total, self._total)
            self._close(end)
        self.finished = True
        for r in self._pending:
            r.end = min(r.raw_end + self.pad, self._total)
            self._final.append(r)
        self._pending = []

    # -- state machine (faster_whisper.vad.get_speech_timestamps, streaming) ----------------------
    def _step(self, probs: np.ndarray) -> None:
        thr, neg = self.threshold, self.neg_threshold
        for p in probs.tolist():
            pos = FRAME * self._n_frames
            self._n_frames += 1
            if p >= thr:
                self._temp_end = 0
                if self._open is None:
                    self._trigger(pos)
                continue
            if self._open is None:
                continue
            if p < neg and not self._temp_end:
                self._temp_end = pos
            if self._temp_end and pos - self._temp_end >= self.min_silence:
                self._close(self._temp_end)

    def _trigger(self, pos: int) -> None:
        self._ids += 1
        start = pos - self.pad
        prev = self._last_kept
        if prev is not None and pos - prev.raw_end < 2 * self.pad:
            start = pos - (pos - prev.raw_end) // 2
        self._open = Region(self._ids, pos, max(0, start))
        self._temp_end = 0

    def _close(self, end: int) -> None:
        region, self._open, self._temp_end = self._open, None, 0
        if end - region.raw_start <= self.min_speech:
            return  # too short: dropped, as if it never was
        region.raw_end = end
        self._settle_pending(region.raw_start)
        self._pending.append(region)
        self._last_kept = region

    def _settle_pending(self, next_raw_start: int) -> None:
        for r in self._pending:
            gap = next_raw_start - r.raw_end
            r.end = r.raw_end + (gap // 2 if gap < 2 * self.pad else self.pad)
            self._final.append(r)
        self._pending = []

    def _resolve(self) -> None:
        """Decide padded ends that can no longer depend on a later region."""
        if not self._pending:
            return
        if self._open is not None and self._kept_for_sure(self._open):
            self._settle_pending(self._open.raw_start)
            return
        earliest_next = self._open.raw_start if self._open is not None else FRAME * self._n_frames
        if earliest_next - self._pending[-1].raw_end >= 2 * self.pad:
            self._settle_pending(earliest_next)

    def _lower_end(self) -> int:
        """Lower bound of the open region's raw end."""
        return self._temp_end if self._temp_end else max(FRAME * (self._n_frames - 1), 0)

    def _kept_for_sure(self, region: Region) -> bool:
        return self._lower_end() - region.raw_start > self.min_speech

    # -- results ---------------------------------------------------------------------------------
    def pop_final(self) -> list[Region]:
        """Regions whose padded ``[start, end)`` is final (each returned once, in order)."""
        out, self._final = self._final, []
        return out

    def growing(self) -> list[tuple[Region, int]]:
        """Kept regions not final yet, each with a lower bound of its padded end."""
        out = [(r, r.raw_end) for r in self._pending]
        if self._open is not None and self._kept_for_sure(self._open):
            out.append((self._open, self._lower_end()))
        return out

    @property
    def samples_seen(self) -> int:
        return self._total

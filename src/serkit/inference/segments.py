"""Emotion timeline of a long recording: VAD regions -> overlapping windows -> scores -> segments.

Independent of any model: the caller passes ``score_batch(list of float32 16 kHz arrays) -> [n,
n_classes]`` probabilities and the class names. The recording is decoded block by block
(:func:`serkit.io.stream.stream`), speech regions come from a streaming VAD
(:mod:`serkit.inference.vad`), windows are cut from a region while it is still going on, and only
the current block, a few seconds of look-back and the windows waiting to be scored are held, so
memory does not grow with the length of the file.

Within each speech region, windows of ``window_s`` start every ``hop_s``; when the grid does not
reach the region's end, one more window is aligned to the end. A region shorter than ``window_s``
is one window if it lasts at least ``min_window_s``, else it is reported as too short (label
null). Window scores are smoothed within a region (moving average over ``smoothing_k`` windows),
each window owns the span up to the midpoints between its centre and its neighbours' centres,
and adjacent spans with the same label are merged into segments. Stretches without speech are
segments with label null. The overall label is the argmax of the duration-weighted mean of the
(unsmoothed) window scores; with no scored window the result is "no speech" and has no label.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from serkit.config import SegmentConfig
from serkit.io.audio import TARGET_SR
from serkit.io.stream import Source, source_name, stream

from .vad import FRAME, Region, SpeechDetector, frame_scorer

__all__ = ["ScoreBatch", "Timeline", "predict_timeline", "speech_regions", "window_bounds",
           "NO_SPEECH_NOTE", "TOO_SHORT_NOTE"]

ScoreBatch = Callable[[list[np.ndarray]], np.ndarray]
NO_SPEECH_NOTE = "no speech detected"
TOO_SHORT_NOTE = "speech too short to score"
_MIN_GAP = TARGET_SR // 100  # pauses shorter than 10 ms between segments are not reported


def _samples(seconds: float) -> int:
    return int(round(seconds * TARGET_SR))


def window_bounds(start: int, end: int, cfg: SegmentConfig) -> list[tuple[int, int]]:
    """Windows ``[(s, e), ...]`` (samples) cut from the speech span ``[start, end)``.

    Grid windows of ``window_s`` every ``hop_s``, plus one aligned to ``end`` when the grid stops
    short of it; a span shorter than ``window_s`` is one window when at least ``min_window_s``
    long, else there is none.
    """
    win, hop = _samples(cfg.window_s), _samples(cfg.hop_s)
    if end - start < win:
        return [(start, end)] if end - start >= _samples(cfg.min_window_s) else []
    out = [(s, s + win) for s in range(start, end - win + 1, hop)]
    if out[-1][1] < end:
        out.append((end - win, end))
    return out


@dataclass
class Timeline:
    """Result of :func:`predict_timeline`; :meth:`to_dict` gives the shared prediction schema."""

    path: str | None
    duration: float
    classes: list[str]
    segments: list[dict]
    label: str | None = None
    scores: dict[str, float] = field(default_factory=dict)
    confidence: float | None = None
    windows: list[dict] = field(default_factory=list)

    @property
    def speech(self) -> bool:
        return self.label is not None

    def to_dict(self, windows: bool = False) -> dict:
        out = {"path": self.path, "label": self.label, "scores": dict(self.scores),
               "confidence": self.confidence, "duration": self.duration, "speech": self.speech}
        if not self.speech:
            out["note"] = NO_SPEECH_NOTE
        out["segments"] = [dict(s) for s in self.segments]
        if windows:
            out["windows"] = [dict(w) for w in self.windows]
        return out


class _Buffer:
    """The most recent samples of the stream: ``[start, start + len(data))``."""

    def __init__(self):
        self.start = 0
        self.data = np.zeros(0, dtype=np.float32)

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    def append(self, x: np.ndarray) -> None:
        self.data = np.concatenate([self.data, x])

    def keep_last(self, n: int) -> None:
        if len(self.data) > n:
            self.start += len(self.data) - n
            self.data = self.data[len(self.data) - n:].copy()

    def slice(self, s: int, e: int) -> np.ndarray:
        if s < self.start or e > self.end:  # a bug, not a user error: the look-back is too short
            raise RuntimeError(f"window [{s}, {e}) is outside the held audio [{self.start}, {self.end})")
        return self.data[s - self.start:e - self.start].copy()


class _Scorer:
    """Batches windows into ``score_batch`` calls and keeps (region, start, end, scores)."""

    def __init__(self, score_batch: ScoreBatch, n_classes: int, batch_size: int):
        self.score_batch, self.n_classes, self.batch_size = score_batch, n_classes, batch_size
        self._todo: list[tuple[int, int, int, np.ndarray]] = []
        self.done: list[tuple[int, int, int, np.ndarray]] = []

    def add(self, region: int, s: int, e: int, audio: np.ndarray) -> None:
        self._todo.append((region, s, e, audio))
        if len(self._todo) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        if not self._todo:
            return
        probs = np.asarray(self.score_batch([t[3] for t in self._todo]), dtype=np.float64)
        if probs.shape != (len(self._todo), self.n_classes) or not np.all(np.isfinite(probs)):
            raise ValueError(f"score_batch returned an array of shape {probs.shape} (or non-finite "
                             f"values); expected [{len(self._todo)}, {self.n_classes}] probabilities")
        self.done.extend((r, s, e, p) for (r, s, e, _), p in zip(self._todo, probs))
        self._todo = []


class _RegionWindows:
    """Windows of one region, cut as its (lower-bound) end advances."""

    def __init__(self, region: Region, cfg: SegmentConfig):
        self.region, self.cfg = region, cfg
        self.win, self.hop = _samples(cfg.window_s), _samples(cfg.hop_s)
        self.next_start = region.start

    def grow(self, lower_end: int) -> list[tuple[int, int]]:
        out = []
        while self.next_start + self.win <= lower_end:
            out.append((self.next_start, self.next_start + self.win))
            self.next_start += self.hop
        return out

    def close(self, end: int) -> list[tuple[int, int]]:
        """The windows of the final region not cut by :meth:`grow` (same set as window_bounds)."""
        cut = {(s, s + self.win) for s in range(self.region.start, self.next_start, self.hop)}
        return [w for w in window_bounds(self.region.start, end, self.cfg) if w not in cut]


def _lookback(cfg: SegmentConfig) -> int:
    """Samples before the newest block that a window still to be cut may need (see vad.py)."""
    return (_samples(cfg.window_s + cfg.hop_s + cfg.min_silence_s + cfg.min_speech_s)
            + 2 * _samples(cfg.speech_pad_s) + 4 * FRAME)


def _smooth(scores: np.ndarray, cfg: SegmentConfig) -> np.ndarray:
    if cfg.smoothing == "none" or cfg.smoothing_k <= 1 or len(scores) <= 1:
        return scores
    left, right = (cfg.smoothing_k - 1) // 2, cfg.smoothing_k // 2
    return np.stack([scores[max(0, i - left):i + right + 1].mean(axis=0) for i in range(len(scores))])


def _spans(region: Region, wins: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Each window owns the stretch between the midpoints of its and its neighbours' centres."""
    centres = [(s + e) / 2 for s, e in wins]
    cuts = [region.start] + [int(round((a + b) / 2)) for a, b in zip(centres, centres[1:])] + [region.end]
    return list(zip(cuts, cuts[1:]))


def _merge(items: list[list], merge: bool) -> list[list]:
    """Join touching ``[start, end, label, scores, note]`` items with the same (non-null) label."""
    out: list[list] = []
    for it in items:
        prev = out[-1] if out else None
        if (merge and prev is not None and it[2] is not None and prev[2] == it[2]
                and prev[1] == it[0]):
            wa, wb = prev[1] - prev[0], it[1] - it[0]
            prev[3] = (prev[3] * wa + it[3] * wb) / max(wa + wb, 1)
            prev[1] = it[1]
        else:
            out.append(list(it))
    return out


def _segment_dict(s: int, e: int, label, scores, note, classes) -> dict:
    d = {"start": round(s / TARGET_SR, 3), "end": round(e / TARGET_SR, 3), "label": label,
         "scores": None if scores is None else {c: round(float(v), 6) for c, v in zip(classes, scores)},
         "confidence": None if scores is None else round(float(scores.max()), 6)}
    if note:
        d["note"] = note
    return d


def _assemble(regions: list[Region], scored: list, total: int, classes: list[str],
              cfg: SegmentConfig, path: str | None) -> Timeline:
    by_region: dict[int, list] = {}
    for r, s, e, p in scored:
        by_region.setdefault(r, []).append((s, e, p))
    items: list[list] = []
    windows: list[dict] = []
    weighted, weight = np.zeros(len(classes)), 0
    cursor = 0
    for region in sorted(regions, key=lambda r: r.start):
        if region.start - cursor >= _MIN_GAP:
            items.append([cursor, region.start, None, None, None])
        elif items:
            items[-1][1] = region.start  # a pause of a few samples: the previous segment absorbs it
        else:
            region.start = 0
        cursor = region.end
        wins = sorted(by_region.get(region.id, []), key=lambda w: w[0])
        if not wins:
            items.append([region.start, region.end, None, None, TOO_SHORT_NOTE])
            continue
        raw = np.stack([w[2] for w in wins])
        smooth = _smooth(raw, cfg)
        spans = _spans(region, [(s, e) for s, e, _ in wins])
        for (s, e, _), (a, b), p, q in zip(wins, spans, raw, smooth):
            items.append([a, b, classes[int(np.argmax(q))], q.copy(), None])
            weighted += p * (b - a)
            weight += b - a
            windows.append({"start": round(s / TARGET_SR, 3), "end": round(e / TARGET_SR, 3),
                            "scores": {c: round(float(v), 6) for c, v in zip(classes, p)},
                            "smoothed": {c: round(float(v), 6) for c, v in zip(classes, q)}})
    if total - cursor >= _MIN_GAP:
        items.append([cursor, total, None, None, None])
    elif items:
        items[-1][1] = total
    segments = [_segment_dict(*it, classes) for it in _merge(items, cfg.merge == "same_label")]
    tl = Timeline(path=path, duration=round(total / TARGET_SR, 3), classes=list(classes),
                  segments=segments, windows=windows)
    if weight > 0:
        mean = weighted / weight
        tl.label = classes[int(np.argmax(mean))]
        tl.scores = {c: round(float(v), 6) for c, v in zip(classes, mean)}
        tl.confidence = round(float(mean.max()), 6)
    return tl


def _detector(cfg: SegmentConfig) -> SpeechDetector:
    return SpeechDetector(
        frame_scorer(cfg.vad, cfg.energy_threshold_db), threshold=cfg.vad_threshold,
        neg_threshold=cfg.vad_neg_threshold, min_speech=_samples(cfg.min_speech_s),
        min_silence=_samples(cfg.min_silence_s), pad=_samples(cfg.speech_pad_s))


def speech_regions(x: np.ndarray, cfg: SegmentConfig | None = None) -> list[tuple[float, float]]:
    """Speech regions ``[(start_s, end_s), ...]`` of a short in-memory 16 kHz mono signal."""
    det = _detector(cfg or SegmentConfig())
    det.push(np.asarray(x, dtype=np.float32))
    det.finish()
    return [(r.start / TARGET_SR, r.end / TARGET_SR) for r in det.pop_final()]


def predict_timeline(source: Source, score_batch: ScoreBatch, classes: Sequence[str],
                     cfg: SegmentConfig | None = None) -> Timeline:
    """Emotion segments of a recording of any length.

    Parameters
    ----------
    source : str, Path or (numpy.ndarray, int)
        An audio file (anything libsndfile decodes) or ``(samples, sample_rate)``.
    score_batch : callable
        ``score_batch(list of float32 mono 16 kHz arrays) -> array [n, len(classes)]`` of
        probabilities (windows are ``cfg.window_s`` long, or shorter for short regions).
    classes : sequence of str
        Class names, in the column order of ``score_batch``'s output.
    cfg : SegmentConfig, optional
        VAD, windowing, smoothing and merging settings (defaults: ``SegmentConfig()``).

    Returns
    -------
    Timeline
        Segments covering the whole recording (label null for non-speech and too-short speech),
        the overall label/scores/confidence, and the per-window scores. Empty, silent or
        too-short input gives the "no speech" result (no label).

    Raises
    ------
    serkit.io.audio.AudioError
        Unreadable file, or NaN/infinite samples (the message names the file).
    """
    cfg = cfg or SegmentConfig()
    classes = list(classes)
    if not classes:
        raise ValueError("classes must not be empty")
    detector = _detector(cfg)
    scorer = _Scorer(score_batch, len(classes), cfg.batch_size)
    buffer, lookback = _Buffer(), _lookback(cfg)
    open_windows: dict[int, _RegionWindows] = {}
    regions: list[Region] = []

    def collect() -> None:
        for region, lower_end in detector.growing():
            rw = open_windows.setdefault(region.id, _RegionWindows(region, cfg))
            for s, e in rw.grow(lower_end):
                scorer.add(region.id, s, e, buffer.slice(s, e))
        for region in detector.pop_final():
            rw = open_windows.pop(region.id, None) or _RegionWindows(region, cfg)
            for s, e in rw.close(region.end):
                scorer.add(region.id, s, e, buffer.slice(s, e))
            regions.append(region)

    for _start, block in stream(source, cfg.block_s):
        buffer.append(block)
        detector.push(block)
        collect()
        buffer.keep_last(lookback)
    detector.finish()
    collect()
    scorer.flush()
    return _assemble(regions, scorer.done, detector.samples_seen, classes, cfg, source_name(source))

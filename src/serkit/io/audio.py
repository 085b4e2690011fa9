"""The one place that decodes, resamples, trims, normalises and pads audio.

Everything downstream receives float32 mono arrays at the configured rate (16 kHz by default).
:func:`prepare` does the work on an array (a decoded file, a microphone buffer, a window of a long
recording); :func:`load_audio` is :func:`read` followed by :func:`prepare`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from serkit.config import SAMPLE_RATE

#: kept for callers of the first versions; the constant lives in serkit.config
TARGET_SR = SAMPLE_RATE


class AudioError(ValueError):
    """Audio that cannot be used; the message names the file (or array) and the problem.

    ``kind`` is a short machine-readable reason: ``missing``, ``empty``, ``unreadable``,
    ``not_finite``, ``too_short``, ``silent``, ``bad_input``.
    """

    def __init__(self, message: str, kind: str = "unreadable"):
        super().__init__(message)
        self.kind = kind


def check_file(path: str | Path) -> Path:
    """The checks every reader makes before decoding: exists, is a file, is not empty."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: file does not exist", "missing")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file", "bad_input")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes)", "empty")
    return path


def read(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode any file libsndfile reads (WAV, FLAC, Ogg/Opus, AIFF even under a .wav name).

    Returns ``(samples [n, channels] float32, sample_rate)``.
    """
    path = check_file(path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"{path}: not a readable audio file ({exc})", "unreadable") from None
    return data, int(sr)


def to_mono(data: np.ndarray) -> np.ndarray:
    return data.mean(axis=1) if data.ndim == 2 else data


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return x
    return soxr.resample(x, sr_in, sr_out, quality="HQ").astype(np.float32, copy=False)


def trim_silence(x: np.ndarray, top_db: float = 30.0) -> np.ndarray:
    import librosa

    if x.size == 0:
        return x
    y, _ = librosa.effects.trim(x, top_db=top_db)
    return y


def normalize(x: np.ndarray, kind: str = "none") -> np.ndarray:
    if kind == "none":
        return x
    if kind == "zscore":
        std = float(x.std())
        return (x - x.mean()) / (std if std > 1e-8 else 1.0)
    if kind == "peak":
        peak = float(np.abs(x).max()) if x.size else 0.0
        return x / peak if peak > 1e-8 else x
    raise ValueError(f"unknown normalisation {kind!r} (none, zscore, peak)")


# prepare's keyword arguments share these functions' names, so it calls them through aliases
_trim, _normalize = trim_silence, normalize


def fix_length(x: np.ndarray, n: int, crop: str = "start") -> np.ndarray:
    """Crop (from the start or centre) or zero-pad at the end to exactly ``n`` samples."""
    if len(x) >= n:
        start = (len(x) - n) // 2 if crop == "center" else 0
        return x[start:start + n]
    return np.pad(x, (0, n - len(x)))


def peak_dbfs(x: np.ndarray) -> float:
    """Peak level in dB relative to full scale (``-inf`` for digital silence)."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")


def prepare(x: np.ndarray, sr: int, sample_rate: int = SAMPLE_RATE, *, offset_s: float = 0.0,
            trim_silence: bool = False, top_db: float = 30.0, normalize: str = "none",
            duration_s: float | None = None, crop: str = "start", min_duration_s: float = 0.0,
            silence_dbfs: float | None = None, name: str = "audio") -> np.ndarray:
    """Turn decoded samples into the float32 mono signal every model sees.

    Order: mono → resample → drop ``offset_s`` → trim silence → usability checks → normalise →
    crop/pad. ``x`` is ``[n]`` or ``[n, channels]``; ``name`` (a path, or a description of the
    array) goes into every error message.

    Raises
    ------
    AudioError
        ``empty`` (no samples), ``not_finite`` (NaN / inf samples), ``too_short`` (shorter than
        ``min_duration_s`` after offset and trimming), ``silent`` (peak below ``silence_dbfs``).
    """
    x = np.asarray(x)
    if x.ndim not in (1, 2) or not np.issubdtype(x.dtype, np.number):
        raise AudioError(f"{name}: expected a 1-D (or [samples, channels]) numeric array, got "
                         f"{x.dtype} {x.shape}", "bad_input")
    if sr <= 0:
        raise AudioError(f"{name}: sample rate must be positive, got {sr}", "bad_input")
    x = to_mono(x.astype(np.float32, copy=False))
    if x.size == 0:
        raise AudioError(f"{name}: contains zero samples", "empty")
    if not np.all(np.isfinite(x)):
        raise AudioError(f"{name}: contains NaN or infinite samples", "not_finite")
    x = resample(np.ascontiguousarray(x, dtype=np.float32), int(sr), sample_rate)
    if offset_s > 0:
        skip = int(round(offset_s * sample_rate))
        if skip >= len(x) and duration_s is None:
            raise AudioError(f"{name}: shorter ({len(x) / sample_rate:.2f} s) than the "
                             f"{offset_s} s offset to drop", "too_short")
        x = x[skip:]
    if trim_silence and x.size:
        x = _trim(x, top_db)
    seconds = len(x) / sample_rate
    if x.size == 0 or seconds < min_duration_s:
        raise AudioError(f"{name}: too short ({seconds:.2f} s, minimum {min_duration_s:g} s"
                         f"{' after offset/trimming' if offset_s or trim_silence else ''})",
                         "too_short")
    if silence_dbfs is not None:
        level = peak_dbfs(x)
        if level < silence_dbfs:
            what = "digital silence" if level == float("-inf") else f"peak {level:.1f} dBFS"
            raise AudioError(f"{name}: silent ({what}, below the {silence_dbfs:g} dBFS floor)", "silent")
    if normalize != "none":
        x = _normalize(x, normalize)
    if duration_s is not None:
        x = fix_length(x, int(round(duration_s * sample_rate)), crop)
    return x.astype(np.float32, copy=False)


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, **prep) -> np.ndarray:
    """Decode ``path`` (:func:`read`) and :func:`prepare` it; keyword arguments are prepare's.

    Raises :class:`AudioError` (naming the file) for missing, empty, non-audio, zero-sample,
    non-finite, too-short or silent input.
    """
    data, sr = read(path)
    return prepare(data, sr, sample_rate, name=str(path), **prep)


# -- untrusted input (the HTTP server) --------------------------------------------------------
#: how files of the containers libsndfile reads begin; an input that starts like one of them but
#: cannot be decoded is damaged (kind ``unreadable``), anything else is not audio serkit reads
#: (kind ``unsupported``)
_AUDIO_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"BW64", b"fLaC", b"OggS", b"FORM", b"caff", b".snd",
                b"ID3", b"riff")
#: at most this many values (frames x channels) are decoded per block
_BLOCK_VALUES = 1 << 20
#: libsndfile's frame count when the header does not give the length (e.g. a FLAC whose
#: STREAMINFO says 0 samples)
_UNKNOWN_FRAMES = 1 << 62


def _looks_like_audio(head: bytes) -> bool:
    if head.startswith(_AUDIO_MAGIC):
        return True
    return len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0   # an MPEG frame sync


def read_limited(source, *, max_seconds: float, max_samples: int, min_sample_rate: int = 1000,
                 max_sample_rate: int = 384_000, name: str = "audio") -> tuple[np.ndarray, int]:
    """Decode untrusted audio with bounds: the format is sniffed from the content (libsndfile),
    the header's length and sample rate are checked before anything is decoded, decoding stops
    after ``max_samples`` frames (a compressed file can hide its length), and channels are mixed
    down block by block.

    Parameters
    ----------
    source : str, Path or binary file object (seekable)
    max_seconds : float
        Longest audio accepted (from the header, and again from the samples decoded).
    max_samples : int
        Most frames ever decoded.
    name : str
        Goes into every error message (e.g. the uploaded file's name; never a server path).

    Returns
    -------
    (numpy.ndarray, int)
        float32 mono samples ``[n]`` (possibly empty) and the sample rate.

    Raises
    ------
    AudioError
        ``empty`` (no bytes), ``unsupported`` (not a format libsndfile reads), ``unreadable``
        (damaged or truncated audio), ``too_long`` (over ``max_seconds`` / ``max_samples``),
        ``bad_input`` (sample rate out of range).
    """
    if isinstance(source, (str, Path)):
        with open(source, "rb") as fh:
            return read_limited(fh, max_seconds=max_seconds, max_samples=max_samples,
                                min_sample_rate=min_sample_rate, max_sample_rate=max_sample_rate,
                                name=name)
    head = source.read(16)
    source.seek(0)
    if not head:
        raise AudioError(f"{name}: is empty (0 bytes)", "empty")
    try:
        f = sf.SoundFile(source)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        why = str(exc).split(": ", 1)[-1]
        if _looks_like_audio(head):
            raise AudioError(f"{name}: damaged audio file ({why})", "unreadable") from None
        raise AudioError(f"{name}: not an audio format serkit reads (WAV, FLAC, Ogg Vorbis/Opus, "
                         "MP3, AIFF, ...)", "unsupported") from None
    with f:
        sr, channels = int(f.samplerate), max(1, int(f.channels))
        if not min_sample_rate <= sr <= max_sample_rate:
            raise AudioError(f"{name}: sample rate {sr} Hz is outside {min_sample_rate}-"
                             f"{max_sample_rate} Hz", "bad_input")
        limit = min(int(max_samples), int(max_seconds * sr))
        frames = int(f.frames)
        if 0 < frames < _UNKNOWN_FRAMES and frames > limit:
            raise AudioError(f"{name}: too long ({frames / sr:.1f} s; the limit is "
                             f"{min(max_seconds, max_samples / sr):.0f} s)", "too_long")
        block = max(1024, _BLOCK_VALUES // channels)
        known = 0 <= frames < _UNKNOWN_FRAMES
        # the length is known (and within the limit): fill one array, no second copy
        whole = np.empty(frames, dtype=np.float32) if known else None
        out: list[np.ndarray] = []
        n = 0
        try:
            while True:
                data = f.read(block, dtype="float32", always_2d=True)
                if not len(data):
                    break
                if n + len(data) > limit:
                    raise AudioError(f"{name}: too long (more than {limit / sr:.0f} s of audio; "
                                     f"the limit is {min(max_seconds, max_samples / sr):.0f} s)",
                                     "too_long")
                mono = data.mean(axis=1) if channels > 1 else data[:, 0]
                if whole is not None and n + len(mono) <= len(whole):
                    whole[n:n + len(mono)] = mono
                else:
                    out.append(mono.copy())
                n += len(data)
        except (sf.LibsndfileError, RuntimeError) as exc:
            if frames >= _UNKNOWN_FRAMES and n and "seek" in str(exc):
                pass   # libsndfile cannot seek past a stream of unknown length: it ended
            else:
                why = str(exc).split(": ", 1)[-1]
                raise AudioError(f"{name}: damaged or truncated audio ({why})", "unreadable") from None
    if whole is not None and not out:
        return whole[:n], sr
    head_part = [whole[:min(n, len(whole))]] if whole is not None else []
    x = np.concatenate(head_part + out) if (head_part or out) else np.zeros(0, dtype=np.float32)
    return x.astype(np.float32, copy=False), sr

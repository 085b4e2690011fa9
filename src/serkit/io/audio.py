"""The one place that decodes, resamples, trims, normalises and pads audio.

Everything downstream receives float32 mono arrays at the configured rate (16 kHz by default).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

TARGET_SR = 16000


class AudioError(ValueError):
    """An audio file that cannot be used; the message names the file and the problem."""


def read(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode any file libsndfile reads (WAV, FLAC, Ogg/Opus, AIFF even under a .wav name).

    Returns ``(samples [n, channels] float32, sample_rate)``.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: file does not exist")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: file is empty (0 bytes)")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"{path}: not a readable audio file ({exc})") from None
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


# load_audio's keyword arguments share these functions' names, so it calls them through aliases
_trim, _normalize = trim_silence, normalize


def fix_length(x: np.ndarray, n: int, crop: str = "start") -> np.ndarray:
    """Crop (from the start or centre) or zero-pad at the end to exactly ``n`` samples."""
    if len(x) >= n:
        start = (len(x) - n) // 2 if crop == "center" else 0
        return x[start:start + n]
    return np.pad(x, (0, n - len(x)))


def load_audio(path: str | Path, sample_rate: int = TARGET_SR, *, offset_s: float = 0.0,
               trim_silence: bool = False, top_db: float = 30.0, normalize: str = "none",
               duration_s: float | None = None, crop: str = "start") -> np.ndarray:
    """Load ``path`` as float32 mono at ``sample_rate`` with the optional processing steps.

    Order: decode → mono → resample → drop ``offset_s`` → trim silence → normalise → crop/pad.
    Raises :class:`AudioError` (naming the file) for empty, non-audio, zero-sample or non-finite input.
    """
    data, sr = read(path)
    x = to_mono(data)
    if x.size == 0:
        raise AudioError(f"{path}: contains zero samples")
    if not np.all(np.isfinite(x)):
        raise AudioError(f"{path}: contains NaN or infinite samples")
    x = resample(np.ascontiguousarray(x, dtype=np.float32), sr, sample_rate)
    if offset_s > 0:
        skip = int(round(offset_s * sample_rate))
        if skip >= len(x) and duration_s is None:
            raise AudioError(f"{path}: shorter ({len(x) / sample_rate:.2f} s) than the "
                             f"{offset_s} s offset to drop")
        x = x[skip:]
    if trim_silence and x.size:
        x = _trim(x, top_db)
    if x.size and normalize != "none":
        x = _normalize(x, normalize)
    if duration_s is not None:
        x = fix_length(x, int(round(duration_s * sample_rate)), crop)
    if x.size == 0:
        raise AudioError(f"{path}: nothing left after offset/trimming")
    return x.astype(np.float32, copy=False)


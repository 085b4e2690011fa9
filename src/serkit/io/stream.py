"""Decode long recordings block by block: mono float32 at 16 kHz with bounded memory.

:func:`stream` yields ``(start, block)`` pairs, ``start`` being the index (at the target rate) of the
block's first sample. Files are read with ``soundfile.SoundFile.read`` a block at a time, downmixed,
and resampled with soxr's streaming resampler, so an hour-long file never sits in memory whole.
The same generator accepts an in-memory ``(array, sample_rate)`` pair.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .audio import TARGET_SR, AudioError, check_file

__all__ = ["Source", "stream", "source_name"]

#: a file path or an in-memory ``(samples, sample_rate)`` pair (samples ``[n]`` or ``[n, channels]``)
Source = str | Path | tuple[np.ndarray, int]


def source_name(source: Source) -> str | None:
    """The path of a file source as a string; None for an in-memory array."""
    return None if isinstance(source, tuple) else str(source)


def _mono(data: np.ndarray) -> np.ndarray:
    if data.ndim == 2:
        x = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    else:
        x = data
    return np.ascontiguousarray(x, dtype=np.float32)


class _Resampler:
    """soxr's streaming resampler, or a pass-through when the rates already match."""

    def __init__(self, sr_in: int, sr_out: int):
        self._rs = None if sr_in == sr_out else soxr.ResampleStream(
            sr_in, sr_out, 1, dtype="float32", quality="HQ")

    def __call__(self, x: np.ndarray, last: bool) -> np.ndarray:
        if self._rs is None:
            return x
        return self._rs.resample_chunk(x, last=last).astype(np.float32, copy=False)


def _file_blocks(path: Path, block_s: float) -> Iterator[tuple[np.ndarray, int, bool]]:
    try:
        f = sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(f"{path}: not a readable audio file ({exc})") from None
    with f:
        sr = int(f.samplerate)
        n = max(1, int(round(block_s * sr)))
        while True:
            try:
                data = f.read(n, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
                raise AudioError(f"{path}: decoding failed ({exc})") from None
            last = len(data) < n
            yield _mono(data), sr, last
            if last:
                return


def _array_blocks(x: np.ndarray, sr: int, block_s: float) -> Iterator[tuple[np.ndarray, int, bool]]:
    x = np.asarray(x)
    if x.ndim not in (1, 2):
        raise AudioError(f"input array: expected [samples] or [samples, channels], got shape {x.shape}", "bad_input")
    n = max(1, int(round(block_s * sr)))
    for i in range(0, max(len(x), 1), n):
        yield _mono(x[i:i + n]), int(sr), i + n >= len(x)


def stream(source: Source, block_s: float = 30.0,
           sample_rate: int = TARGET_SR) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(start, block)``: mono float32 blocks at ``sample_rate``, about ``block_s`` long.

    Parameters
    ----------
    source : str, Path or (numpy.ndarray, int)
        Any file libsndfile reads (WAV, FLAC, Ogg/Opus, MP3, AIFF, ...) or an in-memory
        ``(samples, sample_rate)`` pair.
    block_s : float
        Decoding block length in seconds (of the input); memory use is proportional to it.
    sample_rate : int
        Output rate (16 kHz by default).

    Yields
    ------
    (int, numpy.ndarray)
        Index of the block's first output sample, and the block (never empty). An empty input
        yields nothing.

    Raises
    ------
    AudioError
        Missing, empty (0-byte), undecodable files, and blocks with NaN or infinite samples; the
        message names the file (or "input array").
    """
    if isinstance(source, tuple):
        x, sr = source
        name = "input array"
        if int(sr) <= 0:
            raise AudioError(f"{name}: sample rate must be positive, got {sr}", "bad_input")
        blocks = _array_blocks(x, int(sr), block_s)
    else:
        path = Path(source)
        name = str(path)
        check_file(path)
        blocks = _file_blocks(path, block_s)
    resampler = None
    pos_in = pos_out = 0
    for x, sr, last in blocks:
        if not np.all(np.isfinite(x)):
            raise AudioError(f"{name}: contains NaN or infinite samples (near {pos_in / sr:.2f} s)", "not_finite")
        if resampler is None:
            resampler = _Resampler(sr, sample_rate)
        pos_in += len(x)
        y = resampler(x, last)
        if len(y):
            yield pos_out, y
            pos_out += len(y)

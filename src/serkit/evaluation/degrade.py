"""Degradations of a clean signal, for robustness tests: noise at a given SNR, telephone band,
Opus at low bitrates, gain, clipping, crops and simulated reverberation.

Every degradation is a pure function ``f(x, sr, rng) -> y`` of a mono float signal ``x`` at ``sr``
Hz and a ``numpy.random.Generator`` (the only source of randomness), returning a float32 signal at
the same rate. :data:`CONDITIONS` is the plain table ``name -> (function, keyword arguments)`` that
``bench/robustness.py`` scores; :func:`degrade` applies one by name with a seed.

* noise: :func:`add_noise` scales a noise signal so that ``10 log10(P_signal / P_noise)`` equals the
  target SNR over the whole clip (powers are mean squares). White and pink noise are generated
  here (pink: a white spectrum shaped by ``1/sqrt(f)``, -3 dB per octave); babble is a sum of real
  speech clips of other speakers (:func:`babble`, the caller chooses them).
* telephone: resampled to 8 kHz with soxr (its anti-alias filter removes everything above 4 kHz),
  band-passed 300–3400 Hz (4th-order Butterworth), resampled back to ``sr``.
* opus: encoded and decoded in memory by soundfile (libsndfile's OGG/Opus); libsndfile maps the
  compression level ``l`` to a nominal bitrate of ``6 + (1 - l) * 250`` kbit/s per channel.
* gain: multiplied by ``10 ** (dB / 20)`` (float, no clipping); clip: hard-clipped at the level
  exceeded by a given share of the samples.
* crop: a window of the given length at a random start (shorter clips are left whole).
* reverb: convolved with a synthetic room impulse response (a direct path plus exponentially
  decaying Gaussian noise reaching -60 dB at RT60), trimmed to the input length and scaled back to
  its RMS level.
"""
from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["CONDITIONS", "add_noise", "babble", "clip", "crop", "degrade", "gain", "opus",
           "pink_noise", "reverb", "snr_db", "telephone", "white_noise"]

_EPS = 1e-12


def _mono(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or not len(x):
        raise ValueError(f"expected a non-empty mono signal, got shape {x.shape}")
    return x


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    """SNR of ``noisy`` against ``clean`` (dB): ``10 log10(P_clean / P_(noisy - clean))``."""
    clean = _mono(clean)
    return 10 * np.log10(_power(clean) / max(_power(np.asarray(noisy, np.float64) - clean), _EPS))


# ---------------------------------------------------------------------------------------- noise
def white_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of unit-variance Gaussian white noise."""
    return rng.standard_normal(n)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of pink (1/f power) noise: white noise shaped by ``1/sqrt(f)``, unit variance."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    pink = np.fft.irfft(spec / np.sqrt(f), n)
    pink -= pink.mean()
    return pink / max(np.std(pink), _EPS)


def babble(sources: Sequence[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """Babble of ``n`` samples: the sum of every source (each tiled to ``n`` from a random start
    and scaled to unit power), i.e. that many people talking at once."""
    if not len(sources):
        raise ValueError("babble needs at least one speech source")
    out = np.zeros(n)
    for s in sources:
        s = _mono(s)
        start = int(rng.integers(len(s)))
        reps = int(np.ceil((n + start) / len(s)))
        seg = np.tile(s, reps)[start:start + n]
        out += seg / np.sqrt(max(_power(seg), _EPS))
    return out


def add_noise(x: np.ndarray, sr: int, rng: np.random.Generator, *, snr: float,
              noise: str | np.ndarray = "white") -> np.ndarray:
    """``x`` plus noise scaled to ``snr`` dB. ``noise``: ``"white"``, ``"pink"`` or a signal
    (e.g. :func:`babble`), tiled / cut to the length of ``x`` from a random start."""
    x = _mono(x)
    n = len(x)
    if isinstance(noise, str):
        if noise not in ("white", "pink"):
            raise ValueError(f"noise must be 'white', 'pink' or a signal, got {noise!r}")
        v = white_noise(n, rng) if noise == "white" else pink_noise(n, rng)
    else:
        v = _mono(noise)
        start = int(rng.integers(len(v)))
        v = np.tile(v, int(np.ceil((n + start) / len(v))))[start:start + n]
    scale = np.sqrt(_power(x) / (max(_power(v), _EPS) * 10 ** (snr / 10)))
    return (x + scale * v).astype(np.float32)


# ---------------------------------------------------------------------------------------- channel
def telephone(x: np.ndarray, sr: int, rng: np.random.Generator | None = None, *,
              low_hz: float = 300.0, high_hz: float = 3400.0) -> np.ndarray:
    """Narrow-band telephone channel: 8 kHz sampling, 300–3400 Hz band, back at ``sr``."""
    import soxr
    from scipy.signal import butter, sosfiltfilt

    x = _mono(x)
    nb = soxr.resample(x, sr, 8000, quality="HQ")
    sos = butter(4, [low_hz, high_hz], btype="bandpass", fs=8000, output="sos")
    nb = sosfiltfilt(sos, nb)
    y = soxr.resample(nb, 8000, sr, quality="HQ")
    y = y[:len(x)] if len(y) >= len(x) else np.pad(y, (0, len(x) - len(y)))
    return y.astype(np.float32)


def opus(x: np.ndarray, sr: int, rng: np.random.Generator | None = None, *, kbps: float = 16.0) -> np.ndarray:
    """``x`` through an Opus encoder and decoder at about ``kbps`` kbit/s (OGG/Opus in memory).

    Opus takes 8, 12, 16, 24 or 48 kHz; other rates are resampled to 16 kHz and back (soxr)."""
    import soundfile as sf
    import soxr

    x = _mono(x)
    rate = sr if sr in (8000, 12000, 16000, 24000, 48000) else 16000
    y = x if rate == sr else soxr.resample(x, sr, rate)
    level = float(np.clip(1 - (kbps * 1000 - 6000) / 250000, 0.0, 1.0))
    buf = io.BytesIO()
    peak = max(float(np.max(np.abs(y))), 1.0)  # Opus takes [-1, 1]: scale down, restore after
    with sf.SoundFile(buf, "w", rate, 1, format="OGG", subtype="OPUS", compression_level=level) as f:
        f.write((y / peak).astype(np.float32))
    buf.seek(0)
    dec, _ = sf.read(buf, dtype="float64")
    dec = dec * peak
    if rate != sr:
        dec = soxr.resample(dec, rate, sr)
    dec = dec[:len(x)] if len(dec) >= len(x) else np.pad(dec, (0, len(x) - len(dec)))
    return dec.astype(np.float32)


# ---------------------------------------------------------------------------------------- level
def gain(x: np.ndarray, sr: int, rng: np.random.Generator | None = None, *, db: float) -> np.ndarray:
    """``x`` times ``10 ** (db / 20)`` (float: nothing is clipped)."""
    return (_mono(x) * 10 ** (db / 20)).astype(np.float32)


def clip(x: np.ndarray, sr: int, rng: np.random.Generator | None = None, *,
         fraction: float = 0.05) -> np.ndarray:
    """Hard clipping at the level that ``fraction`` of the samples exceed in magnitude."""
    x = _mono(x)
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    thr = float(np.quantile(np.abs(x), 1 - fraction))
    return np.clip(x, -thr, thr).astype(np.float32)


# ---------------------------------------------------------------------------------------- time
def crop(x: np.ndarray, sr: int, rng: np.random.Generator, *, seconds: float) -> np.ndarray:
    """``seconds`` of ``x`` from a random start (the whole clip when it is shorter)."""
    x = _mono(x)
    n = int(round(seconds * sr))
    if len(x) <= n:
        return x.astype(np.float32)
    start = int(rng.integers(0, len(x) - n + 1))
    return x[start:start + n].astype(np.float32)


def reverb(x: np.ndarray, sr: int, rng: np.random.Generator, *, rt60: float = 0.6,
           direct: float = 1.0) -> np.ndarray:
    """``x`` in a simulated room: convolved with a direct path of amplitude ``direct`` plus
    exponentially decaying Gaussian noise (-60 dB at ``rt60`` s), same length and RMS as ``x``."""
    from scipy.signal import fftconvolve

    x = _mono(x)
    n = max(int(rt60 * sr), 1)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * 10 ** (-3 * t / rt60)   # amplitude -60 dB at rt60
    tail[0] = 0.0
    ir = tail / np.sqrt(np.sum(tail ** 2) + _EPS)
    ir[0] = direct
    y = fftconvolve(x, ir)[:len(x)]
    return (y * np.sqrt(_power(x) / max(_power(y), _EPS))).astype(np.float32)


# ---------------------------------------------------------------------------------------- table
#: condition name -> (function, keyword arguments); noise conditions with ``noise="babble"`` need
#: the babble signal passed to :func:`degrade`
CONDITIONS: dict[str, tuple[Callable[..., np.ndarray], dict[str, Any]]] = {
    **{f"{kind}_{snr}dB": (add_noise, {"snr": float(snr), "noise": kind})
       for kind in ("babble", "white", "pink") for snr in (20, 10, 0)},
    "telephone_8k": (telephone, {}),
    "opus_16kbps": (opus, {"kbps": 16.0}),
    "opus_8kbps": (opus, {"kbps": 8.0}),
    "gain_+20dB": (gain, {"db": 20.0}),
    "gain_-20dB": (gain, {"db": -20.0}),
    "clipping_5pct": (clip, {"fraction": 0.05}),
    "crop_2s": (crop, {"seconds": 2.0}),
    "crop_1s": (crop, {"seconds": 1.0}),
    "reverb_rt60_0.6s": (reverb, {"rt60": 0.6}),
}


def degrade(name: str, x: np.ndarray, sr: int, seed: int, babble_signal: np.ndarray | None = None) -> np.ndarray:
    """Condition ``name`` of :data:`CONDITIONS` applied to ``x`` with ``numpy.random.default_rng(seed)``."""
    if name not in CONDITIONS:
        raise ValueError(f"unknown condition {name!r}; choose one of {', '.join(CONDITIONS)}")
    func, kw = CONDITIONS[name]
    kw = dict(kw)
    if kw.get("noise") == "babble":
        if babble_signal is None:
            raise ValueError(f"condition {name!r} needs a babble signal (babble_signal=...)")
        kw["noise"] = babble_signal
    return func(x, sr, np.random.default_rng(seed), **kw)

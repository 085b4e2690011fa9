"""Time–frequency matrices for the CNNs: MFCC (+RMS energy), log-mel, and mel "images"."""
from __future__ import annotations

import numpy as np

from serkit.features.base import FeatureExtractor


def fix_frames(m: np.ndarray, frames: int | None) -> np.ndarray:
    """Crop or zero-pad the last axis of ``m`` to ``frames`` (None keeps it)."""
    if frames is None:
        return m
    if m.shape[-1] >= frames:
        return m[..., :frames]
    pad = [(0, 0)] * (m.ndim - 1) + [(0, frames - m.shape[-1])]
    return np.pad(m, pad, mode="constant", constant_values=float(m.min()) if m.size else 0.0)


class _Spec(FeatureExtractor):
    def __init__(self, n_fft: int = 2048, hop_length: int = 512, frames: int | None = None,
                 fmax: float | None = None) -> None:
        self.n_fft, self.hop_length, self.frames, self.fmax = n_fft, hop_length, frames, fmax

    def params(self):
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}


class MFCC(_Spec):
    """``n_mfcc`` MFCCs, optionally stacked with RMS energy: [n_mfcc (+1), frames] (study 003: 41×216)."""

    name = "mfcc"

    def __init__(self, n_mfcc: int = 40, add_rms: bool = True, n_mels: int = 128,
                 **kw) -> None:
        super().__init__(**kw)
        self.n_mfcc, self.add_rms, self.n_mels = n_mfcc, add_rms, n_mels

    def __call__(self, signal, sr):
        import librosa

        m = librosa.feature.mfcc(y=signal, sr=sr, n_mfcc=self.n_mfcc, n_fft=self.n_fft,
                                 hop_length=self.hop_length, n_mels=self.n_mels, fmax=self.fmax)
        if self.add_rms:
            rms = librosa.feature.rms(y=signal, frame_length=self.n_fft, hop_length=self.hop_length)
            m = np.vstack([m, rms[:, : m.shape[1]]])
        return fix_frames(m.astype(np.float32), self.frames)


class LogMel(_Spec):
    """Log-mel spectrogram in dB, [n_mels, frames] (study 003 MS: 128×126; study 002: n_fft 256, hop 128)."""

    name = "logmel"

    def __init__(self, n_mels: int = 128, top_db: float = 80.0, ref: str = "max", **kw) -> None:
        super().__init__(**kw)
        self.n_mels, self.top_db, self.ref = n_mels, top_db, ref

    def __call__(self, signal, sr):
        import librosa

        s = librosa.feature.melspectrogram(y=signal, sr=sr, n_fft=self.n_fft,
                                           hop_length=self.hop_length, n_mels=self.n_mels,
                                           fmax=self.fmax)
        ref = np.max if self.ref == "max" else 1.0
        db = librosa.power_to_db(s, ref=ref, top_db=self.top_db)
        return fix_frames(db.astype(np.float32), self.frames)


class MelImage(LogMel):
    """Log-mel resized along time to a square ``size``×``size`` image (study 001: 128×128)."""

    name = "melimage"

    def __init__(self, size: int = 128, **kw) -> None:
        kw.setdefault("n_mels", size)
        super().__init__(**kw)
        self.size = size

    def __call__(self, signal, sr):
        db = LogMel.__call__(self, signal, sr)
        t_old = np.linspace(0.0, 1.0, db.shape[1])
        t_new = np.linspace(0.0, 1.0, self.size)
        out = np.stack([np.interp(t_new, t_old, row) for row in db])
        return out.astype(np.float32)

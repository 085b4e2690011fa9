"""Whisper's log-mel spectrogram in NumPy (no torch, no transformers).

The one front end of every Whisper encoder serkit runs: :class:`serkit.backbones.hf.Backbone`
feeds it to the torch encoder (training and prediction) and an exported ONNX model
(:mod:`serkit.inference.onnx_runtime`) feeds it to its graph. It is computed the way Hugging
Face's ``WhisperFeatureExtractor`` computes it, per clip and without the 30 s padding:

1. a centred STFT: the signal is reflect-padded by ``n_fft // 2`` on both sides, cut into frames
   of ``n_fft`` samples every ``hop`` samples, each multiplied by a periodic Hann window;
2. the power spectrum (``|rfft|**2``) of every frame but the last (``len(signal) // hop`` frames);
3. the mel filter bank (``[n_fft // 2 + 1, n_mels]``, saved with the exported model), then
   ``log10(max(mel, 1e-10))``;
4. clamped from below at the clip's own maximum minus 8, then ``(x + 4) / 4``.

Clips shorter than two hops are zero-padded to two hops first (as the backbone does). A batch is
padded with zeros to its longest clip; the lengths say which frames are real.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["HOP", "N_FFT", "log_mel", "log_mel_batch"]

N_FFT = 400
HOP = 160


def _hann(n: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)  # periodic, like torch.hann_window


def log_mel(signal: np.ndarray, mel_filters: np.ndarray, *, n_fft: int = N_FFT,
            hop: int = HOP) -> np.ndarray:
    """Log-mel spectrogram ``[n_mels, len(signal) // hop]`` float32 of one mono 16 kHz signal.

    ``mel_filters``: ``[n_fft // 2 + 1, n_mels]`` (Hugging Face's ``feature_extractor.mel_filters``).
    """
    x = np.asarray(signal, dtype=np.float32).reshape(-1)
    if len(x) < 2 * hop:
        x = np.pad(x, (0, 2 * hop - len(x)))
    n_frames = len(x) // hop
    padded = np.pad(x.astype(np.float64), n_fft // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:n_frames]
    power = np.abs(np.fft.rfft(frames * _hann(n_fft), axis=1)) ** 2      # [frames, n_fft/2 + 1]
    mel = power @ np.asarray(mel_filters, dtype=np.float64)              # [frames, n_mels]
    spec = np.log10(np.maximum(mel, 1e-10)).T
    spec = np.maximum(spec, spec.max() - 8.0)
    return ((spec + 4.0) / 4.0).astype(np.float32)


def log_mel_batch(signals: Sequence[np.ndarray], mel_filters: np.ndarray, *, max_frames: int | None = None,
                  n_fft: int = N_FFT, hop: int = HOP) -> tuple[np.ndarray, np.ndarray]:
    """``(mel [B, n_mels, T] float32, lengths [B] int64)``: each clip's log-mel, zero-padded to the
    longest. ``max_frames``: refuse (ValueError) clips with more mel frames than the encoder takes."""
    mels = []
    for s in signals:
        if max_frames is not None and len(s) > max_frames * hop:
            raise ValueError(f"Whisper encodes at most {max_frames * hop / 16000:.0f} s per clip; got "
                             f"{len(s) / 16000:.1f} s (crop or chunk it first)")
        mels.append(log_mel(s, mel_filters, n_fft=n_fft, hop=hop))
    if not mels:
        raise ValueError("empty batch")
    lengths = np.array([m.shape[1] for m in mels], dtype=np.int64)
    batch = np.zeros((len(mels), mels[0].shape[0], int(lengths.max())), dtype=np.float32)
    for i, m in enumerate(mels):
        batch[i, :, : m.shape[1]] = m
    return batch, lengths

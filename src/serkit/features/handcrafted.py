"""Study 001's handcrafted librosa feature set (utterance-level statistics)."""
from __future__ import annotations

import numpy as np

from serkit.features.base import FeatureExtractor


def snr_db(signal: np.ndarray, frame_length: int = 1024, hop_length: int = 256,
           noise_quantile: float = 0.1) -> float:
    """Signal-to-noise ratio estimate: mean frame energy over the quietest frames' energy (dB)."""
    import librosa

    if len(signal) < frame_length:
        signal = np.pad(signal, (0, frame_length - len(signal)))
    frames = librosa.util.frame(signal, frame_length=frame_length, hop_length=hop_length)
    energy = (frames.astype(np.float64) ** 2).mean(axis=0) + 1e-12
    noise = np.quantile(energy, noise_quantile)
    return float(10.0 * np.log10(energy.mean() / noise))


class Handcrafted(FeatureExtractor):
    """SNR, MFCC mean/std, chroma, mel statistics, spectral contrast, tonnetz,
    centroid/rolloff/bandwidth, tempo, RMS and zero-crossing rate (study 001).

    Output length: 1 + 2·n_mfcc + 12 + 4 + 7 + 6 + 6 + 1 + 2 + 2 (= 81 for n_mfcc=20).
    """

    name = "handcrafted"

    version = 1

    def __init__(self, n_mfcc: int = 20, n_mfcc_computed: int = 40, n_fft: int = 2048,
                 hop_length: int = 512, tonnetz: bool = True) -> None:
        self.n_mfcc, self.n_mfcc_computed = n_mfcc, n_mfcc_computed
        self.n_fft, self.hop_length, self.tonnetz = n_fft, hop_length, tonnetz

    def params(self):
        return dict(vars(self))

    def feature_names(self) -> list[str]:
        names = ["snr_db"]
        names += [f"mfcc{i}_mean" for i in range(self.n_mfcc)]
        names += [f"mfcc{i}_std" for i in range(self.n_mfcc)]
        names += [f"chroma{i}" for i in range(12)]
        names += ["mel_db_mean", "mel_db_std", "mel_db_min", "mel_db_max"]
        names += [f"contrast{i}" for i in range(7)]
        names += [f"tonnetz{i}" for i in range(6)]
        for k in ("centroid", "rolloff", "bandwidth"):
            names += [f"{k}_mean", f"{k}_std"]
        names += ["tempo", "rms_mean", "rms_std", "zcr_mean", "zcr_std"]
        return names

    def __call__(self, signal: np.ndarray, sr: int) -> np.ndarray:
        import librosa

        y = signal.astype(np.float32)
        if len(y) < self.n_fft:
            y = np.pad(y, (0, self.n_fft - len(y)))
        kw = dict(n_fft=self.n_fft, hop_length=self.hop_length)
        stft = np.abs(librosa.stft(y, **kw))
        power = stft ** 2
        mel = librosa.feature.melspectrogram(S=power, sr=sr)
        mel_db = librosa.power_to_db(mel, ref=1.0)
        mfcc = librosa.feature.mfcc(S=mel_db, n_mfcc=self.n_mfcc_computed)[: self.n_mfcc]
        chroma = librosa.feature.chroma_stft(S=power, sr=sr, n_fft=self.n_fft)
        contrast = librosa.feature.spectral_contrast(S=stft, sr=sr, n_fft=self.n_fft)
        if self.tonnetz:
            harm = librosa.effects.harmonic(y)
            ton = librosa.feature.tonnetz(y=harm, sr=sr, chroma=chroma).mean(axis=1)
        else:
            ton = np.zeros(6)
        centroid = librosa.feature.spectral_centroid(S=stft, sr=sr)
        rolloff = librosa.feature.spectral_rolloff(S=stft, sr=sr)
        bandwidth = librosa.feature.spectral_bandwidth(S=stft, sr=sr)
        onset = librosa.onset.onset_strength(y=y, sr=sr, hop_length=self.hop_length)
        tempo = float(np.atleast_1d(librosa.feature.tempo(onset_envelope=onset, sr=sr,
                                                          hop_length=self.hop_length))[0])
        rms = librosa.feature.rms(S=stft, frame_length=self.n_fft)
        zcr = librosa.feature.zero_crossing_rate(y, frame_length=self.n_fft,
                                                 hop_length=self.hop_length)
        parts = [
            [snr_db(y)],
            mfcc.mean(axis=1), mfcc.std(axis=1),
            chroma.mean(axis=1),
            [mel_db.mean(), mel_db.std(), mel_db.min(), mel_db.max()],
            contrast.mean(axis=1),
            ton,
        ]
        for m in (centroid, rolloff, bandwidth):
            parts.append([m.mean(), m.std()])
        parts.append([tempo, rms.mean(), rms.std(), zcr.mean(), zcr.std()])
        return np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in parts]).astype(np.float32)

"""Synthetic audio for tests (no corpus data needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def tone(freq: float = 220.0, seconds: float = 1.0, sr: int = 16000, amp: float = 0.3,
         noise: float = 0.01, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = amp * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return (x + noise * rng.standard_normal(len(t))).astype(np.float32)


def write(path: Path, x: np.ndarray, sr: int = 16000, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr, **kw)
    return path


def synthetic_corpus(root: Path, speakers: int = 6, per_label: int = 4, seconds: float = 0.8,
                     labels=("angry", "sad", "happy")) -> Path:
    """A CSV corpus whose classes differ in pitch and loudness, so a model can learn them."""
    freqs = {"angry": (330.0, 0.6), "sad": (140.0, 0.1), "happy": (520.0, 0.35), "neutral": (220.0, 0.2)}
    rows = ["path,label,speaker,gender"]
    for s in range(speakers):
        for lab in labels:
            f0, amp = freqs[lab]
            for i in range(per_label):
                x = tone(f0 * (1 + 0.03 * s) * (1 + 0.02 * i), seconds, amp=amp, seed=s * 100 + i)
                rel = f"wav/spk{s}/{lab}_{i}.wav"
                write(root / rel, x)
                rows.append(f"{rel},{lab},spk{s},{'female' if s % 2 else 'male'}")
    (root / "corpus.csv").write_text("\n".join(rows) + "\n")
    return root / "corpus.csv"

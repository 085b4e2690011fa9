"""Helpers of the serkit serve tests: a tiny model trained on synthetic tones (once per session),
audio as bytes, decompression bombs, free ports."""
from __future__ import annotations

import io
import socket
from pathlib import Path

import numpy as np
import soundfile as sf

from audio_utils import synthetic_corpus, tone

#: the tiny model's clips are tones: the energy VAD (silero finds no speech in tones)
SEGMENTS = {"vad": "energy", "window_s": 1.0, "hop_s": 0.5, "min_window_s": 0.5, "min_silence_s": 0.3,
            "clip_max_s": 5.0}
SEGMENT_ARGS = [a for k, v in SEGMENTS.items() for a in ("-s", f"{k}={v}")]

_MODELS: dict[str, Path] = {}


def tiny_model(tmp: Path) -> Path:
    """Train (once per session) the tiny angry / happy / sad model of tests/test_predictor.py."""
    key = str(tmp.parent)
    if key in _MODELS:
        return _MODELS[key]
    from typer.testing import CliRunner

    from serkit.cli import app

    csv_path = synthetic_corpus(tmp / "corpus", speakers=4, per_label=4)
    cfg = tmp / "recipe.yaml"
    cfg.write_text(f"""
name: tiny
description: a tiny recogniser on synthetic tones
data: {{corpora: [{{name: csv, root: {csv_path}}}]}}
features: {{kind: mfcc, params: {{n_mfcc: 13, add_rms: false, frames: 20}}, cache_dir: {tmp / 'cache'}, n_jobs: 1}}
audio: {{duration_s: 0.8}}
model: {{name: logreg}}
protocol: {{kind: group_kfold, n_folds: 2}}
""")
    out = tmp / "model"
    res = CliRunner().invoke(app, ["train", str(cfg), "--out", str(out), "--run-dir", str(tmp / "runs"),
                                   "--quiet", "--no-eval"])
    assert res.exit_code == 0, res.output
    _MODELS[key] = out
    return out


def audio_bytes(x: np.ndarray, sr: int = 16000, fmt: str = "WAV", **kw) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, **kw)
    return buf.getvalue()


def angry(seconds: float = 0.8) -> np.ndarray:
    return tone(330, seconds, amp=0.6, seed=3)


def sad(seconds: float = 0.8) -> np.ndarray:
    return tone(140, seconds, amp=0.1, seed=4)


def long_recording() -> np.ndarray:
    """1 s silence, 3 s angry, 2 s silence, 3 s sad, 1 s silence (10 s)."""
    z = lambda s: np.zeros(int(s * 16000), np.float32)  # noqa: E731
    return np.concatenate([z(1), angry(3), z(2), sad(3), z(1)])


def flac_bomb(seconds: float = 3 * 3600, sr: int = 8000, hide_length: bool = False) -> bytes:
    """A FLAC of hours of digital silence: a few hundred kB that decode to ``seconds`` of audio.
    ``hide_length`` zeroes the STREAMINFO sample count (the header then does not say how long
    it is, so only a cap on decoded samples stops it)."""
    buf = io.BytesIO()
    block = np.zeros(sr * 60, np.int16)
    with sf.SoundFile(buf, "w", sr, 1, format="FLAC", subtype="PCM_16") as f:
        for _ in range(int(seconds // 60)):
            f.write(block)
    data = bytearray(buf.getvalue())
    if hide_length:   # STREAMINFO: bytes 18..26 end with the 36-bit total sample count
        bits = int.from_bytes(data[18:26], "big") & ~((1 << 36) - 1)
        data[18:26] = bits.to_bytes(8, "big")
    return bytes(data)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

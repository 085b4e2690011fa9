"""Degradations for the robustness bench: measured SNR, telephone band, Opus, exact gain, clipping,
crop lengths, reverberation, determinism per seed."""
from __future__ import annotations

import numpy as np
import pytest

from serkit.evaluation import degrade as D

SR = 16000


def _speechlike(seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """A harmonic tone with a syllable-rate envelope and broadband content up to 8 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 150 * (1 + 0.1 * np.sin(2 * np.pi * 0.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 40))
    x = x * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)) + 0.05 * rng.standard_normal(len(t))
    return (0.2 * x / np.max(np.abs(x))).astype(np.float32)


def _band_energy(x: np.ndarray, lo: float, hi: float) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    return float(spec[(f >= lo) & (f < hi)].sum())


@pytest.mark.parametrize("noise", ["white", "pink", "babble"])
@pytest.mark.parametrize("snr", [20.0, 10.0, 0.0])
def test_noise_mix_has_the_target_snr(noise, snr):
    x = _speechlike()
    rng = np.random.default_rng(1)
    src = D.babble([_speechlike(2.0, s) for s in (2, 3, 4)], len(x), rng) if noise == "babble" else noise
    y = D.add_noise(x, SR, np.random.default_rng(5), snr=snr, noise=src)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert abs(D.snr_db(x, y) - snr) < 0.5


def test_pink_noise_falls_3db_per_octave():
    n = D.pink_noise(SR * 20, np.random.default_rng(0))
    low, high = _band_energy(n, 500, 1000), _band_energy(n, 2000, 4000)   # two octaves apart
    assert 10 * np.log10(low / high) == pytest.approx(0.0, abs=1.0)         # equal energy per octave
    w = D.white_noise(SR * 20, np.random.default_rng(0))
    assert 10 * np.log10(_band_energy(w, 2000, 4000) / _band_energy(w, 500, 1000)) == pytest.approx(6.0, abs=0.5)


def test_telephone_band_has_no_energy_above_4khz():
    x = _speechlike()
    y = D.telephone(x, SR)
    assert y.shape == x.shape
    total = _band_energy(y, 0, SR / 2)
    assert _band_energy(y, 4000, SR / 2) / total < 1e-5          # below -50 dB
    assert _band_energy(y, 0, 200) / total < 1e-2                # the low end is cut too
    assert _band_energy(x, 4000, SR / 2) / _band_energy(x, 0, SR / 2) > 1e-3  # the input had some


@pytest.mark.parametrize("kbps", [8.0, 16.0])
def test_opus_round_trip_keeps_length_and_loses_detail(kbps):
    x = _speechlike()
    y = D.opus(x, SR, kbps=kbps)
    assert y.shape == x.shape and y.dtype == np.float32
    snr = D.snr_db(x, y)
    assert 0 < snr < 40            # changed, but still the same signal
    assert np.corrcoef(x, y)[0, 1] > 0.7


def test_gain_is_exact_and_clipping_clips_the_stated_share():
    x = _speechlike()
    np.testing.assert_allclose(D.gain(x, SR, db=20.0), x * 10.0, rtol=1e-6)
    np.testing.assert_allclose(D.gain(x, SR, db=-20.0), x / 10.0, rtol=1e-6)
    y = D.clip(x, SR, fraction=0.05)
    thr = np.max(np.abs(y))
    assert np.mean(np.abs(x) >= thr) == pytest.approx(0.05, abs=0.002)
    np.testing.assert_array_equal(y[np.abs(x) < thr], x[np.abs(x) < thr])


@pytest.mark.parametrize("seconds", [1.0, 2.0])
def test_crops_have_the_right_length(seconds):
    x = _speechlike(3.0)
    y = D.crop(x, SR, np.random.default_rng(0), seconds=seconds)
    assert len(y) == int(seconds * SR)
    start = int(np.flatnonzero(np.isclose(x, y[0]) & np.isclose(np.roll(x, -1), y[1]))[0])
    np.testing.assert_array_equal(y, x[start:start + len(y)])
    short = _speechlike(0.5)
    assert len(D.crop(short, SR, np.random.default_rng(0), seconds=seconds)) == len(short)


def test_reverb_keeps_length_and_level_and_smears_in_time():
    x = np.zeros(SR, np.float32)
    x[1000] = 1.0                                       # an impulse: the output is the room's response
    y = D.reverb(x, SR, np.random.default_rng(0), rt60=0.6)
    assert y.shape == x.shape
    assert np.sqrt(np.mean(y ** 2)) == pytest.approx(np.sqrt(np.mean(x ** 2)), rel=1e-4)
    tail = y[1001:]
    e1, e2 = np.sum(tail[:1600] ** 2), np.sum(tail[3200:4800] ** 2)   # 0–0.1 s and 0.2–0.3 s after
    assert e1 > 0 and 10 * np.log10(e1 / e2) == pytest.approx(20.0, abs=4.0)  # 60 dB / 0.6 s


def test_degrade_is_deterministic_per_seed_and_checks_its_input():
    x = _speechlike()
    for name in D.CONDITIONS:
        kw = {"babble_signal": _speechlike(2.0, 9)} if name.startswith("babble") else {}
        a = D.degrade(name, x, SR, seed=3, **kw)
        b = D.degrade(name, x, SR, seed=3, **kw)
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.float32 and np.isfinite(a).all()
    with pytest.raises(ValueError, match="unknown condition"):
        D.degrade("underwater", x, SR, seed=0)
    with pytest.raises(ValueError, match="babble"):
        D.degrade("babble_10dB", x, SR, seed=0)
    with pytest.raises(ValueError, match="mono"):
        D.gain(np.zeros((10, 2)), SR, db=3.0)

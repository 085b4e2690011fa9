"""Training-time augmentation.

Spectrogram augmentations (study 001: time masking, frequency masking, Gaussian noise) are torch
modules applied to a batch inside the training step only: they return their input unchanged in eval
mode, and draw their randomness from their own seeded ``torch.Generator`` so a run is reproducible
and the global RNG is left alone. They accept ``[B, C, H, W]`` (H = frequency, W = time), ``[B, C, T]``
(time masking / noise only) and the hybrid dict ``{"spec": ..., "scalars": ...}`` (``spec`` only).

Waveform augmentations (study 003: Gaussian noise with σ² ∈ [.001, .003], pitch shift ±2 semitones,
time stretch 0.9–1.1; robustness, issue 14: white / pink noise at an SNR, telephone band, gain,
babble of other talkers) use audiomentations and belong to the waveform pipeline, before feature
extraction: :func:`waveform_augmenter` returns a seeded ``callable(samples, sr) -> samples``.

Both are configured by a dict ``{name: params}``, names from :data:`SPEC_AUGMENTATIONS` /
:data:`WAVEFORM_AUGMENTATIONS`, e.g. ``{"time_mask": {"max_width": 20}, "gaussian_noise": {"std": .05}}``.
"""
from __future__ import annotations

import contextlib
import functools
import random
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn


class _SpecTransform(nn.Module):
    """Base: seeded generator, probability ``p`` per example, no-op in eval mode."""

    def __init__(self, p: float = 1.0) -> None:
        super().__init__()
        self.p = float(p)
        self.generator = torch.Generator().manual_seed(0)

    def seed(self, seed: int) -> None:
        self.generator.manual_seed(int(seed))

    def _rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.generator)

    def transform(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x):
        if not self.training:
            return x
        if isinstance(x, Mapping):
            return {**x, "spec": self.forward(x["spec"])}
        return self.transform(x)


def _axis_mask(gen: torch.Generator, batch: int, length: int, n: int, max_width: int,
               p: float) -> torch.Tensor:
    """Boolean ``[B, length]``, True where masked: ``n`` bands of width 0..max_width per example."""
    mask = torch.zeros(batch, length, dtype=torch.bool)
    pos = torch.arange(length)
    active = torch.rand(batch, generator=gen) < p
    for _ in range(n):
        width = torch.randint(0, max(1, min(max_width, length)) + 1, (batch,), generator=gen)
        start = (torch.rand(batch, generator=gen) * (length - width + 1)).long()
        band = (pos[None, :] >= start[:, None]) & (pos[None, :] < (start + width)[:, None])
        mask |= band & active[:, None]
    return mask


class TimeMask(_SpecTransform):
    """SpecAugment time masking: ``n`` bands of up to ``max_width`` frames set to ``value``."""

    def __init__(self, max_width: int = 20, n: int = 1, value: float = 0.0, p: float = 1.0) -> None:
        super().__init__(p)
        self.max_width, self.n, self.value = int(max_width), int(n), float(value)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        mask = _axis_mask(self.generator, x.shape[0], x.shape[-1], self.n, self.max_width, self.p)
        mask = mask.to(x.device).view(x.shape[0], *([1] * (x.dim() - 2)), x.shape[-1])
        return x.masked_fill(mask, self.value)


class FreqMask(_SpecTransform):
    """SpecAugment frequency masking on the H axis of ``[B, C, H, W]``."""

    def __init__(self, max_width: int = 15, n: int = 1, value: float = 0.0, p: float = 1.0) -> None:
        super().__init__(p)
        self.max_width, self.n, self.value = int(max_width), int(n), float(value)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            return x
        mask = _axis_mask(self.generator, x.shape[0], x.shape[2], self.n, self.max_width, self.p)
        return x.masked_fill(mask.to(x.device)[:, None, :, None], self.value)


class GaussianNoise(_SpecTransform):
    """Additive N(0, std²) noise (inputs are standardised, so ``std`` is relative to unit variance)."""

    def __init__(self, std: float = 0.05, p: float = 1.0) -> None:
        super().__init__(p)
        self.std = float(std)

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(x.shape, generator=self.generator) * self.std
        active = (self._rand(x.shape[0]) < self.p).to(noise.dtype)
        noise = noise * active.view(-1, *([1] * (x.dim() - 1)))
        return x + noise.to(device=x.device, dtype=x.dtype)


SPEC_AUGMENTATIONS: dict[str, type[_SpecTransform]] = {
    "time_mask": TimeMask,
    "freq_mask": FreqMask,
    "gaussian_noise": GaussianNoise,
}


class SpecAugmentPipeline(nn.Sequential):
    """Sequence of spectrogram transforms; :meth:`seed` reseeds each member deterministically."""

    def seed(self, seed: int) -> None:
        for i, m in enumerate(self):
            m.seed(int(seed) * 1000 + i)


def build_spec_augment(spec: Mapping[str, Any] | None, seed: int = 0) -> SpecAugmentPipeline | None:
    """Build the training-time spectrogram augmentation from ``{name: params}`` (None/empty → None).

    ``params`` may be a dict of keyword arguments, ``True`` (defaults) or ``False``/``None`` (skip).
    """
    if not spec:
        return None
    members = []
    for name, params in spec.items():
        if params is False or params is None:
            continue
        if name not in SPEC_AUGMENTATIONS:
            raise KeyError(f"unknown augmentation {name!r}; choose from {sorted(SPEC_AUGMENTATIONS)}")
        kwargs = {} if params is True else dict(params)
        members.append(SPEC_AUGMENTATIONS[name](**kwargs))
    if not members:
        return None
    pipe = SpecAugmentPipeline(*members)
    pipe.seed(seed)
    return pipe


# --------------------------------------------------------------------------------------------------
# waveform augmentation (audiomentations)

def _noise(min_var: float = 0.001, max_var: float = 0.003, p: float = 0.5):
    from audiomentations import AddGaussianNoise
    return AddGaussianNoise(min_amplitude=float(np.sqrt(min_var)), max_amplitude=float(np.sqrt(max_var)), p=p)


def _pitch(min_semitones: float = -2.0, max_semitones: float = 2.0, p: float = 0.5):
    from audiomentations import PitchShift
    return PitchShift(min_semitones=min_semitones, max_semitones=max_semitones, p=p)


def _stretch(min_rate: float = 0.9, max_rate: float = 1.1, p: float = 0.5,
             leave_length_unchanged: bool = True):
    from audiomentations import TimeStretch
    return TimeStretch(min_rate=min_rate, max_rate=max_rate, p=p,
                       leave_length_unchanged=leave_length_unchanged)


def _white(min_snr_db: float = 5.0, max_snr_db: float = 20.0, p: float = 0.5):
    """White Gaussian noise at an SNR drawn uniformly (dB) from [min_snr_db, max_snr_db]."""
    from audiomentations import AddGaussianSNR
    return AddGaussianSNR(min_snr_db=min_snr_db, max_snr_db=max_snr_db, p=p)


def _pink(min_snr_db: float = 5.0, max_snr_db: float = 20.0, p: float = 0.5):
    """Pink (1/f power, -3.01 dB/octave) noise at an SNR drawn from [min_snr_db, max_snr_db]."""
    from audiomentations import AddColorNoise
    pink = -10 * float(np.log10(2))
    return AddColorNoise(min_snr_db=min_snr_db, max_snr_db=max_snr_db, min_f_decay=pink,
                         max_f_decay=pink, p=p)


def _telephone(low_hz: float = 300.0, high_hz: float = 3400.0, p: float = 0.5):
    """Telephone band: zero-phase 4th-order Butterworth high-pass at ``low_hz`` then low-pass at
    ``high_hz`` (audiomentations HighPassFilter + LowPassFilter, 24 dB/octave each, filtered forwards
    and backwards), both or neither. The same band as serkit.evaluation.degrade.telephone, without
    its 8 kHz resampling (everything above ``high_hz`` is already filtered out)."""
    from audiomentations import Compose, HighPassFilter, LowPassFilter
    return Compose([HighPassFilter(min_cutoff_freq=low_hz, max_cutoff_freq=low_hz, min_rolloff=24,
                                   max_rolloff=24, zero_phase=True, p=1.0),
                    LowPassFilter(min_cutoff_freq=high_hz, max_cutoff_freq=high_hz, min_rolloff=24,
                                  max_rolloff=24, zero_phase=True, p=1.0)], p=p)


def _gain(min_gain_db: float = -12.0, max_gain_db: float = 12.0, p: float = 0.5):
    from audiomentations import Gain
    return Gain(min_gain_db=min_gain_db, max_gain_db=max_gain_db, p=p)


def _babble(min_snr_db: float = 5.0, max_snr_db: float = 20.0, talkers: int = 4, p: float = 0.5):
    """Babble of ``talkers`` other talkers at an SNR drawn from [min_snr_db, max_snr_db]."""
    return add_babble_class()(min_snr_db=min_snr_db, max_snr_db=max_snr_db, talkers=talkers, p=p)


@functools.cache
def add_babble_class() -> type:
    """The ``AddBabble`` audiomentations transform (defined on first use: audiomentations is
    imported lazily)."""
    from audiomentations.core.transforms_interface import BaseWaveformTransform

    class AddBabble(BaseWaveformTransform):
        """Babble: the talkers' utterances (:attr:`sources`, set by the caller before each call; the
        caller chooses whose), each tiled to the clip's length from a random start and scaled to
        unit power, summed, and added at an SNR drawn from [min_snr_db, max_snr_db] (powers are
        mean squares over the whole clip, as in serkit.evaluation.degrade.add_noise). Without
        sources the clip is returned unchanged."""

        supports_multichannel = False

        def __init__(self, min_snr_db: float = 5.0, max_snr_db: float = 20.0, talkers: int = 4,
                     p: float = 0.5):
            super().__init__(p)
            if min_snr_db > max_snr_db:
                raise ValueError("min_snr_db must not be greater than max_snr_db")
            if int(talkers) < 1:
                raise ValueError(f"talkers must be at least 1, got {talkers}")
            self.min_snr_db, self.max_snr_db, self.talkers = float(min_snr_db), float(max_snr_db), int(talkers)
            self.sources: list[np.ndarray] = []

        def randomize_parameters(self, samples, sample_rate):
            super().randomize_parameters(samples, sample_rate)
            if self.parameters["should_apply"]:
                self.parameters["snr_db"] = random.uniform(self.min_snr_db, self.max_snr_db)
                self.parameters["starts"] = [random.randrange(max(len(s), 1)) for s in self.sources]

        def apply(self, samples, sample_rate):
            if not self.sources:
                return samples
            n = len(samples)
            mix = np.zeros(n, dtype=np.float64)
            for s, start in zip(self.sources, self.parameters["starts"]):
                s = np.asarray(s, dtype=np.float64)
                seg = np.tile(s, int(np.ceil((n + start) / len(s))))[start:start + n]
                mix += seg / np.sqrt(max(float(np.mean(seg ** 2)), 1e-12))
            p_x = float(np.mean(np.asarray(samples, np.float64) ** 2))
            scale = np.sqrt(p_x / (max(float(np.mean(mix ** 2)), 1e-12) * 10 ** (self.parameters["snr_db"] / 10)))
            return (samples + scale * mix).astype(np.float32)

    return AddBabble


WAVEFORM_AUGMENTATIONS: dict[str, Callable[..., Any]] = {
    "gaussian_noise": _noise,   # study 003: sigma^2 in [.001, .003]
    "pitch_shift": _pitch,      # study 003: +-2 semitones
    "time_stretch": _stretch,   # study 003: rate 0.9-1.1
    "white_noise": _white,      # robustness: white noise at an SNR
    "pink_noise": _pink,        # robustness: pink noise at an SNR
    "telephone": _telephone,    # robustness: 300-3400 Hz band
    "gain": _gain,
    "babble": _babble,          # robustness: other talkers at an SNR (the caller supplies them)
}


def babble_talkers(spec: Mapping[str, Any] | None) -> int:
    """How many talkers the ``babble`` entry of ``spec`` mixes (0 when there is none)."""
    params = (spec or {}).get("babble")
    if params is None or params is False:
        return 0
    import inspect

    default = inspect.signature(_babble).parameters["talkers"].default
    return int(dict(params).get("talkers", default) if isinstance(params, Mapping) else default)


@contextlib.contextmanager
def _seeded_global_rngs(seed: int):
    """audiomentations draws from ``random`` and ``np.random``: seed them, then restore their state."""
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def waveform_augmenter(spec: Mapping[str, Any] | None, seed: int = 0
                       ) -> Callable[..., np.ndarray]:
    """Seeded waveform augmenter: ``f(samples, sr, *, seed=None, babble=None) -> samples`` (float32 mono).

    The sequence of outputs is reproducible for a given ``seed``; a call with its own ``seed`` is
    reproducible on its own (whatever came before). ``babble``: the talkers' signals that a
    ``babble`` transform mixes in this call. The global RNGs are untouched. With an empty ``spec``
    the function returns its input. Unknown names raise ``KeyError``, bad parameters ``ValueError``.
    """
    from audiomentations import Compose

    transforms, babblers = [], []
    for name, params in (spec or {}).items():
        if params is False or params is None:
            continue
        if name not in WAVEFORM_AUGMENTATIONS:
            raise KeyError(f"unknown waveform augmentation {name!r}; "
                           f"choose from {sorted(WAVEFORM_AUGMENTATIONS)}")
        kwargs = {} if params is True else dict(params)
        try:
            t = WAVEFORM_AUGMENTATIONS[name](**kwargs)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"augmentation {name!r}: bad parameters {kwargs}: {exc}") from None
        transforms.append(t)
        if name == "babble":
            babblers.append(t)
    compose = Compose(transforms) if transforms else None
    rng = np.random.default_rng(seed)

    def augment(samples: np.ndarray, sr: int, *, seed: int | None = None,
                babble: list[np.ndarray] | None = None) -> np.ndarray:
        samples = np.asarray(samples, dtype=np.float32)
        if compose is None:
            return samples
        for b in babblers:
            b.sources = [np.asarray(s, dtype=np.float32) for s in (babble or []) if len(s)]
        call_seed = int(rng.integers(2**31 - 1)) if seed is None else int(seed) % (2**31 - 1)
        with _seeded_global_rngs(call_seed):
            return np.asarray(compose(samples=samples, sample_rate=int(sr)), dtype=np.float32)

    return augment

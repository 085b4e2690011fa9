"""Augmentation: training-step only, off in eval / predict, deterministic under a seed."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from serkit.models.torch_estimator import TorchClassifier
from serkit.training.augmentation import (SPEC_AUGMENTATIONS, WAVEFORM_AUGMENTATIONS, FreqMask, TimeMask,
                                          build_spec_augment, waveform_augmenter)

torch.set_num_threads(min(2, torch.get_num_threads()))
SPEC = {"time_mask": {"max_width": 6, "n": 2}, "freq_mask": {"max_width": 4},
        "gaussian_noise": {"std": 0.1}}


def test_registry_names():
    assert {"time_mask", "freq_mask", "gaussian_noise"} <= set(SPEC_AUGMENTATIONS)
    assert {"gaussian_noise", "pitch_shift", "time_stretch"} <= set(WAVEFORM_AUGMENTATIONS)
    assert build_spec_augment(None) is None and build_spec_augment({}) is None
    with pytest.raises(KeyError):
        build_spec_augment({"nope": {}})


def test_spec_augment_train_only_and_seeded():
    x = torch.randn(4, 1, 16, 30)
    aug = build_spec_augment(SPEC, seed=7)
    aug.eval()
    assert torch.equal(aug(x), x)                      # identity in eval mode
    aug.train()
    a1 = aug(x)
    assert not torch.equal(a1, x)
    a2 = build_spec_augment(SPEC, seed=7).train()(x)
    assert torch.equal(a1, a2)                         # same seed -> same augmentation
    a3 = build_spec_augment(SPEC, seed=8).train()(x)
    assert not torch.equal(a1, a3)
    h = {"spec": x, "scalars": torch.randn(4, 3)}
    out = build_spec_augment(SPEC, seed=7).train()(h)
    assert torch.equal(out["spec"], a1) and torch.equal(out["scalars"], h["scalars"])


def test_masks_cover_whole_rows_and_columns():
    x = torch.ones(3, 1, 10, 40)
    t = TimeMask(max_width=8, n=1).train()
    t.seed(0)
    m = t(x)
    cols = (m == 0).all(dim=2).squeeze(1)             # fully masked frames
    assert ((m == 0) == cols[:, None, None, :]).all()  # zeros only in whole columns
    f = FreqMask(max_width=5, n=1).train()
    f.seed(1)
    m = f(x)
    rows = (m == 0).all(dim=3).squeeze(1)
    assert ((m == 0) == rows[:, None, :, None]).all()


def test_estimator_predict_is_unaffected_by_augmentation():
    rng = np.random.default_rng(0)
    y = np.array(["a", "b"])[rng.integers(0, 2, 40)]
    X = rng.normal(size=(40, 12, 16)).astype(np.float32)
    X[y == "a", :4] += 2
    clf = TorchClassifier("cnn3", augment=SPEC, max_epochs=1, batch_size=8, seed=0).fit(X, y)
    p1, p2 = clf.predict_proba(X), clf.predict_proba(X)
    assert np.array_equal(p1, p2)
    assert not clf.network_.training
    clf2 = TorchClassifier("cnn3", augment=SPEC, max_epochs=1, batch_size=8, seed=0).fit(X, y)
    assert np.allclose(clf2.predict_proba(X), p1, atol=1e-6)   # seeded training is reproducible


def test_waveform_augmenter_seeded_and_leaves_global_rng():
    sr = 16000
    t = np.arange(sr // 4) / sr
    x = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    spec = {"gaussian_noise": {"p": 1.0}, "pitch_shift": {"p": 1.0}, "time_stretch": {"p": 1.0}}
    random.seed(123)
    np.random.seed(123)
    ref_py, ref_np = random.random(), np.random.rand()
    random.seed(123)
    np.random.seed(123)
    f1, f2 = waveform_augmenter(spec, seed=5), waveform_augmenter(spec, seed=5)
    y1 = [f1(x, sr) for _ in range(2)]
    y2 = [f2(x, sr) for _ in range(2)]
    assert random.random() == ref_py and np.random.rand() == ref_np
    assert all(np.array_equal(a, b) for a, b in zip(y1, y2))
    assert y1[0].shape == x.shape and y1[0].dtype == np.float32
    assert not np.array_equal(y1[0], x) and not np.array_equal(y1[0], y1[1])
    assert np.array_equal(waveform_augmenter({}, seed=0)(x, sr), x)

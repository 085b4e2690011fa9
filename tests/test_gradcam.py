"""Grad-CAM: map shapes, [0, 1] range, estimator entry point, PNG output."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from serkit.evaluation.gradcam import GradCAM, gradcam_for_estimator, save_gradcam_png
from serkit.models.nn import build_network
from serkit.models.torch_estimator import TorchClassifier

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.mark.parametrize("name,shape", [("cnn3", (1, 16, 24)), ("mfcc_cnn_003", (1, 41, 40)),
                                        ("mfcc_crnn_003", (1, 41, 40)), ("alexnet", (1, 64, 120)),
                                        ("mfcc_cnn_000", (1, 20, 30))])
def test_gradcam_2d(name, shape):
    torch.manual_seed(0)
    net = build_network(name, 4, shape)
    cam = GradCAM(net)(torch.randn(3, *shape))
    assert cam.shape == (3, shape[1], shape[2])
    assert cam.min() >= 0 and cam.max() <= 1 and np.isfinite(cam).all()


def test_gradcam_1d_hybrid_and_class_index():
    torch.manual_seed(0)
    net = build_network("cnn1d_mfcc", 3, (1, 216))
    cam = GradCAM(net)(torch.randn(2, 1, 216), class_index=1)
    assert cam.shape == (2, 1, 216) and cam.min() >= 0 and cam.max() <= 1
    hyb = build_network("cnn_mlp", 3, {"spec": (1, 12, 10), "scalars": (4,)})
    cam = GradCAM(hyb)({"spec": torch.randn(2, 1, 12, 10), "scalars": torch.randn(2, 4)})
    assert cam.shape == (2, 12, 10)
    with pytest.raises(ValueError):
        GradCAM(build_network("mlp_001", 3, (8,)))


def test_gradcam_for_estimator_and_png(tmp_path):
    rng = np.random.default_rng(0)
    y = np.array(["angry", "sad"])[rng.integers(0, 2, 32)]
    X = rng.normal(size=(32, 16, 20)).astype(np.float32)
    X[y == "angry", 2:6, 5:12] += 3
    clf = TorchClassifier("cnn3", max_epochs=2, batch_size=8, lr=3e-3).fit(X, y)
    maps = gradcam_for_estimator(clf, X[:5])
    assert maps.shape == (5, 16, 20) and maps.min() >= 0 and maps.max() <= 1
    maps_a = gradcam_for_estimator(clf, X[:5], class_index="angry", batch_size=2)
    assert maps_a.shape == (5, 16, 20)
    assert not clf.network_.training
    path = save_gradcam_png(maps_a[0], X[0], tmp_path / "g" / "cam.png", title="angry")
    assert path.exists() and path.stat().st_size > 1000

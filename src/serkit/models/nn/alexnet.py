"""Study 002's M1: an AlexNet-style CNN (5 conv + 3 FC, all ReLU) on mel spectrograms.

The paper computes mel spectrograms with a 256-sample STFT frame and 50 % overlap (hop 128 at 16 kHz,
125 frames/s), so a 3 s utterance is about 128 mel × 376 frames. serkit keeps AlexNet's topology
(11×11/4 conv, 3×3/2 max-pools after conv 1, 2 and 5, channels 64-192-384-256-256, dropout .5 before
the first two FC layers) and adapts the head for CPU training on single-channel spectrograms: an
adaptive average pool to ``(2, 4)`` (any number of frames is accepted) and FC 1024-1024 instead of
4096-4096 (≈ 5.6 M parameters instead of ≈ 57 M).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from serkit.models.nn.cnn import SERNetwork


class AlexNetSER(SERNetwork):
    """AlexNet-style network; input ``[B, C, n_mels, frames]``."""

    def __init__(self, n_classes: int, input_shape: Sequence[int] = (1, 128, 376), *,
                 channels: Sequence[int] = (64, 192, 384, 256, 256), fc: int = 1024,
                 pool_to: tuple[int, int] = (2, 4), dropout: float = 0.5) -> None:
        super().__init__()
        input_shape = tuple(int(s) for s in input_shape)
        if len(input_shape) == 2:
            input_shape = (1, *input_shape)
        self.input_shape = input_shape
        c1, c2, c3, c4, c5 = channels
        self.features_ = nn.Sequential(
            nn.Conv2d(input_shape[0], c1, 11, stride=4, padding=2), nn.ReLU(),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
            nn.Conv2d(c1, c2, 5, padding=2), nn.ReLU(),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c3, c4, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c4, c5, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(3, stride=2, ceil_mode=True),
        )
        self.gradcam_layer = "features_.10"
        self.pool = nn.AdaptiveAvgPool2d(pool_to)
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(c5 * pool_to[0] * pool_to[1], fc), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(fc, fc), nn.ReLU(),
        )
        self.classifier = nn.Linear(fc, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.pool(self.features_(x)), 1))


def alexnet(n_classes: int, input_shape: Sequence[int] = (1, 128, 376), **kw) -> AlexNetSER:
    """Study 002 M1 (AlexNet on mel spectrograms, STFT 256 / hop 128)."""
    return AlexNetSER(n_classes, input_shape, **kw)

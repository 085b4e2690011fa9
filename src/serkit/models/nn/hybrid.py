"""Study 001's CNN + MLP hybrid: a CNN branch on an MFCC / spectrogram image and an MLP branch on
scalar features, concatenated into a 128-64 classifier (Table 5).

Input: a dict ``{"spec": [B, C, H, W], "scalars": [B, S]}`` (a ``(spec, scalars)`` tuple also works).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from serkit.models.nn.cnn import SERNetwork, _conv_grid


def _unpack(x) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(x, Mapping):
        return x["spec"], x["scalars"]
    spec, scalars = x
    return spec, scalars


class CNNMLP(SERNetwork):
    """CNN branch: conv(64) → BN → ReLU → max-pool (2, 1) (halves H only) → conv(128) → BN → ReLU →
    flatten. MLP branch: 128 → 64 (ReLU, dropout .3, BN). Combined: 128 → 64 (ReLU, dropout .3) → C.

    Parameters
    ----------
    input_shape : {"spec": (C, H, W), "scalars": (S,)}
    spec_pool : (h, w) or None
        The paper flattens the full ``128 × H/2 × W`` map, which is huge on real spectrograms
        (128×64×128 ≈ 1 M features). By default serkit adaptive-average-pools the branch output to
        ``(8, 8)`` first (8192 features); ``None`` keeps the paper's full flatten.
    """

    input_kind = "hybrid"
    gradcam_layer = "cnn.4"

    def __init__(self, n_classes: int, input_shape: Mapping[str, Sequence[int]], *,
                 spec_pool: tuple[int, int] | None = (8, 8), dropout: float = 0.3) -> None:
        super().__init__()
        spec_shape = tuple(int(s) for s in input_shape["spec"])
        if len(spec_shape) == 2:
            spec_shape = (1, *spec_shape)
        n_scalars = int(torch.Size(input_shape["scalars"]).numel())
        self.input_shape = {"spec": spec_shape, "scalars": (n_scalars,)}
        self.cnn = nn.Sequential(
            nn.Conv2d(spec_shape[0], 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d((2, 1)),
            nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(),
        )
        grid = _conv_grid(self.cnn, spec_shape)
        self.spec_pool = nn.AdaptiveAvgPool2d(spec_pool if spec_pool else grid[1:])
        h, w = spec_pool if spec_pool else grid[1:]
        d_spec = 128 * h * w
        self.mlp = nn.Sequential(
            nn.Linear(n_scalars, 128), nn.ReLU(), nn.Dropout(dropout), nn.BatchNorm1d(128),
            nn.Linear(128, 64), nn.ReLU(), nn.Dropout(dropout), nn.BatchNorm1d(64),
        )
        self.fusion = nn.Sequential(
            nn.Linear(d_spec + 64, 128), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(128, 64), nn.ReLU(), nn.Dropout(dropout),
        )
        self.classifier = nn.Linear(64, n_classes)

    def embed(self, x) -> torch.Tensor:
        spec, scalars = _unpack(x)
        z = torch.flatten(self.spec_pool(self.cnn(spec)), 1)
        return self.fusion(torch.cat([z, self.mlp(torch.flatten(scalars, 1))], dim=1))


def cnn_mlp(n_classes: int, input_shape: Mapping[str, Sequence[int]] | None = None, **kw) -> CNNMLP:
    """Study 001 CNN + MLP hybrid; nominal input {"spec": (1, 40, 128), "scalars": (32,)}."""
    return CNNMLP(n_classes, input_shape or {"spec": (1, 40, 128), "scalars": (32,)}, **kw)

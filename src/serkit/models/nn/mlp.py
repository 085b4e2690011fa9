"""Study 001's MLP on handcrafted feature vectors ``[B, F]``."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from serkit.models.nn.cnn import SERNetwork


class MLP(SERNetwork):
    """Linear → BatchNorm → ReLU → Dropout per hidden layer, then a linear classifier.

    Study 001: hidden 256-128-64, dropout .4/.4/.3 (Table 1).
    """

    input_kind = "vector"

    def __init__(self, n_classes: int, input_shape: Sequence[int] | int, *,
                 hidden: Sequence[int] = (256, 128, 64),
                 dropout: Sequence[float] | float = (0.4, 0.4, 0.3)) -> None:
        super().__init__()
        d_in = int(input_shape if isinstance(input_shape, int) else
                   torch.Size(input_shape).numel())
        self.input_shape = (d_in,)
        drops = [dropout] * len(hidden) if isinstance(dropout, (int, float)) else list(dropout)
        layers: list[nn.Module] = []
        for h, p in zip(hidden, drops):
            layers += [nn.Linear(d_in, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Dropout(p)]
            d_in = h
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(d_in, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(torch.flatten(x, 1))


def mlp_001(n_classes: int, input_shape: Sequence[int] | int = (180,), **kw) -> MLP:
    """Study 001 MLP (256-128-64, BN, ReLU, dropout .4/.4/.3)."""
    return MLP(n_classes, input_shape, **kw)

"""Study 003's "MFCC2": CNN + BiLSTM + attention on the 41×216 MFCC+RMS input.

The paper names the combination only (66.95 %). serkit's version: three conv blocks 32-64-128
(conv → ReLU → BN, Keras order; max-pool 2×2, 2×2, then 2×1 so the time axis keeps 54 steps;
dropout 0/.1/.2), the feature map read as a sequence over frames (128 channels × remaining frequency
rows per step), a bidirectional LSTM (128 per direction), additive attention pooling over time
(``w = v·tanh(W h + b)``, ``α = softmax(w)``, ``e = Σ α_t h_t``), dense 128 (ReLU), dropout .3, softmax.
The last attention weights are kept in ``last_attention`` ``[B, T']`` for reports.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from serkit.models.nn.cnn import ConvBlock2d, SERNetwork, _conv_grid


class AdditiveAttention(nn.Module):
    """Attention pooling over time of ``h`` ``[B, T, D]`` → ``[B, D]`` (weights in ``last_weights``)."""

    def __init__(self, dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, hidden)
        self.score = nn.Linear(hidden, 1, bias=False)
        self.last_weights: torch.Tensor | None = None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        alpha = torch.softmax(self.score(torch.tanh(self.proj(h))).squeeze(-1), dim=1)
        self.last_weights = alpha.detach()
        return torch.bmm(alpha.unsqueeze(1), h).squeeze(1)


class CNNBiLSTMAttention(SERNetwork):
    """CNN front end, BiLSTM over frames, attention pooling, dense head; input ``[B, C, H, W]``."""

    def __init__(self, n_classes: int, input_shape: Sequence[int] = (1, 41, 216), *,
                 channels: Sequence[int] = (32, 64, 128), block_dropout: Sequence[float] = (0.0, 0.1, 0.2),
                 pools: Sequence[tuple[int, int]] = ((2, 2), (2, 2), (2, 1)), lstm_hidden: int = 128,
                 dense: int = 128, dropout: float = 0.3) -> None:
        super().__init__()
        input_shape = tuple(int(s) for s in input_shape)
        if len(input_shape) == 2:
            input_shape = (1, *input_shape)
        self.input_shape = input_shape
        blocks, c_in = [], input_shape[0]
        for c, p, pool in zip(channels, block_dropout, pools):
            blocks.append(ConvBlock2d(c_in, c, pool=tuple(pool), dropout=p, order="relu_bn"))
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.gradcam_layer = f"blocks.{len(blocks) - 1}.conv"
        c, h, _ = _conv_grid(self.blocks, input_shape)
        self.lstm = nn.LSTM(c * h, lstm_hidden, batch_first=True, bidirectional=True)
        self.attention = AdditiveAttention(2 * lstm_hidden)
        self.head = nn.Sequential(nn.Linear(2 * lstm_hidden, dense), nn.ReLU(), nn.Dropout(dropout))
        self.classifier = nn.Linear(dense, n_classes)

    @property
    def last_attention(self) -> torch.Tensor | None:
        return self.attention.last_weights

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        z = self.blocks(x)                                  # [B, C, h, T']
        seq = z.permute(0, 3, 1, 2).flatten(2)              # [B, T', C*h]
        out, _ = self.lstm(seq)
        return self.head(self.attention(out))


def mfcc_crnn_003(n_classes: int, input_shape: Sequence[int] = (1, 41, 216), **kw) -> CNNBiLSTMAttention:
    """Study 003 "MFCC2" (CNN + BiLSTM + attention) on 41×216 MFCC + RMS."""
    return CNNBiLSTMAttention(n_classes, input_shape, **kw)

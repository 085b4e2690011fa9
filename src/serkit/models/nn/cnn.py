"""Convolutional networks on spectrogram / MFCC "images" and the 1-D MFCC baseline.

Every network in :mod:`serkit.models.nn` derives from :class:`SERNetwork`: ``forward(x)`` returns logits
``[B, n_classes]``, ``embed(x)`` the penultimate representation ``[B, d]``, ``gradcam_layer`` names the
last convolutional layer (a dotted module name, ``None`` for networks without one) and
``layer_weight_decay`` maps module-name prefixes to a per-layer weight decay (Keras-style L2 on one
layer, e.g. study 003's dense layer).

2-D inputs are ``[B, C, H, W]`` with H = frequency bins (mel bands / MFCC coefficients), W = frames.
Fully connected heads that follow a flatten are sized from ``input_shape``; an adaptive average pool to
the nominal grid in front of the flatten is the identity at the nominal shape and lets the same
network accept other widths (e.g. longer utterances) without changing its parameters.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class SERNetwork(nn.Module):
    """Base class: logits = ``classifier(embed(x))``.

    Subclasses implement :meth:`embed` and set ``self.classifier``.
    """

    #: input kind: "image" ([B, C, H, W]), "sequence" ([B, C, T]), "vector" ([B, F]) or "hybrid" (dict)
    input_kind: str = "image"
    #: dotted name of the last convolutional layer (Grad-CAM target); None when there is none
    gradcam_layer: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self.layer_weight_decay: dict[str, float] = {}

    def embed(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))

    @property
    def embedding_dim(self) -> int:
        last = [m for m in self.classifier.modules() if isinstance(m, nn.Linear)][0]
        return last.in_features


class ConvBlock2d(nn.Module):
    """3×3 conv → BN → ReLU (or conv → ReLU → BN, the Keras order of study 003) → max-pool → dropout."""

    def __init__(self, c_in: int, c_out: int, *, pool: tuple[int, int] | None = (2, 2),
                 dropout: float = 0.0, order: str = "bn_relu", kernel: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.ReLU(inplace=False)
        self.order = order
        self.pool = nn.MaxPool2d(pool) if pool else nn.Identity()
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        x = self.act(self.bn(x)) if self.order == "bn_relu" else self.bn(self.act(x))
        return self.drop(self.pool(x))


def _conv_grid(features: nn.Module, input_shape: Sequence[int]) -> tuple[int, ...]:
    with torch.no_grad():
        was = features.training
        features.eval()
        out = features(torch.zeros(1, *input_shape))
        features.train(was)
    return tuple(out.shape[1:])


def _mlp_head(d_in: int, hidden: Sequence[int], dropout: float | Sequence[float],
              act: type[nn.Module] = nn.ReLU) -> tuple[nn.Sequential, int]:
    drops = [dropout] * len(hidden) if isinstance(dropout, (int, float)) else list(dropout)
    layers: list[nn.Module] = []
    for h, p in zip(hidden, drops):
        layers += [nn.Linear(d_in, h), act()]
        if p > 0:
            layers.append(nn.Dropout(p))
        d_in = h
    return nn.Sequential(*layers), d_in


class SpectrogramCNN(SERNetwork):
    """Stack of :class:`ConvBlock2d` + flatten (or global average pooling) + fully connected head.

    Parameters
    ----------
    n_classes : int
    input_shape : (C, H, W)
        Nominal input shape; sizes the flatten layer.
    channels : conv output channels per block.
    block_dropout : dropout after each block (scalar or per block).
    hidden : sizes of the hidden fully connected layers (the last one is the embedding).
    fc_dropout : dropout after each hidden FC layer (scalar or per layer); ``input_dropout`` before it.
    pooling : "flatten" (adaptive pool to the nominal conv grid, then flatten) or "gap" (global average).
    order : "bn_relu" (PyTorch studies) or "relu_bn" (Keras, study 003).
    dense_l2 : weight decay applied to the first FC layer only (Keras ``l2(λ)`` = ``2λ`` with Adam,
        whose weight decay is the coupled L2 gradient term; with AdamW it is decoupled).
    """

    def __init__(self, n_classes: int, input_shape: Sequence[int] = (1, 128, 128), *,
                 channels: Sequence[int] = (16, 32, 64, 128), block_dropout: float | Sequence[float] = 0.0,
                 hidden: Sequence[int] = (256,), fc_dropout: float | Sequence[float] = 0.0,
                 input_dropout: float = 0.0, pooling: str = "flatten", order: str = "bn_relu",
                 pool: tuple[int, int] = (2, 2), dense_l2: float = 0.0) -> None:
        super().__init__()
        input_shape = tuple(int(s) for s in input_shape)
        if len(input_shape) == 2:
            input_shape = (1, *input_shape)
        self.input_shape = input_shape
        drops = ([block_dropout] * len(channels) if isinstance(block_dropout, (int, float))
                 else list(block_dropout))
        blocks, c_in = [], input_shape[0]
        for c, p in zip(channels, drops):
            blocks.append(ConvBlock2d(c_in, c, pool=pool, dropout=p, order=order))
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        grid = _conv_grid(self.blocks, input_shape)
        if pooling == "gap":
            self.pool = nn.AdaptiveAvgPool2d(1)
            d_in = grid[0]
        elif pooling == "flatten":
            self.pool = nn.AdaptiveAvgPool2d(grid[1:])
            d_in = grid[0] * grid[1] * grid[2]
        else:
            raise ValueError(f"pooling must be 'flatten' or 'gap', got {pooling!r}")
        self.input_dropout = nn.Dropout(input_dropout) if input_dropout > 0 else nn.Identity()
        self.head, d = _mlp_head(d_in, hidden, fc_dropout)
        self.classifier = nn.Linear(d, n_classes)
        self.gradcam_layer = f"blocks.{len(blocks) - 1}.conv"
        if dense_l2 > 0 and hidden:
            self.layer_weight_decay["head.0"] = float(dense_l2)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Last conv block's output ``[B, C, h, w]``."""
        return self.blocks(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.flatten(self.pool(self.blocks(x)), 1)
        return self.head(self.input_dropout(z))


class CNN1D(SERNetwork):
    """1-D CNN baseline of study 003 (Lok 2021 Kaggle notebook) on an MFCC sequence ``[B, C, T]``.

    Four conv blocks (256, 256, 128, 64 filters, kernel 8, "same" padding), each conv → ReLU → BN →
    dropout .25, max-pool (8 by default) after every two blocks, flatten, softmax layer. The notebook
    feeds the per-frame mean over 13 MFCCs (C = 1, T = 216); C = n_mfcc channels also works.
    """

    input_kind = "sequence"

    def __init__(self, n_classes: int, input_shape: Sequence[int] = (1, 216), *,
                 channels: Sequence[int] = (256, 256, 128, 64), kernel: int = 8, dropout: float = 0.25,
                 pool: int = 8) -> None:
        super().__init__()
        input_shape = tuple(int(s) for s in input_shape)
        if len(input_shape) == 1:
            input_shape = (1, *input_shape)
        self.input_shape = input_shape
        layers: list[nn.Module] = []
        c_in = input_shape[0]
        for i, c in enumerate(channels):
            # Keras "same" padding for an even kernel: (k-1)//2 left, k//2 right
            layers += [nn.ConstantPad1d(((kernel - 1) // 2, kernel // 2), 0.0),
                       nn.Conv1d(c_in, c, kernel), nn.ReLU(), nn.BatchNorm1d(c), nn.Dropout(dropout)]
            if i % 2 == 1 and i < len(channels) - 1:
                layers.append(nn.MaxPool1d(pool))
            c_in = c
        self.blocks = nn.Sequential(*layers)
        grid = _conv_grid(self.blocks, input_shape)
        self.pool = nn.AdaptiveAvgPool1d(grid[1])
        self.classifier = nn.Linear(grid[0] * grid[1], n_classes)
        last_conv = max(i for i, m in enumerate(layers) if isinstance(m, nn.Conv1d))
        self.gradcam_layer = f"blocks.{last_conv}"

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)
        return torch.flatten(self.pool(self.blocks(x)), 1)


# ---------------------------------------------------------------------------------------------------
# factories with the published sizes (see shared/SEEDS.md)

def cnn3(n_classes: int, input_shape: Sequence[int] = (1, 128, 128), hidden: Sequence[int] = (64,),
         **kw) -> SpectrogramCNN:
    """Study 001 CNN-3: 16-32-64, flatten 64×16×16, 2 FC layers (≈1.07 M parameters; paper ≈1.2 M)."""
    return SpectrogramCNN(n_classes, input_shape, channels=(16, 32, 64), hidden=hidden, **kw)


def cnn4(n_classes: int, input_shape: Sequence[int] = (1, 128, 128), hidden: Sequence[int] = (256,),
         **kw) -> SpectrogramCNN:
    """Study 001 CNN-4: 16-32-64-128, flatten 128×8×8, 2 FC layers (≈2.2 M parameters; paper ≈1.8 M)."""
    return SpectrogramCNN(n_classes, input_shape, channels=(16, 32, 64, 128), hidden=hidden, **kw)


def cnn5(n_classes: int, input_shape: Sequence[int] = (1, 128, 128),
         hidden: Sequence[int] = (1024, 256), dropout: float = 0.2, **kw) -> SpectrogramCNN:
    """Study 001 CNN-5: 32-64-128-256-512, flatten 512×4×4, 3 FC layers, dropout .2 (≈10 M; paper ≈9.5 M)."""
    kw.setdefault("input_dropout", dropout)
    return SpectrogramCNN(n_classes, input_shape, channels=(32, 64, 128, 256, 512), hidden=hidden,
                          fc_dropout=dropout, **kw)


def mfcc_cnn_003(n_classes: int, input_shape: Sequence[int] = (1, 41, 216), **kw) -> SpectrogramCNN:
    """Study 003 "MFCC1": 40 MFCC + RMS (41×216), blocks 32-64-128-256 (ReLU + BN + 2×2 max-pool,
    dropout 0/0/.1/.2), flatten, dense 256 (L2 1e-3 → weight decay 2e-3 on that layer), dropout .3."""
    kw.setdefault("dense_l2", 2e-3)
    return SpectrogramCNN(n_classes, input_shape, channels=(32, 64, 128, 256),
                          block_dropout=(0.0, 0.0, 0.1, 0.2), hidden=(256,), fc_dropout=0.3,
                          order="relu_bn", **kw)


def logmel_cnn_003(n_classes: int, input_shape: Sequence[int] = (1, 128, 126), **kw) -> SpectrogramCNN:
    """Study 003 "MS": the MFCC1 network on a 128×126 log-mel spectrogram."""
    return mfcc_cnn_003(n_classes, input_shape, **kw)


def mfcc_cnn_000(n_classes: int, input_shape: Sequence[int] = (1, 40, 157), **kw) -> SpectrogramCNN:
    """Study 000's "CNN on MFCC" baseline (74.75 %). The paper gives no layer sizes; serkit uses three
    conv blocks 32-64-128 (BN, ReLU, 2×2 pool, dropout .25), global average pooling, dense 128, dropout
    .3. Nominal input: 40 MFCC × 157 frames (5 s at 16 kHz, hop 512)."""
    kw.setdefault("block_dropout", 0.25)
    return SpectrogramCNN(n_classes, input_shape, channels=(32, 64, 128), hidden=(128,),
                          fc_dropout=0.3, pooling="gap", **kw)


def cnn1d_mfcc(n_classes: int, input_shape: Sequence[int] = (1, 216), **kw) -> CNN1D:
    """Study 003's public 1-D CNN MFCC baseline (49.02 %)."""
    return CNN1D(n_classes, input_shape, **kw)

"""Greedy layer-wise convolutional-autoencoder pretraining (study 001, CNN-3).

Each conv layer is trained in turn as an autoencoder: encoder = that block's ``Conv2d`` (+ ReLU),
decoder = a ``ConvTranspose2d`` back to the block's input channels, loss = MSE reconstruction of the
block's input. The input of block k is the output of the already pretrained blocks 0..k-1, forward-
propagated with frozen weights. After a layer is trained its BatchNorm running statistics are
re-estimated on the data so the next layer sees normalised activations. The encoder weights stay in
the network (pretraining happens in place), ready for supervised fine-tuning.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from serkit.models.nn.cnn import SpectrogramCNN


def _batches(x: torch.Tensor, batch_size: int, gen: torch.Generator | None = None):
    idx = torch.randperm(len(x), generator=gen) if gen is not None else torch.arange(len(x))
    for i in range(0, len(x), batch_size):
        yield x[idx[i:i + batch_size]]


@torch.no_grad()
def _propagate(blocks: list[nn.Module], x: torch.Tensor, batch_size: int) -> torch.Tensor:
    out = []
    for xb in _batches(x, batch_size):
        for b in blocks:
            xb = b(xb)
        out.append(xb)
    return torch.cat(out)


@torch.no_grad()
def _calibrate_bn(block: nn.Module, x: torch.Tensor, batch_size: int) -> None:
    bn = block.bn
    bn.reset_running_stats()
    momentum, bn.momentum = bn.momentum, None  # cumulative average over the data
    block.train()
    for xb in _batches(x, batch_size):
        block(xb)
    block.eval()
    bn.momentum = momentum


def greedy_layerwise_pretrain(network: SpectrogramCNN, X: np.ndarray | torch.Tensor, *,
                              epochs: int = 50, lr: float = 1e-3, batch_size: int = 64,
                              seed: int = 0, device: str | torch.device = "cpu",
                              verbose: bool = False) -> list[float]:
    """Pretrain every conv block of ``network`` (CNN-3 in the paper; any :class:`SpectrogramCNN`).

    Parameters
    ----------
    network : SpectrogramCNN
        Modified in place (conv weights and BN statistics).
    X : array ``[N, C, H, W]`` (standardised as for supervised training).
    epochs : epochs per layer (paper: 50).

    Returns
    -------
    list of float
        Final reconstruction MSE of each layer.
    """
    gen = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    device = torch.device(device)
    x = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    network.to(device)
    blocks = list(network.blocks)
    losses: list[float] = []
    current = x
    for k, block in enumerate(blocks):
        conv: nn.Conv2d = block.conv
        decoder = nn.ConvTranspose2d(conv.out_channels, conv.in_channels, conv.kernel_size,
                                     padding=conv.padding).to(device)
        opt = torch.optim.Adam(list(conv.parameters()) + list(decoder.parameters()), lr=lr)
        last = float("nan")
        for ep in range(epochs):
            total, n = 0.0, 0
            for xb in _batches(current, batch_size, gen):
                xb = xb.to(device)
                loss = F.mse_loss(decoder(F.relu(conv(xb))), xb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(xb)
                n += len(xb)
            last = total / max(n, 1)
            if verbose:
                print(f"pretrain layer {k} epoch {ep + 1}/{epochs} mse {last:.4f}")
        losses.append(last)
        _calibrate_bn(block, current.to(device), batch_size)
        current = _propagate([block], current.to(device), batch_size).cpu()
    network.train()
    return losses

"""Classification heads for pooled self-supervised embeddings (the four studies' heads).

Each head maps ``[B, input_dim]`` to logits ``[B, n_classes]`` and exposes ``embed(x)`` (the
penultimate representation) and ``embedding_dim``. :data:`HEADS` maps a name to a factory
``factory(input_dim, n_classes, **kwargs)``:

==============  ==============================================================================
name            architecture
==============  ==============================================================================
``linear``      dropout → linear (study 002's linear classifier on mean-pooled XLSR)
``mlp_000``     768→256 (ReLU, dropout .3) →128 (ReLU, dropout .2) →C (study 000)
``mlp_001``     768→256 (ReLU, dropout .1) →C (study 001, wav2vec2 last-2-layers)
``hubert_003``  dense 512 (BN, LeakyReLU, dropout .4) + residual dense 512 + self-attention
                → 128 → 64 → C (study 003, HuBERT mean+std 1536-d input)
``w2v2_003``    128 (ReLU, dropout .4) → 64 (ReLU, dropout .3) → C (study 003, wav2vec2)
==============  ==============================================================================

For :class:`serkit.models.torch_estimator.TorchClassifier` (features already pooled) the
``head_*`` entries of ``serkit.models.nn.registry.NETWORKS`` build them through :func:`head_network`.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from serkit.models.nn.cnn import SERNetwork

__all__ = ["HEADS", "build_head", "head_network", "LayerWeightedHead", "LinearHead", "MLPHead",
           "HuBERTHead003"]


class _Head(SERNetwork):
    input_kind = "vector"
    gradcam_layer = None

    def __init__(self, input_dim: int, n_classes: int):
        super().__init__()
        self.input_dim = int(input_dim)
        self.n_classes = int(n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x.flatten(1)))


class LinearHead(_Head):
    """Dropout then one linear layer; ``embed`` is the input itself."""

    def __init__(self, input_dim: int, n_classes: int, dropout: float = 0.0):
        super().__init__(input_dim, n_classes)
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(input_dim, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(x.flatten(1))

    @property
    def embedding_dim(self) -> int:
        return self.input_dim


class MLPHead(_Head):
    """Linear → activation → dropout blocks, then a linear classifier.

    Parameters
    ----------
    input_dim, n_classes : int
    hidden : sequence of int
        Widths of the hidden layers.
    dropout : sequence of float
        One dropout rate per hidden layer.
    batch_norm : bool
        BatchNorm after each hidden linear layer.
    activation : {"relu", "leaky_relu", "gelu"}
    """

    def __init__(self, input_dim: int, n_classes: int, hidden=(256, 128), dropout=(0.3, 0.2),
                 batch_norm: bool = False, activation: str = "relu"):
        super().__init__(input_dim, n_classes)
        if len(dropout) != len(hidden):
            raise ValueError("one dropout rate per hidden layer")
        act = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU}[activation]
        layers: list[nn.Module] = []
        d = input_dim
        for h, p in zip(hidden, dropout):
            layers.append(nn.Linear(d, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers += [act(), nn.Dropout(p)]
            d = h
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(d, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.flatten(1))


class LayerWeightedHead(_Head):
    """A learnable softmax-weighted sum of the pooled statistics of every encoder layer, then an MLP.

    The input is ``[B, n_layers * W]`` (``ssl`` features with ``layers: all``: each layer's
    ``W``-dim mean (‖ std) one after the other). ``layer_weights`` (softmax over ``n_layers``
    logits, initialised equal) choose the layers while training, as in s3prl / SUPERB.
    """

    def __init__(self, input_dim: int, n_classes: int, n_layers: int = 5, hidden=(256,),
                 dropout=(0.3,), activation: str = "relu"):
        super().__init__(input_dim, n_classes)
        if input_dim % n_layers:
            raise ValueError(f"input of {input_dim} features does not split into {n_layers} layers")
        self.n_layers = int(n_layers)
        self.layer_logits = nn.Parameter(torch.zeros(self.n_layers))
        self.mlp = MLPHead(input_dim // n_layers, n_classes, hidden=hidden, dropout=dropout,
                           activation=activation)
        self.classifier = self.mlp.classifier

    def layer_weights(self) -> torch.Tensor:
        return torch.softmax(self.layer_logits, dim=0)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1).view(x.shape[0], self.n_layers, -1)
        mixed = (x * self.layer_weights().view(1, -1, 1)).sum(dim=1)
        return self.mlp.embed(mixed)


class HuBERTHead003(_Head):
    """Study 003's head on HuBERT mean+std embeddings (1536-d for HuBERT-base).

    ``h = Dropout(LeakyReLU(BN(Dense512(x))))``; residual ``h = h + Dropout(LeakyReLU(BN(Dense512(h))))``;
    self-attention: ``h`` is split into ``tokens`` chunks of ``512 / tokens`` features that attend
    to each other (multi-head attention, residual + LayerNorm; a single 512-vector attending to
    itself would be a no-op); then Dense 128 → Dense 64 (LeakyReLU, dropout) → classifier.
    """

    def __init__(self, input_dim: int = 1536, n_classes: int = 7, width: int = 512, tokens: int = 8,
                 heads: int = 4, dropout: float = 0.4, tail_dropout: float = 0.3):
        super().__init__(input_dim, n_classes)
        if width % tokens or (width // tokens) % heads:
            raise ValueError("width must split into tokens whose size is a multiple of heads")
        self.tokens = tokens
        self.inp = nn.Sequential(nn.Linear(input_dim, width), nn.BatchNorm1d(width), nn.LeakyReLU(0.2),
                                 nn.Dropout(dropout))
        self.res = nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.LeakyReLU(0.2),
                                 nn.Dropout(dropout))
        self.attn = nn.MultiheadAttention(width // tokens, heads, batch_first=True)
        self.norm = nn.LayerNorm(width // tokens)
        self.tail = nn.Sequential(nn.Linear(width, 128), nn.LeakyReLU(0.2), nn.Dropout(tail_dropout),
                                  nn.Linear(128, 64), nn.LeakyReLU(0.2), nn.Dropout(tail_dropout))
        self.classifier = nn.Linear(64, n_classes)
        #: last attention weights [B, tokens, tokens] (for the per-feature variance analysis)
        self.last_attention: torch.Tensor | None = None

    def attended(self, x: torch.Tensor) -> torch.Tensor:
        """The self-attention output ``[B, width]`` (study 003's variance heat-map)."""
        h = self.inp(x.flatten(1))
        h = h + self.res(h)
        t = h.view(h.shape[0], self.tokens, -1)
        a, w = self.attn(t, t, t, need_weights=True)
        self.last_attention = w.detach()
        return self.norm(t + a).flatten(1)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.attended(x))


def linear(input_dim: int, n_classes: int, dropout: float = 0.0, **_: Any) -> LinearHead:
    return LinearHead(input_dim, n_classes, dropout)


def mlp_000(input_dim: int = 768, n_classes: int = 8, **kw: Any) -> MLPHead:
    return MLPHead(input_dim, n_classes, hidden=(256, 128), dropout=(0.3, 0.2), **kw)


def mlp_001(input_dim: int = 768, n_classes: int = 8, **kw: Any) -> MLPHead:
    return MLPHead(input_dim, n_classes, hidden=(256,), dropout=(0.1,), **kw)


def hubert_003(input_dim: int = 1536, n_classes: int = 7, **kw: Any) -> HuBERTHead003:
    return HuBERTHead003(input_dim, n_classes, **kw)


def w2v2_003(input_dim: int = 768, n_classes: int = 7, **kw: Any) -> MLPHead:
    return MLPHead(input_dim, n_classes, hidden=(128, 64), dropout=(0.4, 0.3), **kw)


def layer_weighted(input_dim: int, n_classes: int, **kw: Any) -> LayerWeightedHead:
    return LayerWeightedHead(input_dim, n_classes, **kw)


HEADS: dict[str, Callable[..., nn.Module]] = {
    "linear": linear,
    "layer_weighted": layer_weighted,
    "mlp_000": mlp_000,
    "mlp_001": mlp_001,
    "hubert_003": hubert_003,
    "w2v2_003": w2v2_003,
}


def build_head(name: str, input_dim: int, n_classes: int, **kwargs: Any) -> nn.Module:
    """Instantiate head ``name`` from :data:`HEADS`."""
    try:
        factory = HEADS[name]
    except KeyError:
        raise KeyError(f"unknown head {name!r}; known: {', '.join(HEADS)}") from None
    return factory(input_dim, n_classes, **kwargs)


def head_network(n_classes: int, input_shape: Any = None, *, head: str, **kwargs: Any) -> nn.Module:
    """A head as a ``NETWORKS`` entry (``head_*``): ``input_shape`` is the pooled feature shape."""
    shape = tuple(input_shape) if input_shape is not None else (768,)
    dim = 1
    for s in shape:
        dim *= int(s)
    return build_head(head, dim, n_classes, **kwargs)

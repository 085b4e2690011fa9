"""Masked pooling over time and layer selection for frame-level speech representations.

All poolers take ``x`` of shape ``[B, T, D]`` and an optional boolean ``mask`` of shape ``[B, T]``
(True = valid frame) and return ``[B, D_out]``. Padded frames get *exactly* zero weight: means
are taken over valid frames only and attention scores of padded frames are set to ``-inf``
before the softmax (cf. s3prl issue #579), so anything written into padded frames, even
``1e6`` or ``nan``-free garbage, cannot change the result.

Layer tools work on the ``[L, B, T, D]`` stacks returned by
:meth:`serkit.backbones.Backbone.forward_layers`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "MeanPooling",
    "MeanStdPooling",
    "AttentionPooling",
    "LayerWeightedSum",
    "select_layers",
    "masked_mean",
    "POOLING",
    "build_pooling",
]


def _full_mask(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
    if mask.shape != x.shape[:2]:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match x {tuple(x.shape[:2])}")
    return mask.to(device=x.device, dtype=torch.bool)


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of ``x [B, T, D]`` over valid frames (``[B, D]``); rows with no valid frame give 0."""
    m = _full_mask(x, mask)
    # where() (not multiplication) so that inf / huge values in padding cannot leak in
    xs = torch.where(m[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))
    count = m.sum(dim=1, keepdim=True).clamp(min=1).to(x.dtype)
    return xs.sum(dim=1) / count


class MeanPooling(nn.Module):
    """Average of valid frames: ``[B, T, D] -> [B, D]``."""

    def __init__(self, input_dim: int | None = None):
        super().__init__()
        self.input_dim = input_dim
        self.output_dim = input_dim

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return masked_mean(x, mask)


class MeanStdPooling(nn.Module):
    """Concatenated mean and standard deviation of valid frames: ``[B, T, D] -> [B, 2D]``.

    For HuBERT-base (D = 768) this gives the 1536-d utterance vector of study 003.

    Parameters
    ----------
    input_dim : int, optional
        ``D`` (only used to report ``output_dim``).
    eps : float
        Added to the variance before the square root (keeps gradients finite).
    unbiased : bool
        Divide by ``n - 1`` instead of ``n`` (numpy's ``ddof=1``).
    """

    def __init__(self, input_dim: int | None = None, eps: float = 1e-5, unbiased: bool = False):
        super().__init__()
        self.input_dim = input_dim
        self.output_dim = None if input_dim is None else 2 * input_dim
        self.eps = eps
        self.unbiased = unbiased

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        m = _full_mask(x, mask)
        mean = masked_mean(x, m)
        dev = torch.where(m[..., None], x - mean[:, None, :], torch.zeros((), dtype=x.dtype, device=x.device))
        n = m.sum(dim=1, keepdim=True).to(x.dtype)
        denom = (n - 1 if self.unbiased else n).clamp(min=1)
        std = torch.sqrt((dev**2).sum(dim=1) / denom + self.eps)
        return torch.cat([mean, std], dim=-1)


class AttentionPooling(nn.Module):
    """Additive self-attention pooling (study 000).

    ``w_t = v^T tanh(W h_t + b)``, ``alpha = softmax(w)`` over valid frames,
    ``e = sum_t alpha_t h_t``.

    Parameters
    ----------
    input_dim : int
        ``D``.
    hidden_dim : int, optional
        Width of ``W`` (default ``D``).

    Attributes
    ----------
    last_weights : Tensor or None
        ``[B, T]`` attention weights of the last forward pass (detached; padded frames are 0),
        for ``attention.npz`` reports.
    """

    def __init__(self, input_dim: int, hidden_dim: int | None = None):
        super().__init__()
        hidden_dim = hidden_dim or input_dim
        self.input_dim = input_dim
        self.output_dim = input_dim
        self.proj = nn.Linear(input_dim, hidden_dim)
        self.score = nn.Linear(hidden_dim, 1, bias=False)
        self.last_weights: torch.Tensor | None = None

    def weights(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attention weights ``[B, T]`` (sum to 1 over valid frames, exactly 0 on padding)."""
        m = _full_mask(x, mask)
        # garbage in padded frames must not even reach tanh (1e6 * W could overflow to nan in fp16)
        xs = torch.where(m[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))
        scores = self.score(torch.tanh(self.proj(xs))).squeeze(-1)
        scores = scores.masked_fill(~m, float("-inf"))
        alpha = torch.softmax(scores, dim=1)
        # rows without any valid frame would be nan: make them all-zero instead
        return torch.nan_to_num(alpha, nan=0.0)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        m = _full_mask(x, mask)
        alpha = self.weights(x, m)
        self.last_weights = alpha.detach()
        xs = torch.where(m[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))
        return torch.einsum("bt,btd->bd", alpha, xs)


class LayerWeightedSum(nn.Module):
    """Learnable softmax-weighted sum of hidden layers: ``[L, B, T, D] -> [B, T, D]``.

    Parameters
    ----------
    num_layers : int
        ``L``.
    layer_norm : bool
        Normalise each layer (no affine) before mixing, as in SUPERB.
    """

    def __init__(self, num_layers: int, layer_norm: bool = False):
        super().__init__()
        self.num_layers = num_layers
        self.layer_norm = layer_norm
        self.logits = nn.Parameter(torch.zeros(num_layers))

    @property
    def weights(self) -> torch.Tensor:
        """Current mixing weights ``[L]`` (sum to 1)."""
        return torch.softmax(self.logits, dim=0)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if hidden.shape[0] != self.num_layers:
            raise ValueError(f"expected {self.num_layers} layers, got {hidden.shape[0]}")
        if self.layer_norm:
            hidden = nn.functional.layer_norm(hidden, hidden.shape[-1:])
        w = self.weights.to(hidden.dtype)
        return torch.einsum("l,lbtd->btd", w, hidden)


def select_layers(hidden: torch.Tensor, spec: int | Sequence[int] | str = -1,
                  weighted: LayerWeightedSum | None = None) -> torch.Tensor:
    """Choose or combine layers of a ``[L, B, T, D]`` stack.

    Parameters
    ----------
    hidden : Tensor, shape (L, B, T, D)
    spec : int, sequence of int, or str
        * ``int``: one layer (negative counts from the end; ``-1`` = last, ``0`` = embeddings);
        * ``list`` of ints or ``"mean"``: average of those layers / of all layers;
        * ``"concat"`` or ``"concat:i,j,k"``: concatenate (all / those) layers on the feature
          axis (``[B, T, k * D]``);
        * ``"weighted"``: learnable weighted sum; pass the ``LayerWeightedSum`` module as
          ``weighted`` (it owns the parameters);
        * a string of comma-separated ints (``"8,9,10"``) behaves like the list.

    Returns
    -------
    Tensor, shape (B, T, D) or (B, T, k * D) for concatenation.
    """
    n = hidden.shape[0]
    if isinstance(spec, str):
        s = spec.strip().lower()
        if s == "weighted":
            if weighted is None:
                raise ValueError("spec 'weighted' needs a LayerWeightedSum module (weighted=...)")
            return weighted(hidden)
        if s == "mean":
            return hidden.mean(dim=0)
        if s.startswith("concat"):
            idx = _parse_ints(s.partition(":")[2]) or list(range(n))
            return torch.cat([hidden[i] for i in idx], dim=-1)
        if s == "last":
            return hidden[-1]
        spec = _parse_ints(s)
        if not spec:
            raise ValueError(f"unknown layer spec {spec!r}")
    if isinstance(spec, int):
        if not -n <= spec < n:
            raise IndexError(f"layer {spec} out of range for {n} hidden states")
        return hidden[spec]
    idx = list(spec)
    if len(idx) == 1:
        return hidden[idx[0]]
    return hidden[idx].mean(dim=0)


def _parse_ints(text: str) -> list[int]:
    text = text.strip()
    if not text:
        return []
    try:
        return [int(t) for t in text.split(",")]
    except ValueError as exc:
        raise ValueError(f"bad layer list {text!r}") from exc


POOLING: dict[str, type[nn.Module]] = {
    "mean": MeanPooling,
    "meanstd": MeanStdPooling,
    "attention": AttentionPooling,
}


def build_pooling(name: str, input_dim: int, **kwargs) -> nn.Module:
    """Instantiate a pooler from :data:`POOLING` by name."""
    try:
        cls = POOLING[name]
    except KeyError:
        raise KeyError(f"unknown pooling {name!r}; known: {', '.join(POOLING)}") from None
    return cls(input_dim, **kwargs)

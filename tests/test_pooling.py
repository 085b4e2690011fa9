"""Masked pooling: shapes, exact zero weight on padding, invariance to garbage in padding."""

import numpy as np
import pytest
import torch

from serkit.models.nn.pooling import (
    POOLING,
    AttentionPooling,
    LayerWeightedSum,
    MeanPooling,
    MeanStdPooling,
    build_pooling,
    select_layers,
)

B, T, D = 3, 7, 5
LENGTHS = [7, 4, 1]


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(B, T, D, generator=g)
    mask = torch.arange(T)[None, :] < torch.tensor(LENGTHS)[:, None]
    return x, mask


def _garbage(x, mask, value=1e6):
    return x.masked_fill(~mask[..., None], value)


@pytest.mark.parametrize("name,out_dim", [("mean", D), ("meanstd", 2 * D), ("attention", D)])
def test_shapes_and_registry(batch, name, out_dim):
    x, mask = batch
    pool = build_pooling(name, D)
    assert isinstance(pool, POOLING[name])
    assert pool(x, mask).shape == (B, out_dim)
    assert pool(x).shape == (B, out_dim)  # no mask = all valid


@pytest.mark.parametrize("name", list(POOLING))
@pytest.mark.parametrize("value", [1e6, -1e6, float("inf")])
def test_garbage_in_padding_does_not_change_result(batch, name, value):
    x, mask = batch
    torch.manual_seed(0)
    pool = build_pooling(name, D)
    clean = pool(x, mask)
    dirty = pool(_garbage(x, mask, value), mask)
    assert torch.isfinite(dirty).all()
    torch.testing.assert_close(dirty, clean, rtol=0, atol=0)


def test_attention_padded_frames_have_exactly_zero_weight(batch):
    x, mask = batch
    pool = AttentionPooling(D, hidden_dim=8)
    pool(_garbage(x, mask), mask)
    w = pool.last_weights
    assert w.shape == (B, T)
    assert torch.all(w[~mask] == 0.0)
    assert torch.all(w[mask] > 0)
    torch.testing.assert_close(w.sum(1), torch.ones(B))
    # the single-frame utterance puts all its weight on that frame
    assert w[2, 0] == 1.0


def test_attention_pooling_is_weighted_sum(batch):
    x, mask = batch
    pool = AttentionPooling(D)
    out = pool(x, mask)
    expected = torch.einsum("bt,btd->bd", pool.last_weights, x * mask[..., None])
    torch.testing.assert_close(out, expected)


def test_attention_empty_row_gives_zeros():
    pool = AttentionPooling(D)
    x = torch.randn(2, 3, D)
    mask = torch.tensor([[True, True, False], [False, False, False]])
    out = pool(x, mask)
    assert torch.isfinite(out).all() and torch.all(out[1] == 0)


def test_mean_and_std_match_numpy(batch):
    x, mask = batch
    mean = MeanPooling(D)(x, mask).numpy()
    meanstd = MeanStdPooling(D, eps=0.0)(x, mask).numpy()
    for i, n in enumerate(LENGTHS):
        valid = x[i, :n].numpy()
        np.testing.assert_allclose(mean[i], valid.mean(0), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(meanstd[i, :D], valid.mean(0), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(meanstd[i, D:], valid.std(0), rtol=1e-5, atol=1e-6)
    unbiased = MeanStdPooling(D, eps=0.0, unbiased=True)(x, mask).numpy()
    np.testing.assert_allclose(unbiased[0, D:], x[0].numpy().std(0, ddof=1), rtol=1e-5)


def test_meanstd_hubert_base_is_1536():
    assert MeanStdPooling(768).output_dim == 1536
    assert MeanStdPooling(768)(torch.randn(2, 10, 768)).shape == (2, 1536)


def test_gradients_do_not_reach_padding(batch):
    x, mask = batch
    for name in POOLING:
        xg = x.clone().requires_grad_(True)
        build_pooling(name, D)(xg, mask).sum().backward()
        assert torch.all(xg.grad[~mask] == 0), name
        assert torch.isfinite(xg.grad).all()


def test_layer_weighted_sum():
    L = 4
    hidden = torch.randn(L, B, T, D)
    lws = LayerWeightedSum(L)
    torch.testing.assert_close(lws(hidden), hidden.mean(0))  # uniform at init
    torch.testing.assert_close(lws.weights.sum(), torch.tensor(1.0))
    with torch.no_grad():
        lws.logits.copy_(torch.tensor([-1e4, -1e4, 0.0, -1e4]))
    torch.testing.assert_close(lws(hidden), hidden[2])
    lws(hidden).sum().backward()
    assert lws.logits.grad is not None
    with pytest.raises(ValueError):
        lws(hidden[:2])
    assert LayerWeightedSum(L, layer_norm=True)(hidden).shape == (B, T, D)


def test_select_layers():
    L = 5
    hidden = torch.randn(L, B, T, D)
    torch.testing.assert_close(select_layers(hidden, -1), hidden[-1])
    torch.testing.assert_close(select_layers(hidden, "last"), hidden[-1])
    torch.testing.assert_close(select_layers(hidden, 0), hidden[0])
    torch.testing.assert_close(select_layers(hidden, [1, 3]), (hidden[1] + hidden[3]) / 2)
    torch.testing.assert_close(select_layers(hidden, "1,3"), (hidden[1] + hidden[3]) / 2)
    torch.testing.assert_close(select_layers(hidden, "mean"), hidden.mean(0))
    assert select_layers(hidden, "concat").shape == (B, T, L * D)
    cat = select_layers(hidden, "concat:-2,-1")
    torch.testing.assert_close(cat, torch.cat([hidden[-2], hidden[-1]], -1))
    lws = LayerWeightedSum(L)
    torch.testing.assert_close(select_layers(hidden, "weighted", weighted=lws), hidden.mean(0))
    with pytest.raises(ValueError):
        select_layers(hidden, "weighted")
    with pytest.raises(IndexError):
        select_layers(hidden, 7)
    with pytest.raises(ValueError):
        select_layers(hidden, "nonsense")

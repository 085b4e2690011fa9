"""Registry networks: output / embedding shapes on their nominal inputs, Grad-CAM targets, pretraining."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from serkit.models.nn import NETWORKS, build_network
from serkit.models.nn.autoencoder import greedy_layerwise_pretrain

torch.set_num_threads(min(2, torch.get_num_threads()))

EXPECTED = {"mlp_001", "cnn3", "cnn4", "cnn5", "cnn_mlp", "alexnet", "mfcc_cnn_003", "mfcc_crnn_003",
            "logmel_cnn_003", "cnn1d_mfcc", "mfcc_cnn_000"}


def _batch(shape, b=2):
    if isinstance(shape, dict):
        return {k: torch.randn(b, *v) for k, v in shape.items()}
    return torch.randn(b, *shape)


def test_registry_names():
    assert EXPECTED <= set(NETWORKS)
    with pytest.raises(KeyError, match="unknown network"):
        build_network("nope", 3)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_nominal_shapes(name):
    torch.manual_seed(0)
    entry = NETWORKS[name]
    net = entry(n_classes=5).eval()
    x = _batch(entry.nominal_shape)
    with torch.no_grad():
        logits, emb = net(x), net.embed(x)
    assert logits.shape == (2, 5)
    assert emb.ndim == 2 and emb.shape[0] == 2 and emb.shape[1] == net.embedding_dim
    assert torch.isfinite(logits).all()
    if name == "mlp_001":
        assert net.gradcam_layer is None
    else:
        layer = dict(net.named_modules())[net.gradcam_layer]
        assert isinstance(layer, (nn.Conv1d, nn.Conv2d))
        convs = [n for n, m in net.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
        assert net.gradcam_layer == convs[-1]


def test_published_sizes():
    n = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert 0.9e6 < n(build_network("cnn3", 8)) < 1.3e6       # paper: ~1.2 M
    assert 1.5e6 < n(build_network("cnn4", 8)) < 2.5e6       # paper: ~1.8 M
    assert 8e6 < n(build_network("cnn5", 8)) < 11e6          # paper: ~9.5 M
    mlp = build_network("mlp_001", 8, (40,))
    assert [m.out_features for m in mlp.modules() if isinstance(m, nn.Linear)] == [256, 128, 64, 8]
    assert [m.p for m in mlp.modules() if isinstance(m, nn.Dropout)] == [0.4, 0.4, 0.3]
    m1 = build_network("mfcc_cnn_003", 7)
    assert [b.conv.out_channels for b in m1.blocks] == [32, 64, 128, 256]
    assert m1.layer_weight_decay == {"head.0": 2e-3} and m1.head[0].out_features == 256


def test_variable_width_and_channel_free_input():
    net = build_network("cnn4", 4).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 1, 128, 200)).shape == (2, 4)
    net = build_network("alexnet", 4, (128, 500)).eval()   # (H, W) without channel axis
    with torch.no_grad():
        assert net(torch.randn(2, 1, 128, 500)).shape == (2, 4)


def test_hybrid_accepts_tuple_and_crnn_attention():
    net = build_network("cnn_mlp", 3, {"spec": (1, 20, 16), "scalars": (5,)}).eval()
    with torch.no_grad():
        out = net((torch.randn(2, 1, 20, 16), torch.randn(2, 5)))
    assert out.shape == (2, 3)
    crnn = build_network("mfcc_crnn_003", 3).eval()
    with torch.no_grad():
        crnn(torch.randn(2, 1, 41, 216))
    att = crnn.last_attention
    assert att.shape == (2, 54) and torch.allclose(att.sum(1), torch.ones(2))


def test_greedy_layerwise_pretraining_changes_conv_weights():
    torch.manual_seed(0)
    net = build_network("cnn3", 3, (1, 16, 16))
    before = [b.conv.weight.detach().clone() for b in net.blocks]
    X = np.random.default_rng(0).normal(size=(24, 1, 16, 16)).astype(np.float32)
    losses = greedy_layerwise_pretrain(net, X, epochs=2, batch_size=8)
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert all(not torch.equal(b0, b.conv.weight) for b0, b in zip(before, net.blocks))

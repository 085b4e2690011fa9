"""Every shipped config loads, names a registered model and feature kind, and every network config's
network runs a forward pass on the feature shape its own extractor produces (4 s of synthetic audio)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from serkit.config import load_config
from serkit.features import base as feature_base

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs" / "seeds").glob("*.yaml")) + \
    sorted((ROOT / "configs" / "bench").glob("*.yaml"))
SR = 16000


def _ids(paths):
    return [f"{p.parent.name}/{p.stem}" for p in paths]


def _feature_kinds() -> set[str]:
    return set(feature_base.FEATURES)


def _networks() -> dict:
    torch = pytest.importorskip("torch")  # noqa: F841
    from serkit.models.nn.registry import NETWORKS

    return NETWORKS


def _network_configs():
    out = []
    for p in CONFIGS:
        cfg = load_config(p)
        try:
            from serkit.models.nn.registry import NETWORKS
        except ImportError:  # torch extras missing
            return []
        # head_* networks on embeddings of hub backbones (not downloadable here) are covered by
        # test_heads_finetune with tiny random backbones
        if cfg.model.name in NETWORKS and cfg.features.kind != "ssl":
            out.append(p)
    return out


NETWORK_CONFIGS = _network_configs()


def test_there_are_configs():
    assert CONFIGS, "no configs found"
    assert len(NETWORK_CONFIGS) >= 20, [p.name for p in NETWORK_CONFIGS]


@pytest.mark.parametrize("path", CONFIGS, ids=_ids(CONFIGS))
def test_config_loads_and_names_registered_parts(path):
    from serkit.models.registry import available

    cfg = load_config(path)
    assert cfg.model.name in available(), f"{path.name}: model {cfg.model.name!r} is not registered"
    kinds = _feature_kinds()
    assert cfg.features.kind in kinds, f"{path.name}: feature kind {cfg.features.kind!r} unknown"
    if cfg.features.secondary is not None:
        assert cfg.features.secondary.kind in kinds
    if cfg.protocol.kind == "random":
        assert cfg.protocol.speaker_dependent


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.parent.name == "seeds"],
                         ids=_ids([p for p in CONFIGS if p.parent.name == "seeds"]))
def test_seed_config_has_published_figure(path):
    cfg = load_config(path)
    assert cfg.published is not None, f"{path.name} lacks published: {{metric, value, protocol, source}}"
    assert 0 < cfg.published.value <= 100
    assert cfg.published.source.startswith("study 00")


def _synthetic(cfg, seconds: float = 4.0) -> np.ndarray:
    """A 4 s harmonic tone with a little noise, shaped by the config's audio settings."""
    from serkit.io.audio import fix_length, normalize

    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(0)
    x = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 660 * t)
         + 0.01 * rng.standard_normal(t.size)).astype(np.float32)
    x = normalize(x, cfg.audio.normalize)
    if cfg.audio.duration_s:
        x = fix_length(x, int(round(cfg.audio.duration_s * SR)), cfg.audio.crop)
    return x


@pytest.mark.parametrize("path", NETWORK_CONFIGS, ids=_ids(NETWORK_CONFIGS))
def test_network_forward_on_extractor_shape(path):
    torch = pytest.importorskip("torch")
    from serkit.models.nn.registry import build_network
    from serkit.models.torch_estimator import TorchClassifier

    cfg = load_config(path)
    networks = _networks()
    x = _synthetic(cfg)
    feats = feature_base.make_extractor(cfg.features.kind, cfg.features.params)(x, SR)
    feats = np.asarray(feats, dtype=np.float32)
    batch = np.stack([feats, feats + 0.01])  # two "utterances"
    if cfg.features.secondary is not None:
        sec = feature_base.make_extractor(cfg.features.secondary.kind, cfg.features.secondary.params)
        s = np.asarray(sec(x, SR), dtype=np.float32).reshape(-1)
        s = np.concatenate([s, np.zeros(len(cfg.features.metadata), np.float32)])
        X = {"spec": batch, "scalars": np.stack([s, s + 0.01])}
    else:
        if cfg.features.metadata:
            batch = np.hstack([batch.reshape(2, -1), np.zeros((2, len(cfg.features.metadata)), np.float32)])
        X = batch
    # shape the input exactly as TorchClassifier.fit does, then build the network for that shape
    est = TorchClassifier(network=cfg.model.name)
    Xs = est._shape_input(X)
    sample = {k: v.shape[1:] for k, v in Xs.items()} if isinstance(Xs, dict) else Xs.shape[1:]
    n_classes = 8 if cfg.data.label_set == "native" else 7
    net = build_network(cfg.model.name, n_classes, sample,
                        **(cfg.model.params.get("network_params") or {})).eval()
    assert networks[cfg.model.name].kind in {"image", "sequence", "vector", "hybrid"}
    with torch.no_grad():
        xb = ({k: torch.as_tensor(np.nan_to_num(v)) for k, v in Xs.items()} if isinstance(Xs, dict)
              else torch.as_tensor(np.nan_to_num(Xs)))
        out = net(xb)
    assert tuple(out.shape) == (2, n_classes)
    assert torch.isfinite(out).all()


def test_published_shapes_of_study_003_and_000():
    """The configs produce the input sizes the papers used (41x216, 128x126, 40x157, 128x128)."""
    expected = {"seed3_mfcc_cnn_random": (41, 216), "seed3_logmel_cnn_random": (128, 126),
                "seed0_mfcc_cnn_random": (40, 157), "seed1_cnn4_random": (128, 128),
                "seed3_cnn1d_mfcc_random": (13, 216), "seed2_alexnet_ravdess": (64, 376)}
    for stem, shape in expected.items():
        cfg = load_config(ROOT / "configs" / "seeds" / f"{stem}.yaml")
        x = _synthetic(cfg)
        feats = feature_base.make_extractor(cfg.features.kind, cfg.features.params)(x, SR)
        assert feats.shape == shape, (stem, feats.shape)

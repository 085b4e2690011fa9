"""`ssl` extractor: shapes, layer selection after the cache, no backbone re-run (tiny random models)."""
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

pytest.importorskip("transformers")

from serkit.features.base import make_extractor  # noqa: E402
from serkit.features.extract import extract_manifest  # noqa: E402
from serkit.features.ssl import SSLFeatures, select_pooled  # noqa: E402
from serkit.models.ssl_probe import LayerSelect, ssl_probe  # noqa: E402

SR = 16000


def _save_wav2vec2(path):
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(0)
    cfg = Wav2Vec2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
                         conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 4),
                         num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
                         feat_extract_norm="layer", do_stable_layer_norm=True, vocab_size=10)
    Wav2Vec2Model(cfg).save_pretrained(path)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SR, do_normalize=True,
                             return_attention_mask=True).save_pretrained(path)
    return str(path)


def _save_whisper(path):
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    torch.manual_seed(0)
    cfg = WhisperConfig(vocab_size=64, num_mel_bins=80, d_model=16, encoder_layers=2, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                        decoder_ffn_dim=32, max_source_positions=1500, max_target_positions=32,
                        pad_token_id=1, bos_token_id=2, eos_token_id=3, decoder_start_token_id=2)
    WhisperModel(cfg).save_pretrained(path)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("bb")
    return {"wav2vec2": _save_wav2vec2(root / "w2v"), "whisper": _save_whisper(root / "wh")}


def _sig(n, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize("arch", ["wav2vec2", "whisper"])
def test_shapes_and_selection(models, tmp_path, arch):
    x = _sig(8000)
    ext = SSLFeatures(models[arch], pooling="meanstd", layers="all", cache_dir=str(tmp_path), device="cpu")
    allf = ext(x, SR)
    assert allf.shape == (3 * 32,) and ext.backbone_calls == 1
    stats = ext.all_layers(x, SR)
    assert stats.shape == (3, 32) and ext.backbone_calls == 1  # served by the layer cache
    for layers, pooling, d in [(-1, "mean", 16), (1, "meanstd", 32), ([0, 2], "mean", 32), ("mean", "mean", 16)]:
        e = SSLFeatures(models[arch], pooling=pooling, layers=layers, cache_dir=str(tmp_path), device="cpu")
        v = e(x, SR)
        assert v.shape == (d,) and e.backbone_calls == 0
        np.testing.assert_allclose(v, select_pooled(stats, layers, pooling))
    np.testing.assert_allclose(ext(x, SR)[:32].reshape(2, 16)[0], stats[0, :16])
    # the mean half equals the masked mean of the last hidden state
    with torch.no_grad():
        h, m = ext.load().forward_layers([x])
    np.testing.assert_allclose(stats[-1, :16], h[-1, 0].mean(0).numpy(), rtol=1e-4, atol=1e-5)


def test_frames(models, tmp_path):
    e = SSLFeatures(models["wav2vec2"], layers=[1, 2], frames=True, cache_dir=str(tmp_path), device="cpu")
    f = e(_sig(4000), SR)
    assert f.shape[0] == 2 and f.shape[2] == 16 and f.dtype == np.float32


def test_manifest_cache_reuse_when_only_layers_change(models, tmp_path):
    paths = []
    for i in range(3):
        p = tmp_path / f"a{i}.wav"
        sf.write(p, _sig(4000 + 800 * i, seed=i), SR)
        paths.append(str(p))
    man = pd.DataFrame({"path": paths})
    cache = str(tmp_path / "cache")
    lc = str(tmp_path / "layers")
    audio = {"sample_rate": SR}
    e1 = make_extractor("ssl", {"backbone": models["whisper"], "layers": -1, "cache_dir": lc})
    r1 = extract_manifest(man, e1, audio, cache_dir=cache, n_jobs=1, progress=False)
    assert r1.features.shape == (3, 16) and e1.backbone_calls == 3
    e2 = make_extractor("ssl", {"backbone": models["whisper"], "layers": 0, "pooling": "meanstd",
                                "cache_dir": lc})
    r2 = extract_manifest(man, e2, audio, cache_dir=cache, n_jobs=1, progress=False)
    assert r2.features.shape == (3, 32) and e2.backbone_calls == 0 and r2.cached == 0
    r3 = extract_manifest(man, e2, audio, cache_dir=cache, n_jobs=1, progress=False)
    assert r3.cached == 3
    np.testing.assert_allclose(r3.features, r2.features)
    # the backbone is never pickled
    import pickle

    assert pickle.loads(pickle.dumps(e1))._bb is None


def test_layer_select_probe():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3 * 8)).astype(np.float32)
    y = np.repeat(["a", "b"], 20)
    X[y == "b", 8:12] += 2.0  # layer 1, mean half
    t = LayerSelect(layer=1, n_layers=3).fit(X)
    assert t.transform(X).shape == (40, 8)
    assert LayerSelect(layer=1, n_layers=3, stat="mean").transform(X).shape == (40, 4)
    assert LayerSelect(layer=[0, 2], n_layers=3).transform(X).shape == (40, 16)
    clf = ssl_probe({"layer": 1, "n_layers": 3}, seed=0).fit(X, y)
    assert clf.score(X, y) > 0.9

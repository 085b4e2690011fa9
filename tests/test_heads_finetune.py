"""Heads, end-to-end fine-tuning and the pretrained-SER classifier on tiny random models."""
import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("lightning")

from serkit.models.nn.heads import HEADS, build_head  # noqa: E402
from serkit.models.nn.registry import NETWORKS  # noqa: E402
from serkit.models.persist import load_estimator, save_estimator  # noqa: E402

SR = 16000


@pytest.mark.parametrize("name,dim", [("linear", 32), ("mlp_000", 768), ("mlp_001", 768),
                                      ("hubert_003", 1536), ("w2v2_003", 768)])
def test_head_shapes(name, dim):
    torch.manual_seed(0)
    h = build_head(name, dim, 5).eval()
    x = torch.randn(4, dim)
    assert h(x).shape == (4, 5)
    e = h.embed(x)
    assert e.shape[0] == 4 and e.shape[1] == h.embedding_dim
    expected = {"linear": dim, "mlp_000": 128, "mlp_001": 256, "hubert_003": 64, "w2v2_003": 64}[name]
    assert e.shape[1] == expected


def test_head_registry_entries():
    assert set(HEADS) >= {"mlp_000", "mlp_001", "hubert_003", "w2v2_003"}
    entry = NETWORKS["head_hubert_003"]
    shape = entry.nominal_shape
    assert entry.kind == "vector" and entry(7, shape)(torch.randn(2, *shape)).shape == (2, 7)


def _tiny_wav2vec2(path):
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(0)
    cfg = Wav2Vec2Config(hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=24,
                         conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 4),
                         num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
                         feat_extract_norm="layer", do_stable_layer_norm=True, vocab_size=10,
                         hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                         feat_proj_dropout=0.0, layerdrop=0.0)
    Wav2Vec2Model(cfg).save_pretrained(path)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SR, do_normalize=True,
                             return_attention_mask=True).save_pretrained(path)
    return str(path)


def _toy(n=12, seed=0):
    """Two classes: low vs high frequency tones in noise, varied lengths."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for i in range(n):
        f = 300 if i % 2 == 0 else 3000
        t = np.arange(int(rng.integers(2400, 4000))) / SR
        X.append((np.sin(2 * np.pi * f * t) + 0.1 * rng.standard_normal(len(t))).astype(np.float32))
        y.append("low" if i % 2 == 0 else "high")
    Xo = np.empty(n, dtype=object)
    Xo[:] = X
    return Xo, np.array(y)


def test_finetune_two_epochs_lowers_loss(tmp_path):
    from serkit.models.nn.finetune import FineTuneClassifier

    torch.set_num_threads(2)
    path = _tiny_wav2vec2(tmp_path / "w2v")
    X, y = _toy()
    clf = FineTuneClassifier(backbone=path, pooling="attention", head="mlp_000", train_layers=2,
                             lr=3e-3, batch_size=4, max_epochs=2, val_fraction=0.0, scheduler=None,
                             grad_clip=None, checkpoint_dir=str(tmp_path / "ckpt"), progress_bar=False,
                             seed=0)
    clf.fit(X, y)
    h = clf.history_
    assert len(h) == 2 and h[1]["train_loss"] < h[0]["train_loss"]
    net = clf.network_
    bb = net.backbone
    # CNN frozen, lower transformer block frozen, top-2 blocks trained
    assert not any(p.requires_grad for p in bb.model.feature_extractor.parameters())
    blocks = bb.transformer_layers()
    assert not any(p.requires_grad for p in blocks[0].parameters())
    assert all(p.requires_grad for p in blocks[-1].parameters())
    p = clf.predict_proba(list(X[:3]))
    assert p.shape == (3, 2) and np.allclose(p.sum(1), 1, atol=1e-5)
    assert clf.embed(X[:3]).shape == (3, 128)
    att = clf.attention(X[:3])  # one weight per own frame, summing to one
    assert len(att) == 3 and all(np.isclose(a.sum(), 1, atol=1e-5) and (a > 0).all() for a in att)
    assert (tmp_path / "ckpt" / "last.ckpt").exists()
    # weight-norm parametrised pos-conv cannot be pickled by torch: config + safetensors round trip
    clf_p = load_estimator(save_estimator(clf, tmp_path / "saved"))
    np.testing.assert_allclose(clf_p.predict_proba(X[:3]), p, rtol=1e-5, atol=1e-6)
    # resuming with more epochs continues from last.ckpt
    clf2 = FineTuneClassifier(**{**clf.get_params(), "max_epochs": 3}).fit(X, y)
    assert clf2.start_epoch_ == 2 and len(clf2.history_) == 3


def test_finetune_grouped_validation(tmp_path):
    from serkit.models.nn.finetune import FineTuneClassifier

    clf = FineTuneClassifier(backbone=_tiny_wav2vec2(tmp_path / "w"), pooling="mean", head="linear",
                             train_layers=0, max_epochs=1, batch_size=4, val_fraction=0.34,
                             progress_bar=False)
    X, y = _toy(12)
    groups = np.repeat(["s1", "s2", "s3"], 4)
    tr, va = clf._split(np.searchsorted(np.unique(y), y), groups)
    assert not set(groups[tr]) & set(groups[va])
    clf.fit(X[4:], y[4:], groups=groups[4:], validation=(X[:4], y[:4]))  # protocol's valid speakers
    assert clf.n_train_ == 8 and clf.n_val_ == 4
    assert clf.n_trainable_ == sum(p.numel() for p in clf.network_.head.parameters()) + \
        sum(p.numel() for p in clf.network_.pool.parameters())


def test_label_mapping():
    from serkit.models.pretrained_classifier import canonical_emotion, map_checkpoint_labels

    id2label = {0: "angry", 1: "calm", 2: "disgust", 3: "fearful", 4: "happy", 5: "neutral", 6: "sad",
                7: "surprised"}
    m = map_checkpoint_labels(id2label, ["fear", "surprise", "boredom", "angry", "neutral"])
    assert m == {"fear": 3, "surprise": 7, "boredom": None, "angry": 0, "neutral": 5}
    assert canonical_emotion("ANG") == "angry" and canonical_emotion("Fearful") == "fear"
    assert canonical_emotion("ps") == "surprise" and canonical_emotion("xyz") is None


def test_pretrained_classifier_only_head_trains(tmp_path):
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

    from serkit.models.pretrained_classifier import PretrainedSERClassifier

    torch.manual_seed(0)
    labels = ["angry", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised"]
    cfg = Wav2Vec2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
                         conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 4),
                         num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, vocab_size=10,
                         classifier_proj_size=12, num_labels=8,
                         id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)})
    ckpt = tmp_path / "ser"
    ref = Wav2Vec2ForSequenceClassification(cfg).eval()
    ref.save_pretrained(ckpt)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SR, do_normalize=True).save_pretrained(ckpt)

    X, _ = _toy(8)
    y = np.array(["fear", "surprise"] * 4)
    # no training: the kept rows reproduce the checkpoint's logits for those emotions
    clf0 = PretrainedSERClassifier(str(ckpt), max_epochs=0, device="cpu").fit(X, y)
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SR, do_normalize=True)
    with torch.no_grad():
        want = torch.cat([ref(fe(w, sampling_rate=SR, return_tensors="pt")["input_values"]).logits
                          for w in X[:2]])[:, [3, 7]]
    np.testing.assert_allclose(clf0.decision_function(X[:2]), want.numpy(), rtol=1e-4, atol=1e-5)

    clf = PretrainedSERClassifier(str(ckpt), lr=1e-2, max_epochs=5, batch_size=4, device="cpu").fit(X, y)
    assert clf.label_map_ == {"fear": 3, "surprise": 7}
    ref_sd = ref.state_dict()
    for name, p in clf.model_.named_parameters():
        if name.startswith(("projector", "classifier")):
            continue
        assert torch.equal(p.detach(), ref_sd[name]), name  # backbone unchanged
        assert not p.requires_grad
    assert not torch.equal(clf.model_.projector.weight, ref_sd["projector.weight"])
    assert clf.history_[-1]["train_loss"] < clf.history_[0]["train_loss"]
    assert clf.predict_proba(X[:3]).shape == (3, 2) and list(clf.classes_) == ["fear", "surprise"]
    assert clf.embed(X[:3]).shape == (3, 12)
    clf3 = load_estimator(save_estimator(clf, tmp_path / "saved"))
    np.testing.assert_allclose(clf3.predict_proba(X[:3]), clf.predict_proba(X[:3]), rtol=1e-5, atol=1e-6)



def test_head_lr_gives_pooling_and_head_their_own_optimiser_group(tmp_path):
    """``head_lr``: the fresh pooling + head get their own learning rate; the trained backbone
    blocks keep ``lr``; frozen parameters are in no group."""
    from serkit.backbones import load_backbone
    from serkit.models.nn.finetune import FineTuneNetwork
    from serkit.training.engine import SERLightningModule, TrainConfig

    net = FineTuneNetwork(load_backbone(_tiny_wav2vec2(tmp_path / "w")), 3, pooling="attention",
                          head="linear", train_layers=1, head_lr=1e-2)
    module = SERLightningModule(net, TrainConfig(optimizer="adamw", lr=1e-4, weight_decay=0.01,
                                                 scheduler=None))
    groups = module._param_groups()
    by_lr = {g["lr"]: {id(p) for p in g["params"]} for g in groups}
    assert sorted(by_lr) == [1e-4, 1e-2]
    head_ids = {id(p) for m in (net.pool, net.head) for p in m.parameters()}
    assert by_lr[1e-2] == head_ids
    trained_bb = {id(p) for p in net.backbone.parameters() if p.requires_grad}
    assert trained_bb and by_lr[1e-4] == trained_bb
    assert all(g["weight_decay"] == 0.01 for g in groups)
    # without head_lr there is one group at lr
    net0 = FineTuneNetwork(net.backbone, 3, pooling="mean", head="linear", train_layers=1)
    g0 = SERLightningModule(net0, TrainConfig(lr=1e-4, scheduler=None))._param_groups()
    assert [g["lr"] for g in g0] == [1e-4]

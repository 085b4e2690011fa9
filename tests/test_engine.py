"""Training engine and TorchClassifier: learning, early stopping, resume, clone, splits."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone

from serkit.models.nn import build_network
from serkit.models.torch_estimator import TorchClassifier
from serkit.training.engine import ArrayDataset, TrainConfig, fit_network

torch.set_num_threads(min(2, torch.get_num_threads()))
LABELS = np.array(["angry", "happy", "sad"])


def separable_images(n=96, seed=0, h=16, w=20):
    """Class k has a bright frequency band at rows 5k..5k+3."""
    rng = np.random.default_rng(seed)
    y = LABELS[rng.integers(0, 3, n)]
    X = rng.normal(size=(n, h, w)).astype(np.float32)
    for k, c in enumerate(LABELS):
        X[y == c, 5 * k:5 * k + 4, :] += 2.0
    return X, y


def test_fit_lowers_loss_and_learns():
    X, y = separable_images()
    clf = TorchClassifier("cnn3", max_epochs=5, batch_size=16, lr=3e-3, patience=None, seed=1)
    assert clf.fit(X, y) is clf
    losses = [h["train_loss"] for h in clf.history_]
    assert len(clf.history_) == 5 and losses[-1] < losses[0]
    assert set(clf.history_[0]) == {"epoch", "train_loss", "val_loss", "train_acc", "val_acc", "lr"}
    assert list(clf.classes_) == sorted(LABELS)
    Xt, yt = separable_images(n=60, seed=5)
    proba = clf.predict_proba(Xt)
    assert proba.shape == (60, 3) and np.allclose(proba.sum(1), 1, atol=1e-5)
    assert (clf.predict(Xt) == yt).mean() >= 0.9
    assert clf.embed(Xt).shape == (60, 64)
    assert clf.gradcam_target_ == "blocks.2.conv"


def test_vector_mlp_with_groups_and_class_weights():
    rng = np.random.default_rng(0)
    n = 120
    y = LABELS[rng.integers(0, 3, n)]
    X = rng.normal(size=(n, 10)) * 5 + 100          # far from standardised: the estimator scales
    X[:, 0] += 30 * (y == "angry")
    X[:, 1] += 30 * (y == "sad")
    groups = np.repeat([f"spk{i}" for i in range(8)], n // 8)
    clf = TorchClassifier("mlp_001", max_epochs=8, batch_size=16, lr=3e-3, patience=None,
                          class_weight="balanced", val_fraction=0.25)
    clf.fit(X, y, groups=groups)
    tr, va = clf._split(np.searchsorted(clf.classes_, y), groups)
    assert not set(groups[tr]) & set(groups[va])      # speaker-grouped validation split
    assert clf.n_val_ == len(va) and clf.n_val_ % 15 == 0
    assert (clf.predict(X) == y).mean() >= 0.85


def test_early_stopping_when_val_loss_stalls():
    torch.manual_seed(0)
    X, y = separable_images(n=48)
    yi = np.searchsorted(np.unique(y), y)
    net = build_network("cnn3", 3, (1, 16, 20))
    cfg = TrainConfig(lr=0.0, max_epochs=20, patience=2, min_delta=0.5, scheduler=None)
    res = fit_network(net, ArrayDataset(X[:36, None], yi[:36]), ArrayDataset(X[36:, None], yi[36:]),
                      cfg, batch_size=16)
    assert res.stopped_early and len(res.history) == 3 < cfg.max_epochs


def test_checkpoint_resume(tmp_path):
    X, y = separable_images(n=48)
    clf = TorchClassifier("cnn3", max_epochs=2, batch_size=16, checkpoint_dir=str(tmp_path / "ck"))
    clf.fit(X, y)
    assert (tmp_path / "ck" / "last.ckpt").exists() and clf.n_epochs_ == 2
    first = [h["train_loss"] for h in clf.history_]
    clf.set_params(max_epochs=4).fit(X, y)
    assert clf.start_epoch_ == 2 and clf.n_epochs_ == 4
    assert [h["epoch"] for h in clf.history_] == [1, 2, 3, 4]
    assert [h["train_loss"] for h in clf.history_[:2]] == first


def test_clone_and_params():
    clf = TorchClassifier("mlp_001", network_params={"hidden": [32, 16], "dropout": 0.1},
                          augment={"gaussian_noise": {"std": 0.1}}, lr=5e-4, seed=3)
    c2 = clone(clf)
    assert c2.get_params() == clf.get_params() and c2 is not clf
    assert not hasattr(c2, "network_")


def test_hybrid_dict_input_and_warmup_schedule():
    rng = np.random.default_rng(0)
    n = 40
    y = LABELS[rng.integers(0, 3, n)]
    X = {"spec": rng.normal(size=(n, 12, 10)).astype(np.float32),
         "scalars": rng.normal(size=(n, 4)).astype(np.float32)}
    X["scalars"][:, 0] += 3 * np.searchsorted(LABELS, y)
    clf = TorchClassifier("cnn_mlp", network_params={"spec_pool": (2, 2)}, max_epochs=2, batch_size=8,
                          scheduler="warmup_cosine", scheduler_params={"warmup_steps": 3},
                          optimizer="adamw", weight_decay=0.01, label_smoothing=0.1)
    clf.fit(X, y)
    assert clf.predict_proba(X).shape == (n, 3)
    lrs = [h["lr"] for h in clf.history_]
    assert lrs[0] < 1e-3 and lrs[0] != lrs[1]       # warm-up starts below the peak lr


def test_cpu_precision_fallback_and_bad_network():
    with pytest.raises(KeyError):
        TorchClassifier("nope").fit(np.zeros((4, 3)), ["a", "b", "a", "b"])


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_cpu_runs_only_where_the_cpu_has_it(monkeypatch, native):
    """bf16-mixed trains under CPU autocast when the CPU has native bf16, else falls back with a warning."""
    import serkit.training.engine as engine

    monkeypatch.setattr(engine, "cpu_has_native_bf16", lambda: native)
    X, y = separable_images()
    clf = TorchClassifier("cnn3", max_epochs=4, batch_size=16, lr=3e-3, patience=None, seed=1,
                          accelerator="cpu", precision="bf16-mixed")
    if native:
        clf.fit(X, y)
        assert clf.precision_ == "bf16-mixed"
    else:
        with pytest.warns(UserWarning, match="native bfloat16"):
            clf.fit(X, y)
        assert clf.precision_ == "32-true"
    losses = [h["train_loss"] for h in clf.history_]
    assert losses[-1] < losses[0]
    proba = clf.predict_proba(X)                    # inference stays float32
    assert proba.dtype == np.float32 or proba.dtype == np.float64
    assert np.allclose(proba.sum(1), 1, atol=1e-4) and (clf.predict(X) == y).mean() >= 0.9


def test_pretrain_and_attention_paths():
    X, y = separable_images(n=32, h=16, w=16)
    clf = TorchClassifier("cnn3", pretrain={"epochs": 1}, max_epochs=1, batch_size=8).fit(X, y)
    assert len(clf.pretrain_losses_) == 3 and clf.attention(X) is None
    Xc = np.random.default_rng(0).normal(size=(12, 41, 24)).astype(np.float32)
    crnn = TorchClassifier("mfcc_crnn_003", max_epochs=1, batch_size=4, val_fraction=0).fit(Xc, y[:12])
    att = crnn.attention(Xc)
    assert att.shape == (12, 6) and np.allclose(att.sum(1), 1, atol=1e-5)


def test_explicit_validation_set_from_the_protocol():
    """speaker_holdout passes its validation speakers: they are used as given, not re-split."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 6)).astype(np.float32)
    y = np.array(["a", "b"] * 30)
    X[y == "a"] += 2.0
    Xv, yv = X[:10] + 0.1, y[:10]
    clf = TorchClassifier(network="mlp_001", max_epochs=2, batch_size=16, progress_bar=False)
    clf.fit(X, y, validation=(Xv, yv))
    assert clf.n_train_ == 60 and clf.n_val_ == 10
    assert all(np.isfinite(h["val_loss"]) for h in clf.history_)
    with pytest.raises(ValueError, match="do not occur in the training data"):
        clf.fit(X, y, validation=(Xv, np.array(["c"] * 10)))


def test_bn_recalibration_reestimates_statistics_with_dropout_off():
    """With bn_recalibration, the first BatchNorm's running mean is the plain average, over the
    training batches, of what reaches it in eval mode (dropout off), not a momentum trace."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 4, 32)).astype(np.float32)
    y = LABELS[np.arange(64) % 3]
    kw = dict(max_epochs=2, batch_size=16, patience=None, val_fraction=0, seed=3)
    clf = TorchClassifier("cnn1d_mfcc", {"channels": (8, 8, 8, 8), "pool": 2},
                          bn_recalibration=4, **kw).fit(X, y)
    net = clf.network_.eval()
    bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d))
    seen = []
    handle = bn.register_forward_hook(lambda m, inp, out: seen.append(inp[0].mean((0, 2))))
    xs = torch.from_numpy(clf._prepare(X))
    with torch.no_grad():
        for i in range(0, 64, 16):          # 4 batches of 16 = all 64 training clips
            net(xs[i:i + 16])
    handle.remove()
    expected = torch.stack(seen).mean(0)
    assert torch.allclose(bn.running_mean, expected, atol=1e-5)
    assert int(bn.num_batches_tracked) == 4 and bn.momentum == 0.1   # momentum restored for training
    plain = TorchClassifier("cnn1d_mfcc", {"channels": (8, 8, 8, 8), "pool": 2}, **kw).fit(X, y)
    bn0 = next(m for m in plain.network_.modules() if isinstance(m, torch.nn.BatchNorm1d))
    assert not torch.allclose(bn0.running_mean, expected, atol=1e-3)  # without it: the momentum trace


def test_last_checkpoint_follows_every_epoch_not_only_improvements(tmp_path):
    """With a frozen network (lr 0) the validation loss never improves after epoch 1: last.ckpt must
    still be the last epoch, so an interrupted run resumes where it stopped."""
    X, y = separable_images(n=48)
    yi = np.searchsorted(np.unique(y), y)
    ck = tmp_path / "ck"
    cfg = TrainConfig(lr=0.0, max_epochs=3, patience=None, scheduler=None, checkpoint_dir=str(ck))
    def frozen():
        net = build_network("cnn3", 3, (1, 16, 20))
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = 0.0                                   # running stats stay put too
        return net

    res = fit_network(frozen(), ArrayDataset(X[:36, None], yi[:36]), ArrayDataset(X[36:, None], yi[36:]),
                      cfg, batch_size=16)
    assert len(res.history) == 3 and res.best_epoch == 1
    last = torch.load(ck / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 2                                      # 0-based: the third epoch
    assert len(last["callbacks"]["HistoryCallback"]["history"]) == 3
    cfg.max_epochs = 4                                             # resume: only epoch 4 runs
    res2 = fit_network(frozen(), ArrayDataset(X[:36, None], yi[:36]),
                       ArrayDataset(X[36:, None], yi[36:]), cfg, batch_size=16)
    assert res2.start_epoch == 3 and [h["epoch"] for h in res2.history] == [1, 2, 3, 4]

"""Every model `serkit list` names: fit → save (pickle-free) → load in a FRESH process → the same
predictions. Plus: a tampered model file cannot run code."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from serkit.models.nn.registry import NETWORKS  # noqa: E402
from serkit.models.persist import UnsafeModelError, load_estimator, save_estimator  # noqa: E402
from serkit.models.registry import available, make_model  # noqa: E402
from test_heads_finetune import _tiny_wav2vec2, _toy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TORCH_FIT = {"max_epochs": 1, "batch_size": 4, "patience": None, "progress_bar": False,
             "val_fraction": 0.0, "accelerator": "cpu"}
CLASSICAL = {"rf": {"n_estimators": 8}, "svm": {}, "logreg": {}, "mlp_sklearn": {"max_iter": 30},
             "ssl_probe": {"n_layers": 3, "layer": 1, "clf": "logreg"},
             "ssl_layer_ensemble": {"n_layers": 3, "members": [1, [0, 2]], "norm": "utterance", "C": 10.0}}


def _data(name: str, tmp: Path):
    """(params, X, y) of a tiny problem in the model's input format."""
    rng = np.random.default_rng(0)
    y = np.array(["angry", "sad"] * 4)
    if name in CLASSICAL:
        return CLASSICAL[name], rng.normal(size=(40, 24)).astype(np.float32), np.array(["angry", "sad"] * 20)
    if name == "ssl_finetune":
        X, y2 = _toy(8)
        return {"backbone": _tiny_wav2vec2(tmp / "w2v"), "pooling": "attention", "head": "mlp_000",
                "train_layers": 1, "max_epochs": 1, "batch_size": 4, "val_fraction": 0.0,
                "scheduler": None, "progress_bar": False}, X, y2
    if name == "pretrained_ser":
        from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification

        cfg = Wav2Vec2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24,
                             conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 4),
                             num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2, vocab_size=10,
                             classifier_proj_size=12, num_labels=2, id2label={0: "angry", 1: "sad"},
                             label2id={"angry": 0, "sad": 1})
        Wav2Vec2ForSequenceClassification(cfg).save_pretrained(tmp / "ser")
        Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000).save_pretrained(tmp / "ser")
        X, _ = _toy(8)
        return {"checkpoint": str(tmp / "ser"), "max_epochs": 1, "batch_size": 4, "device": "cpu"}, X, y
    entry = NETWORKS[name]
    shape = entry.nominal_shape
    if entry.kind == "hybrid":
        X = {k: rng.normal(size=(8, *v)).astype(np.float32) for k, v in shape.items()}
    else:
        X = rng.normal(size=(8, *shape)).astype(np.float32)
    return dict(TORCH_FIT), X, y


def _save_inputs(X, path: Path) -> None:
    if isinstance(X, dict):
        np.savez(path, **{f"dict_{k}": v for k, v in X.items()})
    elif X.dtype == object:
        np.savez(path, **{f"wav_{i}": w for i, w in enumerate(X)})
    else:
        np.savez(path, X=X)


_LOADER = r"""
import json, sys
import numpy as np
from serkit.models.persist import load_estimator
out = {}
for name, folder, inputs in json.loads(sys.argv[1]):
    z = np.load(inputs, allow_pickle=False)
    if "X" in z.files:
        X = z["X"]
    elif any(k.startswith("dict_") for k in z.files):
        X = {k[5:]: z[k] for k in z.files}
    else:
        X = np.empty(len(z.files), dtype=object)
        X[:] = [z[f"wav_{i}"] for i in range(len(z.files))]
    est = load_estimator(folder)
    Xin = X.reshape(len(X), -1) if isinstance(X, np.ndarray) and X.dtype != object and not hasattr(est, "embed") else X
    out[name] = {"proba": np.asarray(est.predict_proba(Xin)).tolist(), "classes": list(map(str, est.classes_)),
                 "modules": sorted(m for m in ("serkit.training", "lightning") if m in sys.modules)}
print(json.dumps(out))
"""


def test_every_listed_model_round_trips_through_a_fresh_process(tmp_path):
    torch.set_num_threads(1)
    jobs, expected = [], {}
    for name in available():
        tmp = tmp_path / name
        tmp.mkdir()
        params, X, y = _data(name, tmp)
        est = make_model(name, params, seed=0)
        Xin = X.reshape(len(X), -1) if name in CLASSICAL else X
        est.fit(Xin, y)
        expected[name] = (np.asarray(est.predict_proba(Xin)), [str(c) for c in est.classes_])
        save_estimator(est, tmp / "model")
        assert not list((tmp / "model").glob("*.pkl")) and not list((tmp / "model").glob("*.joblib"))
        _save_inputs(X, tmp / "inputs.npz")
        jobs.append((name, str(tmp / "model"), str(tmp / "inputs.npz")))
    res = subprocess.run([sys.executable, "-c", _LOADER, json.dumps(jobs)], capture_output=True,
                         text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert set(got) == set(available())
    for name, (proba, classes) in expected.items():
        assert got[name]["classes"] == classes, name
        np.testing.assert_allclose(np.asarray(got[name]["proba"]), proba, rtol=1e-4, atol=1e-5,
                                   err_msg=name)
        assert got[name]["modules"] == [], f"{name}: loading imported training code"


def test_a_tampered_skops_file_is_refused_without_running_code(tmp_path):
    import skops.io as sio

    est = make_model("logreg", {}, 0).fit(np.random.default_rng(0).normal(size=(8, 3)), ["a", "b"] * 4)
    folder = save_estimator(est, tmp_path / "m")
    marker = tmp_path / "pwned"

    class Evil:  # what an attacker would ship: code that runs on load
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('x')",))

    # replace the estimator by a file whose state names os.system / exec-like callables
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer
    import os

    evil = Pipeline([("f", FunctionTransformer(os.system, kw_args={"command": f"touch {marker}"}))])
    sio.dump(evil, folder / "estimator.skops")
    with pytest.raises(UnsafeModelError, match="does not trust"):
        load_estimator(folder)
    assert not marker.exists()
    assert Evil  # the pickle route is not even possible: no loader reads pickles


def test_tampered_estimator_json_cannot_name_arbitrary_code(tmp_path):
    est = make_model("head_linear", dict(TORCH_FIT), 0).fit(np.ones((4, 768), np.float32), ["a", "b"] * 2)
    folder = save_estimator(est, tmp_path / "m")
    meta = json.loads((folder / "estimator.json").read_text())
    meta["kind"] = "os:system"
    (folder / "estimator.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="unknown estimator kind"):
        load_estimator(folder)
    meta["kind"] = "torch_network"
    meta["spec"]["network"] = "os.system"
    (folder / "estimator.json").write_text(json.dumps(meta))
    with pytest.raises(KeyError, match="unknown network"):
        load_estimator(folder)

"""ONNX export (`serkit export --format onnx`) and the torch-free runtime: the NumPy log-mel equals
Hugging Face's, the exported graph reproduces the torch Predictor (padded batches included) on tiny
random Whisper models and on the default model, and `serkit predict --model EXPORTED` runs in a
process where importing torch or transformers fails."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from audio_utils import tone, write
from serkit.cli import app

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
TOL = 1e-4
BLOCKER = """import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "lightning"):
            raise ImportError(f"{name} is blocked in this test")
        return None
sys.meta_path.insert(0, _NoTorch())
"""


def _signals(seed=3):
    rng = np.random.default_rng(seed)
    out = []
    for n in (16000, 4000, 23457, 40001, 330):
        t = np.arange(n)
        out.append((0.2 * rng.standard_normal(n) * np.sin(t / (40 + n % 97))
                    + 0.1 * np.sin(2 * np.pi * 180 * t / 16000)).astype(np.float32))
    return out


def _tiny_model_dir(root: Path, *, layers="all", pooling="meanstd", network="head_layers",
                    network_params=None) -> Path:
    """A model directory with a tiny random Whisper encoder and a random head (no training)."""
    from test_ssl_features import _save_whisper

    import torch
    from serkit.features.pipeline import FeaturePipeline
    from serkit.inference.modeldir import save_model_dir
    from serkit.models.nn.registry import build_network
    from serkit.models.torch_network import TorchNetworkPredictor

    bb = _save_whisper(root / "whisper")
    pipe = FeaturePipeline({"sample_rate": 16000, "min_duration_s": 0.25}, "ssl",
                           {"backbone": bb, "pooling": pooling, "layers": layers, "num_threads": 1})
    ext = pipe.extractors[0]
    dim = len(ext.select(np.zeros((3, 32), np.float32)))   # 3 hidden states of width 16 (mean ‖ std)
    torch.manual_seed(1)
    rng = np.random.default_rng(0)
    est = TorchNetworkPredictor.__new__(TorchNetworkPredictor)
    est.network, est.network_params = network, dict(network_params or {})
    est.classes_ = np.array(["angry", "happy", "sad"])
    est.eval_batch_size, est.accelerator, est.gradcam_target_ = 64, "cpu", None
    est.input_shape_ = (dim,)
    est.network_ = build_network(network, 3, (dim,), **est.network_params).eval()
    est.scaler_ = {"x": (0.1 * rng.normal(size=dim).astype(np.float32),
                         rng.uniform(0.05, 0.5, dim).astype(np.float32))}
    return save_model_dir(root / "model", name="tiny", pipeline=pipe, estimator=est,
                          card={"backbone": {"id": bb, "kind": "whisper",
                                             "checksum": ext.load().weights_checksum()},
                                "model": {"name": network}})


def _export(src: Path, out: Path, *extra: str) -> Path:
    res = runner.invoke(app, ["export", str(src), "--format", "onnx", "--out", str(out), *extra])
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    src = _tiny_model_dir(root, network_params={"n_layers": 3, "hidden": [8], "dropout": [0.1]})
    return src, _export(src, root / "exported")


# --------------------------------------------------------------------------- log-mel
def test_numpy_log_mel_matches_hugging_face_whisper_features():
    from transformers import WhisperFeatureExtractor

    from serkit.backbones.logmel import log_mel, log_mel_batch

    fe = WhisperFeatureExtractor(feature_size=80)
    rng = np.random.default_rng(0)
    sigs = [(0.1 * rng.standard_normal(n) * np.sin(np.arange(n) / 300)).astype(np.float32)
            for n in (100, 320, 479, 16000, 16001, 16159, 48123)]
    for a in sigs:
        padded = np.pad(a, (0, max(0, 320 - len(a))))            # as the backbone does for tiny clips
        ref = fe(padded, sampling_rate=16000, padding="longest", truncation=False,
                 return_tensors="np").input_features[0][:, : len(padded) // 160]
        got = log_mel(a, fe.mel_filters)
        assert got.shape == ref.shape == (80, len(padded) // 160)
        assert np.abs(got - ref).max() < TOL
    mel, lengths = log_mel_batch(sigs, fe.mel_filters, max_frames=3000)
    assert mel.shape == (len(sigs), 80, 300) and lengths.tolist() == [2, 2, 2, 100, 100, 100, 300]
    assert np.all(mel[0, :, 2:] == 0) and np.array_equal(mel[3, :, :100], log_mel(sigs[3], fe.mel_filters))
    with pytest.raises(ValueError, match="at most 30 s"):
        log_mel_batch([np.zeros(480001, np.float32)], fe.mel_filters, max_frames=3000)


# --------------------------------------------------------------------------- tiny random models
def test_export_writes_a_pickle_free_directory_with_its_card(tiny):
    _, out = tiny
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "mel_filters.npy", "model.json", "model.onnx"]
    card = json.loads((out / "model.json").read_text())
    rt = card["runtime"]
    assert rt["name"] == "onnx" and rt["graph"] == "model.onnx" and rt["opset"] >= 17
    assert [i["name"] for i in rt["inputs"]] == ["mel", "mel_lengths"]
    assert rt["outputs"][0]["shape"] == ["batch", 3] and rt["encoder_depth"] == 2
    assert rt["check"]["max_abs_prob_diff"] < TOL and rt["quantization"] is None
    assert card["classes"] == ["angry", "happy", "sad"] and card["name"] == "tiny-onnx"
    assert "checksum" not in card["backbone"] and rt["source"]["backbone_checksum"]
    assert np.load(out / "mel_filters.npy", allow_pickle=False).shape == (201, 80)
    assert "## ONNX export" in (out / "README.md").read_text()


def test_onnx_predictor_matches_torch_on_padded_batches(tiny):
    from serkit import Predictor

    src, out = tiny
    pt, po = Predictor.load(src), Predictor.load(out)
    assert type(po.estimator).__name__ == "OnnxClassifier" and po.classes == pt.classes
    sigs = _signals()
    batch_t, batch_o = pt.score_batch(sigs), po.score_batch(sigs)
    assert np.abs(batch_t - batch_o).max() < TOL
    single_o = np.stack([po.score_batch([s])[0] for s in sigs])
    assert np.abs(single_o - batch_o).max() < TOL          # padding does not change a clip's scores
    assert np.allclose(batch_o.sum(axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("layers,pooling,network,depth", [(1, "mean", "head_linear", 1),
                                                          ("mean", "meanstd", "head_linear", 2),
                                                          ([0, -1], "meanstd", "head_linear", 2)])
def test_layer_choices_and_a_truncated_encoder(tmp_path, layers, pooling, network, depth):
    from serkit import Predictor

    src = _tiny_model_dir(tmp_path, layers=layers, pooling=pooling, network=network)
    out = _export(src, tmp_path / "exported")
    assert json.loads((out / "model.json").read_text())["runtime"]["encoder_depth"] == depth
    sigs = _signals(seed=5)
    assert np.abs(Predictor.load(src).score_batch(sigs) - Predictor.load(out).score_batch(sigs)).max() < TOL


def test_int8_export_loads_and_scores(tiny, tmp_path):
    from serkit import Predictor

    src, _ = tiny
    out = _export(src, tmp_path / "int8", "--quantize", "int8")
    card = json.loads((out / "model.json").read_text())
    assert card["runtime"]["quantization"]["weights"] == "int8" and card["name"] == "tiny-onnx-int8"
    p = Predictor.load(out).score_batch(_signals())
    assert p.shape == (5, 3) and np.allclose(p.sum(axis=1), 1, atol=1e-5)


def _no_torch_env(tmp_path: Path) -> dict:
    block = tmp_path / "blocker"
    block.mkdir(exist_ok=True)
    (block / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(block), str(ROOT / "src"), env.get("PYTHONPATH", "")])
    check = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert check.returncode != 0 and "blocked" in check.stderr    # the blocker works
    return env


def _predict_without_torch(model: Path, clip: Path, tmp_path: Path) -> dict:
    res = subprocess.run([sys.executable, "-m", "serkit.cli", "predict", "--model", str(model), str(clip),
                          "--format", "json", "-s", "vad=energy"],
                         env=_no_torch_env(tmp_path), capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)[0]


def _assert_same(r_onnx: dict, r_torch: dict) -> None:
    assert r_onnx["label"] == r_torch["label"] and r_onnx["label"] is not None
    assert set(r_onnx["scores"]) == set(r_torch["scores"])
    assert max(abs(r_onnx["scores"][c] - r_torch["scores"][c]) for c in r_torch["scores"]) < TOL


def test_serkit_predict_runs_the_export_without_torch(tiny, tmp_path):
    from serkit import Predictor
    from serkit.config import SegmentConfig

    src, out = tiny
    clip = write(tmp_path / "clip.wav", _signals()[0] * 2)
    r_torch = Predictor.load(src, segments=SegmentConfig(vad="energy")).predict_file(clip)
    _assert_same(_predict_without_torch(out, clip, tmp_path), r_torch)


# --------------------------------------------------------------------------- refusals and damage
def test_models_that_cannot_be_exported_are_refused_clearly(tiny, tmp_path):
    from sklearn.linear_model import LogisticRegression

    from serkit.features.pipeline import FeaturePipeline
    from serkit.inference.modeldir import save_model_dir

    rng = np.random.default_rng(0)
    pipe = FeaturePipeline({"sample_rate": 16000}, "mfcc", {"n_mfcc": 13, "add_rms": False, "frames": 20})
    clf = LogisticRegression().fit(rng.normal(size=(12, 13)), ["a", "b", "c"] * 4)
    svm_dir = save_model_dir(tmp_path / "svm", name="svm", pipeline=pipe, estimator=clf, card={})

    def error(*args: str) -> str:
        res = runner.invoke(app, ["export", *args])
        assert res.exit_code == 2, res.output
        return " ".join(res.output.split())    # rich wraps long lines

    msg = error(str(svm_dir), "--out", str(tmp_path / "o1"))
    assert "cannot export to ONNX: features of kind 'mfcc'" in msg and "Supported: a Whisper backbone" in msg
    assert not (tmp_path / "o1").exists()
    _, out = tiny
    assert "already an ONNX export" in error(str(out), "--out", str(tmp_path / "o2"))
    assert "not empty" in error(str(tiny[0]), "--out", str(out))
    assert "unknown export format" in error(str(tiny[0]), "--format", "tflite", "--out", str(tmp_path / "o3"))


def test_a_changed_graph_is_refused(tiny, tmp_path):
    import shutil

    from serkit.inference.modeldir import ModelError, load_model_dir

    bad = tmp_path / "bad"
    shutil.copytree(tiny[1], bad)
    with open(bad / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelError, match="checksum"):
        load_model_dir(bad)
    (bad / "model.onnx").unlink()
    with pytest.raises(ModelError, match="missing"):
        load_model_dir(bad)


# --------------------------------------------------------------------------- the default model
def test_default_model_export_matches_torch_with_and_without_torch(tmp_path):
    from serkit.backbones.offline import is_available

    if not is_available("whisper-tiny.en"):
        pytest.skip("offline whisper-tiny.en weights are not installed")
    from serkit import Predictor
    from serkit.config import SegmentConfig

    out = _export("serkit-default", tmp_path / "default-onnx")     # type: ignore[arg-type]
    card = json.loads((out / "model.json").read_text())
    assert card["runtime"]["encoder_depth"] == 4 and card["name"] == "serkit-default-onnx"
    pt = Predictor.load(segments=SegmentConfig(vad="energy"))
    po = Predictor.load(out)
    sigs = _signals()
    assert np.abs(pt.score_batch(sigs) - po.score_batch(sigs)).max() < TOL
    clip = write(tmp_path / "clip.wav", tone(210, 2.0, amp=0.4, noise=0.05, seed=2))
    _assert_same(_predict_without_torch(out, clip, tmp_path), pt.predict_file(clip))


# --------------------------------------------------------------------------- runtime choice
def test_runtime_auto_exports_once_into_the_cache_and_matches_torch(tiny, tmp_path, monkeypatch):
    """runtime=auto: an exportable model runs on ONNX Runtime from an export made once into
    $SERKIT_CACHE/onnx (checked against torch at export); later loads reuse it; runtime=torch
    keeps torch; a model that cannot be exported runs on torch."""
    from serkit import Predictor
    from serkit.config import InferenceConfig
    from serkit.inference import onnx_export, runtime

    src, _ = tiny
    monkeypatch.setenv("SERKIT_ONNX_CACHE", str(tmp_path / "cache" / "onnx"))
    heard: list[str] = []
    auto = Predictor.load(src, inference=InferenceConfig(runtime="auto"), say=heard.append)
    assert auto.runtime == "onnx" and auto.model_dir == runtime.onnx_cache_dir(src)
    assert auto.name == "tiny"      # the model asked for, not "tiny-onnx"
    assert auto.model_dir.parent == tmp_path / "cache" / "onnx" and len(heard) == 1
    assert not [p for p in auto.model_dir.parent.iterdir() if p.name.startswith(".export-")]
    torch_p = Predictor.load(src, inference=InferenceConfig(runtime="torch", precision="fp32"))
    assert torch_p.runtime == "torch"
    sigs = _signals()
    np.testing.assert_allclose(auto.score_batch(sigs), torch_p.score_batch(sigs), atol=TOL)

    def no_export(*a, **k):
        raise AssertionError("exported twice")
    monkeypatch.setattr(onnx_export, "export_onnx", no_export)
    again = Predictor.load(src, say=heard.append)
    assert again.runtime == "onnx" and again.model_dir == auto.model_dir and len(heard) == 1


def test_runtime_refusals_and_fallbacks(tiny, tmp_path, monkeypatch):
    from serkit import Predictor
    from serkit.config import InferenceConfig
    from serkit.inference.modeldir import ModelError

    src, exported = tiny
    monkeypatch.setenv("SERKIT_ONNX_CACHE", str(tmp_path / "cache"))
    assert Predictor.load(exported).runtime == "onnx"
    with pytest.raises(ModelError, match="runs on ONNX Runtime only"):
        Predictor.load(exported, inference=InferenceConfig(runtime="torch"))
    card = json.loads((src / "model.json").read_text())
    sk = tmp_path / "sklearn"
    import shutil
    shutil.copytree(src, sk)
    (sk / "estimator" / "estimator.json").write_text(json.dumps({"kind": "skops"}))
    from serkit.inference.runtime import choose_model_dir

    assert choose_model_dir(sk, "auto") == sk                 # not exportable: torch, silently
    with pytest.raises(ModelError, match="cannot run on ONNX Runtime"):
        choose_model_dir(sk, "onnx")
    assert card["name"] == "tiny"
    res = runner.invoke(app, ["predict", str(tmp_path), "--model", str(src), "--runtime", "tpu"])
    assert res.exit_code == 2 and "runtime" in res.output


def test_a_temperature_scaled_model_exports_with_its_temperature(tmp_path):
    """Temperature scaling (serkit.models.calibration) is baked into the graph: ONNX Runtime gives
    the calibrated probabilities the torch Predictor gives, and the card records T."""
    from serkit import Predictor
    from serkit.config import InferenceConfig
    from serkit.inference.modeldir import load_model_dir, save_model_dir
    from serkit.models.calibration import TemperatureScaled

    src = _tiny_model_dir(tmp_path / "plain", network_params={"n_layers": 3, "hidden": [8], "dropout": [0.1]})
    card, pipe, est = load_model_dir(src)
    scaled = save_model_dir(tmp_path / "scaled", name="tiny-t", pipeline=pipe, estimator=TemperatureScaled(est, 0.5),
                            card={k: card[k] for k in ("backbone", "model")})
    out = _export(scaled, tmp_path / "exported")
    assert json.loads((out / "model.json").read_text())["runtime"]["temperature"] == pytest.approx(0.5)
    torch_p = Predictor.load(scaled, inference=InferenceConfig(runtime="torch", precision="fp32"))
    plain = Predictor.load(src, inference=InferenceConfig(runtime="torch", precision="fp32"))
    sigs = _signals()
    want = torch_p.score_batch(sigs)
    assert not np.allclose(want, plain.score_batch(sigs), atol=1e-3)       # T changed the scores
    np.testing.assert_allclose(Predictor.load(out).score_batch(sigs), want, atol=TOL)

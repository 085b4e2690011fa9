"""Calibration: ECE by hand, temperature scaling (fit, argmax kept, training data only), its
round trip through a model directory into a fresh process, and the report's reliability diagram."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from audio_utils import synthetic_corpus, tone, write
from serkit.cli import app
from serkit.evaluation import metrics as M
from serkit.models.calibration import TemperatureScaled, apply_temperature, fit_temperature, nll

runner = CliRunner()


def test_ece_by_hand():
    # four predictions, top-class confidences 0.9, 0.8, 0.6, 0.55; 15 bins of width 1/15:
    #   0.9 -> bin (13/15, 14/15], 0.8 -> (11/15, 12/15], 0.6 and 0.55 -> (8/15, 9/15]
    #   bin 13: conf 0.9, acc 1 (right)      -> |1 - 0.9|   = 0.1,   weight 1/4
    #   bin 11: conf 0.8, acc 0 (wrong)      -> |0 - 0.8|   = 0.8,   weight 1/4
    #   bin 8:  conf 0.575, acc 1/2          -> |0.5-0.575| = 0.075, weight 2/4
    #   ECE = 0.025 + 0.2 + 0.0375 = 0.2625
    classes = ["a", "b"]
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.45, 0.55]])
    y = ["a", "a", "a", "a"]
    assert M.ece(y, proba, classes) == pytest.approx(0.2625)
    rel = M.reliability(y, proba, classes)
    counts = [b["count"] for b in rel["bins"]]
    assert counts[13] == 1 and counts[11] == 1 and counts[8] == 2 and sum(counts) == 4
    assert rel["bins"][8]["accuracy"] == pytest.approx(0.5)
    assert rel["bins"][8]["confidence"] == pytest.approx(0.575)
    # a perfectly calibrated, fully confident classifier has ECE 0
    assert M.ece(["a", "b"], np.array([[1.0, 0.0], [0.0, 1.0]]), classes) == 0.0
    # compute() reports it with the probabilities
    assert M.compute(y, ["a", "b", "a", "b"], classes, proba)["ece"] == pytest.approx(0.2625)


def test_temperature_keeps_argmax_and_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    z = rng.normal(scale=3.0, size=(4000, 5))
    true_t = 2.5  # labels drawn from softmax(z / 2.5): softmax(z) is over-confident
    p_true = apply_temperature(np.exp(z) / np.exp(z).sum(1, keepdims=True), true_t)
    y = np.array([rng.choice(5, p=row) for row in p_true])
    proba = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    t = fit_temperature(proba, y)
    assert t == pytest.approx(true_t, rel=0.1)
    scaled = apply_temperature(proba, t)
    np.testing.assert_array_equal(scaled.argmax(1), proba.argmax(1))
    np.testing.assert_allclose(scaled.sum(1), 1.0)
    assert nll(scaled, y) < nll(proba, y)
    classes = [str(i) for i in range(5)]
    assert M.ece(y.astype(str), scaled, classes) < M.ece(y.astype(str), proba, classes)
    np.testing.assert_allclose(apply_temperature(proba, 1.0), proba, atol=1e-9)
    with pytest.raises(ValueError, match="positive"):
        apply_temperature(proba, 0.0)


def test_fit_calibrated_uses_training_speakers_only():
    from sklearn.linear_model import LogisticRegression

    from serkit.config import CalibrationConfig
    from serkit.evaluation.estimators import fit_calibrated

    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 6))
    y = np.where(X[:, 0] + 0.5 * rng.normal(size=120) > 0, "angry", "sad")
    groups = np.repeat([f"s{i}" for i in range(12)], 10)
    est, rec = fit_calibrated(LogisticRegression(), X, y, groups, None,
                              CalibrationConfig(method="temperature", val_fraction=0.25), seed=0)
    assert isinstance(est, TemperatureScaled) and rec["temperature"] > 0
    held = set(rec["speakers"])
    assert held and held < set(groups)
    # the calibration speakers were kept out of model fitting entirely
    assert set(groups[rec["rows"]]) == held
    assert len(est.estimator.coef_) == 1 and rec["n"] == len(rec["rows"])
    np.testing.assert_array_equal(est.predict(X), est.estimator.predict(X))
    plain, none = fit_calibrated(LogisticRegression(), X, y, groups, None, CalibrationConfig(), seed=0)
    assert none is None and not isinstance(plain, TemperatureScaled)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """A tiny recipe with temperature scaling: serkit train → model dir + evaluation run."""
    tmp = tmp_path_factory.mktemp("cal")
    csv_path = synthetic_corpus(tmp / "corpus", speakers=6, per_label=4)
    cfg = tmp / "recipe.yaml"
    cfg.write_text(f"""
name: tinycal
data: {{corpora: [{{name: csv, root: {csv_path}}}]}}
features: {{kind: mfcc, params: {{n_mfcc: 13, add_rms: false, frames: 20}}, cache_dir: {tmp / 'cache'}, n_jobs: 1}}
audio: {{duration_s: 0.8}}
model: {{name: logreg, params: {{C: 100.0}}}}
protocol: {{kind: group_kfold, n_folds: 3}}
calibration: {{method: temperature, split: holdout, val_fraction: 0.25}}
""")
    out = tmp / "model"
    res = runner.invoke(app, ["train", str(cfg), "--out", str(out), "--run-dir", str(tmp / "runs"), "--quiet"])
    assert res.exit_code == 0, res.output
    return tmp, out, res.output


def test_run_records_ece_and_fits_temperature_on_training_speakers(calibrated):
    tmp, _, output = calibrated
    run = tmp / "runs" / "main"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["calibration"]["method"] == "temperature"
    assert "ece" in metrics and "ece_uncalibrated" in metrics and "temperature" in metrics
    pred = pd.read_csv(run / "predictions.csv", dtype={"speaker": str})
    for f in metrics["folds"]:
        test_speakers = set(pred.loc[pred["fold"] == f["fold"], "speaker"])
        cal_speakers = set(f["calibration"]["speakers"])
        assert cal_speakers and not cal_speakers & test_speakers   # never the test fold
        assert 0 <= f["ece"] <= 1 and f["temperature"] > 0
    assert "ECE" in output  # the console table


def test_model_dir_keeps_the_temperature_in_a_fresh_process(calibrated, tmp_path):
    from serkit import Predictor
    from serkit.config import SegmentConfig

    _, model_dir, _ = calibrated
    meta = json.loads((model_dir / "estimator" / "estimator.json").read_text())
    t = meta["calibration"]["temperature"]
    assert isinstance(t, float) and t > 0 and meta["calibration"]["method"] == "temperature"
    card = json.loads((model_dir / "model.json").read_text())
    assert card["calibration"]["temperature"] == pytest.approx(t, rel=1e-5)
    assert "Calibration" in (model_dir / "README.md").read_text()

    clips = [write(tmp_path / f"c{i}.wav", tone(f0, 0.8, amp=a, seed=i))
             for i, (f0, a) in enumerate([(330, 0.6), (140, 0.1), (520, 0.35)])]
    p = Predictor.load(model_dir, segments=SegmentConfig(vad="energy"))
    assert isinstance(p.estimator, TemperatureScaled)
    here = p.predict_files(clips)
    code = ("import json, sys\nfrom serkit import Predictor\nfrom serkit.config import SegmentConfig\n"
            "p = Predictor.load(sys.argv[1], segments=SegmentConfig(vad='energy'))\n"
            "from serkit.models.capabilities import model_input\n"
            "raw = p.estimator.estimator\n"
            "X = [p.pipeline.transform_file(f) for f in sys.argv[2:]]\n"
            "print(json.dumps({'t': p.estimator.temperature, 'res': p.predict_files(sys.argv[2:]),\n"
            "  'raw': [raw.predict_proba(model_input(raw, x))[0].tolist() for x in X]}))")
    res = subprocess.run([sys.executable, "-c", code, str(model_dir), *map(str, clips)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    there = json.loads(res.stdout.strip().splitlines()[-1])
    assert there["t"] == t
    for a, b, raw in zip(here, there["res"], there["raw"]):
        assert a["label"] == b["label"]
        scores = [b["scores"][c] for c in p.classes]
        np.testing.assert_allclose([a["scores"][c] for c in p.classes], scores, atol=1e-6)
        np.testing.assert_allclose(scores, apply_temperature(np.array([raw]), t)[0], atol=1e-5)
        assert p.classes[int(np.argmax(raw))] == b["label"]          # argmax unchanged
    if abs(t - 1) > 1e-3:  # the scaled probabilities differ from the raw ones
        assert any(not np.allclose([r["scores"][c] for c in p.classes], raw, atol=2e-6)
                   for r, raw in zip(there["res"], there["raw"]))


def test_report_has_a_reliability_diagram(calibrated):
    from serkit.reporting import write_report

    tmp, _, _ = calibrated
    html = write_report(tmp / "runs" / "main", tsne=False).read_text()
    assert 'id="calibration"' in html and "Reliability diagram" in html
    assert "ECE before temperature scaling" in html
    rel = json.loads((tmp / "runs" / "main" / "report_data" / "reliability.json").read_text())
    assert rel["n_bins"] == 15 and sum(b["count"] for b in rel["bins"]) > 0


def test_model_validation_split_needs_a_model_that_holds_out_speakers(tmp_path):
    from serkit.config import load_config
    from serkit.evaluation.estimators import build_estimator, check_estimator

    cfg = load_config(None, ["model.name=logreg", "calibration.method=temperature",
                             "calibration.split=model_validation"])
    with pytest.raises(ValueError, match="model_validation"):
        check_estimator(build_estimator(cfg), cfg)

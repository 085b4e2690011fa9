import json

import pandas as pd
from typer.testing import CliRunner

from serkit.cli import app
from audio_utils import synthetic_corpus

runner = CliRunner()


def _config(tmp_path, csv, extra=""):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(f"""
name: tiny
data:
  corpora: [{{name: csv, root: {csv}}}]
features: {{kind: egemaps, cache_dir: {tmp_path / 'cache'}, n_jobs: 1}}
model: {{name: svm, grid: {{clf__C: [1.0, 10.0]}}, inner_folds: 2}}
protocol: {{kind: group_kfold, n_folds: 3}}
{extra}
""")
    return cfg


def test_serkit_run_end_to_end(tmp_path):
    csv = synthetic_corpus(tmp_path / "corpus")
    out = tmp_path / "run"
    res = runner.invoke(app, ["run", str(_config(tmp_path, csv)), "--out", str(out), "--quiet",
                              "--no-report"])
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["protocol"] == {"kind": "group_kfold", "speaker_independent": True,
                             "description": m["protocol"]["description"], "n_folds": 3,
                             "transductive": False, "transductive_note": None}
    assert m["schema_version"] == 2 and m["corpora"] == ["corpus"]
    assert m["accounting"] == {"rows_scanned": 72, "rows_used": 72, "excluded": {}, "skipped": []}
    assert all(f["missing_classes"] == [] for f in m["folds"])
    assert m["ua"]["mean"] > 0.8 and len(m["folds"]) == 3  # the classes differ in pitch/loudness
    for key in ("ua", "wa", "macro_f1"):
        assert set(m[key]) >= {"mean", "std"}
    pred = pd.read_csv(out / "predictions.csv")
    assert list(pred.columns[:5]) == ["fold", "key", "speaker", "true", "pred"]
    assert {"prob_angry", "prob_happy", "prob_sad"} <= set(pred.columns) and len(pred) == 72
    assert (out / "config.yaml").is_file()
    for fold in m["folds"]:  # speaker-independent: test speakers never in training
        assert fold["n_train"] + fold["n_test"] == 72
    by_fold = pred.groupby("fold")["speaker"].apply(set)
    assert sum(len(s) for s in by_fold) == 6


def test_overrides_and_speaker_dependent_label(tmp_path):
    csv = synthetic_corpus(tmp_path / "corpus", speakers=3, per_label=4)
    out = tmp_path / "run"
    res = runner.invoke(app, ["run", str(_config(tmp_path, csv)), "--out", str(out), "--quiet",
                              "--no-report", "-o", "protocol.kind=random",
                              "-o", "protocol.speaker_dependent=true", "-o", "model.grid=null",
                              "-o", "protocol.n_folds=null"])
    assert res.exit_code == 0, res.output
    assert "SPEAKER-DEPENDENT" in res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["protocol"]["speaker_independent"] is False
    assert len(m["folds"]) == 1 and m["folds"][0]["n_test"] == 11  # one stratified 70/30 split of 36


def test_clear_errors_for_bad_config_and_missing_corpus(tmp_path):
    res = runner.invoke(app, ["run", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2 and "config file not found" in res.output
    cfg = _config(tmp_path, tmp_path / "missing.csv")
    res = runner.invoke(app, ["run", str(cfg), "--quiet"])
    assert res.exit_code == 2 and "not found" in res.output


def test_data_scan_json(tmp_path):
    csv = synthetic_corpus(tmp_path / "corpus", speakers=2, per_label=2)
    res = runner.invoke(app, ["data", "scan", "csv", str(csv), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["utterances"] == 12 and summary["speakers"] == 2
    assert summary["labels"] == {"angry": 4, "happy": 4, "sad": 4}
    assert summary["duration_s"] > 9 and summary["problems"] == []
    res = runner.invoke(app, ["data", "scan", "nosuchcorpus", str(tmp_path)])
    assert res.exit_code == 2 and "unknown corpus" in res.output


def test_cnn_run_gradcam_and_report(tmp_path):
    """A tiny CNN run through the same pipeline, then Grad-CAM and the HTML report on it."""
    csv = synthetic_corpus(tmp_path / "corpus", speakers=4, per_label=3)
    cfg = tmp_path / "cnn.yaml"
    cfg.write_text(f"""
name: tiny_cnn
data: {{corpora: [{{name: csv, root: {csv}}}]}}
features: {{kind: melimage, params: {{size: 32}}, cache_dir: {tmp_path / 'cache'}, n_jobs: 1}}
model: {{name: cnn3, params: {{max_epochs: 3, batch_size: 8, patience: null, progress_bar: false}}}}
protocol: {{kind: group_kfold, n_folds: 2}}
""")
    out = tmp_path / "run"
    res = runner.invoke(app, ["run", str(cfg), "--out", str(out), "--quiet", "--no-report"])
    assert res.exit_code == 0, res.output
    hist = pd.read_csv(out / "folds" / "fold1" / "history.csv")
    assert len(hist) == 3 and {"train_loss", "val_loss"} <= set(hist.columns)
    res = runner.invoke(app, ["explain", "gradcam", str(out), "--fold", "fold1"])
    assert res.exit_code == 0, res.output
    maps = sorted((out / "folds" / "fold1" / "gradcam").glob("*.npz"))
    assert len(maps) == 3  # one test utterance per class
    import numpy as np
    with np.load(maps[0]) as z:
        assert z["map"].shape == (32, 32) and 0 <= z["map"].min() and z["map"].max() <= 1
    html = (out / "report.html").read_text()
    assert "Grad-CAM" in html and html.count("data:image/png;base64") >= 5

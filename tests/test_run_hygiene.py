"""Runs fail fast, account for every input row, skip unusable clips by name, and label
test-time speaker normalisation as transductive (issue 10)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from audio_utils import synthetic_corpus, tone, write
from serkit.cli import app

runner = CliRunner()


def _config(tmp_path, csv, model="model: {name: svm, grid: {clf__C: [1.0, 10.0]}, inner_folds: 2}",
            features="features: {kind: egemaps, cache_dir: CACHE, n_jobs: 1}", extra=""):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(f"""
name: tiny
data:
  corpora: [{{name: csv, root: {csv}}}]
{features.replace('CACHE', str(tmp_path / 'cache'))}
{model}
protocol: {{kind: group_kfold, n_folds: 3}}
{extra}
""")
    return cfg


def _add_bad_files(csv):
    root = csv.parent
    bad = {"zeros.wav": np.zeros(16000, np.float32), "short.wav": tone(300, 0.05)}
    rows = []
    for name, x in bad.items():
        write(root / "bad" / name, x)
        rows.append(f"bad/{name},angry,spk0,male")
    (root / "bad" / "empty.wav").write_bytes(b"")
    rows.append("bad/empty.wav,sad,spk1,female")
    write(root / "bad" / "full.flac", tone(200, 2.0), format="FLAC")
    data = (root / "bad" / "full.flac").read_bytes()
    (root / "bad" / "truncated.flac").write_bytes(data[: len(data) // 3])
    rows.append("bad/truncated.flac,happy,spk2,male")
    with open(csv, "a") as f:
        f.write("\n".join(rows) + "\n")


def test_unusable_clips_are_skipped_by_name_and_accounted_for(tmp_path):
    csv = synthetic_corpus(tmp_path / "corpus")
    _add_bad_files(csv)
    out = tmp_path / "run"
    res = runner.invoke(app, ["run", str(_config(tmp_path, csv)), "--out", str(out), "--quiet",
                              "--no-report"])
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    acct = m["accounting"]
    kinds = {s["path"].split("/")[-1]: s["kind"] for s in acct["skipped"]}
    # silent and too-short clips are never used with NaN / zero-filled features
    assert kinds["zeros.wav"] == "silent" and kinds["short.wav"] == "too_short"
    assert kinds["empty.wav"] == "empty"            # a scan problem: the file is empty
    assert kinds["truncated.flac"] in ("unreadable", "not_finite")  # caught at decoding
    reasons = {s["path"].split("/")[-1]: s["reason"] for s in acct["skipped"]}
    assert "zeros.wav" in reasons["zeros.wav"] and "silent" in reasons["zeros.wav"]
    assert "0.05 s" in reasons["short.wav"]
    assert acct["rows_used"] == 72 and acct["rows_scanned"] == 76 and len(acct["skipped"]) == 4
    assert m["n_utterances"] == 72
    # the console count is the same accounting
    assert "72 of 76 input rows used" in res.output and "4 skipped" in res.output


def test_unknown_model_fails_before_any_extraction(tmp_path):
    csv = synthetic_corpus(tmp_path / "corpus", speakers=3, per_label=2)
    out = tmp_path / "run"
    res = runner.invoke(app, ["run", str(_config(tmp_path, csv)), "--out", str(out), "--quiet",
                              "-o", "model.name=svn"])
    assert res.exit_code == 2 and "unknown model 'svn'" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "cache").exists() and not out.exists()


def test_bad_model_parameter_fails_after_one_file_not_after_all(tmp_path):
    csv = synthetic_corpus(tmp_path / "corpus", speakers=6, per_label=4)   # 72 files
    out = tmp_path / "run"
    res = runner.invoke(app, ["run", str(_config(tmp_path, csv)), "--out", str(out), "--quiet",
                              "-o", "model.grid=null", "-o", "model.params.C=-1"])
    assert res.exit_code == 2 and "cannot be trained" in res.output and "C" in res.output
    cached = list((tmp_path / "cache").rglob("*.npy"))
    assert 0 < len(cached) <= 8            # the dry run extracted only the first files
    assert not out.exists()                # a failed run leaves nothing that looks finished


def test_bad_grid_and_malformed_override_values_give_clear_errors(tmp_path):
    csv = synthetic_corpus(tmp_path / "corpus", speakers=3, per_label=2)
    cfg = _config(tmp_path, csv)
    res = runner.invoke(app, ["run", str(cfg), "-o", "a.b=[unclosed"])
    assert res.exit_code == 2 and "not valid YAML" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["run", str(cfg), "-o", "model.grid={clf__Cx: [1]}"])
    assert res.exit_code == 2 and "clf__Cx" in res.output
    res = runner.invoke(app, ["run", str(cfg), "-o", "features.kind=egemap"])
    assert res.exit_code == 2 and "unknown feature kind 'egemap'" in res.output


def test_torch_model_settings_are_checked_before_extraction(tmp_path):
    csv = synthetic_corpus(tmp_path / "corpus", speakers=3, per_label=2)
    cfg = _config(tmp_path, csv, model="model: {name: cnn3, params: {optimizer: sgdd}}",
                  features="features: {kind: melimage, params: {size: 32}, cache_dir: CACHE, n_jobs: 1}")
    res = runner.invoke(app, ["run", str(cfg), "--out", str(tmp_path / "run"), "--quiet"])
    assert res.exit_code == 2 and "optimizer" in res.output and "sgdd" in res.output


def test_failed_run_into_an_existing_run_dir_leaves_no_stale_results(tmp_path):
    csv = synthetic_corpus(tmp_path / "corpus", speakers=3, per_label=2)
    out = tmp_path / "run"
    cfg = _config(tmp_path, csv, extra="", model="model: {name: logreg}")
    assert runner.invoke(app, ["run", str(cfg), "--out", str(out), "--quiet", "--no-report"]).exit_code == 0
    assert (out / "metrics.json").is_file()
    res = runner.invoke(app, ["run", str(cfg), "--out", str(out), "--quiet", "--no-report",
                              "-o", "model.params.C=-5"])
    assert res.exit_code == 2
    assert not (out / "metrics.json").exists() and not (out / "predictions.csv").exists()
    assert "C" in (out / "FAILED.txt").read_text()


def test_old_speaker_norm_key_is_refused_with_its_new_name(tmp_path):
    csv = synthetic_corpus(tmp_path / "corpus", speakers=3, per_label=2)
    res = runner.invoke(app, ["run", str(_config(tmp_path, csv)), "-o", "features.speaker_norm=true"])
    assert res.exit_code == 2 and "test_time_speaker_norm" in res.output and "transductive" in res.output


def test_transductive_runs_are_labelled_and_warn_about_one_emotion_speakers(tmp_path):
    # speakers 0-2 record every emotion; speakers 3-5 record only one each (the Urdu case)
    rows = ["path,label,speaker"]
    freqs = {"angry": 330.0, "sad": 140.0, "happy": 520.0}
    for s in range(6):
        labels = list(freqs) if s < 3 else [list(freqs)[s - 3]]
        for lab in labels:
            for i in range(6 if s >= 3 else 2):
                rel = f"wav/{s}_{lab}_{i}.wav"
                write(tmp_path / "corpus" / rel, tone(freqs[lab] * (1 + 0.02 * i), 0.6, seed=s * 50 + i))
                rows.append(f"{rel},{lab},spk{s}")
    csv = tmp_path / "corpus" / "one_emotion.csv"
    csv.write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    res = runner.invoke(app, ["run", str(_config(tmp_path, csv, model="model: {name: logreg}")),
                              "--out", str(out), "--quiet", "--no-report",
                              "-o", "features.test_time_speaker_norm=true"])
    assert res.exit_code == 0, res.output
    assert "TRANSDUCTIVE" in res.output and "test speakers' unlabelled utterances" in res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["protocol"]["transductive"] is True
    assert "transductive" in m["protocol"]["description"]
    warned = {w["speaker"] for w in m["speaker_label_warnings"]}
    assert warned == {"one_emotion_spk3", "one_emotion_spk4", "one_emotion_spk5"}
    for w in warned:
        assert w in res.output


def test_missing_classes_are_reported_per_fold(tmp_path):
    rows = ["path,label,speaker"]
    for s, labels in enumerate([("angry", "sad"), ("angry", "sad"), ("angry", "happy"), ("sad", "happy")]):
        for lab in labels:
            for i in range(3):
                rel = f"wav/{s}_{lab}_{i}.wav"
                write(tmp_path / "c" / rel, tone({"angry": 330, "sad": 140, "happy": 520}[lab] * (1 + .02 * i),
                                                 0.6, seed=s * 10 + i))
                rows.append(f"{rel},{lab},spk{s}")
    csv = tmp_path / "c" / "gappy.csv"
    csv.write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    cfg = _config(tmp_path, csv, model="model: {name: logreg}")
    res = runner.invoke(app, ["run", str(cfg), "--out", str(out), "--quiet", "--no-report",
                              "-o", "protocol.kind=loso"])
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    by_fold = {f["fold"]: f["missing_classes"] for f in m["folds"]}
    assert by_fold["test_gappy_spk0"] == ["happy"] and by_fold["test_gappy_spk3"] == ["angry"]
    assert m["missing_classes_note"] and "test set lacks happy" in m["missing_classes_note"]
    assert "missing in test: happy" in res.output


@pytest.mark.parametrize("name", ["zeros", "short"])
def test_prepare_refuses_silent_and_short_arrays(name):
    from serkit.io.audio import AudioError, prepare

    x = np.zeros(16000, np.float32) if name == "zeros" else tone(300, 0.05)
    with pytest.raises(AudioError) as err:
        prepare(x, 16000, min_duration_s=0.25, silence_dbfs=-60, name=f"{name}.wav")
    assert f"{name}.wav" in str(err.value) and err.value.kind == {"zeros": "silent", "short": "too_short"}[name]


def test_nan_features_are_a_skip_not_zeros(tmp_path):
    from serkit.features.base import FeatureExtractor
    from serkit.features.extract import extract_manifest
    import pandas as pd

    class HalfNaN(FeatureExtractor):
        name = "halfnan"

        def __call__(self, signal, sr):
            return np.array([1.0, np.nan] if len(signal) < 12000 else [1.0, 2.0], np.float32)

    a = write(tmp_path / "a.wav", tone(200, 1.0))
    b = write(tmp_path / "b.wav", tone(200, 0.5))
    res = extract_manifest(pd.DataFrame({"path": [str(a), str(b)], "duration": [1.0, 0.5]}), HalfNaN(),
                           {"sample_rate": 16000}, use_cache=False, n_jobs=1, progress=False)
    assert res.ok.tolist() == [True, False] and res.features.tolist() == [[1.0, 2.0]]
    assert res.failures[0]["kind"] == "not_finite" and "b.wav" in res.failures[0]["error"]
    sf.info(str(a))

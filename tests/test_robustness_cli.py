"""`serkit robustness` on a tiny model trained on synthetic tones: rows per condition, the clean row
equal to `serkit predict`, determinism from the seed, label mapping, bad files skipped and named,
the warning when the evaluation speakers were heard in training, a run directory's fold models."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from audio_utils import synthetic_corpus, tone, write
from serkit.cli import app

runner = CliRunner()
ENERGY = ["-s", "vad=energy"]     # tones are no speech to the default VAD
CONDS = ["-C", "white_20dB,telephone_8k", "-C", "babble_10dB"]
RECIPE = """
name: tiny
data: {{corpora: [{{name: csv, root: {csv}}}]}}
features: {{kind: mfcc, params: {{n_mfcc: 13, add_rms: false, frames: 20}}, cache_dir: {cache}, n_jobs: 1}}
audio: {{duration_s: 0.8}}
model: {{name: logreg}}
protocol: {{kind: group_kfold, n_folds: 2}}
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rob")
    csv_path = synthetic_corpus(tmp / "corpus", speakers=4, per_label=3)
    cfg = tmp / "recipe.yaml"
    cfg.write_text(RECIPE.format(csv=csv_path, cache=tmp / "cache"))
    res = runner.invoke(app, ["train", str(cfg), "--out", str(tmp / "model"), "--run-dir", str(tmp / "runs"),
                              "--quiet", "--no-eval"])
    assert res.exit_code == 0, res.output
    return {"model": tmp / "model", "recipe": cfg, "train_csv": csv_path, "tmp": tmp}


@pytest.fixture(scope="module")
def evalset(tmp_path_factory):
    """New speakers (e0..e2), a label the model lacks (neutral), a broken and a silent file."""
    root = tmp_path_factory.mktemp("evalset")
    freqs = {"angry": (330.0, 0.6), "sad": (140.0, 0.1), "happy": (520.0, 0.35), "neutral": (220.0, 0.2)}
    rows = ["path,label,speaker"]
    for s in range(3):
        for lab, (f0, amp) in freqs.items():
            for i in range(2):
                rel = f"wav/e{s}_{lab}_{i}.wav"
                write(root / rel, tone(f0 * (1 + 0.025 * s + 0.01 * i), 1.0, amp=amp, seed=500 + 10 * s + i))
                rows.append(f"{rel},{lab},e{s}")
    (root / "wav" / "broken.wav").write_text("not audio")
    rows.append("wav/broken.wav,angry,e0")
    write(root / "wav" / "silent.wav", np.zeros(16000, np.float32))
    rows.append("wav/silent.wav,sad,e1")
    (root / "evalset.csv").write_text("\n".join(rows) + "\n")
    return root / "evalset.csv"


def _run(args):
    res = runner.invoke(app, ["robustness", *args, *ENERGY])
    assert res.exit_code == 0, res.output
    return res


def test_rows_labels_bad_files_and_clean_equals_predict(trained, evalset, tmp_path):
    out = tmp_path / "r.md"
    res = _run([str(trained["model"]), "--corpus", f"csv:{evalset}", "--per-corpus", "0", *CONDS,
                "--seed", "3", "--out", str(out), "-q"])
    rec = json.loads(out.with_suffix(".json").read_text())
    # clean first, then the table order of serkit.evaluation.degrade.CONDITIONS
    assert [r["condition"] for r in rec["rows"]] == ["clean", "babble_10dB", "white_20dB", "telephone_8k"]
    for name in ("clean", "babble_10dB", "white_20dB", "telephone_8k", "% of clean", "evalset UA %"):
        assert name in res.output
    # neutral is not a class of the model: left out and counted; 18 clips of the 3 classes scored
    assert rec["left_out"] == {"label 'neutral' is not a class of the model": 6}
    assert rec["n_clips"] == 18 and rec["clips_per_corpus"] == {"evalset": 18}
    # the broken file (scan) and the silent one (no label clean) are skipped and named
    skipped = {Path(s["path"]).name: s["error"] for s in rec["skipped"]}
    assert set(skipped) == {"broken.wav", "silent.wav"} and "no label" in skipped["silent.wav"]
    assert "broken.wav" in res.output and "silent.wav" in res.output
    assert rec["warning"] is None and "WARNING" not in res.output
    # the clean row is what `serkit predict` says about the same files
    paths = [c["path"] for c in rec["clips"]]
    pred = runner.invoke(app, ["predict", *paths, "--model", str(trained["model"]), "--format", "json", "-q", *ENERGY])
    assert pred.exit_code == 0, pred.output
    by_path = {r["path"]: r["label"] for r in json.loads(pred.stdout)}
    assert [c["predicted"]["clean"] for c in rec["clips"]] == [by_path[p] for p in paths]
    y = np.array([c["label"] for c in rec["clips"]])
    yhat = np.array([by_path[p] for p in paths])
    ua = np.mean([np.mean(yhat[y == c] == c) for c in sorted(set(y))])
    clean = rec["rows"][0]
    assert clean["ua"] == pytest.approx(ua) and clean["share_of_clean"] == pytest.approx(1.0)
    assert clean["wa"] == pytest.approx(np.mean(y == yhat)) and clean["no_label"] == 0
    md = out.read_text()
    assert "| telephone_8k |" in md and "silent.wav" in md and "6 clip(s): label 'neutral'" in md


def test_same_seed_same_table_other_seed_other_subset(trained, evalset, tmp_path):
    def once(seed, name):
        out = tmp_path / f"{name}.md"
        _run([str(trained["model"]), "--corpus", str(evalset), "--per-corpus", "4", "-C", "white_0dB,crop_1s",
              "--seed", str(seed), "--out", str(out), "-q"])
        rec = json.loads(out.with_suffix(".json").read_text())
        for r in rec["rows"]:
            r.pop("wall_s")
        return rec

    a, b, c = once(7, "a"), once(7, "b"), once(8, "c")
    assert a["rows"] == b["rows"] and a["clips"] == b["clips"]
    assert a["n_clips"] == 4 and sorted(x["label"] for x in a["clips"]) == ["angry", "angry", "happy", "sad"]
    assert [x["key"] for x in a["clips"]] != [x["key"] for x in c["clips"]]


def test_training_speakers_give_a_warning(trained, tmp_path):
    out = tmp_path / "seen.md"
    res = _run([str(trained["model"]), "--corpus", f"csv:{trained['train_csv']}", "--per-corpus", "6",
                "-C", "white_20dB", "--out", str(out), "-q"])
    rec = json.loads(out.with_suffix(".json").read_text())
    assert rec["warning"] == "speakers seen in training: optimistic"
    assert rec["overlap"]["by"] == "speaker id" and rec["overlap"]["clips"] == 6
    assert "speakers seen in training: optimistic" in res.output
    assert "speakers seen in training: optimistic" in out.read_text()


def test_bad_model_bad_condition_no_data_are_clear_errors(trained, evalset, tmp_path):
    res = runner.invoke(app, ["robustness", str(tmp_path), "--corpus", str(evalset)])
    assert res.exit_code == 2 and "cannot load the model" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["robustness", str(trained["model"]), "--corpus", str(evalset), "-C", "underwater"])
    assert res.exit_code == 2 and "unknown condition(s) underwater" in res.output
    res = runner.invoke(app, ["robustness", str(trained["model"])])
    assert res.exit_code == 2 and "--corpus" in res.output
    res = runner.invoke(app, ["robustness", str(trained["model"]), "--corpus", "nosuch:/x"])
    assert res.exit_code == 2 and "ADAPTER:PATH" in res.output


def test_run_directory_is_scored_with_its_fold_models(trained, tmp_path):
    run = tmp_path / "run"
    res = runner.invoke(app, ["run", str(trained["recipe"]), "-o", "model.save=true", "--out", str(run),
                              "--no-report", "--quiet"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "run.md"
    res = _run([str(run), "-C", "white_20dB", "--per-corpus", "9", "--cache", str(tmp_path / "c"),
                "--out", str(out), "-q"])
    rec = json.loads(out.with_suffix(".json").read_text())
    assert rec["kind"] == "run" and rec["n_clips"] == 9 and [r["condition"] for r in rec["rows"]] == ["clean", "white_20dB"]
    # the clean row re-scores the run's own test predictions: same UA on those clips
    import pandas as pd

    from serkit.evaluation.metrics import ua
    from serkit.evaluation.robustness import load_run, run_subset

    sub = run_subset(load_run(run), 9, 42).merge(pd.read_csv(run / "predictions.csv", dtype=str)[["key", "pred"]])
    assert rec["rows"][0]["ua"] == pytest.approx(ua(sub["true"], sub["pred"]))
    res = runner.invoke(app, ["robustness", str(run), "--corpus", "x.csv"])
    assert res.exit_code == 2 and "own test folds" in res.output

"""The recogniser end to end on a tiny model trained on synthetic audio: serkit train → model dir →
Predictor / serkit predict in every format, bad inputs, long recordings, a fresh-process round trip,
and the refusal to export a transductive recipe."""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from audio_utils import synthetic_corpus, tone, write
from serkit.cli import app
from serkit.config import SegmentConfig

runner = CliRunner()
ENERGY = SegmentConfig(vad="energy", window_s=1.0, hop_s=0.5, min_window_s=0.5, min_silence_s=0.3)
ENERGY_ARGS = ["-s", "vad=energy", "-s", "window_s=1.0", "-s", "hop_s=0.5", "-s", "min_window_s=0.5",
               "-s", "min_silence_s=0.3"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    csv_path = synthetic_corpus(tmp / "corpus", speakers=4, per_label=4)
    cfg = tmp / "recipe.yaml"
    cfg.write_text(f"""
name: tiny
description: a tiny recogniser on synthetic tones
data: {{corpora: [{{name: csv, root: {csv_path}}}]}}
features: {{kind: mfcc, params: {{n_mfcc: 13, add_rms: false, frames: 20}}, cache_dir: {tmp / 'cache'}, n_jobs: 1}}
audio: {{duration_s: 0.8}}
model: {{name: logreg}}
protocol: {{kind: group_kfold, n_folds: 2}}
""")
    out = tmp / "model"
    res = runner.invoke(app, ["train", str(cfg), "--out", str(out), "--run-dir", str(tmp / "runs"), "--quiet"])
    assert res.exit_code == 0, res.output
    return out


def test_train_writes_a_complete_pickle_free_model_dir(model_dir):
    card = json.loads((model_dir / "model.json").read_text())
    assert card["format"] == {"name": "serkit-model", "version": 1}
    assert card["classes"] == ["angry", "happy", "sad"]
    assert card["features"]["streams"][0]["kind"] == "mfcc" and card["transductive"] is False
    td = card["training_data"]
    assert td["utterances"] == 48 and td["speakers"] == 4
    assert td["per_class"]["sad"] == {"utterances": 16, "speakers": 4, "corpora": ["corpus"]}
    ev = card["evaluations"][0]
    assert ev["protocol"]["speaker_independent"] and ev["ua"]["mean"] > 0.8
    assert set(ev["per_class_recall"]) == {"angry", "happy", "sad"} and "corpus" in ev["per_corpus_ua"]
    assert "own corpus" in (model_dir / "README.md").read_text()
    assert (model_dir / "config.yaml").is_file()
    assert {p.suffix for p in model_dir.rglob("*") if p.is_file()} <= {".json", ".skops", ".yaml", ".md"}


def test_predictor_on_arrays_files_and_batches(model_dir, tmp_path):
    from serkit import Predictor

    p = Predictor.load(model_dir, segments=ENERGY)
    assert p.classes == ["angry", "happy", "sad"]
    r = p.predict_array(tone(520, 0.8, amp=0.35, seed=99), 16000)
    assert r["label"] == "happy" and set(r["scores"]) == set(p.classes)
    assert abs(sum(r["scores"].values()) - 1) < 1e-4 and r["confidence"] == max(r["scores"].values())
    # 44.1 kHz stereo is resampled and downmixed by the model's own preparation
    x = np.stack([tone(140, 0.8, sr=44100, amp=0.1, seed=5)] * 2, axis=1)
    f = write(tmp_path / "sad.wav", x, sr=44100)
    assert p.predict_file(f)["label"] == "sad"
    silent = write(tmp_path / "silent.wav", np.zeros(16000, np.float32))
    short = write(tmp_path / "short.wav", tone(300, 0.05))
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all")
    out = p.predict_files([f, silent, short, empty, text, tmp_path / "missing.wav"], batch_size=2)
    assert [o["path"] for o in out] == [str(x) for x in (f, silent, short, empty, text, tmp_path / "missing.wav")]
    assert out[0]["label"] == "sad"
    for o in out[1:4]:     # empty, silent or too short: an explicit "no speech" result, not a label
        assert o["label"] is None and o["speech"] is False and o["note"].startswith("no speech")
    assert "not a readable audio file" in out[4]["error"] and "notes.wav" in out[4]["error"]
    assert "does not exist" in out[5]["error"]
    from serkit.io.audio import AudioError
    with pytest.raises(AudioError, match="notes.wav"):
        p.predict_file(text)


def test_long_recording_timeline_marks_silence_and_finds_emotions(model_dir, tmp_path):
    from serkit import Predictor

    sr = 16000
    parts = [np.zeros(sr, np.float32), tone(330, 2.0, amp=0.6, seed=1), np.zeros(2 * sr, np.float32),
             tone(140, 2.0, amp=0.1, seed=2), np.zeros(sr, np.float32)]
    f = write(tmp_path / "long.flac", np.concatenate(parts), format="FLAC")
    p = Predictor.load(model_dir, segments=ENERGY)
    tl = p.predict_long(f)
    speech = [s for s in tl["segments"] if s["label"] is not None]
    assert [s["label"] for s in speech] == ["angry", "sad"]
    assert abs(speech[0]["start"] - 1.0) < 0.3 and abs(speech[0]["end"] - 3.0) < 0.3
    assert abs(speech[1]["start"] - 5.0) < 0.3 and abs(speech[1]["end"] - 7.0) < 0.3
    gaps = [s for s in tl["segments"] if s["label"] is None]
    assert gaps and all(s["scores"] is None for s in gaps)
    # a file longer than clip_max_s is summarised from its timeline, not cropped
    cfg = ENERGY.model_copy(update={"clip_max_s": 5.0})
    r = Predictor.load(model_dir, segments=cfg).predict_file(f)
    assert r["label"] in ("angry", "sad") and "segments" not in r and r["duration"] == pytest.approx(8.0, abs=0.01)


def test_serkit_predict_formats_share_one_schema(model_dir, tmp_path):
    folder = tmp_path / "clips"
    write(folder / "a" / "angry.wav", tone(330, 0.8, amp=0.6, seed=3))
    write(folder / "b" / "happy.flac", tone(520, 0.8, amp=0.35, seed=4), format="FLAC")
    (folder / "broken.wav").write_text("nope")
    base = ["predict", str(folder), "--model", str(model_dir), "--quiet", *ENERGY_ARGS]
    res = runner.invoke(app, base + ["--format", "json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout[res.stdout.index("["):res.stdout.rindex("]") + 1])
    by = {Path(r["path"]).name: r for r in rows}
    assert by["angry.wav"]["label"] == "angry" and by["happy.flac"]["label"] == "happy"
    assert set(by["angry.wav"]) >= {"path", "label", "scores", "confidence"}
    assert "error" in by["broken.wav"] and "label" not in by["broken.wav"]
    res = runner.invoke(app, base + ["--format", "jsonl"])
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert len(lines) == 3 and {r["path"] for r in lines} == {r["path"] for r in rows}
    out = tmp_path / "res.csv"
    res = runner.invoke(app, base + ["--out", str(out)])
    assert res.exit_code == 0, res.output
    table = list(csv.DictReader(io.StringIO(out.read_text())))
    assert {"path", "label", "confidence", "error", "prob_angry", "prob_happy", "prob_sad"} <= set(table[0])
    assert sum(1 for r in table if r["error"]) == 1
    res = runner.invoke(app, base + ["--format", "table"])
    assert "cannot read" in res.output and "angry" in res.output


def test_serkit_predict_timeline_json(model_dir, tmp_path):
    f = write(tmp_path / "rec.wav", np.concatenate([np.zeros(8000, np.float32), tone(330, 1.5, amp=0.6),
                                                   np.zeros(8000, np.float32)]))
    res = runner.invoke(app, ["predict", str(f), "--model", str(model_dir), "--timeline", "--format", "json",
                              "--quiet", *ENERGY_ARGS])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout[res.stdout.index("["):])[0]
    assert r["path"] == str(f) and r["label"] == "angry"
    assert all({"start", "end", "label", "scores"} <= set(s) for s in r["segments"])
    assert r["segments"][0]["label"] is None and r["segments"][-1]["label"] is None


def test_model_dir_round_trip_in_a_fresh_process(model_dir, tmp_path):
    from serkit import Predictor

    clips = [write(tmp_path / f"c{i}.wav", tone(f0, 0.8, amp=a, seed=i))
             for i, (f0, a) in enumerate([(330, 0.6), (140, 0.1), (520, 0.35)])]
    here = Predictor.load(model_dir, segments=ENERGY).predict_files(clips)
    code = ("import json, sys\nfrom serkit import Predictor\nfrom serkit.config import SegmentConfig\n"
            "p = Predictor.load(sys.argv[1], segments=SegmentConfig(vad='energy'))\n"
            "print(json.dumps(p.predict_files(sys.argv[2:])))")
    res = subprocess.run([sys.executable, "-c", code, str(model_dir), *map(str, clips)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    there = json.loads(res.stdout.strip().splitlines()[-1])
    for a, b in zip(here, there):
        assert a["label"] == b["label"]
        np.testing.assert_allclose([a["scores"][c] for c in a["scores"]],
                                   [b["scores"][c] for c in a["scores"]], atol=1e-6)


def test_transductive_or_metadata_recipes_cannot_be_exported(tmp_path):
    csv_path = synthetic_corpus(tmp_path / "corpus", speakers=3, per_label=2)
    cfg = tmp_path / "recipe.yaml"
    cfg.write_text(f"""
name: t
data: {{corpora: [{{name: csv, root: {csv_path}}}]}}
features: {{kind: egemaps, cache_dir: {tmp_path / 'cache'}, n_jobs: 1, test_time_speaker_norm: true}}
model: {{name: logreg}}
""")
    res = runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "m")])
    assert res.exit_code == 2 and "test_time_speaker_norm" in res.output and "adaptation source" in res.output
    assert not (tmp_path / "m").exists() and not (tmp_path / "cache").exists()
    res = runner.invoke(app, ["train", str(cfg), "--out", str(tmp_path / "m"),
                              "-o", "features.test_time_speaker_norm=false", "-o", "features.metadata=[gender]"])
    assert res.exit_code == 2 and "metadata" in res.output


def test_models_lists_installed_models_and_shows_a_card(model_dir, monkeypatch, tmp_path):
    import shutil

    monkeypatch.setenv("SERKIT_MODELS", str(tmp_path / "models"))
    shutil.copytree(model_dir, tmp_path / "models" / "tiny-tones")
    res = runner.invoke(app, ["models"])
    assert res.exit_code == 0 and "tiny-tones" in res.output
    res = runner.invoke(app, ["models", "tiny-tones"])
    assert res.exit_code == 0 and "Training data" in res.output and "angry" in res.output
    res = runner.invoke(app, ["predict", str(write(tmp_path / "x.wav", tone(330, 0.8, amp=0.6))),
                              "--model", "no-such-model"])
    assert res.exit_code == 2 and "no model named 'no-such-model'" in res.output


def test_bad_model_dirs_give_clear_errors(model_dir, tmp_path):
    import shutil

    from serkit import Predictor
    from serkit.inference.modeldir import ModelError

    bad = tmp_path / "bad"
    shutil.copytree(model_dir, bad)
    meta = json.loads((bad / "model.json").read_text())
    meta["format"]["version"] = 99
    (bad / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="version 99"):
        Predictor.load(bad)
    (bad / "model.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        Predictor.load(bad)
    with pytest.raises(ModelError, match="not a serkit model directory"):
        Predictor.load(tmp_path)
    sf.info  # noqa: B018


def _espeak(tmp_path):
    import shutil

    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    from serkit.backbones.offline import is_available

    if not is_available("whisper-base"):
        pytest.skip("offline whisper-base weights are not installed")


def test_serkit_subtitles_writes_tagged_webvtt(model_dir, tmp_path):
    _espeak(tmp_path)
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav),
                    "The weather is lovely today. I will walk to the station and take the train."],
                   check=True, capture_output=True)
    out = tmp_path / "speech.vtt"
    res = runner.invoke(app, ["subtitles", str(wav), "-o", str(out), "--model", str(model_dir),
                              "--language", "en"])
    assert res.exit_code == 0, res.output
    import webvtt

    vtt = webvtt.read(str(out))
    text = " ".join(c.text for c in vtt).lower()
    assert "station" in text and "train" in text
    assert any(c.text.startswith("[") for c in vtt) and "STYLE" in out.read_text()


def test_demo_runs_on_synthesised_speech_without_the_corpora(model_dir, tmp_path, monkeypatch):
    _espeak(tmp_path)
    monkeypatch.setenv("SERKIT_DATA", str(tmp_path / "no-corpora-here"))
    res = runner.invoke(app, ["demo", "--model", str(model_dir), "--out", str(tmp_path / "demo")])
    assert res.exit_code == 0, res.output
    assert "espeak-ng" in res.output and "emotion timeline" in res.output
    for name in ("recording.flac", "timeline.json", "timeline.png", "recording.srt"):
        assert (tmp_path / "demo" / name).is_file(), name
    tl = json.loads((tmp_path / "demo" / "timeline.json").read_text())
    assert tl["duration"] > 45 and any(s["label"] for s in tl["segments"])
    assert "-->" in (tmp_path / "demo" / "recording.srt").read_text()


@pytest.mark.parametrize("family", ["cnn", "ssl_probe"])
def test_other_model_families_serve_through_the_predictor(family, tmp_path):
    """A CNN on spectrograms and an SSL probe on a (tiny, random, local) Whisper encoder: train →
    model dir → Predictor in a fresh process, with the backbone's weights checksum verified."""
    from test_ssl_features import _save_whisper

    csv_path = synthetic_corpus(tmp_path / "corpus", speakers=3, per_label=3)
    if family == "cnn":
        feats = "{kind: melimage, params: {size: 32}, n_jobs: 1}"
        model = "{name: cnn3, params: {max_epochs: 2, batch_size: 8, patience: null, progress_bar: false}}"
    else:
        bb = _save_whisper(tmp_path / "tiny_whisper")
        feats = f"{{kind: ssl, params: {{backbone: {bb}, pooling: meanstd, layers: all}}, n_jobs: 1}}"
        model = "{name: ssl_probe, params: {n_layers: 3, layer: 2, clf: logreg}}"
    cfg = tmp_path / "recipe.yaml"
    cfg.write_text(f"""
name: {family}
data: {{corpora: [{{name: csv, root: {csv_path}}}]}}
audio: {{duration_s: 0.8}}
features: {feats}
model: {model}
""")
    out = tmp_path / "model"
    res = runner.invoke(app, ["train", str(cfg), "--out", str(out), "--no-eval", "--quiet",
                              "-o", f"features.cache_dir={tmp_path / 'cache'}"])
    assert res.exit_code == 0, res.output
    card = json.loads((out / "model.json").read_text())
    assert (card["backbone"] is None) == (family == "cnn")
    clip = write(tmp_path / "c.wav", tone(330, 0.8, amp=0.6, seed=7))
    code = ("import json, sys\nfrom serkit import Predictor\nfrom serkit.config import SegmentConfig\n"
            "p = Predictor.load(sys.argv[1], segments=SegmentConfig(vad='energy'))\n"
            "print(json.dumps(p.predict_files(sys.argv[2:])))")
    res = subprocess.run([sys.executable, "-c", code, str(out), str(clip)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    r = json.loads(res.stdout.strip().splitlines()[-1])[0]
    assert r["label"] in ("angry", "happy", "sad") and abs(sum(r["scores"].values()) - 1) < 1e-4
    if family == "ssl_probe":   # a different encoder behind the same name is refused
        card["backbone"]["checksum"] = "0" * 64
        (out / "model.json").write_text(json.dumps(card))
        from serkit import Predictor
        from serkit.inference.modeldir import ModelError

        with pytest.raises(ModelError, match="different weights"):
            Predictor.load(out)


def test_inference_settings_are_checked_and_change_no_label(model_dir, tmp_path):
    """--precision / --threads are speed settings: a bad value is a clear error, a good one gives
    the same results (this model has no encoder, so precision changes nothing at all)."""
    clip = write(tmp_path / "angry.wav", tone(330, 0.8, amp=0.6, seed=3))
    base = ["predict", str(clip), "--model", str(model_dir), "--quiet", "--format", "json", *ENERGY_ARGS]
    res = runner.invoke(app, base + ["--precision", "int4"])
    assert res.exit_code == 2 and "precision" in res.output and "Traceback" not in res.output
    a = runner.invoke(app, base + ["--precision", "fp32", "--threads", "1"])
    b = runner.invoke(app, base + ["--precision", "auto"])
    assert a.exit_code == 0 and b.exit_code == 0
    assert json.loads(a.stdout[a.stdout.index("["):]) == json.loads(b.stdout[b.stdout.index("["):])


def test_predict_files_in_groups_gives_the_same_results_in_input_order(model_dir, tmp_path, monkeypatch):
    """predict_files decodes a bounded group of files at a time; with groups of one batch the
    results are those of one group, in input order, bad files included."""
    from serkit import Predictor
    from serkit.inference import predictor as predictor_mod

    p = Predictor.load(model_dir, segments=ENERGY)
    files = [write(tmp_path / f"c{i}.wav", tone(f0, d, amp=0.4, seed=i))
             for i, (f0, d) in enumerate([(330, 0.8), (520, 0.6), (140, 0.9), (330, 0.7), (520, 0.8)])]
    bad = tmp_path / "bad.wav"
    bad.write_text("no")
    paths = files[:2] + [bad] + files[2:]
    whole = p.predict_files(paths, batch_size=2)
    seen: list[int] = []
    monkeypatch.setattr(predictor_mod, "GROUP_BATCHES", 1)     # groups of 2 files
    grouped = p.predict_files(paths, batch_size=2, progress=seen.append)
    assert grouped == whole and [r["path"] for r in grouped] == [str(x) for x in paths]
    assert sum(seen) == len(paths) and "error" in grouped[2]

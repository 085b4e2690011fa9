"""Batch prediction on Ray (`serkit predict --engine ray`) gives the local engine's results.

The Ray tests start a local Ray instance (2 CPUs) and skip cleanly when Ray is not installed
(``pip install 'serkit[distributed]'``). The clips are RAVDESS files when the shared corpora are
there, else espeak-ng speech, else synthetic tones; the model is the default one (offline).
"""
from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from audio_utils import tone, write
from conftest import SHARED
from serkit.cli import app
from serkit.config import RayConfig
from serkit.inference.batch import failed_path, result_schema, results_table
from serkit.inference.inputs import InputError, expand_inputs

runner = CliRunner()
CLASSES = ["angry", "happy", "sad"]


# ---------------------------------------------------------------- inputs and tables (no Ray needed)
def test_inputs_from_folders_globs_and_manifests(tmp_path):
    for rel in ("a/x.wav", "a/b/y.flac", "a/.hidden.wav", "a/notes.txt", "c/z.wav"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "list.csv").write_text(f"speaker,path\ns1,../c/z.wav\ns2,{tmp_path / 'a/x.wav'}\n")
    got = expand_inputs([tmp_path / "a", f"{tmp_path}/**/*.wav", tmp_path / "m" / "list.csv",
                         tmp_path / "missing.wav"])
    assert got == [str(tmp_path / "a/b/y.flac"), str(tmp_path / "a/x.wav"),          # folder, sorted
                   str(tmp_path / "a/x.wav"), str(tmp_path / "c/z.wav"),             # glob, sorted
                   str(tmp_path / "m" / "../c/z.wav"), str(tmp_path / "a/x.wav"),    # manifest
                   str(tmp_path / "missing.wav")]                                    # reported later
    (tmp_path / "bad.csv").write_text("file,label\nx.wav,sad\n")
    with pytest.raises(InputError, match=r"bad\.csv: a manifest CSV needs a 'path' column \(found: file, label\)"):
        expand_inputs([tmp_path / "bad.csv"])
    with pytest.raises(InputError, match=r"no file matches"):
        expand_inputs([f"{tmp_path}/*.ogg"])


def test_results_table_has_the_json_fields_and_one_row_per_segment():
    scores = {"angry": 0.7, "happy": 0.2, "sad": 0.1}
    results = [
        {"path": "a.wav", "label": "angry", "scores": scores, "confidence": 0.7, "duration": 5.0,
         "speech": True, "segments": [
             {"start": 0.0, "end": 1.0, "label": None, "scores": None, "confidence": None},
             {"start": 1.0, "end": 5.0, "label": "angry", "scores": scores, "confidence": 0.7}]},
        {"path": "b.wav", "error": "b.wav: file does not exist", "kind": "missing"},
    ]
    t = results_table(results, CLASSES, timeline=True).to_pylist()
    assert [(r["path"], r["level"], r["start"], r["end"], r["label"]) for r in t] == [
        ("a.wav", "file", None, None, "angry"), ("a.wav", "segment", 0.0, 1.0, None),
        ("a.wav", "segment", 1.0, 5.0, "angry"), ("b.wav", "file", None, None, None)]
    assert t[2]["prob_happy"] == 0.2 and t[2]["duration"] == 4.0 and t[2]["speech"] is True
    assert t[1]["speech"] is False and t[1]["prob_angry"] is None
    assert t[3]["error"] == "b.wav: file does not exist" and t[3]["kind"] == "missing"
    flat = results_table(results, CLASSES)
    assert flat.schema == result_schema(CLASSES) and flat.num_rows == 2
    assert {"path", "label", "confidence", "duration", "speech", "note", "error"} <= set(flat.column_names)
    assert failed_path("out/results.parquet") == Path("out/results.failed.parquet")


def test_cli_asks_for_a_parquet_file_with_ray(tmp_path):
    write(tmp_path / "a.wav", tone(330, 0.8))
    res = runner.invoke(app, ["predict", str(tmp_path / "a.wav"), "--engine", "ray"])
    assert res.exit_code == 2 and "--engine ray writes Parquet" in res.output
    res = runner.invoke(app, ["predict", str(tmp_path / "a.wav"), "--format", "parquet"])
    assert res.exit_code == 2 and "give --out FILE.parquet" in res.output
    res = runner.invoke(app, ["predict", str(tmp_path / "*.ogg")])
    assert res.exit_code == 2 and "no file matches this pattern" in " ".join(res.output.split())


# ---------------------------------------------------------------- on a local Ray instance
@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'serkit[distributed]')")
    pytest.importorskip("ray.data")
    pytest.importorskip("pyarrow")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[str]:
    """A handful of short speech clips, an unreadable file and a missing one."""
    tmp = tmp_path_factory.mktemp("clips")
    ravdess = SHARED / "ravdess"
    if ravdess.is_dir():   # four actors, six emotions (modality-channel-emotion-intensity-statement-rep-actor)
        good = [str(ravdess / f"Actor_{a}" / f"03-01-{e}-01-01-01-{a}.flac")
                for a, e in (("01", "05"), ("02", "03"), ("11", "04"), ("12", "01"), ("01", "02"), ("12", "07"))]
    elif shutil.which("espeak-ng"):
        good = []
        for i, text in enumerate(["I can't believe you did that!", "Oh well, it is raining again.",
                                  "What a wonderful surprise this is!", "Leave me alone, now."]):
            f = tmp / f"tts_{i}.wav"
            subprocess.run(["espeak-ng", "-w", str(f), "-s", str(150 + 20 * i), text], check=True)
            good.append(str(f))
    else:
        good = [str(write(tmp / f"tone_{i}.wav", tone(180 + 90 * i, 1.5, amp=0.4, seed=i))) for i in range(4)]
    (tmp / "broken.wav").write_text("not audio")
    assert len(good) >= 4
    return good[:3] + [str(tmp / "broken.wav")] + good[3:] + [str(tmp / "gone.flac")]


@pytest.fixture(scope="module")
def local_results(clips):
    from serkit import Predictor

    return Predictor.load().predict_files(clips)


def _same(row: dict, want: dict, classes) -> None:
    assert row["path"] == want["path"]
    assert row["label"] == want.get("label") and row["error"] == want.get("error")
    assert row["note"] == want.get("note") and row["speech"] == want.get("speech")
    assert row["duration"] == want.get("duration")
    for c in classes:
        got, exp = row[f"prob_{c}"], (want.get("scores") or {}).get(c)
        assert (got is None) == (exp is None) and (exp is None or abs(got - exp) <= 1e-5), (c, got, exp)


def test_ray_matches_the_local_engine_and_lists_failed_files(ray_local, clips, local_results, tmp_path):
    import pyarrow.parquet as pq

    from serkit.inference.distributed import predict_on_ray

    out = tmp_path / "res" / "results.parquet"
    done = []
    s = predict_on_ray(clips, out, cfg=RayConfig(files_per_batch=3), progress=done.append)
    assert s.actors == 2 and s.files == len(clips) == sum(done) and s.failed == 2 and s.lost == 0
    rows = pq.read_table(out).to_pylist()
    classes = [c[len("prob_"):] for c in pq.read_schema(out).names if c.startswith("prob_")]
    assert [r["path"] for r in rows] == clips            # every file once, in input order
    assert sum(r["label"] is not None for r in rows) >= 4
    for row, want in zip(rows, local_results):
        _same(row, want, classes)
    failed = pq.read_table(s.failed_out).to_pylist()
    assert [(Path(r["path"]).name, r["kind"]) for r in failed] == [("broken.wav", "unreadable"),
                                                                   ("gone.flac", "missing")]
    assert all(r["error"].startswith(r["path"] + ": ") for r in failed)


def test_cli_ray_timeline_from_a_manifest_equals_the_local_engine(ray_local, clips, tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    monkeypatch.chdir(tmp_path)      # relative paths are named as given, resolved on the driver
    clip = Path("clip" + Path(clips[0]).suffix)
    shutil.copy(clips[0], clip)
    Path("list.csv").write_text(f"path\n{clip}\n{Path(clips[3]).resolve()}\n")
    args = ["predict", "list.csv", "--timeline", "--quiet"]
    res = runner.invoke(app, args + ["--engine", "ray", "--out", "ray.parquet"])
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert "2 file(s), " in said and "on Ray" in said and "1 of 2 file(s) could not be read" in said
    res = runner.invoke(app, args + ["--out", "local.parquet"])
    assert res.exit_code == 0, res.output
    ray_t, local_t = pq.read_table("ray.parquet"), pq.read_table("local.parquet")
    assert ray_t.schema == local_t.schema and ray_t.num_rows == local_t.num_rows >= 3
    for a, b in zip(ray_t.to_pylist(), local_t.to_pylist()):
        assert {k: v for k, v in a.items() if not k.startswith("prob_")} == \
               {k: v for k, v in b.items() if not k.startswith("prob_")}
        assert all(a[k] is None and b[k] is None or abs(a[k] - b[k]) <= 1e-5 for k in a if k.startswith("prob_"))
    first = ray_t.to_pylist()[0]
    assert first["path"] == str(clip) and first["level"] == "file"
    assert pq.read_table("ray.failed.parquet").column("path").to_pylist() == [str(Path(clips[3]).resolve())]

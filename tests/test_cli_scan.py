"""`serkit data scan` (human-readable and JSON) on tiny corpora and on the shared ones."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from audio_utils import tone, write
from typer.testing import CliRunner

from serkit.cli import app

runner = CliRunner()


def write_tone(path: Path, freq: float) -> Path:
    return write(path, tone(freq, seconds=0.1))


def _flat(text: str) -> str:
    """Output without whitespace (rich folds long cells over several lines)."""
    return "".join(text.split())


def _out(result) -> str:
    try:
        return result.output + (result.stderr or "")
    except ValueError:  # click < 8.2 without a separate stderr
        return result.output


def _folder_corpus(root: Path) -> Path:
    write_tone(root / "spk1" / "angry" / "a.wav", 200)
    write_tone(root / "spk1" / "sad" / "b.wav", 300)
    write_tone(root / "spk2" / "angry" / "c.wav", 400)
    (root / "spk2" / "sad").mkdir(parents=True)
    (root / "spk2" / "sad" / "empty.wav").write_bytes(b"")
    (root / "spk2" / "sad" / "junk.wav").write_bytes(b"not audio at all" * 8)
    return root


def test_scan_prints_tables_on_a_corpus_with_problems(tmp_path: Path):
    root = _folder_corpus(tmp_path / "mine")
    result = runner.invoke(app, ["data", "scan", "folder", str(root)])
    assert result.exit_code == 0, _out(result)
    text = _flat(result.output)
    assert "corpusmine" in text and "labels" in text and "utterances" in text
    assert "problems(2:" in text
    assert "empty" in text and "fileisempty(0bytes)" in text
    assert "unreadable" in text and "junk.wav" in text


def test_scan_json_and_options(tmp_path: Path):
    root = _folder_corpus(tmp_path / "mine")
    result = runner.invoke(app, ["data", "scan", "folder", str(root), "--json", "--name", "lab",
                                 "--speaker-regex", "(spk\\d)"])
    assert result.exit_code == 0, _out(result)
    summary = json.loads(result.output)
    assert summary["corpus"] == "lab" and summary["utterances"] == 3
    assert summary["problem_kinds"] == {"empty": 1, "unreadable": 1}
    bad = runner.invoke(app, ["data", "scan", "ravdess", str(root), "--speaker-regex", "x"])
    assert bad.exit_code == 2
    assert "--speaker-regex" in _out(bad) and "ravdess" in _out(bad)


def test_scan_own_labels_csv_shows_what_a_label_set_cannot_map(tmp_path: Path):
    files = [write_tone(tmp_path / "audio" / spk / "take1.wav", f)
             for spk, f in (("a", 200), ("b", 300), ("c", 400))]
    csv = tmp_path / "valence.csv"
    pd.DataFrame({"path": [str(f) for f in files], "label": ["positive", "negative", "happy"],
                  "speaker": ["a", "b", "c"]}).to_csv(csv, index=False)
    native = runner.invoke(app, ["data", "scan", "csv", str(csv)])
    assert native.exit_code == 0, _out(native)
    text = _flat(native.output)
    assert "corpusvalence" in text and "positive" in text and "negative" in text
    ek = runner.invoke(app, ["data", "scan", "csv", str(csv), "--label-set", "ekman7"])
    assert ek.exit_code == 0, _out(ek)
    assert "'positive'isnotanemotionname" in _flat(ek.output)


def test_scan_savee_human_readable(shared_datasets: Path):
    root = shared_datasets / "savee"
    if not root.is_dir():
        pytest.skip(f"{root} absent")
    result = runner.invoke(app, ["data", "scan", "savee", str(root)])
    assert result.exit_code == 0, _out(result)
    text = _flat(result.output)
    assert "corpussavee" in text and "│utterances│480│" in text and "surprise" in text

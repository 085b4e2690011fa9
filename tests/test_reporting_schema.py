"""Run-directory schema versions, transductive labelling, input accounting, missing classes and
the pickle-free attention format (serkit.reporting), on hand-built run directories."""

from __future__ import annotations

import html as _html
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fixtures_runs import CLASSES4, make_run
from serkit.evaluation.explain import save_attention
from serkit.reporting import write_comparison, write_report
from serkit.reporting.artifacts import read_attention
from serkit.reporting.compare import collect, group_runs
from serkit.reporting.run import load_run
from serkit.reporting.schema import RunFormatError

REPORTING = Path(__file__).resolve().parents[1] / "src" / "serkit" / "reporting"
TRANSDUCTIVE = "transductive: uses the test speakers' unlabelled utterances"
SKIPPED = [
    {"path": "/data/x/short.wav", "key": "x_short", "stage": "features", "kind": "too_short", "reason": "0.1 s of audio"},
    {"path": "/data/x/broken.wav", "key": None, "stage": "scan", "kind": "unreadable", "reason": "not a sound file"},
]
SMALL = dict(classes=CLASSES4, n_folds=2, history=False, embeddings=False, gradcam=False)


def _text(path: Path) -> str:
    """The report as a reader sees it: tags kept, entities decoded."""
    return _html.unescape(path.read_text(encoding="utf-8"))


def _header(text: str) -> str:
    return text[: text.index('<nav class="toc">')]


def _section(text: str, anchor: str) -> str:
    start = text.index(f'<section id="{anchor}">')
    return text[start : text.index("</section>", start)]


# ------------------------------------------------------------------ schema versions
def test_v2_run_is_read_as_recorded(tmp_path):
    run = load_run(make_run(tmp_path / "v2", skipped=SKIPPED, drop_test_classes={1: ["sad"]}, **SMALL))
    assert run.version == 2
    assert run.transductive is False and run.protocol["transductive_note"] is None
    assert run.corpora == ["ravdess"]
    assert run.accounting["rows_used"] == 42 and run.accounting["rows_scanned"] == 44
    assert run.accounting["skipped"] == SKIPPED
    assert run.fold_record("1")["missing_classes"] == ["sad"]
    assert run.fold_record("1")["missing_train_classes"] == []
    assert run.timing["total_s"] == 754.2 and run.extraction[0]["stream"] == "logmel"


def test_v1_run_is_mapped(tmp_path):
    """No schema_version: transductive from config.yaml, skipped_files → features/unreadable."""
    d = make_run(tmp_path / "v1", schema_version=None, transductive=True, skipped=SKIPPED[:1],
                 drop_test_classes={0: ["angry"]}, **SMALL)
    assert "schema_version" not in json.loads((d / "metrics.json").read_text())
    run = load_run(d)
    assert run.version == 1
    assert run.transductive is True and TRANSDUCTIVE in run.protocol["transductive_note"]
    assert run.accounting["skipped"] == [
        {"path": "/data/x/short.wav", "key": None, "stage": "features", "kind": "unreadable", "reason": "0.1 s of audio"}
    ]
    assert run.accounting["rows_used"] == 42 and run.accounting["rows_scanned"] == 43
    assert run.fold_record("0")["missing_classes"] == ["angry"]  # read off predictions.csv
    assert run.fold_record("0")["missing_train_classes"] is None  # not recorded in v1
    text = _text(write_report(d, tsne=False))
    assert TRANSDUCTIVE in _header(text).lower()
    assert "schema version 1" in text and "rows dropped while scanning the corpus are not counted" in text
    assert "not recorded" in _section(text, "metrics")
    assert "No timing recorded (schema v1 run)" in text
    assert run.timing is None


def test_v1_without_config_is_not_called_inductive(tmp_path):
    run = load_run(make_run(tmp_path / "v1min", schema_version=None, minimal=True, **SMALL))
    assert run.transductive is None
    text = _text(write_report(run.path))
    assert "Not recorded whether features were normalised per test speaker" in _header(text)


def test_v1_corpus_names_come_from_the_manifest(tmp_path):
    a = make_run(tmp_path / "a", schema_version=None, corpora=["shop_calls"], adapters=["csv"], **SMALL)
    assert load_run(a).corpora == ["shop_calls"]
    # without manifest.csv the adapter name "csv" does not identify the corpus: never ranked with others
    b = make_run(tmp_path / "b", schema_version=None, corpora=["x"], adapters=["csv"], minimal=True, **SMALL)
    c = make_run(tmp_path / "c", schema_version=None, corpora=["y"], adapters=["csv"], minimal=True, **SMALL)
    assert load_run(b).corpora_known is False
    assert len(group_runs(collect([b, c]))) == 2


@pytest.mark.parametrize("version", [3, 0, "2", True])
def test_unknown_schema_version_is_a_clear_error(tmp_path, version):
    d = make_run(tmp_path / "future", minimal=True, **SMALL)
    metrics = json.loads((d / "metrics.json").read_text())
    metrics["schema_version"] = version
    (d / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(RunFormatError, match=re.escape(str(d)) + r".*schema_version"):
        load_run(d)
    with pytest.raises(RunFormatError):
        write_report(d)
    with pytest.raises(RunFormatError):
        write_comparison([d], tmp_path / "cmp")


def test_v2_without_its_fields_is_an_error(tmp_path):
    d = make_run(tmp_path / "bad", minimal=True, **SMALL)
    metrics = json.loads((d / "metrics.json").read_text())
    del metrics["accounting"]
    (d / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(RunFormatError, match="accounting"):
        load_run(d)


def test_missing_metrics_json_names_the_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty.*no metrics.json"):
        load_run(tmp_path / "empty")


# ------------------------------------------------------------------ transductive
def test_transductive_label_in_report_header(tmp_path):
    trans = _text(write_report(make_run(tmp_path / "t", transductive=True, **SMALL), tsne=False))
    head = _header(trans)
    assert TRANSDUCTIVE in head.lower()
    assert re.search(r'<div class="warning" role="alert">⚠ Transductive: uses the test speakers', head)
    assert "mean ± std over folds (transductive)" in trans
    assert json.loads((tmp_path / "t" / "report_data" / "summary.json").read_text())["transductive"] is True
    ind = _text(write_report(make_run(tmp_path / "i", **SMALL), tsne=False))
    assert TRANSDUCTIVE not in ind.lower() and "none (inductive" in ind


def test_compare_never_ranks_transductive_with_inductive(tmp_path):
    ind = make_run(tmp_path / "i", name="inductive", minimal=True, ua=0.50, **SMALL)
    trans = make_run(tmp_path / "t", name="spknorm", minimal=True, transductive=True, ua=0.70, **SMALL)
    ind2 = make_run(tmp_path / "i2", name="inductive2", minimal=True, ua=0.40, **SMALL)
    groups = [[s["name"] for s in g] for g in group_runs(collect([trans, ind, ind2]))]
    assert groups == [["inductive", "inductive2"], ["spknorm"]]
    md_path, html_path = write_comparison([trans, ind, ind2], tmp_path / "cmp")
    md, page = md_path.read_text(), _html.unescape(html_path.read_text())
    titles = re.findall(r"^## (.*)$", md, flags=re.M)
    assert len(titles) == 2 and titles[1].endswith("· transductive") and "transductive" not in titles[0]
    row = next(line for line in md.splitlines() if "| spknorm |" in line)
    assert row.startswith("| 1 |") and "transductive" in row
    assert "uses the test speakers' unlabelled utterances" in page


def test_compare_groups_by_recorded_corpus_names(tmp_path):
    a = make_run(tmp_path / "a", name="calls", corpora=["shop_calls"], minimal=True, **SMALL)
    b = make_run(tmp_path / "b", name="podcasts", corpora=["podcasts"], minimal=True, **SMALL)
    groups = group_runs(collect([a, b]))
    assert sorted(g[0]["corpora"] for g in groups) == ["podcasts", "shop_calls"]


# ------------------------------------------------------------------ accounting, classes, timing
def test_skipped_inputs_section_lists_every_row(tmp_path):
    d = make_run(tmp_path / "s", skipped=SKIPPED, **SMALL)
    text = _text(write_report(d, tsne=False))
    assert "48 of 50 inputs used" in _header(text)
    sect = _section(text, "skipped")
    assert "rows scanned: 50, rows used: 48, skipped: 2" in sect
    for e in SKIPPED:
        for field in ("path", "stage", "kind", "reason"):
            assert f">{e[field]}<" in sect
    table = pd.read_csv(d / "report_data" / "skipped.csv", keep_default_na=False)
    assert table[["path", "stage", "kind", "reason"]].to_dict("records") == [
        {k: e[k] for k in ("path", "stage", "kind", "reason")} for e in SKIPPED
    ]


def test_no_skipped_inputs_says_none(tmp_path):
    d = make_run(tmp_path / "n", **SMALL)
    text = _text(write_report(d, tsne=False))
    assert "48 of 48 inputs used" in _header(text)
    assert "Skipped inputs: none." in _section(text, "skipped")
    assert not (d / "report_data" / "skipped.csv").exists()


def test_missing_classes_per_fold(tmp_path):
    d = make_run(tmp_path / "m", drop_test_classes={1: ["angry", "sad"]}, **SMALL)
    text = _text(write_report(d, tsne=False))
    per_fold = pd.read_csv(d / "report_data" / "per_fold.csv", keep_default_na=False)
    assert per_fold["missing_classes"].tolist() == ["none", "angry, sad"]
    assert per_fold["missing_train_classes"].tolist() == ["angry, sad", "none"]  # fold 0 trains on fold 1
    sect = _section(text, "metrics")
    assert "classes missing from test" in sect and '<td class="text">angry, sad</td>' in sect
    assert "lack test utterances of some classes" in sect  # missing_classes_note
    # UA of that fold: mean recall over the two classes it has
    pred = pd.read_csv(d / "predictions.csv")
    f1 = pred[pred.fold == 1]
    recalls = [np.mean(f1.pred[f1.true == c] == c) for c in ("happy", "neutral")]
    assert per_fold["ua"][1] == pytest.approx(np.mean(recalls))


def test_speaker_label_warnings_in_header(tmp_path):
    warn = [{"speaker": "ravdess_03", "distance": 0.71, "labels": {"neutral": 12, "angry": 1}}]
    d = make_run(tmp_path / "w", transductive=True, speaker_label_warnings=warn, **SMALL)
    head = _header(_text(write_report(d, tsne=False)))
    assert "<li>ravdess_03 (distance 0.71): neutral 12, angry 1</li>" in head


def test_timing_table(tmp_path):
    text = _text(write_report(make_run(tmp_path / "t", **SMALL), tsne=False))
    sect = _section(text, "timing")
    assert "feature extraction" in sect and "1 min 35 s" in sect and "12 min 34 s" in sect
    assert "logmel" in sect and "×" in sect


# ------------------------------------------------------------------ attention without pickle
class _Model:
    def attention(self, X):
        return X


def test_attention_round_trip(tmp_path):
    ws = [np.linspace(0, 1, n, dtype=np.float32) for n in (5, 0, 17)]
    keys, labels = np.array(["a", "b", "c"], dtype=object), np.array(["happy", "sad", "happy"], dtype=object)
    path = save_attention(_Model(), ws, keys, labels, tmp_path)
    with np.load(path, allow_pickle=False) as z:  # readable without pickle
        assert z["weights"].dtype == np.float32 and z["weights"].shape == (22,)
        assert z["offsets"].tolist() == [0, 5, 5, 22] and z["offsets"].dtype == np.int64
        assert z["keys"].dtype.kind == "U" and z["labels"].dtype.kind == "U"
    att = read_attention(path)
    assert att.error is None and att.keys == ["a", "b", "c"] and att.labels == ["happy", "sad", "happy"]
    for got, want in zip(att.weights, ws):
        assert np.array_equal(got, want)
    assert save_attention(object(), ws, keys, labels, tmp_path / "none") is None
    empty = read_attention(save_attention(_Model(), [], np.array([]), np.array([]), tmp_path))
    assert empty.error is None and empty.weights == []


class _Unpickled:
    """Unpickling this creates the file ``flag``: proof that something was unpickled."""

    def __init__(self, flag: Path):
        self.flag = str(flag)

    def __reduce__(self):
        return (open, (self.flag, "w"))


def test_object_array_attention_is_refused_not_unpickled(tmp_path):
    d = make_run(tmp_path / "old", attention_format="object", **SMALL)
    flag = tmp_path / "unpickled"
    weights = np.empty(1, dtype=object)
    weights[0] = _Unpickled(flag)
    np.savez(d / "folds" / "1" / "attention.npz", keys=np.array(["k"]), weights=weights, labels=np.array(["sad"]))
    att = read_attention(d / "folds" / "0" / "attention.npz")
    assert att.weights == [] and "cannot be read safely" in att.error
    text = _text(write_report(d, tsne=False))
    sect = _section(text, "attention")
    assert sect.count("cannot be read safely") == 2 and "<img" not in sect
    assert not (d / "report_data" / "attention.csv").exists()
    assert not flag.exists()


def test_reporting_never_unpickles():
    for path in REPORTING.glob("*.py"):
        src = path.read_text(encoding="utf-8")
        for bad in ("allow_pickle=True", "joblib.load", "pickle.load", "import pickle"):
            assert bad not in src, f"{path.name}: {bad}"


def test_reporting_does_not_import_the_protocol():
    mods = [p.stem for p in REPORTING.glob("*.py") if p.stem != "__init__"]
    code = (
        "import importlib, sys\n"
        + "".join(f"importlib.import_module('serkit.reporting.{m}')\n" for m in mods)
        + "print('serkit.evaluation.protocol' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

"""Run reports and comparison tables (serkit.reporting), on synthetic run directories."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from fixtures_runs import CLASSES4, CLASSES8, make_run
from serkit.reporting import write_comparison, write_report
from serkit.reporting.colors import EMOTION_COLORS, color_for, colors_for
from serkit.reporting.compare import group_runs, collect

DATA_URI = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]{200,})"')
SECTIONS = ["metrics", "skipped", "per-class", "confusion", "roc-pr", "calibration", "training", "embeddings", "activations", "attention", "gradcam", "timing"]


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    run = make_run(
        tmp_path_factory.mktemp("full") / "run",
        published={"metric": "accuracy", "value": 62.0, "protocol": "random 70/30", "source": "study 001"},
    )
    html_path = write_report(run)
    return run, html_path, html_path.read_text(encoding="utf-8")


def test_report_has_every_section_and_embedded_images(full):
    run, html_path, html = full
    assert html_path == run / "report.html"
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in html
    # fold scores, per-class bars, F1 box plot, confusion, ROC+PR, reliability, curves, PCA, t-SNE, activations,
    # variance, attention, Grad-CAM npz gallery + 1 png
    assert len(DATA_URI.findall(html)) == 14
    for title in ("demo", "ravdess", "native", "cnn4", "logmel", "12 min 34 s", "0.1.0"):
        assert title in html
    assert "Speaker-independent: no speaker appears in both training and test" in html
    assert "Published figure: accuracy 62.0" in html
    assert "No training curves" not in html and "No embeddings" not in html


def test_report_is_self_contained(full):
    _, _, html = full
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script" not in html and "@import" not in html
    # links to the figure data are relative and point at existing files
    for href in re.findall(r'href="(report_data/[^"]+)"', html):
        assert (full[0] / href).is_file(), href


def test_report_data_contents(full):
    run, _, _ = full
    data = run / "report_data"
    pred = pd.read_csv(run / "predictions.csv")
    conf = pd.read_csv(data / "confusion.csv", index_col=0)
    assert conf.to_numpy().sum() == len(pred)
    assert list(conf.columns) == CLASSES8 and list(conf.index) == CLASSES8
    assert np.array_equal(np.diag(conf.to_numpy()), [((pred.true == c) & (pred.pred == c)).sum() for c in CLASSES8])
    norm = pd.read_csv(data / "confusion_normalized.csv", index_col=0)
    assert np.allclose(norm.sum(axis=1), 1.0)

    per_class = pd.read_csv(data / "per_class.csv")
    assert list(per_class["class"]) == CLASSES8
    assert per_class["support"].sum() == len(pred)
    assert per_class[["precision", "recall", "f1", "auc", "average_precision"]].apply(lambda s: s.between(0, 1).all()).all()

    per_fold = pd.read_csv(data / "per_fold.csv")
    metrics = json.loads((run / "metrics.json").read_text())
    assert np.allclose(per_fold["ua"], [f["ua"] for f in metrics["folds"]])
    assert np.allclose(per_fold["macro_f1"], [f["macro_f1"] for f in metrics["folds"]])

    roc = pd.read_csv(data / "roc.csv")
    assert set(roc["class"]) == set(CLASSES8)
    assert {"fpr", "tpr", "threshold", "auc"} <= set(roc.columns)
    pr = pd.read_csv(data / "pr.csv")
    assert {"recall", "precision", "average_precision"} <= set(pr.columns)

    n_fold0 = int((pred["fold"] == 0).sum())
    for name, cols in (("pca.csv", {"pc1", "pc2"}), ("tsne.csv", {"x", "y"})):
        df = pd.read_csv(data / name)
        assert len(df) == n_fold0 and cols | {"key", "true", "pred"} <= set(df.columns)
        assert set(df["key"]) == set(pred.loc[pred.fold == 0, "key"])
    curves = pd.read_csv(data / "curves.csv")
    assert len(curves) == 3 * 12 and {"fold", "epoch", "train_loss", "val_acc"} <= set(curves.columns)
    act = pd.read_csv(data / "activation.csv", index_col=0)
    assert act.shape == (8, 16) and (act.to_numpy() >= 0).all()
    assert len(pd.read_csv(data / "feature_variance.csv")) == 16
    att = pd.read_csv(data / "attention.csv")
    assert att.groupby("key")["weight"].sum().between(0.99, 1.01).all()
    assert set(att["label"]) == set(CLASSES8)
    gc = pd.read_csv(data / "gradcam.csv")
    assert len(gc) >= 3 and gc["file"].str.startswith("folds/").all()
    summary = json.loads((data / "summary.json").read_text())
    assert summary["figures"] == 14 and summary["n_predictions"] == len(pred)


def test_perfect_classifier_has_unit_auc(tmp_path):
    run = make_run(tmp_path / "perfect", classes=CLASSES4, perfect=True, history=False, attention=False, gradcam=False)
    html = write_report(run, tsne=False).read_text()
    per_class = pd.read_csv(run / "report_data" / "per_class.csv")
    assert np.allclose(per_class["auc"], 1.0)
    assert np.allclose(per_class["average_precision"], 1.0)
    assert np.allclose(per_class[["precision", "recall", "f1"]], 1.0)
    assert np.allclose(pd.read_csv(run / "report_data" / "roc.csv")["auc"], 1.0)
    conf = pd.read_csv(run / "report_data" / "confusion.csv", index_col=0).to_numpy()
    assert conf.sum() == np.trace(conf)
    assert "AUC: 1.000" in html
    assert "t-SNE not computed" in html


def test_minimal_run_renders_with_notes(tmp_path):
    run = make_run(tmp_path / "min", minimal=True, speaker_independent=False)
    assert sorted(p.name for p in run.iterdir()) == ["metrics.json", "predictions.csv"]
    html = write_report(run).read_text()
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in html
    assert "Speaker-dependent random split — the same speakers are in training and test; accuracy is inflated" in html
    assert 'class="warning"' in html
    for missing in ("No training curves", "No embeddings", "No attention weights", "No Grad-CAM maps"):
        assert missing in html
    # metrics table, per-class bars + box plot, confusion, ROC/PR, reliability diagram
    assert len(DATA_URI.findall(html)) == 6
    data = run / "report_data"
    assert (data / "confusion.csv").is_file() and (data / "roc.csv").is_file()
    assert not (data / "tsne.csv").exists() and not (data / "curves.csv").exists()


def test_metrics_json_only_renders(tmp_path):
    run = make_run(tmp_path / "m", minimal=True)
    (run / "predictions.csv").unlink()
    html = write_report(run).read_text()
    assert "68.75 ± 5.89" in html  # summary row from metrics.json
    assert "Confusion matrix from metrics.json" in html
    assert "No ROC / precision–recall curves" in html
    conf = pd.read_csv(run / "report_data" / "confusion.csv", index_col=0)
    assert conf.to_numpy().tolist() == json.loads((run / "metrics.json").read_text())["confusion"]
    per_class = pd.read_csv(run / "report_data" / "per_class.csv")
    assert list(per_class["class"]) == CLASSES8


def test_speaker_overlap_contradicting_protocol_is_flagged(tmp_path):
    run = make_run(tmp_path / "leak", speaker_independent=False, history=False, embeddings=False, attention=False, gradcam=False)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["protocol"]["speaker_independent"] = True  # claims independence, but the folds share speakers
    (run / "metrics.json").write_text(json.dumps(metrics))
    html = write_report(run).read_text()
    assert "contradicts the recorded speaker-independent protocol" in html


def test_rewriting_drops_stale_data(tmp_path):
    run = make_run(tmp_path / "r", n_folds=2, attention=False, gradcam=False)
    write_report(run, tsne=False)
    assert (run / "report_data" / "pca.csv").is_file()
    for d in (run / "folds").iterdir():
        (d / "embeddings.npz").unlink()
    write_report(run, tsne=False)
    assert not (run / "report_data" / "pca.csv").exists()


def test_custom_output_path_links_data(tmp_path):
    run = make_run(tmp_path / "run", minimal=True)
    out = write_report(run, out=tmp_path / "elsewhere" / "r.html")
    html = out.read_text()
    assert out.is_file() and (run / "report_data" / "confusion.csv").is_file()
    assert 'href="../run/report_data/confusion.csv"' in html


def test_no_pyplot_figures_leak(full):
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []


# ---------------------------------------------------------------- colours
def test_colors_fixed_and_distinct():
    assert color_for("angry") == EMOTION_COLORS["angry"]
    assert color_for("Anger") == color_for("ang") == EMOTION_COLORS["angry"]
    assert color_for("happy+excited") == EMOTION_COLORS["happy"]
    assert color_for("contempt") == color_for("contempt")  # stable fallback
    assert color_for("contempt") not in EMOTION_COLORS.values()
    cmap = colors_for(CLASSES8 + ["contempt", "pain", "pride", "shame"])
    assert len(set(cmap.values())) == len(cmap)
    assert len(set(EMOTION_COLORS.values())) == len(EMOTION_COLORS)


# ---------------------------------------------------------------- comparison
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("cmp")
    pub = {"metric": "accuracy", "value": 62.0, "protocol": "random 70/30", "source": "study 001"}
    return {
        "rf_si": make_run(base / "a", name="rf_si", model="random_forest", features="librosa", minimal=True, ua=0.45, published=pub),
        "cnn4_si": make_run(base / "b", name="cnn4_si", minimal=True, ua=0.55),
        "mlp_si": make_run(base / "e", name="mlp_si", model="mlp", minimal=True, ua=0.50),
        "rf_random": make_run(base / "c", name="rf_random", minimal=True, speaker_independent=False, ua=0.70, published=pub),
        "alexnet_iemocap": make_run(
            base / "d", name="alexnet_iemocap", corpora=["iemocap"], classes=CLASSES4, label_set="four", minimal=True, ua=0.90
        ),
    }


def test_compare_groups_and_sorts(runs):
    groups = group_runs(collect(runs.values()))
    names = [[s["name"] for s in g] for g in groups]
    assert len(groups) == 3
    assert ["cnn4_si", "mlp_si", "rf_si"] in names  # comparable runs ranked by UA descending
    assert ["rf_random"] in names  # speaker-dependent run never ranked with the others
    assert ["alexnet_iemocap"] in names  # other corpus / label set
    assert names[-1] == ["rf_random"]  # speaker-independent groups first


def test_compare_writes_markdown_and_html(runs, tmp_path):
    md_path, html_path = write_comparison(list(runs.values()), tmp_path / "out" / "table")
    assert md_path == tmp_path / "out" / "table.md" and html_path == tmp_path / "out" / "table.html"
    md, html = md_path.read_text(), html_path.read_text()
    assert md.count("\n## ") == 3 and html.count("<h2>") == 3
    # within the RAVDESS speaker-independent group: cnn4 (55) > mlp (50) > rf (45)
    sect = md[md.index("ravdess · label set native (8 classes) · speaker-independent") :]
    sect = sect[: sect.index("\n## ")]
    assert sect.index("| 1 | cnn4_si") < sect.index("| 2 | mlp_si") < sect.index("| 3 | rf_si")
    for name in runs:
        assert name in md and name in html
    for text in ("accuracy 62.00 % (random 70/30, study 001)", "55.00 ± 1.00", "speaker-dependent", "12 min 34 s"):
        assert text in md and text in html
    assert "accuracy is inflated" in md and "accuracy is inflated" in html
    assert len(DATA_URI.findall(html)) == 3


def test_compare_default_and_directory_outputs(runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    md_path, html_path = write_comparison([runs["cnn4_si"]])
    assert md_path.resolve() == (tmp_path / "comparison.md").resolve() and html_path.is_file()
    d = tmp_path / "dir"
    d.mkdir()
    md_path, html_path = write_comparison([runs["cnn4_si"]], d)
    assert md_path == d / "comparison.md" and html_path == d / "comparison.html"
    md_path, _ = write_comparison([runs["cnn4_si"]], tmp_path / "x.html")
    assert md_path == tmp_path / "x.md"


def test_named_folds_and_object_arrays(tmp_path):
    """Fold ids like "fold1" (as `serkit run` writes them) and object-dtype npz arrays."""
    run = make_run(tmp_path / "named", n_folds=2, attention=False, gradcam=False, history=False)
    pred = pd.read_csv(run / "predictions.csv")
    pred["fold"] = "fold" + (pred["fold"] + 1).astype(str)
    pred.to_csv(run / "predictions.csv", index=False)
    for k in (0, 1):
        d = run / "folds" / str(k)
        z = dict(np.load(d / "embeddings.npz"))
        np.savez(d / "embeddings.npz", **{key: (v.astype(object) if v.dtype.kind == "U" else v) for key, v in z.items()})
        d.rename(run / "folds" / f"fold{k + 1}")
    html = write_report(run, tsne=False).read_text()
    assert "<td class=\"text\">fold1</td>" in html and "fold fold1" not in html
    assert pd.read_csv(run / "report_data" / "pca.csv")["fold"].eq("fold1").all()

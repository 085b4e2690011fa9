"""Load a synthetic run report in headless Chromium: the DOM it builds and a screenshot.

Skipped when Chromium is not installed (Debian: ``apt-get install -y chromium``).
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from fixtures_runs import make_run
from serkit.reporting import write_comparison, write_report

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and Path(p).is_file()), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (/usr/bin/chromium)")

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    run = make_run(tmp_path_factory.mktemp("browser") / "run", n_folds=2, classes=["angry", "happy", "neutral", "sad", "fear"])
    return write_report(run, tsne=True)


def _dom(tmp_path: Path, page: Path) -> str:
    proc = _chromium(tmp_path, "--dump-dom", page.resolve().as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_report_dom_in_chromium(report, tmp_path):
    dom = _dom(tmp_path, report)
    imgs = re.findall(r'<img src="data:image/png;base64,([^"]*)"', dom)
    # fold scores, per-class bars, F1 box plot, confusion, ROC+PR, reliability, curves, PCA, t-SNE,
    # activations, variance, attention, Grad-CAM gallery, Grad-CAM png
    assert len(imgs) == 14
    assert all(len(b64) > 1000 for b64 in imgs)
    assert dom.count("<figure") == 14
    headings = re.findall(r"<h2>([^<]+)</h2>", dom)
    assert headings == [
        "Metrics",
        "Skipped inputs",
        "Per-class results",
        "Confusion matrix",
        "ROC and precision–recall curves",
        "Calibration",
        "Training curves",
        "Embedding maps",
        "Activations and feature variance",
        "Attention pooling",
        "Grad-CAM",
        "Run time",
    ]
    assert "<h1>demo</h1>" in dom
    assert "Speaker-independent: no speaker appears in both training and test" in dom


def test_report_images_decode_in_chromium(report, tmp_path):
    """Chromium decodes every embedded PNG (naturalWidth > 0) — checked from page script."""
    probe = report.parent / "probe.html"
    html = report.read_text(encoding="utf-8")
    script = (
        "<script>window.addEventListener('load', () => {"
        "const imgs = [...document.images];"
        "const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;"
        "document.body.setAttribute('data-images', imgs.length + '/' + ok);});</script>"
    )
    probe.write_text(html.replace("</body>", script + "</body>"), encoding="utf-8")
    dom = _dom(tmp_path, probe)
    m = re.search(r'data-images="(\d+)/(\d+)"', dom)
    assert m, "load handler did not run"
    assert m.group(1) == m.group(2) == "14"


def test_report_screenshot(report, tmp_path):
    shot = tmp_path / "report.png"
    proc = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,3000", report.resolve().as_uri())
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (1400, 3000)
    assert len(data) > 50_000  # a rendered page, not a blank one


def test_comparison_dom_in_chromium(tmp_path):
    base = tmp_path / "runs"
    a = make_run(base / "a", name="si_run", minimal=True, ua=0.5)
    b = make_run(base / "b", name="random_run", minimal=True, speaker_independent=False, ua=0.8)
    _, html_path = write_comparison([a, b], tmp_path / "cmp")
    dom = _dom(tmp_path, html_path)
    assert len(re.findall(r"<h2>", dom)) == 2
    assert len(re.findall(r'<img src="data:image/png;base64,[^"]{1000,}"', dom)) == 2
    assert "accuracy is inflated" in dom

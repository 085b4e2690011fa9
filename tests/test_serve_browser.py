"""The page of `serkit serve` in headless Chromium (driven through chromedriver's WebDriver HTTP
API, no Selenium): load it, upload a clip, see the label and the bars; upload a long recording,
see the timeline, click a segment. Screenshots are kept in build/test-artefacts/serve/.

Skipped when Chromium or chromedriver is not installed (Debian: apt-get install chromium
chromium-driver).
"""
from __future__ import annotations

import base64
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from serve_utils import SEGMENTS, angry, audio_bytes, free_port, long_recording, tiny_model  # noqa: E402

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "") if p and Path(p).is_file()), None)
DRIVER = next((p for p in ("/usr/bin/chromedriver", shutil.which("chromedriver") or "") if p and Path(p).is_file()), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                                reason="chromium / chromedriver not installed")
ARTEFACTS = Path(__file__).resolve().parents[1] / "build" / "test-artefacts" / "serve"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"   # the W3C web element key
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1100,1300", "--autoplay-policy=no-user-gesture-required",
         "--mute-audio", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]


#: page script: keep what the download buttons save (the Blob behind each link) in window.__dl
CAPTURE_DOWNLOADS = """
    window.__dl = []; const blobs = {}; const make = URL.createObjectURL;
    URL.createObjectURL = (blob) => { const u = make.call(URL, blob); blobs[u] = blob; return u; };
    HTMLAnchorElement.prototype.click = function () {
      const a = this; blobs[a.href].text().then(t => window.__dl.push([a.download, t])); };
    document.getElementById('dl-json').click(); document.getElementById('dl-csv').click();"""


def assert_same_csv(got: str, want: str) -> None:
    """Same columns and cells (numbers compared as numbers: JavaScript writes 1e-05 as 0.00001)."""
    import csv
    import io

    g, w = list(csv.reader(io.StringIO(got))), list(csv.reader(io.StringIO(want)))
    assert g[0] == w[0] and len(g) == len(w), (g, w)
    for rg, rw in zip(g[1:], w[1:]):
        for a, b in zip(rg, rw):
            try:
                assert float(a) == pytest.approx(float(b)), (a, b)
            except ValueError:
                assert a == b, (rg, rw)


class Browser:
    """The few WebDriver commands the test needs."""

    def __init__(self, driver_url: str, profile: Path):
        self.http = httpx.Client(base_url=driver_url, timeout=60)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": CHROMIUM, "args": FLAGS + [f"--user-data-dir={profile}"]}}}}
        self.sid = self._call("POST", "/session", caps)["sessionId"]

    def _call(self, method: str, path: str, body: dict | None = None):
        r = self.http.request(method, path, json=body)
        value = r.json().get("value")
        assert r.status_code == 200, value
        return value

    def _s(self, path: str) -> str:
        return f"/session/{self.sid}{path}"

    def go(self, url: str) -> None:
        self._call("POST", self._s("/url"), {"url": url})

    def upload(self, css: str, path: Path) -> None:
        el = self._call("POST", self._s("/element"), {"using": "css selector", "value": css})[ELEMENT]
        self._call("POST", self._s(f"/element/{el}/value"), {"text": str(path)})

    def js(self, script: str, *args):
        return self._call("POST", self._s("/execute/sync"), {"script": script, "args": list(args)})

    def wait(self, script: str, timeout: float = 30.0):
        end = time.monotonic() + timeout
        while True:
            value = self.js(script)
            if value:
                return value
            assert time.monotonic() < end, f"timed out waiting for: {script}"
            time.sleep(0.2)

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self._call("GET", self._s("/screenshot"))))
        return path

    def quit(self) -> None:
        try:
            self._call("DELETE", self._s(""))
        finally:
            self.http.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from serkit.config import SegmentConfig, ServeConfig
    from serkit.inference import Predictor
    from serkit.serve import create_app

    model = tiny_model(tmp_path_factory.mktemp("serve_browser_model"))
    predictor = Predictor.load(model, segments=SegmentConfig(**SEGMENTS))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(predictor, ServeConfig(port=port), token=""),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/readyz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    dport = free_port()
    driver = subprocess.Popen([DRIVER, f"--port={dport}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{dport}/status").json()["value"]["ready"]:
                    break
            except (httpx.TransportError, KeyError, ValueError):
                pass
            time.sleep(0.1)
        browser = Browser(f"http://127.0.0.1:{dport}", tmp_path_factory.mktemp("chromium-profile"))
        try:
            yield base, browser, tmp_path_factory.mktemp("clips")
        finally:
            browser.quit()
    finally:
        driver.terminate()
        driver.wait(10)
        server.should_exit = True
        thread.join(10)


def test_page_shows_label_and_bars_for_a_clip(site):
    base, b, clips = site
    clip = clips / "angry clip.wav"
    clip.write_bytes(audio_bytes(angry(1.5)))
    b.go(base + "/")
    assert b.js("return document.getElementById('classes').textContent") == "angry, happy, sad"
    b.upload("#file", clip)
    assert b.wait("return document.getElementById('label').textContent") == "angry"
    bars = b.wait("""
        const rows = [...document.querySelectorAll('#bars .bar')];
        const fills = rows.map(r => r.querySelector('.bar-fill'));
        if (!fills.length || parseFloat(fills[0].style.width || '0') < 50) return null;
        return rows.map((r, i) => [r.dataset.label, parseFloat(fills[i].style.width),
                                   getComputedStyle(fills[i]).backgroundColor,
                                   r.querySelector('.bar-value').textContent]);""")
    assert [x[0] for x in bars] == ["angry", "happy", "sad"]
    assert bars[0][1] > 90 and bars[1][1] < 5 and bars[0][3].endswith("%")
    assert bars[0][2] == "rgb(214, 39, 40)" and bars[2][2] == "rgb(31, 119, 180)"   # the reports' colours
    assert b.js("return document.getElementById('timeline-box').hidden") is True
    assert b.js("return document.getElementById('error').hidden") is True
    time.sleep(0.5)   # let the bars finish their transition
    shot = b.screenshot(ARTEFACTS / "clip.png")
    assert shot.stat().st_size > 10_000
    # the downloads: the JSON answer, and the CSV exactly as `serkit predict --format csv` writes it
    b.js(CAPTURE_DOWNLOADS)
    downloads = dict(b.wait("return window.__dl.length == 2 ? window.__dl : null"))
    import json

    from serkit.cli.output import to_csv

    result = json.loads(downloads["angry clip.json"])
    assert result["label"] == "angry" and result["path"] == "angry clip.wav"
    assert_same_csv(downloads["angry clip.csv"], to_csv([result], ["angry", "happy", "sad"]))


def test_page_shows_a_timeline_for_a_long_recording(site):
    base, b, clips = site
    rec = clips / "long.flac"
    rec.write_bytes(audio_bytes(long_recording(), fmt="FLAC"))
    b.go(base + "/")
    b.upload("#file", rec)
    segs = b.wait("""
        const s = [...document.querySelectorAll('#timeline .segment')];
        return s.length ? s.map(e => [e.dataset.label || null, +e.dataset.start, +e.dataset.end,
                                      e.getBoundingClientRect().width]) : null;""")
    labels = [s[0] for s in segs if s[0]]
    assert labels == ["angry", "sad"], segs
    assert all(w > 0 for *_, w in segs) and segs[0][0] is None      # leading silence
    assert b.js("return document.getElementById('label').textContent") in ("angry", "sad")
    # clicking a segment plays it from its start; the playing segment is highlighted
    b.js("document.querySelector('#timeline .segment[data-label=sad]').click()")
    state = b.wait("""
        const a = document.getElementById('player');
        const on = document.querySelector('#timeline .segment.playing');
        return a.currentTime > 0 && on ? [a.currentTime, on.dataset.label] : null;""", timeout=15)
    assert state[1] == "sad" and 5.5 <= state[0] <= 9.5, state
    time.sleep(0.6)
    shot = b.screenshot(ARTEFACTS / "timeline.png")
    assert shot.stat().st_size > 10_000
    b.js(CAPTURE_DOWNLOADS)
    downloads = dict(b.wait("return window.__dl.length == 2 ? window.__dl : null"))
    import json

    from serkit.cli.output import to_csv

    result = json.loads(downloads["long.json"])
    assert len(result["segments"]) == len(segs)
    assert_same_csv(downloads["long.csv"], to_csv([result], ["angry", "happy", "sad"], timeline=True))


def test_page_explains_errors_in_plain_words(site):
    base, b, clips = site
    bad = clips / "notes.wav"
    bad.write_text("this is a text file, not audio\n" * 50)
    b.go(base + "/")
    b.upload("#file", bad)
    text = b.wait("""const e = document.getElementById('error');
                     return e.hidden ? null : e.textContent;""")
    assert "not audio the server can read" in text
    assert b.js("return document.getElementById('result').hidden") is True
    b.screenshot(ARTEFACTS / "error.png")


def test_page_records_from_the_microphone(site):
    """Chromium's fake microphone (a beep): MediaRecorder's webm is converted to WAV in the page
    and recognised (a result or 'no speech', never an error)."""
    base, b, clips = site
    b.go(base + "/")
    b.js("""window.__sent = [];
            const f = window.fetch;
            window.fetch = (url, opts) => { window.__sent.push([url, opts.body.get('file').type,
                                                               opts.body.get('file').name]); return f(url, opts); };""")
    b.js("document.getElementById('record').click()")
    b.wait("return document.getElementById('record').classList.contains('on')")
    time.sleep(2.0)
    b.js("document.getElementById('record').click()")
    label = b.wait("return document.getElementById('label').textContent", timeout=30)
    assert label in ("angry", "happy", "sad", "no speech detected")
    assert b.js("return document.getElementById('error').hidden") is True
    sent = b.js("return window.__sent")
    assert sent and sent[0][1] == "audio/wav" and sent[0][2] == "recording.wav", sent
    dur = b.js("return document.getElementById('duration').textContent")
    assert dur.endswith("s of audio") and 1.0 <= float(dur.split()[0]) <= 4.0, dur

"""serkit serve: every endpoint and every bad input through FastAPI's test client, on a tiny model
trained on synthetic tones (tests/serve_utils.py)."""
from __future__ import annotations

import json
import os
import threading
import time

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from serkit.cli import app as cli  # noqa: E402
from serkit.config import SegmentConfig, ServeConfig  # noqa: E402
from serve_utils import (SEGMENT_ARGS, SEGMENTS, angry, audio_bytes, flac_bomb, long_recording,  # noqa: E402
                         sad, tiny_model)

FAST = {"warmup": False}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("serve_model"))


@pytest.fixture(scope="module")
def predictor(model_dir):
    from serkit.inference import Predictor

    return Predictor.load(model_dir, segments=SegmentConfig(**SEGMENTS))


def client(predictor, token: str = "", **cfg) -> TestClient:
    from serkit.serve import create_app

    return TestClient(create_app(predictor, ServeConfig(**{**FAST, **cfg}), token=token),
                      raise_server_exceptions=False)


def wav_file(x, name="clip.wav", **kw):
    return {"file": (name, audio_bytes(x, **kw), "application/octet-stream")}


def assert_error(r, status: int, code: str):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert "Traceback" not in r.text and 'File "' not in r.text
    return body["error"]["message"]


# ---------------------------------------------------------------- endpoints
def test_health_ready_models_page_and_docs(predictor):
    with client(predictor, warmup=True) as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        for _ in range(200):   # the warm-up inference runs in the background
            r = c.get("/readyz")
            if r.status_code == 200:
                break
            assert r.json()["status"] == "starting"
            time.sleep(0.05)
        assert r.status_code == 200 and r.json()["status"] == "ready"
        assert r.json()["capacity"] == 2 + 16
        card = c.get("/v1/models").json()
        assert card["classes"] == ["angry", "happy", "sad"] and card["format"]["name"] == "serkit-model"
        page = c.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "default-src 'self'" in page.headers["content-security-policy"]
        conf = json.loads(page.text.split('type="application/json">', 1)[1].split("</script>", 1)[0])
        # the reports' colours (serkit.corpora.manifest.EMOTION_COLORS)
        assert conf["colors"] == {"angry": "#d62728", "happy": "#e6a700", "sad": "#1f77b4"}
        assert conf["clip_max_s"] == 5.0 and conf["token_required"] is False
        assert "http" not in page.text.replace("http-equiv", "")   # nothing loaded from elsewhere
        js = c.get("/static/app.js")
        assert js.status_code == 200 and "MediaRecorder" in js.text and "http://" not in js.text and "https://" not in js.text
        assert c.get("/static/app.css").status_code == 200
        assert_error(c.get("/static/..%2Fapp.py"), 404, "not_found")
        assert_error(c.get("/static/page.py"), 404, "not_found")
        schema = c.get("/openapi.json").json()
        assert {"/v1/predict", "/v1/subtitles", "/v1/models", "/healthz", "/readyz"} <= set(schema["paths"])
        assert "multipart/form-data" in schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
        docs = c.get("/docs")
        assert docs.status_code == 200 and "POST /v1/predict" in docs.text and "cdn" not in docs.text.lower()


def test_predict_matches_serkit_predict_json(predictor, model_dir, tmp_path):
    x = angry()
    (tmp_path / "clip.wav").write_bytes(audio_bytes(x))
    res = CliRunner().invoke(cli, ["predict", str(tmp_path / "clip.wav"), "--model", str(model_dir),
                                   "--format", "json", "--quiet", *SEGMENT_ARGS])
    assert res.exit_code == 0, res.output
    want = json.loads(res.stdout[res.stdout.index("["):])[0]
    with client(predictor) as c:
        r = c.post("/v1/predict", files=wav_file(x, "clip.wav"))
        got = r.json()
        timing = r.headers["server-timing"]        # where the time went
        assert all(f"{k};dur=" in timing for k in ("read", "queue", "decode", "infer"))
        raw = c.post("/v1/predict", content=audio_bytes(sad(), fmt="FLAC"),
                     headers={"Content-Type": "audio/flac"}).json()
        # the format comes from the content, not the name or the declared type
        ogg = c.post("/v1/predict", files=wav_file(sad(), "clip.wav", fmt="OGG", subtype="VORBIS")).json()
        silent = c.post("/v1/predict", files=wav_file(np.zeros(16000, np.float32))).json()
    assert list(got) == list(want) or set(got) == set(want)
    assert got["label"] == want["label"] == "angry" and got["scores"] == want["scores"]
    assert got["path"] == "clip.wav" and got["duration"] == want["duration"] == 0.8
    assert raw["label"] == "sad" and raw["path"] is None and ogg["label"] == "sad"
    assert silent["label"] is None and silent["speech"] is False and silent["note"].startswith("no speech")


def test_predict_timeline(predictor):
    with client(predictor) as c:
        r = c.post("/v1/predict?timeline=true", files=wav_file(long_recording(), "long.flac", fmt="FLAC"))
        short = c.post("/v1/predict", files=wav_file(long_recording(), "long.flac", fmt="FLAC")).json()
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["path"] == "long.flac" and out["duration"] == pytest.approx(10.0, abs=0.01)
    speech = [s for s in out["segments"] if s["label"] is not None]
    assert [s["label"] for s in speech] == ["angry", "sad"]
    assert abs(speech[0]["start"] - 1.0) < 0.3 and abs(speech[1]["end"] - 9.0) < 0.3
    assert out["segments"][0]["label"] is None and out["segments"][0]["scores"] is None
    # without timeline=true a recording longer than clip_max_s is summarised (no segments)
    assert "segments" not in short and short["label"] in ("angry", "sad")


class FakeTranscriber:
    def __init__(self, cfg=None):
        pass

    def __call__(self, audio, language=None):
        words = [{"start": 1.0 + 0.5 * i, "end": 1.4 + 0.5 * i, "word": f" {w}"}
                 for i, w in enumerate("stop it right now".split())]
        return [{"start": 1.0, "end": 3.0, "text": " stop it right now", "words": words}]


def test_subtitles_srt_and_vtt(predictor, monkeypatch):
    import srt

    import serkit.inference.subtitles as subs

    monkeypatch.setattr(subs, "WhisperTranscriber", FakeTranscriber)
    with client(predictor) as c:
        r = c.post("/v1/subtitles", files=wav_file(long_recording()))
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-subrip")
        cues = list(srt.parse(r.text))
        assert len(cues) == 1 and cues[0].content == "[angry] stop it right now"
        v = c.post("/v1/subtitles?format=vtt&language=en", files=wav_file(long_recording()))
        assert v.status_code == 200 and v.text.startswith("WEBVTT") and "text/vtt" in v.headers["content-type"]
        assert "::cue(.emo-angry) { color: #d62728; }" in v.text
        assert_error(c.post("/v1/subtitles?format=docx", files=wav_file(angry())), 422, "bad_parameter")
        assert_error(c.post("/v1/subtitles?language=../x", files=wav_file(angry())), 422, "bad_parameter")
        assert_error(c.post("/v1/subtitles", content=b"plain text", headers={"Content-Type": "text/plain"}),
                     415, "unsupported_media_type")


# ---------------------------------------------------------------- bad inputs
def _nan_wav() -> bytes:
    x = angry()
    x[100:200] = np.nan
    return audio_bytes(x, subtype="FLOAT")


def _truncated_flac() -> bytes:
    data = audio_bytes(angry(2.0), fmt="FLAC")
    return data[: len(data) // 2]


@pytest.mark.parametrize("case", ["empty", "text", "truncated_flac", "nan", "wav_header_only",
                                  "unsupported_rate", "random_bytes"])
def test_bad_audio_is_answered_with_the_right_status(predictor, case):
    files = {
        "empty": ("e.wav", b"", 400, "empty"),
        "text": ("notes.wav", b"this is not audio, it is a text file\n" * 20, 415, "unsupported_media_type"),
        "truncated_flac": ("cut.flac", _truncated_flac(), 400, "undecodable"),
        "nan": ("nan.wav", _nan_wav(), 400, "not_finite"),
        "wav_header_only": ("h.wav", b"RIFF\x24\x00\x00\x00WAVEfmt ", 400, "undecodable"),
        "unsupported_rate": ("r.wav", audio_bytes(angry()[:400], sr=200), 400, "bad_audio"),
        "random_bytes": ("r.bin", np.random.default_rng(0).bytes(5000), 415, "unsupported_media_type"),
    }
    name, data, status, code = files[case]
    with client(predictor) as c:
        msg = assert_error(c.post("/v1/predict", files={"file": (name, data)}), status, code)
        assert_error(c.post("/v1/predict", content=data, headers={"Content-Type": "application/octet-stream"}),
                     status, code)
    assert "/tmp" not in msg and "Traceback" not in msg


def test_wrong_content_type_missing_field_and_bad_parameters(predictor):
    with client(predictor) as c:
        for ctype in ("application/json", "text/plain", "application/x-www-form-urlencoded"):
            assert_error(c.post("/v1/predict", content=b"a=1", headers={"Content-Type": ctype}),
                         415, "unsupported_media_type")
        msg = assert_error(c.post("/v1/predict", files={"audio": ("a.wav", audio_bytes(angry()))}),
                           422, "missing_field")
        assert "'file'" in msg
        assert_error(c.post("/v1/predict", data={"file": "not a file"}, files={"x": ("a", b"1")}),
                     422, "missing_field")
        assert_error(c.post("/v1/predict?timeline=perhaps", files=wav_file(angry())), 422, "bad_parameter")
        assert_error(c.post("/v1/predict", content=b"--x\r\nbroken",
                            headers={"Content-Type": "multipart/form-data; boundary=x"}), 422, "missing_field")
        assert_error(c.get("/v1/predict"), 405, "method_not_allowed")
        assert_error(c.get("/v2/predict"), 404, "not_found")


def test_size_and_duration_limits(predictor):
    big = audio_bytes(angry(2.0))                      # 64 kB
    with client(predictor, max_upload_bytes=20_000, max_audio_s=3.0) as c:
        msg = assert_error(c.post("/v1/predict", files={"file": ("big.wav", big)}), 413, "too_large")
        assert "20000" in msg
        chunks = (big[i:i + 4096] for i in range(0, len(big), 4096))   # no Content-Length: counted
        assert_error(c.post("/v1/predict", content=chunks, headers={"Content-Type": "audio/wav"}),
                     413, "too_large")
        small_but_long = audio_bytes(np.zeros(4 * 8000, np.int16), sr=8000, fmt="FLAC")  # 4 s, tiny file
        msg = assert_error(c.post("/v1/predict", files={"file": ("long.flac", small_but_long)}), 413, "too_long")
        assert "4.0 s" in msg and "limit is 3 s" in msg
        assert c.post("/v1/predict", files=wav_file(angry(1.0), subtype="PCM_U8")).status_code == 200


@pytest.mark.parametrize("hide_length", [False, True])
def test_decompression_bomb_is_refused_without_decoding_it(predictor, hide_length):
    bomb = flac_bomb(3 * 3600, hide_length=hide_length)   # ~270 kB -> 3 hours of audio
    assert len(bomb) < 400_000
    with client(predictor) as c:
        t = time.perf_counter()
        msg = assert_error(c.post("/v1/predict", files={"file": ("bomb.flac", bomb)}), 413, "too_long")
        took = time.perf_counter() - t
    # with the length in the header nothing is decoded; without it decoding stops at the cap
    assert took < (1.0 if not hide_length else 10.0), took
    assert ("10800.0 s" in msg) != hide_length


# ---------------------------------------------------------------- admission, timeouts, errors
def _blocking(predictor, monkeypatch, release: threading.Event, started: threading.Event):
    real = predictor.predict_array

    def slow(*a, **kw):
        started.set()
        release.wait(10)
        return real(*a, **kw)

    monkeypatch.setattr(predictor, "predict_array", slow)


def test_busy_server_answers_503_with_retry_after(predictor, monkeypatch):
    release, started = threading.Event(), threading.Event()
    _blocking(predictor, monkeypatch, release, started)
    with client(predictor, max_concurrent=1, max_queue=1, retry_after_s=7) as c:
        results = []
        threads = [threading.Thread(target=lambda: results.append(c.post("/v1/predict", files=wav_file(angry()))))
                   for _ in range(2)]
        threads[0].start()
        assert started.wait(10)
        threads[1].start()          # waits in the queue
        for _ in range(100):
            if c.get("/readyz").json()["queued"] == 1:
                break
            time.sleep(0.02)
        r = c.post("/v1/predict", files=wav_file(angry()))
        assert_error(r, 503, "busy")
        assert r.headers["retry-after"] == "7"
        assert c.get("/healthz").status_code == 200   # health is never queued
        release.set()
        for t in threads:
            t.join(20)
        assert [x.status_code for x in results] == [200, 200]
        assert c.get("/readyz").json()["in_flight"] == 0


def test_timeout_answers_503_and_frees_the_slot_when_the_work_ends(predictor, monkeypatch):
    release, started = threading.Event(), threading.Event()
    _blocking(predictor, monkeypatch, release, started)
    with client(predictor, max_concurrent=1, max_queue=0, timeout_s=0.3) as c:
        r = c.post("/v1/predict", files=wav_file(angry()))
        assert_error(r, 503, "timeout")
        assert "retry-after" in r.headers
        assert_error(c.post("/v1/predict", files=wav_file(angry())), 503, "busy")  # still running
        release.set()
        for _ in range(100):
            if c.get("/readyz").json()["in_flight"] == 0:
                break
            time.sleep(0.02)
        monkeypatch.undo()
        assert c.post("/v1/predict", files=wav_file(angry())).status_code == 200


def test_internal_errors_never_show_a_traceback(predictor, monkeypatch):
    def boom(*a, **kw):
        raise RuntimeError("secret detail from /srv/models")

    monkeypatch.setattr(predictor, "predict_array", boom)
    with client(predictor) as c:
        msg = assert_error(c.post("/v1/predict", files=wav_file(angry())), 500, "internal")
    assert "secret" not in msg and "/srv" not in msg


def test_token_protects_everything_but_health(predictor, monkeypatch):
    with client(predictor, token="s3cret") as c:
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code in (200, 503)
        r = c.get("/v1/models")
        assert_error(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"
        assert_error(c.get("/v1/models", headers={"Authorization": "Bearer wrong"}), 401, "unauthorized")
        assert_error(c.post("/v1/predict", files=wav_file(angry())), 401, "unauthorized")
        ok = {"Authorization": "Bearer s3cret"}
        assert c.get("/v1/models", headers=ok).status_code == 200
        assert c.post("/v1/predict", files=wav_file(angry()), headers=ok).json()["label"] == "angry"
        assert '"token_required": true' in c.get("/").text
    # the token comes from the environment variable named in ServeConfig.token_env
    monkeypatch.setenv("MY_TOKEN", "from-env")
    from serkit.serve import create_app

    with TestClient(create_app(predictor, ServeConfig(warmup=False, token_env="MY_TOKEN"))) as c:
        assert c.get("/v1/models").status_code == 401
        assert c.get("/v1/models", headers={"Authorization": "Bearer from-env"}).status_code == 200


def test_cors_is_off_by_default(predictor):
    pre = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    with client(predictor) as c:
        r = c.options("/v1/predict", headers=pre)
        assert "access-control-allow-origin" not in r.headers
        assert "access-control-allow-origin" not in c.get("/v1/models", headers={"Origin": "http://x"}).headers
    with client(predictor, cors_origins=["http://localhost:3000"]) as c:
        r = c.options("/v1/predict", headers={**pre, "Origin": "http://localhost:3000"})
        assert r.headers["access-control-allow-origin"] == "http://localhost:3000"
        assert "access-control-allow-origin" not in c.options("/v1/predict", headers=pre).headers


def test_requests_choose_no_path_and_no_model(predictor):
    with client(predictor) as c:
        r = c.post("/v1/predict?model=/etc&path=/etc/passwd",
                   data={"model": "/etc", "path": "/etc/passwd"},
                   files={"file": ("../../etc/passwd", audio_bytes(angry()))})
        assert r.status_code == 200 and r.json()["path"] == "passwd" and r.json()["label"] == "angry"
        assert c.get("/v1/models").json()["classes"] == ["angry", "happy", "sad"]


def test_temporary_files_are_always_closed(predictor, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    fds = lambda: len(os.listdir("/proc/self/fd"))  # noqa: E731
    big = audio_bytes(np.tile(angry(), 50))         # 40 s, 1 MB: spooled to disk
    assert len(big) > (1 << 20)
    with client(predictor, max_upload_bytes=1_500_000, max_audio_s=60) as c:
        c.get("/healthz")
        before = fds()
        for _ in range(3):
            assert c.post("/v1/predict", files={"file": ("big.wav", big)}).status_code == 200
            assert c.post("/v1/predict", content=big, headers={"Content-Type": "audio/wav"}).status_code == 200
            assert c.post("/v1/predict", content=big[:1_200_000] + b"x" * 400_000,
                          headers={"Content-Type": "audio/wav"}).status_code == 413
            assert c.post("/v1/predict", files={"file": ("t.wav", b"text" * 400_000)}).status_code in (413, 415)
        assert fds() <= before + 1
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- the command
def test_serve_command_help_and_bad_options(model_dir):
    r = CliRunner().invoke(cli, ["serve", "--help"])
    assert r.exit_code == 0 and "--model" in r.output and "--port" in r.output and "--option" in r.output
    r = CliRunner().invoke(cli, ["serve", "--model", str(model_dir), "-o", "max_queue=-1"])
    assert r.exit_code == 2 and "bad server option" in r.output
    r = CliRunner().invoke(cli, ["serve", "--model", "/nonexistent/model"])
    assert r.exit_code == 2 and "model" in r.output


# ---------------------------------------------------------------- bounded decoding
def test_read_limited_sniffs_checks_the_header_and_caps_decoding():
    import io

    from serkit.inference import AudioError, read_limited

    stereo = np.stack([angry(1.0), sad(1.0)], axis=1)
    x, sr = read_limited(io.BytesIO(audio_bytes(stereo, sr=22050, fmt="FLAC")), max_seconds=5, max_samples=10**6)
    assert sr == 22050 and x.shape == (16000,) and x.dtype == np.float32   # mixed down, not resampled
    assert np.allclose(x, stereo.mean(axis=1), atol=1e-3)
    with pytest.raises(AudioError) as e:
        read_limited(io.BytesIO(audio_bytes(stereo)), max_seconds=0.5, max_samples=10**6)
    assert e.value.kind == "too_long"
    with pytest.raises(AudioError) as e:       # the sample cap, whatever the duration limit
        read_limited(io.BytesIO(audio_bytes(stereo)), max_seconds=60, max_samples=8000)
    assert e.value.kind == "too_long"
    with pytest.raises(AudioError) as e:
        read_limited(io.BytesIO(flac_bomb(600, hide_length=True)), max_seconds=60, max_samples=10**8)
    assert e.value.kind == "too_long" and "more than 60 s" in str(e.value)
    x, sr = read_limited(io.BytesIO(audio_bytes(np.zeros((0, 1), np.float32))), max_seconds=5, max_samples=100)
    assert x.shape == (0,)

"""A real `serkit serve` process on a free local port, spoken to over HTTP (and raw sockets for a
client that disconnects mid-upload and one that sends one byte at a time)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from serve_utils import SEGMENT_ARGS, angry, audio_bytes, free_port, tiny_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model = tiny_model(tmp_path_factory.mktemp("serve_proc_model"))
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    env.pop("SERKIT_SERVE_TOKEN", None)
    log = tmp_path_factory.mktemp("serve_proc") / "server.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "serkit.cli", "serve", "--model", str(model),
                                 "--port", str(port), *SEGMENT_ARGS, "-o", "upload_timeout_s=2",
                                 "--log-level", "warning"],
                                stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server not ready in 90 s:\n" + log.read_text()
            time.sleep(0.3)
        yield base, port, proc, log
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _raw(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    return s


def test_real_server_answers_over_http(server):
    base, port, proc, _ = server
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    r = httpx.post(f"{base}/v1/predict", files={"file": ("a.wav", audio_bytes(angry()))}, timeout=30)
    assert r.status_code == 200 and r.json()["label"] == "angry" and r.json()["path"] == "a.wav"
    r = httpx.post(f"{base}/v1/predict", content=b"not audio", headers={"Content-Type": "audio/wav"})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    assert "<title>serkit" in httpx.get(f"{base}/").text
    assert httpx.get(f"{base}/v1/models").json()["classes"] == ["angry", "happy", "sad"]
    # bound to loopback only
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) == 0


def test_client_that_disconnects_mid_upload_leaves_the_server_healthy(server):
    base, port, proc, _ = server
    body = audio_bytes(angry(4.0))
    for _ in range(3):
        s = _raw(port)
        s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n"
                  + f"Content-Length: {len(body)}\r\n\r\n".encode() + body[:len(body) // 3])
        s.close()
    time.sleep(0.3)
    assert httpx.get(f"{base}/healthz").status_code == 200
    r = httpx.get(f"{base}/readyz").json()
    assert r["in_flight"] == 0 and r["queued"] == 0
    assert httpx.post(f"{base}/v1/predict", content=body, headers={"Content-Type": "audio/wav"},
                      timeout=30).json()["label"] == "angry"


def test_slow_client_is_cut_off_with_408(server):
    base, port, proc, _ = server
    body = audio_bytes(angry(1.0))
    s = _raw(port)
    s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\n"
              + f"Content-Length: {len(body)}\r\n\r\n".encode())
    t = time.monotonic()
    answer = b""
    s.settimeout(0.4)
    for i in range(40):            # one byte every 0.4 s; the upload limit is 2 s
        try:
            s.sendall(body[i:i + 1])
            answer += s.recv(4096)
            if answer:
                break
        except socket.timeout:
            # the server is still busy health-wise during the slow upload
            assert httpx.get(f"{base}/healthz", timeout=2).status_code == 200
        except OSError:
            break
    s.settimeout(2)
    try:
        while b"}}" not in answer:
            more = s.recv(4096)
            if not more:
                break
            answer += more
    except OSError:
        pass
    s.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"upload_timeout"' in answer
    assert time.monotonic() - t < 6


def test_sigint_stops_the_server(server):
    base, port, proc, log = server
    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == 0, log.read_text()
    text = log.read_text()
    assert "Traceback" not in text, text

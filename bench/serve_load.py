"""Load and fault benchmark of `serkit serve` (run by hand; loopback only; bounded in time).

Starts `serkit serve` on a free port of 127.0.0.1 and runs, in order:

1. 16 concurrent clients sending 4-second clips for 60 s (closed loop, keep-alive);
2. a burst of 64 requests released at once;
3. a client that disconnects mid-upload (3 times);
4. a client that sends one byte per second (the server cuts it off after upload_timeout_s).

Throughout, a monitor asks /healthz every 0.25 s (1 s timeout). Reports requests/s, p50/p95/p99
latency, answers by status, the server's resident memory before/after, and /healthz, and writes
bench/results/serve.md:

    .venv/bin/python bench/serve_load.py --model /path/to/model_dir [-s KEY=VALUE] [-o KEY=VALUE]

The clips are EmoDB utterances cropped / padded to 4 s when $SERKIT_DATA/emodb is there, else
synthetic voiced sounds. The client runs on the same machine (it takes CPU from the server).
"""
from __future__ import annotations

import os
import sys

# bench/ holds ssl.py, named like the standard library's ssl module: keep bench/ off the import path
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _HERE]

import argparse
import http.client
import io
import json
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
SR = 16000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clips(seconds: float, n: int = 8) -> tuple[list[bytes], str]:
    """``n`` WAV clips of exactly ``seconds`` and where they came from."""
    data_dir = Path(os.environ.get("SERKIT_DATA", ROOT.parent / "shared" / "datasets"))
    files = sorted((data_dir / "emodb").rglob("*.flac"))[:: 37][:n] if (data_dir / "emodb").is_dir() else []
    out = []
    for f in files:
        x, sr = sf.read(f, dtype="float32")
        x = x if x.ndim == 1 else x.mean(axis=1)
        k = int(seconds * sr)
        x = np.pad(x[:k], (0, max(0, k - len(x))))
        buf = io.BytesIO()
        sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
        out.append(buf.getvalue())
    if out:
        return out, f"EmoDB utterances cropped/padded to {seconds:g} s (16-bit WAV, {len(out[0]) // 1024} kB)"
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    for i in range(n):
        f0 = 110 + 20 * i + 15 * np.sin(2 * np.pi * 0.5 * t)
        x = sum(np.sin(2 * np.pi * h * np.cumsum(f0) / SR) / h for h in range(1, 8))
        x = 0.2 * x * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.005 * rng.standard_normal(len(t))
        buf = io.BytesIO()
        sf.write(buf, x.astype(np.float32), SR, format="WAV", subtype="PCM_16")
        out.append(buf.getvalue())
    return out, f"synthetic voiced sounds of {seconds:g} s (no EmoDB found)"


def multipart(data: bytes, name: str = "clip.wav") -> tuple[bytes, str]:
    b = uuid.uuid4().hex
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: audio/wav\r\n\r\n").encode() + data + f"\r\n--{b}--\r\n".encode()
    return body, f"multipart/form-data; boundary={b}"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.rows: list[tuple[float, float, int]] = []   # (start, latency, status)
        self.timings: list[dict[str, float]] = []         # the server's Server-Timing (s)

    def add(self, start: float, latency: float, status: int, timing: dict | None = None) -> None:
        with self.lock:
            self.rows.append((start, latency, status))
            if timing:
                self.timings.append({**timing, "total": latency})


def post(conn: http.client.HTTPConnection, body: bytes, ctype: str, timing: dict | None = None) -> int:
    conn.request("POST", "/v1/predict", body=body, headers={"Content-Type": ctype})
    r = conn.getresponse()
    r.read()
    if timing is not None:
        for part in (r.getheader("Server-Timing") or "").split(","):
            name, _, dur = part.strip().partition(";dur=")
            if dur:
                timing[name] = float(dur) / 1000
    return r.status


def closed_loop(port: int, bodies, until: float, res: Results) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    i = 0
    while time.monotonic() < until:
        body, ctype = bodies[i % len(bodies)]
        i += 1
        t = time.monotonic()
        timing: dict = {}
        try:
            status = post(conn, body, ctype, timing)
        except (OSError, http.client.HTTPException):
            status = -1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        res.add(t, time.monotonic() - t, status, timing)
        if status == 503:
            time.sleep(0.2)
    conn.close()


def burst(port: int, bodies, n: int, res: Results) -> None:
    gate = threading.Barrier(n)

    def one(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        body, ctype = bodies[k % len(bodies)]
        gate.wait()
        t = time.monotonic()
        try:
            status = post(conn, body, ctype)
        except (OSError, http.client.HTTPException):
            status = -1
        res.add(t, time.monotonic() - t, status)
        conn.close()

    threads = [threading.Thread(target=one, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)


def disconnecting_client(port: int, body: bytes, ctype: str) -> None:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
              f"Content-Length: {len(body)}\r\n\r\n".encode() + body[: len(body) // 3])
    s.close()


def slow_client(port: int, body: bytes, ctype: str, limit_s: float) -> tuple[str, float]:
    """One byte per second; returns (the server's status line, seconds until it answered)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
              f"Content-Length: {len(body)}\r\n\r\n".encode())
    s.settimeout(1.0)
    t = time.monotonic()
    answer = b""
    for i in range(int(limit_s)):
        try:
            s.sendall(body[i:i + 1])
        except OSError:
            break
        try:
            answer += s.recv(4096)
            if answer:
                break
        except socket.timeout:
            continue
        except OSError:
            break
    s.close()
    line = answer.split(b"\r\n", 1)[0].decode(errors="replace") or "(no answer)"
    return line, time.monotonic() - t


class HealthMonitor(threading.Thread):
    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port, self.stop, self.ok, self.failed, self.worst = port, threading.Event(), 0, 0, 0.0

    def run(self) -> None:
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1.0)
                conn.request("GET", "/healthz")
                good = conn.getresponse().status == 200
                conn.close()
            except (OSError, http.client.HTTPException):
                good = False
            took = time.monotonic() - t
            self.worst = max(self.worst, took)
            self.ok, self.failed = self.ok + good, self.failed + (not good)
            self.stop.wait(max(0.0, 0.25 - took))


def pct(values, q) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def summarise(rows, seconds: float | None = None) -> dict:
    ok = [lat for _, lat, s in rows if s == 200]
    span = seconds or ((max(t + lat for t, lat, _ in rows) - min(t for t, _, _ in rows)) if rows else 1)
    return {"requests": len(rows), "ok": len(ok), "rps": len(ok) / span if span else 0,
            "p50": pct(ok, 50), "p95": pct(ok, 95), "p99": pct(ok, 99),
            "by_status": dict(sorted(Counter(s for _, _, s in rows).items()))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="model name or directory")
    ap.add_argument("--model-note", default="", help="what the model is (for the table)")
    ap.add_argument("-s", "--segment", action="append", default=[], help="SegmentConfig KEY=VALUE")
    ap.add_argument("-o", "--option", action="append", default=[], help="ServeConfig KEY=VALUE")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--clip-seconds", type=float, default=4.0)
    ap.add_argument("--burst", type=int, default=64)
    ap.add_argument("--slow-limit", type=float, default=45.0, help="give up on the slow client after this")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "serve.md")
    args = ap.parse_args()

    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    env.pop("SERKIT_SERVE_TOKEN", None)
    cmd = [sys.executable, "-m", "serkit.cli", "serve", "--model", args.model, "--port", str(port),
           "--log-level", "warning"]
    for s in args.segment:
        cmd += ["-s", s]
    for o in args.option:
        cmd += ["-o", o]
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"serve_load_{port}.log", "w")
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    wall0 = time.monotonic()
    try:
        t0 = time.monotonic()
        while True:
            if server.poll() is not None:
                sys.exit(f"the server exited; see {log.name}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/readyz")
                r = conn.getresponse()
                ready = json.loads(r.read())
                if r.status == 200:
                    break
            except (OSError, http.client.HTTPException, ValueError):
                pass
            if time.monotonic() - t0 > 600:
                sys.exit("the server was not ready within 600 s")
            time.sleep(0.5)
        startup_s = time.monotonic() - t0
        mem_ready = rss_mb(server.pid)
        wavs, clip_note = clips(args.clip_seconds)
        bodies = [multipart(w, f"clip{i}.wav") for i, w in enumerate(wavs)]
        health = HealthMonitor(port)
        health.start()

        # warm-up: one request per client (first-use allocations), then the memory baseline
        warm = Results()
        closed_loop_once = [threading.Thread(target=closed_loop, args=(port, bodies[k:] + bodies[:k],
                                                                          time.monotonic() + 0.01, warm))
                            for k in range(min(args.clients, len(bodies)))]
        for t in closed_loop_once:
            t.start()
        for t in closed_loop_once:
            t.join()
        mem_before = rss_mb(server.pid)

        print(f"phase 1: {args.clients} clients x {args.seconds:g} s", flush=True)
        p1 = Results()
        until = time.monotonic() + args.seconds
        threads = [threading.Thread(target=closed_loop, args=(port, bodies[k % len(bodies):] + bodies[:k % len(bodies)],
                                                              until, p1)) for k in range(args.clients)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        s1 = summarise(p1.rows, time.monotonic() - start)
        mem_p1 = rss_mb(server.pid)
        print(json.dumps(s1), flush=True)

        print(f"phase 2: burst of {args.burst}", flush=True)
        p2 = Results()
        burst(port, bodies, args.burst, p2)
        s2 = summarise(p2.rows)
        print(json.dumps(s2), flush=True)

        print("phase 3: clients that disconnect mid-upload", flush=True)
        body, ctype = bodies[0]
        for _ in range(3):
            disconnecting_client(port, body, ctype)
        time.sleep(1.0)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        after_disconnect = post(conn, body, ctype)
        conn.request("GET", "/readyz")
        rz = json.loads(conn.getresponse().read())
        conn.close()

        print("phase 4: a client sending 1 byte per second", flush=True)
        p4 = Results()
        bg_until = time.monotonic() + args.slow_limit
        bg = [threading.Thread(target=closed_loop, args=(port, bodies, bg_until, p4)) for _ in range(2)]
        for t in bg:
            t.start()
        slow_line, slow_s = slow_client(port, body, ctype, args.slow_limit)
        bg_stop = time.monotonic()
        for t in bg:
            t.join()
        s4 = summarise(p4.rows)
        health.stop.set()
        health.join()
        mem_after = rss_mb(server.pid)
        load = os.getloadavg()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()

    growth = 100 * (mem_after - mem_before) / mem_before
    five_xx = {s: n for ph in (s1, s2, s4) for s, n in ph["by_status"].items() if s >= 500 and s != 503}
    opts = " ".join(f"-s {s}" for s in args.segment) + " " + " ".join(f"-o {o}" for o in args.option)
    lines = [
        "# `serkit serve` under load (bench/serve_load.py)", "",
        f"Model: {args.model_note or args.model}. Clips: {clip_note}. Server: `serkit serve --model "
        f"{args.model} {opts.strip()}` on 127.0.0.1 (defaults otherwise: max_concurrent 2, max_queue 16, "
        f"timeout 60 s, upload_timeout 30 s). Client on the same machine ({os.cpu_count()} cores, shared; "
        f"load average at the end {load[0]:.1f}). Start-up to ready (model load + warm-up): {startup_s:.1f} s. "
        f"Whole benchmark: {time.monotonic() - wall0:.0f} s.", "",
        "| phase | requests | 200 | req/s | p50 s | p95 s | p99 s | answers by status |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, s in ((f"{args.clients} clients x {args.seconds:g} s", s1), (f"burst of {args.burst}", s2),
                    ("2 clients during the slow client", s4)):
        lines.append(f"| {name} | {s['requests']} | {s['ok']} | {s['rps']:.2f} | {s['p50']:.2f} | "
                     f"{s['p95']:.2f} | {s['p99']:.2f} | "
                     + ", ".join(f"{k}: {v}" for k, v in s["by_status"].items()) + " |")
    parts = ("read", "queue", "decode", "infer", "total")
    lines += ["", f"Where the time of a request goes in phase 1 (the server's `Server-Timing` header; "
                  "total = what the client measured, the rest is HTTP and the client):", "",
              "| part | " + " | ".join(parts) + " |", "|---|" + "---:|" * len(parts)]
    for q in (50, 95):
        lines.append(f"| p{q} s | " + " | ".join(f"{pct([t.get(k, 0.0) for t in p1.timings], q):.3f}"
                                              for k in parts) + " |")
    lines += [
        "", "| check | result | target |", "|---|---|---|",
        f"| 5xx other than 503 | {sum(five_xx.values())} {five_xx or ''} | 0 |",
        f"| p95 latency at {args.clients} clients | {s1['p95']:.2f} s | ≤ 1 s |",
        f"| server memory (RSS) | ready {mem_ready:.0f} MB; after warm-up {mem_before:.0f} MB; after phase 1 "
        f"{mem_p1:.0f} MB; at the end {mem_after:.0f} MB ({growth:+.1f} % from warm-up) | growth < 10 % |",
        f"| /healthz during the run | {health.ok} answered, {health.failed} failed, slowest {health.worst:.2f} s "
        f"| answered throughout |",
        f"| 3 clients disconnecting mid-upload | next request: {after_disconnect}; in flight afterwards: "
        f"{rz.get('in_flight')}, queued: {rz.get('queued')} | server unaffected |",
        f"| client sending 1 byte/s | `{slow_line}` after {slow_s:.1f} s | cut off (upload_timeout_s) |",
    ]
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.exists() and "<!-- notes -->" in args.out.read_text():
        text += "\n<!-- notes -->" + args.out.read_text().split("<!-- notes -->", 1)[1]
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()

"""``serkit serve``: the recogniser as an HTTP API and a web page (wraps :mod:`serkit.serve`)."""
from __future__ import annotations

import ipaddress
import os
from typing import List, Optional

import typer

from serkit.cli.recognise import MODEL_HELP, SEGMENT_HELP, _fail, _load, err

OPTION_HELP = ("server limit KEY=VALUE (ServeConfig, e.g. max_upload_bytes=10000000, max_audio_s=120, "
               "max_concurrent=2, max_queue=16, timeout_s=60, cors_origins=[http://localhost:3000])")


def _config(host: Optional[str], port: Optional[int], options: Optional[List[str]]):
    from serkit.config import ServeConfig, apply_overrides

    data = apply_overrides({}, list(options or []))
    if host is not None:
        data["host"] = host
    if port is not None:
        data["port"] = port
    return ServeConfig.model_validate(data)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
          host: Optional[str] = typer.Option(None, "--host", help="address to bind (default 127.0.0.1)"),
          port: Optional[int] = typer.Option(None, "--port", help="TCP port (default 8000)"),
          segment: Optional[List[str]] = typer.Option(None, "--segment", "-s", help=SEGMENT_HELP),
          option: Optional[List[str]] = typer.Option(None, "--option", "-o", help=OPTION_HELP),
          log_level: str = typer.Option("info", "--log-level", help="uvicorn log level")) -> None:
    """Serve the recogniser: HTTP API (/v1/predict, /v1/subtitles, /v1/models, /healthz, /readyz,
    /docs) and a web page at /. A bearer token is required when $SERKIT_SERVE_TOKEN is set."""
    try:
        cfg = _config(host, port, option)
    except ValueError as exc:
        _fail(f"bad server option: {exc}")
    try:
        from serkit.serve import run
    except ImportError as exc:
        _fail(f"serkit serve needs the serve extra: pip install 'serkit[serve]' ({exc})")
    predictor = _load(model, segment)
    token = os.environ.get(cfg.token_env)
    if not _loopback(cfg.host) and not token:
        err.print(f"[yellow]warning:[/] listening on {cfg.host} without a token: anyone who can reach "
                  f"this address can use the server (set {cfg.token_env} to require one)")
    err.print(f"serving model [bold]{predictor.name}[/] ({', '.join(predictor.classes)}) on "
              f"http://{cfg.host}:{cfg.port}/  (API docs: /docs; "
              f"{'bearer token required' if token else 'no token'})")
    run(predictor, cfg, log_level=log_level)

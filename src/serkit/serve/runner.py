"""Serve the app with uvicorn (``serkit serve`` calls :func:`run`)."""
from __future__ import annotations

from serkit.config import ServeConfig
from serkit.serve.app import create_app


def run(predictor, config: ServeConfig | None = None, *, log_level: str = "info") -> None:
    """Serve ``predictor`` on ``config.host:config.port`` until interrupted (Ctrl-C)."""
    import uvicorn

    cfg = config or ServeConfig()
    uvicorn.run(create_app(predictor, cfg), host=cfg.host, port=cfg.port, log_level=log_level,
                server_header=False, timeout_keep_alive=5, timeout_graceful_shutdown=5, lifespan="on")

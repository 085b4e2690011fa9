"""``serkit serve``: the recogniser over HTTP (FastAPI + uvicorn) with a web page.

It only wraps :mod:`serkit.inference` (one :class:`~serkit.inference.Predictor` loaded at start-up)
and :class:`serkit.config.ServeConfig` (every limit). Needs the ``serve`` extra:
``pip install 'serkit[serve]'`` (fastapi, uvicorn, python-multipart).

>>> from serkit.inference import Predictor
>>> from serkit.serve import create_app
>>> app = create_app(Predictor.load())          # an ASGI app; serkit.serve.run(...) serves it
"""
from __future__ import annotations

__all__ = ["create_app", "run"]


def __getattr__(name: str):
    if name == "create_app":
        from serkit.serve.app import create_app

        return create_app
    if name == "run":
        from serkit.serve.runner import run

        return run
    raise AttributeError(name)

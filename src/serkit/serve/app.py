"""The HTTP API of ``serkit serve`` (FastAPI). It only wraps :mod:`serkit.inference`: one
Predictor, loaded at start-up, answers every request; nothing in a request can choose a path on the
server or load a model.

Endpoints: ``POST /v1/predict``, ``POST /v1/subtitles``, ``GET /v1/models``, ``GET /healthz``,
``GET /readyz``, the OpenAPI schema (``/openapi.json``, ``/docs``) and the web page (``/``).
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import os
import re
import tempfile
import time
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import ClientDisconnect

from serkit.config import ServeConfig
from serkit.inference import AudioError, class_colors, read_limited
from serkit.serve import page
from serkit.serve.errors import ApiError, audio_error, install_handlers
from serkit.serve.limits import BodyLimitMiddleware, BodyTooLarge, Gate, UploadTimeout

log = logging.getLogger("serkit.serve")

API_VERSION = "v1"
#: raw request bodies of these media types are taken as audio (the format is sniffed from the bytes)
RAW_TYPES = ("application/octet-stream",)
RAW_PREFIXES = ("audio/", "video/")
_SPOOL_BYTES = 1 << 20   # uploads beyond 1 MB go to an anonymous temporary file

AUDIO_BODY = {
    "required": True,
    "description": "the audio: a multipart form with the file in the field `file`, or the raw bytes "
                   "(Content-Type application/octet-stream or audio/*). The format is read from the "
                   "content (WAV, FLAC, Ogg Vorbis/Opus, MP3, AIFF, ...), not from the name.",
    "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                           "properties": {"file": {"type": "string", "format": "binary"}}}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "audio/*": {"schema": {"type": "string", "format": "binary"}},
    },
}

ERRORS = {s: {"description": d, "content": {"application/json": {"example": {
    "error": {"code": c, "message": "…"}}}}} for s, c, d in [
        (400, "undecodable", "empty body, damaged audio, NaN samples"),
        (401, "unauthorized", "a bearer token is required (the server was started with one)"),
        (408, "upload_timeout", "the body did not arrive in time"),
        (413, "too_large", "body over the size limit, or audio over the duration limit (too_long)"),
        (415, "unsupported_media_type", "not audio serkit reads, or a wrong Content-Type"),
        (422, "bad_parameter", "bad query parameter or missing form field"),
        (503, "busy", "too many requests in flight (Retry-After), or a timeout")]}


def _clean_name(name: str | None) -> str | None:
    """The uploaded file's own name (no folders, no control characters), for results and messages."""
    if not name:
        return None
    name = re.split(r"[\\/]", str(name))[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()[:200]
    return name or None


class Upload:
    """The audio of one request: a binary file (in memory up to 1 MB, else an anonymous temporary
    file that the OS removes on close) and the client's file name."""

    def __init__(self, file, name: str | None):
        self.file, self.name = file, name

    def close(self) -> None:
        try:
            self.file.close()
        except Exception:  # pragma: no cover - closing twice or after a failed write
            pass


async def read_upload(request: Request) -> Upload:
    """The audio of a request: the multipart field ``file`` or the raw body. Raises ApiError."""
    ctype = request.headers.get("content-type") or "application/octet-stream"
    media = ctype.split(";", 1)[0].strip().lower()
    try:
        if media == "multipart/form-data":
            form = await request.form(max_files=1, max_fields=16)
            up = form.get("file")
            if up is None or isinstance(up, str):
                await form.close()
                raise ApiError(422, "missing_field", "send the audio in the multipart form field "
                                                     "'file' (e.g. curl -F file=@clip.wav)")
            for key, value in form.multi_items():   # any other uploaded part is closed at once
                if value is not up and hasattr(value, "close"):
                    await value.close()
            return Upload(up.file, _clean_name(up.filename))
        if media in RAW_TYPES or media.startswith(RAW_PREFIXES):
            spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)
            try:
                async for chunk in request.stream():
                    spool.write(chunk)
            except BaseException:
                spool.close()
                raise
            spool.seek(0)
            return Upload(spool, None)
    except BodyTooLarge:
        raise ApiError(413, "too_large", f"the upload is larger than the limit of "
                                         f"{request.app.state.config.max_upload_bytes} bytes") from None
    except UploadTimeout:
        raise ApiError(408, "upload_timeout", f"the upload did not arrive within "
                                              f"{request.app.state.config.upload_timeout_s:g} s") from None
    except ClientDisconnect:
        raise ApiError(400, "client_disconnected", "the client went away during the upload") from None
    raise ApiError(415, "unsupported_media_type",
                   f"Content-Type {media!r} is not accepted: send a multipart form with the field "
                   "'file', or the raw audio as application/octet-stream or audio/*")


def _bearer(request: Request,
            creds: HTTPAuthorizationCredentials | None = Depends(HTTPBearer(auto_error=False))) -> None:
    token = request.app.state.token
    if not token:
        return
    if creds is None or not hmac.compare_digest(creds.credentials.encode(), token.encode()):
        raise ApiError(401, "unauthorized", "this server needs 'Authorization: Bearer <token>'",
                       {"WWW-Authenticate": "Bearer"})


def _decode(cfg: ServeConfig, upload: Upload):
    name = upload.name or "the uploaded audio"
    return read_limited(upload.file, max_seconds=cfg.max_audio_s, max_samples=cfg.max_decoded_samples,
                        min_sample_rate=cfg.min_sample_rate, max_sample_rate=cfg.max_sample_rate,
                        name=name)


async def _infer(request: Request, work, timeout_s: float, timing: dict[str, float]) -> Any:
    """Admit the request, read its audio, run ``work(samples, sr, upload)`` off the event loop
    (decoding included) within the timeout; temporary files are closed whatever happens.
    ``timing`` receives the seconds spent reading the body, waiting for a slot, decoding and in
    inference."""
    state = request.app.state
    ticket = state.gate.admit()
    upload = None
    handed_off = False   # once True, the job (or the gate, if it never starts) cleans up
    t0 = time.perf_counter()
    try:
        upload = await read_upload(request)
        if upload.file.seek(0, os.SEEK_END) == 0:
            raise ApiError(400, "empty", "the request has no audio (the body is empty)")
        upload.file.seek(0)

        submitted = time.perf_counter()

        def job():
            started = time.perf_counter()
            try:
                x, sr = _decode(state.config, upload)
                upload.close()   # the samples are in memory: drop the temporary file now
                decoded = time.perf_counter()
                out = work(x, sr, upload)
                timing.update(read=submitted - t0, queue=started - submitted, decode=decoded - started,
                              infer=time.perf_counter() - decoded)
                return out
            except AudioError as exc:
                return audio_error(exc)
            except ApiError as exc:
                return exc
            except Exception:
                log.exception("inference failed")
                return ApiError(500, "internal", "the server failed on this audio (the server log "
                                                 "has the details)")
            finally:
                upload.close()

        handed_off = True
        out = await state.gate.run(ticket, job, timeout_s, on_cancel=upload.close)
        if isinstance(out, ApiError):
            raise out
        return out
    finally:
        if not handed_off:
            ticket.release()
            if upload is not None:
                upload.close()


def _server_timing(timing: dict[str, float]) -> dict[str, str]:
    """``Server-Timing: queue;dur=…, decode;dur=…, infer;dur=…`` (milliseconds): where a request's
    time went (browsers' developer tools and bench/serve_load.py read it)."""
    if not timing:
        return {}
    return {"Server-Timing": ", ".join(f"{k};dur={1000 * v:.1f}" for k, v in timing.items())}


def create_app(predictor, config: ServeConfig | None = None, *, token: str | None = None) -> FastAPI:
    """The FastAPI application around one loaded :class:`serkit.inference.Predictor`.

    ``token``: the bearer token (default: the environment variable ``config.token_env``; empty or
    unset = no token)."""
    cfg = config or ServeConfig()
    if token is None:
        token = os.environ.get(cfg.token_env) or None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        task = asyncio.create_task(_warm_up(app)) if cfg.warmup else None
        if not cfg.warmup:
            app.state.ready = True
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
            app.state.gate.close()

    app = FastAPI(title="serkit", version=API_VERSION,
                  description="Speech emotion recognition: the serkit recogniser over HTTP. Errors are "
                              '`{"error": {"code", "message"}}`.',
                  docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.predictor, app.state.config, app.state.token = predictor, cfg, token
    app.state.gate = Gate(cfg.max_concurrent, cfg.max_queue, cfg.retry_after_s)
    app.state.ready, app.state.warmup_error = False, None
    install_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=cfg.max_upload_bytes, timeout_s=cfg.upload_timeout_s)
    if cfg.cors_origins:   # outermost, so that its headers are on every answer (a 413 included)
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(cfg.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"])

    api = APIRouter(prefix=f"/{API_VERSION}", dependencies=[Depends(_bearer)], responses=ERRORS)
    classes = list(predictor.classes)

    @api.post("/predict", summary="Emotion of one recording",
              openapi_extra={"requestBody": AUDIO_BODY},
              response_description="the same object as one element of `serkit predict --format json`")
    async def predict(request: Request,
                      timeline: bool = Query(False, description="emotion segments over time (long "
                                                                "recordings): adds `segments`")) -> dict:
        def work(x, sr, upload):
            if timeline:
                return {**predictor.predict_long((x, sr)), "path": upload.name}
            out = predictor.predict_array(x, sr, name=upload.name or "the uploaded audio")
            return {**out, "path": upload.name}

        timing: dict[str, float] = {}
        out = await _infer(request, work, cfg.timeout_s, timing)
        return JSONResponse(out, headers=_server_timing(timing))

    @api.post("/subtitles", summary="Subtitles tagged with emotions (SRT or WebVTT)",
              openapi_extra={"requestBody": AUDIO_BODY}, response_class=PlainTextResponse,
              responses={200: {"content": {"application/x-subrip": {}, "text/vtt": {}}}})
    async def subtitles(request: Request,
                        format: Literal["srt", "vtt"] = Query("srt", description="srt or vtt"),
                        language: str | None = Query(None, pattern=r"^[a-z]{2,3}$",
                                                     description="spoken language code (default: "
                                                                 "detected)")) -> Response:
        styles = class_colors(classes) if format == "vtt" else None

        def work(x, sr, upload):
            try:
                return predictor.subtitles((x, sr), fmt=format, language=language, styles=styles)
            except ModuleNotFoundError as exc:
                return ApiError(501, "not_available", str(exc))

        timing: dict[str, float] = {}
        text = await _infer(request, work, cfg.subtitles_timeout_s, timing)
        media = "text/vtt" if format == "vtt" else "application/x-subrip"
        return Response(text, media_type=f"{media}; charset=utf-8", headers=_server_timing(timing))

    @api.get("/models", summary="The loaded model's card (model.json)")
    async def models() -> dict:
        return JSONResponse(predictor.card)

    app.include_router(api)

    @app.get("/healthz", summary="The process is alive", tags=["health"])
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="The model is loaded and warmed up", tags=["health"])
    async def readyz() -> Response:
        body = {"status": "ready" if app.state.ready else "starting", "model": predictor.name,
                **app.state.gate.stats()}
        if app.state.warmup_error:
            body = {"error": {"code": "not_ready", "message": app.state.warmup_error}}
        return JSONResponse(body, status_code=200 if app.state.ready else 503)

    page.install(app, predictor, cfg, classes)
    return app


async def _warm_up(app: FastAPI) -> None:
    """One inference on a second of low noise, so that the first request does not pay for loading
    the backbone; /readyz answers 503 until it is done."""
    import numpy as np

    predictor = app.state.predictor

    def run():
        x = (0.05 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
        predictor.score_batch([predictor.preprocess(x, 16000, "warm-up")])

    try:
        await asyncio.get_running_loop().run_in_executor(app.state.gate.executor, run)
        app.state.ready = True
    except Exception as exc:   # the model is broken: stay not-ready, say why
        log.exception("warm-up failed")
        app.state.warmup_error = f"the model failed its warm-up inference: {type(exc).__name__}"

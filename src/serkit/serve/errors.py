"""Every error of the HTTP API is ``{"error": {"code": ..., "message": ...}}`` with the right status;
no traceback ever reaches a client (it goes to the server log)."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("serkit.serve")

#: AudioError kind -> (HTTP status, error code)
AUDIO_ERRORS = {
    "empty": (400, "empty"),
    "unreadable": (400, "undecodable"),
    "not_finite": (400, "not_finite"),
    "bad_input": (400, "bad_audio"),
    "too_long": (413, "too_long"),
    "unsupported": (415, "unsupported_media_type"),
}

_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
                 408: "upload_timeout", 413: "too_large", 415: "unsupported_media_type",
                 422: "bad_parameter", 503: "busy"}


class ApiError(Exception):
    """An error answer: status, machine-readable code, plain-words message, extra headers."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def audio_error(exc) -> ApiError:
    """The ApiError of a :class:`serkit.inference.AudioError`."""
    status, code = AUDIO_ERRORS.get(getattr(exc, "kind", ""), (400, "bad_audio"))
    return ApiError(status, code, str(exc))


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors():
        where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("query", "body", "path", "header"))
        parts.append(f"{where}: {e.get('msg', 'invalid')}" if where else str(e.get("msg", "invalid")))
    return "bad parameter: " + "; ".join(parts)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return error_response(422, "bad_parameter", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return error_response(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        # Starlette re-raises after answering, so the server log gets the traceback once
        return error_response(500, "internal", "the server failed on this request (the server log "
                                               "has the details)")

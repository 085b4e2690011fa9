"""The server's limits: request bodies (size, upload time) and inference admission (a bounded
number of requests in flight plus a bounded queue, a timeout, work off the event loop)."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from serkit.serve.errors import ApiError

log = logging.getLogger("serkit.serve")


class BodyTooLarge(Exception):
    """The request body passed the upload limit (raised while reading it)."""


class UploadTimeout(Exception):
    """The request body did not arrive within the upload time limit."""


class BodyLimitMiddleware:
    """Pure ASGI middleware: refuses a declared Content-Length over ``max_bytes`` at once (413,
    nothing read), and wraps ``receive`` so that reading more than ``max_bytes`` or taking longer
    than ``timeout_s`` raises :class:`BodyTooLarge` / :class:`UploadTimeout` inside the endpoint."""

    def __init__(self, app, max_bytes: int, timeout_s: float):
        self.app, self.max_bytes, self.timeout_s = app, int(max_bytes), float(timeout_s)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                n = int(declared)
            except ValueError:
                n = -1
            if n < 0 or n > self.max_bytes:
                return await _send_error(send, 413 if n >= 0 else 400,
                                         "too_large" if n >= 0 else "bad_request",
                                         f"the request body is {n} bytes; the limit is "
                                         f"{self.max_bytes} bytes" if n >= 0 else
                                         "the Content-Length header is not a number")
        seen = 0
        deadline = None

        async def limited_receive():
            nonlocal seen, deadline
            if deadline is None:
                deadline = time.monotonic() + self.timeout_s
            left = deadline - time.monotonic()
            if left <= 0:
                raise UploadTimeout()
            try:
                message = await asyncio.wait_for(receive(), left)
            except asyncio.TimeoutError:
                raise UploadTimeout() from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge()
            return message

        await self.app(scope, limited_receive, send)


async def _send_error(send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class Ticket:
    """One admitted request; released exactly once (when its work ends, or when it never ran)."""

    def __init__(self, gate: "Gate"):
        self.gate, self.released = gate, False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.gate.pending -= 1


class Gate:
    """At most ``max_concurrent`` inferences run (in a thread pool, off the event loop) and at most
    ``max_queue`` more wait; a request beyond that gets 503 with Retry-After at once. A request
    that times out answers 503 'timeout'; its slot is freed when its thread actually finishes (a
    running inference cannot be interrupted), so the number of threads never grows."""

    def __init__(self, max_concurrent: int, max_queue: int, retry_after_s: int):
        self.max_concurrent, self.capacity = max_concurrent, max_concurrent + max_queue
        self.retry_after_s = retry_after_s
        self.pending = 0
        self.executor = ThreadPoolExecutor(max_concurrent, thread_name_prefix="serkit-infer")

    def stats(self) -> dict[str, int]:
        return {"in_flight": min(self.pending, self.max_concurrent),
                "queued": max(0, self.pending - self.max_concurrent), "capacity": self.capacity}

    def admit(self) -> Ticket:
        if self.pending >= self.capacity:
            raise ApiError(503, "busy", f"the server is busy ({self.pending} requests in flight or "
                                        f"queued); try again in {self.retry_after_s} s",
                           {"Retry-After": str(self.retry_after_s)})
        self.pending += 1
        return Ticket(self)

    async def run(self, ticket: Ticket, fn: Callable[[], Any], timeout_s: float,
                  on_cancel: Callable[[], None] | None = None) -> Any:
        """Run ``fn()`` in the pool; its result, or ApiError 503 'timeout'."""
        loop = asyncio.get_running_loop()

        def done(_f: Future) -> None:
            try:
                loop.call_soon_threadsafe(ticket.release)
            except RuntimeError:   # the loop is gone (shutdown)
                pass

        try:
            cf = self.executor.submit(fn)
        except BaseException:   # shut down: the work never runs
            ticket.release()
            if on_cancel is not None:
                on_cancel()
            raise
        cf.add_done_callback(done)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(cf), timeout_s)
        except asyncio.TimeoutError:
            if cf.cancel() and on_cancel is not None:   # never started: nothing else will clean up
                on_cancel()
            raise ApiError(503, "timeout", f"the request took longer than {timeout_s:g} s "
                                           "(the server may be overloaded); try again later",
                           {"Retry-After": str(self.retry_after_s)}) from None

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

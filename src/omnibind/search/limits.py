"""ASGI middleware that bounds request bodies: size (413 before any parser sees them), time (408 when a body
stalls or trickles), and the memory all buffered bodies may hold together (503 with Retry-After)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
BODY_IDLE_SECONDS = 10.0  # longest wait for the next chunk of a body
BODY_TOTAL_SECONDS = 60.0  # longest time to receive a whole body
BUFFERED_UPLOADS = 8  # bodies of the largest size that may be buffered at once


class BodyLimit:
    """Read at most `max_bytes` of a request body, answering 413 (with a JSON detail) when it is larger, 408
    when it stalls for `idle_seconds` or takes over `total_seconds`, and 503 when the bodies being buffered
    together would pass `max_buffered` bytes; then replay the body to the app. A declared Content-Length over
    the limit is refused unread."""

    def __init__(self, app: Any, max_bytes: int, idle_seconds: float = BODY_IDLE_SECONDS,
                 total_seconds: float = BODY_TOTAL_SECONDS, max_buffered: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.idle_seconds = idle_seconds
        self.total_seconds = total_seconds
        self.max_buffered = max_buffered if max_buffered is not None else BUFFERED_UPLOADS * max_bytes
        self.buffered = 0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or len(declared) > 18 or int(declared) > self.max_bytes):
            await _answer(send, 413, f"request body: {declared.decode('latin-1')[:40]} bytes is over the limit "
                                     f"(expected at most {self.max_bytes} bytes)")
            return
        reserved = int(declared) if declared is not None else self.max_bytes
        if self.buffered + reserved > self.max_buffered:
            await _answer(send, 503, "request body: the service is receiving too many uploads at once (retry in 1 s)",
                          [(b"retry-after", b"1")])
            return
        self.buffered += reserved
        try:
            body = await self._read(receive, send)
        finally:
            self.buffered -= reserved
        if body is None:
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive: Any, send: Any) -> bytes | None:
        """The whole body, or None after answering (or losing) the request."""
        chunks, total = [], 0
        deadline = time.monotonic() + self.total_seconds
        while True:
            wait = min(self.idle_seconds, deadline - time.monotonic())
            try:
                message = await asyncio.wait_for(receive(), timeout=max(wait, 0.001))
            except TimeoutError:
                await _answer(send, 408, f"request body: not received in time (expected each part within "
                                         f"{self.idle_seconds:g} s and the whole body within {self.total_seconds:g} s)")
                return None
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                await _answer(send, 413, f"request body: more than {self.max_bytes} bytes is over the limit "
                                         f"(expected at most {self.max_bytes} bytes)")
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


async def _answer(send: Any, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """A JSON error answer that closes the connection (the rest of the body is not read)."""
    payload = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            (b"connection", b"close"), *(headers or [])]})
    await send({"type": "http.response.body", "body": payload})

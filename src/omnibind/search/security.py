"""Who may talk to the service: a Host allow-list (against DNS rebinding: a page on evil.example whose name
resolves to 127.0.0.1 sends `Host: evil.example`), an optional bearer token, and a header deadline on every
connection (uvicorn's h11 protocol with a timer, so a client that trickles its headers is cut off)."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
from collections.abc import Iterable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from uvicorn.protocols.http.h11_impl import H11Protocol

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
TOKEN_COOKIE = "omnibind_token"
HEADER_SECONDS = 10.0


def is_loopback(host: str) -> bool:
    """Whether binding to `host` only accepts connections from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name in a Host header, without its port (and without the brackets of an IPv6 literal)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class Guard:
    """ASGI middleware: refuse a Host that is not allowed (400) and, with a token, a request without it (401).

    Allowed hosts are the loopback names, any IP literal (a rebinding attack needs a domain name) and the
    names given. The token is read from `Authorization: Bearer <token>` or from a cookie the web page gets by
    visiting `/?token=<token>` once (HttpOnly, SameSite=Strict), so that <img> and <audio> elements work."""

    def __init__(self, app: Any, token: str | None = None, allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.token = token
        self.allowed = LOOPBACK_NAMES | {h.lower() for h in allowed_hosts}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        host = host_name(headers.get(b"host", b"").decode("latin-1"))
        if not (host in self.allowed or _is_ip(host)):
            await _deny(send, 400, f"Host header: {host[:60]!r} is not served (expected localhost, an IP address or "
                                   "a name given to `omnibind serve --allowed-host`)")
            return
        if self.token is not None and scope.get("method") != "OPTIONS":  # a CORS preflight carries no token
            given = self._given(headers, scope)
            if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
                await _deny(send, 401, "Authorization: missing or wrong token (expected the header "
                                       "'Authorization: Bearer <token>' given to `omnibind serve --token`)",
                            [(b"www-authenticate", b'Bearer realm="omnibind"')])
                return
            if scope["path"] == "/" and _query_token(scope) is not None:
                await _set_cookie(send, self.token)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _given(headers: dict[bytes, bytes], scope: dict[str, Any]) -> str | None:
        scheme, _, value = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        cookie: SimpleCookie = SimpleCookie()
        try:
            cookie.load(headers.get(b"cookie", b"").decode("latin-1"))
        except Exception:  # a malformed cookie header is no token
            cookie = SimpleCookie()
        if TOKEN_COOKIE in cookie:
            return cookie[TOKEN_COOKIE].value
        return _query_token(scope) if scope["path"] == "/" else None


def _query_token(scope: dict[str, Any]) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


async def _set_cookie(send: Any, token: str) -> None:
    """Redirect to / with the token in a cookie (so it leaves the address bar and the history)."""
    cookie = f"{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", b"/"), (b"set-cookie", cookie.encode("latin-1")), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


async def _deny(send: Any, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": payload})


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers are not complete within
    `header_seconds` of its opening or of the previous response."""

    header_seconds = HEADER_SECONDS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        if getattr(self, "_header_timer", None) is not None:
            self._header_timer.cancel()  # type: ignore[union-attr]
        self._header_timer = self.loop.call_later(self.header_seconds, self._headers_overdue)

    def _headers_overdue(self) -> None:
        self._header_timer = None
        waiting = self.cycle is None or self.cycle.response_complete  # for a request's headers
        if waiting and not self.transport.is_closing():
            self.transport.close()

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before and self._header_timer is not None:  # a request's headers arrived
            self._header_timer.cancel()
            self._header_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if getattr(self, "_header_timer", None) is not None:
            self._header_timer.cancel()  # type: ignore[union-attr]
            self._header_timer = None
        super().connection_lost(exc)

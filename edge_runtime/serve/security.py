"""The server's gates: a bearer token (or the browser's cookie), and a limit on request bodies.

Both are plain ASGI middlewares that answer with a JSON ``{"error"}`` themselves, so a request
they refuse never reaches the app, and an upload over the limit is refused before it is read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "fmnist_session"
PROTECTED_PREFIXES = ("/api/", "/v2", "/metrics")
MAX_DIGITS = 18
"""Longer numbers are refused: ``int()`` of a long digit string is slow and, past 4,300
digits, raises; no count a client sends needs more than 18 digits."""


class Paths:
    """A set of route paths, some with ``{name}`` parameters, that a request path is matched
    against (a parameter matches one path segment)."""

    def __init__(self, paths: frozenset[str] | tuple[str, ...]) -> None:
        self.exact = frozenset(p for p in paths if "{" not in p)
        self.templates = [
            (re.compile(re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", re.escape(p)) + "$"), p)
            for p in paths
            if "{" in p
        ]

    def match(self, path: str) -> str | None:
        """The route ``path`` belongs to, or None."""
        if path in self.exact:
            return path
        return next((p for pattern, p in self.templates if pattern.match(path)), None)


def whole_number(text: str | None) -> int | None:
    """A non-negative decimal number sent by a client, or None when ``text`` is not one.

    Only ASCII digits count: ``str.isdigit`` also accepts ``"²"``, which ``int`` refuses.
    """
    if text is None or not (text.isascii() and text.isdigit()) or len(text) > MAX_DIGITS:
        return None
    return int(text)


async def send_json(
    send: Send, status: int, body: dict, headers: dict[str, str] | None = None
) -> None:
    """Answer a request from a middleware with a JSON body."""
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


def session_value(token: str) -> str:
    """The cookie value that stands for ``token``: derived from it, so the cookie never holds
    the token itself, and a new token invalidates every old cookie."""
    return hmac.new(token.encode(), b"fmnist-edge session", hashlib.sha256).hexdigest()


def session_cookie(token: str) -> str:
    """A ``Set-Cookie`` value: HttpOnly (no script reads it), SameSite=Strict (no other site
    sends it), for the whole server. An image element cannot send headers; this lets it in."""
    return f"{COOKIE}={session_value(token)}; HttpOnly; SameSite=Strict; Path=/"


class TokenGate:
    """Refuse protected requests without ``Authorization: Bearer TOKEN`` or the session cookie.

    Protected: every ``/api``, ``/v2`` and ``/metrics`` request but those to ``open_paths``
    (the page and the health probes). Tokens are compared in constant time.
    """

    def __init__(self, app: ASGIApp, *, token: str, open_paths: frozenset[str]) -> None:
        self.app = app
        self.open_paths = Paths(open_paths)
        self.token = token.encode()
        self.session = session_value(token).encode()

    def protects(self, path: str) -> bool:
        return self.open_paths.match(path) is None and path.startswith(PROTECTED_PREFIXES)

    def allows(self, headers: Headers) -> bool:
        """Whether the request carries the token or the cookie derived from it."""
        scheme, _, credentials = headers.get("authorization", "").strip().partition(" ")
        # The scheme is case-insensitive (RFC 9110 §11.1); the token is compared in full.
        if scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode(), self.token
        ):
            return True
        cookies = (c.strip().partition("=") for c in headers.get("cookie", "").split(";"))
        sent = next((value for name, _, value in cookies if name == COOKIE), "")
        return hmac.compare_digest(sent.encode(), self.session)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused = (
            scope["type"] == "http"
            and self.protects(scope["path"])
            and not self.allows(Headers(scope=scope))
        )
        if refused:
            await send_json(
                send,
                401,
                {"error": "missing or wrong token: send Authorization: Bearer TOKEN"},
                {"www-authenticate": 'Bearer realm="fmnist-edge"'},
            )
            return
        await self.app(scope, receive, send)


class BodyTooLarge(Exception):
    """A request body went over the limit while it was being read."""


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413.

    A declared ``Content-Length`` over the limit is refused before anything is read; a body
    without one (chunked) is counted as it arrives, and reading stops at the limit by raising
    :class:`BodyTooLarge` in the app, which answers 413.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def error(self) -> dict[str, str]:
        return {"error": f"request body over the {self.max_bytes / 2**20:g} MB upload limit"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            length = whole_number(declared)
            if length is None:
                await send_json(send, 400, {"error": f"invalid Content-Length {declared!r}"})
                return
            if length > self.max_bytes:
                await send_json(send, 413, self.error())
                return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.error()["error"])
            return message

        await self.app(scope, counted, send)

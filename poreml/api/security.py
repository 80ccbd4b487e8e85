"""Request guards that run before anything reads the body: bearer token and body size.

Both are pure ASGI middlewares, outermost first:

* :class:`BearerTokenMiddleware`: with ``POREML_API_TOKEN`` set, ``/v1/*`` needs
  ``Authorization: Bearer <token>`` (compared with :func:`hmac.compare_digest`); a client
  without it gets its 401 at once, however large or malformed its body is. ``/healthz`` and the
  documentation stay open.
* :class:`BodySizeLimitMiddleware`: a body larger than ``POREML_API_MAX_BODY_BYTES`` is a 413,
  decided from ``Content-Length`` before reading, or while streaming a body sent without one.
"""

from __future__ import annotations

import hmac
import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "PROTECTED_PREFIX",
    "BearerTokenMiddleware",
    "BodySizeLimitMiddleware",
    "token_matches",
]

PROTECTED_PREFIX = "/v1/"
"""Paths that need the token when one is configured."""


def token_matches(header: bytes | None, token: str) -> bool:
    """Whether a raw ``Authorization`` header value carries ``Bearer <token>``.

    The scheme is case-insensitive (RFC 9110); the token (UTF-8) is compared in constant time.
    """
    if not header:
        return False
    scheme, _, credentials = header.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    return hmac.compare_digest(credentials.strip(), token.encode("utf-8"))


class BearerTokenMiddleware:
    """Answer 401 (with ``WWW-Authenticate: Bearer``) to ``/v1/*`` requests without the token.

    Args:
        app: the wrapped ASGI application.
        token: the required token; None or empty disables the check.
    """

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token or None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the token on protected HTTP requests, then hand over to the app."""
        if (
            self.token is None
            or scope["type"] != "http"
            or not str(scope.get("path", "")).startswith(PROTECTED_PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        header = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                header = value
                break
        if token_matches(header, self.token):
            await self.app(scope, receive, send)
            return
        reason = "missing" if header is None else "invalid"
        # RFC 6750 section 3: no error code when the request carried no credentials at all.
        challenge = b"Bearer" if header is None else b'Bearer error="invalid_token"'
        detail = (
            f"Authorization header: {reason} bearer token; this server requires "
            "'Authorization: Bearer <token>' on /v1/* (server setting POREML_API_TOKEN)"
        )
        await send_json_error(send, 401, detail, [(b"www-authenticate", challenge)])


def body_too_large_detail(limit: int) -> str:
    """The ``detail`` of a 413 for a body over ``limit`` bytes."""
    return (
        f"request body: larger than the server accepts ({limit} bytes, server setting "
        "POREML_API_MAX_BODY_BYTES); send fewer candidates per request"
    )


class BodySizeLimitMiddleware:
    """Answer 413 to HTTP requests whose body exceeds ``max_bytes``.

    A declared ``Content-Length`` above the limit is refused before any byte is read. Otherwise
    the bytes are counted as the application receives them; past the limit, receiving raises an
    ``HTTPException(413)``, which the app's error handlers answer as JSON.

    Args:
        app: the wrapped ASGI application.
        max_bytes: the largest accepted body.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse or count the body, then hand over to the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await send_json_error(send, 413, body_too_large_detail(self.max_bytes))
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, body_too_large_detail(self.max_bytes))
            return message

        await self.app(scope, counted_receive, send)


def _content_length(scope: Scope) -> int | None:
    """The declared ``Content-Length``, or None when absent or unreadable."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def send_json_error(
    send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Send a complete ``{"detail": ...}`` JSON answer with ``status``."""
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

"""What a request must pass before the application reads its body (raw ASGI middleware).

- :class:`TokenGuard`: without the bearer token, the answer is 401 before a byte of
  the body is read, and the connection is closed: a request with no token costs the
  server nothing (no temporary file, no parsing).
- :class:`BodyLimit`: a body larger than its route allows is answered 413 as soon as
  it says so (``Content-Length``) or passes the limit (chunked); one that stalls,
  nothing received for a while, is answered 408.
"""

from __future__ import annotations

import asyncio
from typing import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .security import token_matches

#: Requests every client may make, token or not.
OPEN_PATHS = frozenset({"/health"})


def size_text(size: int) -> str:
    """``102.4 KiB``, ``200 MiB``: a byte count as a person reads it."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.4g} {unit}"
    return f"{size} bytes"


async def refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str, **headers: str) -> None:
    """Answer ``{"detail": ...}`` and close the connection (the body, if any, stays unread)."""
    response = JSONResponse({"detail": detail}, status_code=status, headers={"Connection": "close", **headers})
    await response(scope, receive, send)


class TokenGuard:
    """ASGI middleware: every request but :data:`OPEN_PATHS` needs ``Authorization: Bearer TOKEN``."""

    def __init__(self, app: ASGIApp, *, token: str) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS:
            authorization = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
            if not token_matches(authorization, self.token):
                await refuse(scope, receive, send, 401, "missing or wrong bearer token",
                             **{"WWW-Authenticate": "Bearer"})
                return
        await self.app(scope, receive, send)


class _Refused(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


class BodyLimit:
    """ASGI middleware: a request body over the bytes ``limit_of(scope)`` gives is
    answered 413 (with the message it gives) before it is all read; one that sends
    nothing for ``idle_timeout`` seconds, 408."""

    def __init__(self, app: ASGIApp, *, limit_of: Callable[[Scope], tuple[int, str]], idle_timeout: float) -> None:
        self.app, self.limit_of, self.idle_timeout = app, limit_of, idle_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, too_large = self.limit_of(scope)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await refuse(scope, receive, send, 413, too_large)
            return
        received, refused, started = 0, None, False

        async def guarded_receive() -> Message:
            nonlocal received, refused
            try:
                message = await asyncio.wait_for(receive(), self.idle_timeout)
            except asyncio.TimeoutError:
                refused = _Refused(408, f"request body stalled: nothing received for {self.idle_timeout:g} s")
                raise refused from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = _Refused(413, too_large)
                    raise refused
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused is None:  # the app's answer to a body cut short is replaced by ours
                started = started or message["type"] == "http.response.start"
                await send(message)

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception:
            if refused is None:
                raise
        if refused is not None and not started:
            await refuse(scope, receive, send, refused.status, refused.detail)

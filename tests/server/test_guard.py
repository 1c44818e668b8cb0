"""The ASGI guards in front of the application, driven as uvicorn drives them."""

from __future__ import annotations

import asyncio
import json

import pytest

pytest.importorskip("fastapi")

from vsearch.server.guard import BodyLimit, TokenGuard  # noqa: E402


class Client:
    """One request, its body sent in ``chunks`` (then nothing more, as a stalled client)."""

    def __init__(self, path: str, chunks: list[bytes], headers: dict[str, str] | None = None) -> None:
        self.scope = {"type": "http", "method": "POST", "path": path,
                      "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]}
        self.chunks, self.read, self.sent = list(chunks), 0, []

    async def receive(self) -> dict:
        if not self.chunks:
            await asyncio.Event().wait()  # stalled
        self.read += 1
        body = self.chunks.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(self.chunks) or body != b""}

    async def send(self, message: dict) -> None:
        self.sent.append(message)

    def answer(self) -> tuple[int, dict]:
        start = next(m for m in self.sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")
        return start["status"], json.loads(body)


async def reading_app(scope, receive, send) -> None:
    """An application that reads the whole body, then answers 200."""
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def run(app, client: Client) -> tuple[int, dict]:
    asyncio.run(app(client.scope, client.receive, client.send))
    return client.answer()


def test_no_token_is_refused_before_a_byte_of_the_body_is_read():
    guard = TokenGuard(reading_app, token="t0k")
    anonymous = Client("/query", [b"x" * 1000] * 20)
    assert run(guard, anonymous) == (401, {"detail": "missing or wrong bearer token"})
    assert anonymous.read == 0
    assert (b"connection", b"close") in anonymous.sent[0]["headers"]
    assert run(guard, Client("/health", [b""])) == (200, {})
    assert run(guard, Client("/query", [b"x", b""], {"Authorization": "Bearer t0k"})) == (200, {})


def test_body_limits_too_large_and_stalled():
    limit = BodyLimit(reading_app, limit_of=lambda scope: (100, "too much"), idle_timeout=0.3)
    declared = Client("/query", [b"x" * 50], {"Content-Length": "101"})
    assert run(limit, declared) == (413, {"detail": "too much"}) and declared.read == 0
    chunked = Client("/query", [b"x" * 60] * 5)
    assert run(limit, chunked) == (413, {"detail": "too much"}) and chunked.read == 2
    stalled = Client("/query", [b"x" * 10])
    assert run(limit, stalled) == (408, {"detail": "request body stalled: nothing received for 0.3 s"})
    assert run(limit, Client("/query", [b"x" * 60, b"x" * 40, b""])) == (200, {})

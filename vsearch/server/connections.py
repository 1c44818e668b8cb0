"""Connections: how many, for how long, and what a flood of them may cost.

uvicorn's own knobs do most of it (see :func:`uvicorn_settings`): ``limit_concurrency``
answers 503 past a number of connections, ``timeout_keep_alive`` closes idle ones,
h11's ``max_incomplete_event_size`` bounds a request's line and headers. Three things
uvicorn does not do (its ``--timeout-request-start`` was proposed, never merged):

- **a deadline for a request's headers** (:class:`GuardedH11Protocol`): a client
  that trickles them a byte at a time (slowloris) is closed after ``header_timeout``;
- **room for a new connection**: past ``limit_concurrency``, the connection that has
  waited longest without a complete request is closed, so that half-open
  connections cannot keep an authorised client out (uvicorn would answer it 503);
- **file descriptors**: the soft limit is raised to the hard one, and connections
  are capped below it (:func:`connection_cap`), so that accepting never fails; if it
  does (EMFILE), asyncio logs a traceback per attempt, thousands a second, where
  :func:`quiet_accept_errors` logs one line a minute.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import time

from uvicorn.protocols.http.h11_impl import H11Protocol

from ..errors import VsearchError
from .config import KEEP_ALIVE_TIMEOUT, MAX_HEADER_BYTES, ServerConfig

log = logging.getLogger(__name__)

#: Connections waiting in the kernel to be accepted; asyncio accepts up to this many at once.
BACKLOG = 64

#: File descriptors kept for everything but connections (index, decoders, logs), and
#: for a burst of connections accepted at once before extra ones are closed.
RESERVED_FDS = 64 + 2 * BACKLOG

#: Seconds between two log lines about running out of file descriptors.
_ACCEPT_ERROR_EVERY_S = 60.0


def raise_fd_limit() -> int:
    """Raise this process's soft limit of open files to the hard limit; returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 16)
    if wanted > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(wanted: int, fd_limit: int, *, decoders: int = 0) -> int:
    """Connections to hold at most: ``wanted``, unless the open-files limit leaves fewer
    (besides :data:`RESERVED_FDS`, two pipes to each of ``decoders`` processes kept warm)."""
    return max(8, min(wanted, fd_limit - RESERVED_FDS - 2 * decoders))


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound now: a port in use is a one-line error before
    anything else starts (uvicorn would log it and exit 3, this CLI's "no index")."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise VsearchError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        raise VsearchError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    return sock


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on request headers and room made for
    new connections (see the module docstring). ``header_timeout`` is set on the
    subclass :func:`guarded_protocol` makes."""

    header_timeout: float = 10.0

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_since = time.monotonic()
        self._arm()
        self._make_room()

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self._waiting():
            self._arm()  # the first byte of a kept-alive connection's next request
        super().data_received(data)
        if not self._waiting():
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._waiting_since = time.monotonic()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _waiting(self) -> bool:
        """No request under way: none yet, or the last one answered."""
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self._waiting() and not self.transport.is_closing():
            log.debug("%s: request headers not received within %g s: closed", self.client, self.header_timeout)
            self.transport.close()

    def _make_room(self) -> None:
        """Past the limit, close the connections that have waited longest for a request."""
        limit = self.limit_concurrency
        if limit is None:
            return
        while len(self.connections) >= limit:
            idle = [c for c in self.connections if c is not self and isinstance(c, GuardedH11Protocol)
                    and c._waiting() and not c.transport.is_closing()]
            if not idle:
                break  # every other one is busy: this one's request is answered 503 by uvicorn
            oldest = min(idle, key=lambda c: c._waiting_since)
            oldest.transport.close()
            self.connections.discard(oldest)  # its connection_lost comes on the next turn of the loop
        if len(self.connections) > limit + BACKLOG:  # busy ones all: do not hold more descriptors
            self.transport.close()


def guarded_protocol(header_timeout: float) -> type[GuardedH11Protocol]:
    """The protocol class for uvicorn's ``http`` setting."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"header_timeout": header_timeout})


def uvicorn_settings(config: ServerConfig, max_connections: int) -> dict:
    """uvicorn's settings for ``config``: its own limits, and our protocol."""
    return dict(
        http=guarded_protocol(config.header_timeout),
        limit_concurrency=max_connections,
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        backlog=BACKLOG,
        timeout_graceful_shutdown=10,
        log_level="warning",
        access_log=False,
        server_header=False,
    )


def quiet_accept_errors(loop: asyncio.AbstractEventLoop) -> None:
    """Log running out of file descriptors while accepting once a minute, in one
    line, instead of asyncio's traceback per attempt; other errors as before."""
    previous = loop.get_exception_handler()
    last = [0.0]

    def handler(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        if context.get("message") == "socket.accept() out of system resource":
            if time.monotonic() - last[0] >= _ACCEPT_ERROR_EVERY_S:
                last[0] = time.monotonic()
                log.warning("cannot accept connections: %s (new ones wait; this is logged once a minute)",
                            context.get("exception"))
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)

"""Connection limits that need no server: the cap under the open-files limit, and
running out of file descriptors logged in one line, not a traceback per attempt."""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket

import pytest

pytest.importorskip("uvicorn")

from vsearch.server.connections import RESERVED_FDS, connection_cap, quiet_accept_errors  # noqa: E402


def test_connections_are_capped_below_the_open_files_limit():
    assert connection_cap(256, 65536) == 256
    assert connection_cap(256, 256) == 256 - RESERVED_FDS
    assert connection_cap(256, 256, decoders=5) == 256 - RESERVED_FDS - 10  # two pipes each
    assert connection_cap(256, 100) == 8  # never none at all
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert connection_cap(10**6, soft) < soft


def test_accept_errors_are_one_line_a_minute(caplog):
    loop = asyncio.new_event_loop()
    try:
        quiet_accept_errors(loop)
        with caplog.at_level(logging.WARNING), socket.socket() as sock:
            for _ in range(2048):  # what one turn of asyncio's accept loop reports on EMFILE
                loop.call_exception_handler({"message": "socket.accept() out of system resource",
                                             "exception": OSError(errno.EMFILE, "Too many open files"),
                                             "socket": sock})
            loop.call_exception_handler({"message": "something else", "exception": ValueError("kept")})
    finally:
        loop.close()
    accept = [r for r in caplog.records if "cannot accept connections" in r.getMessage()]
    assert len(accept) == 1 and accept[0].exc_info is None and "\n" not in accept[0].getMessage()
    assert "Too many open files" in accept[0].getMessage()
    assert any("something else" in r.getMessage() for r in caplog.records)  # other errors as before

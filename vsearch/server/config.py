"""The server's settings, as ``vsearch serve`` parses them (no web framework needed here)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..decode import DEFAULT_MAX_PIXELS, DEFAULT_TIMEOUT

#: Largest clip upload accepted by default (MiB).
DEFAULT_MAX_UPLOAD_MB = 200

#: Longest clip accepted by default (seconds): a query clip is held decoded in memory.
DEFAULT_MAX_CLIP_SECONDS = 600.0

#: Connections held open at once by default (uvicorn's ``limit_concurrency``).
DEFAULT_MAX_CONNECTIONS = 256

#: Seconds a client has to send a request's line and headers.
DEFAULT_HEADER_TIMEOUT = 10.0

#: Seconds a request body may stall (nothing received) before the request is dropped.
BODY_IDLE_TIMEOUT = 30.0

#: Seconds an idle keep-alive connection is kept (uvicorn's ``timeout_keep_alive``).
KEEP_ALIVE_TIMEOUT = 5

#: Bytes of request line and headers a client may send (h11's ``max_incomplete_event_size``).
MAX_HEADER_BYTES = 16 << 10

#: Bytes of a request body that is not a clip upload (``POST /videos``' JSON).
MAX_JSON_BYTES = 1 << 20

#: Paths one ``POST /videos`` may name.
MAX_PATHS = 1000

#: Bytes of one path (Linux's PATH_MAX).
MAX_PATH_BYTES = 4096


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """Everything a server is started with.

    ``token`` (required unless ``host`` is loopback) must come with every request
    but ``/health`` as ``Authorization: Bearer``; ``allow_dirs`` are the only folders
    whose files clients may name; ``query_workers`` threads run queries (CPU work
    never blocks the event loop); ``upload_dir`` holds uploads while they are
    queried (the system's temporary folder by default), each removed after its request.
    ``max_pixels`` bounds a clip's or an added video's frame size, read from its
    headers before anything is decoded. ``max_connections`` connections are held at
    once: past it, the oldest one still sending its request is closed to make room
    (or, every one busy, requests are answered 503); ``header_timeout`` seconds is
    what a client gets to send a request's line and headers.
    """

    index: Path
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    allow_dirs: tuple[Path, ...] = ()
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB << 20
    max_clip_seconds: float = DEFAULT_MAX_CLIP_SECONDS
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    query_workers: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    device: str = "auto"
    decode_timeout: float = DEFAULT_TIMEOUT
    upload_dir: Path | None = None
    refresh_interval: float = 1.0

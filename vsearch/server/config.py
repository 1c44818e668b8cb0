"""The server's settings, as ``vsearch serve`` parses them (no web framework needed here)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..decode import DEFAULT_TIMEOUT

#: Largest clip upload accepted by default (MiB).
DEFAULT_MAX_UPLOAD_MB = 200

#: Longest clip accepted by default (seconds): a query clip is held decoded in memory.
DEFAULT_MAX_CLIP_SECONDS = 600.0


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """Everything a server is started with.

    ``token`` (required unless ``host`` is loopback) must come with every request
    but ``/health`` as ``Authorization: Bearer``; ``allow_dirs`` are the only folders
    whose files clients may name; ``query_workers`` threads run queries (CPU work
    never blocks the event loop); ``upload_dir`` holds uploads while they are
    queried (the system's temporary folder by default), each removed after its request.
    """

    index: Path
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    allow_dirs: tuple[Path, ...] = ()
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB << 20
    max_clip_seconds: float = DEFAULT_MAX_CLIP_SECONDS
    query_workers: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    device: str = "auto"
    decode_timeout: float = DEFAULT_TIMEOUT
    upload_dir: Path | None = None
    refresh_interval: float = 1.0

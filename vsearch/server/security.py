"""Who may call the server, and which server-side files it may read.

- The server binds to loopback unless told otherwise; a non-loopback address needs a
  token (:func:`check_bind`), which every request but ``/health`` must then present as
  ``Authorization: Bearer TOKEN`` (:func:`token_matches`).
- Paths named by a client are resolved (``..`` and every symlink followed) and must
  land inside one of the ``--allow-dir`` roots (:class:`AllowedRoots`).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import socket
from pathlib import Path

from ..decode import iter_video_files
from ..errors import PathNotAllowedError, VideoError, VsearchError

#: Host names that always mean this machine.
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """True if ``host`` (a name or an address) can only be reached from this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token."""
    if token is not None and not token.strip():
        raise VsearchError("--token must not be empty")
    if not is_loopback(host) and not token:
        raise VsearchError(f"refusing to listen on {host} (reachable from other machines) without a token: "
                           "give --token or set VSEARCH_TOKEN")


def token_matches(authorization: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (constant-time compare)."""
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


class AllowedRoots:
    """The folders whose files clients may name (queried or added).

    A relative path is taken from the first root. Whatever the path's spelling, the
    file it finally reaches (``..`` resolved, symlinks followed) must lie inside a root.
    """

    def __init__(self, roots: list[str | os.PathLike]) -> None:
        self.roots: list[Path] = []
        for root in roots:
            real = Path(os.path.realpath(root))
            if not real.is_dir():
                raise VsearchError(f"{root}: --allow-dir must be an existing folder")
            self.roots.append(real)

    def __bool__(self) -> bool:
        return bool(self.roots)

    def _inside(self, real: Path) -> bool:
        return any(real == root or root in real.parents for root in self.roots)

    def resolve(self, raw: str) -> Path:
        """The real path of ``raw``, or :class:`PathNotAllowedError` if it leaves every root."""
        if not self.roots:
            raise PathNotAllowedError(f"{raw}: server-side paths are disabled (start the server with --allow-dir)")
        if not raw or "\0" in raw:
            raise PathNotAllowedError(f"{raw!r}: not a valid path")
        candidate = Path(raw) if os.path.isabs(raw) else self.roots[0] / raw
        real = Path(os.path.realpath(candidate))
        if not self._inside(real):
            raise PathNotAllowedError(f"{raw}: outside the folders this server may read")
        return real

    def resolve_file(self, raw: str) -> Path:
        """:meth:`resolve`, and the result must exist (a missing file is the client's error)."""
        real = self.resolve(raw)
        if not real.exists():
            raise VideoError(raw, "no such file")
        return real

    def expand(self, raws: list[str]) -> list[str]:
        """Files and folders (searched recursively) as the real paths of the video files
        they hold; any of them reaching outside the roots refuses the whole request."""
        files: list[str] = []
        for raw in raws:
            real = self.resolve_file(raw)
            for found in iter_video_files([real]):
                # A folder may hold a symlink to a file elsewhere: check each file found.
                target = Path(os.path.realpath(found))
                if not self._inside(target):
                    raise PathNotAllowedError(f"{found}: links outside the folders this server may read")
                files.append(str(target))
        return files

"""Who may call the server, and which server-side files it may read.

- The server binds to loopback unless told otherwise; a non-loopback address needs a
  token (:func:`check_bind`), which every request but ``/health`` must then present as
  ``Authorization: Bearer TOKEN`` (:func:`token_matches`).
- On loopback, a request must name this server in its ``Host`` header
  (:func:`loopback_host_names`): a web page under a DNS name of its own (DNS
  rebinding) cannot reach it.
- Paths named by a client are resolved (``..`` and every symlink followed) and must
  land inside one of the ``--allow-dir`` roots (:class:`AllowedRoots`); they must be
  plain text of a sane length, and name a regular file or a folder (a FIFO would hold
  a worker until the decode timeout).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import socket
from pathlib import Path

from ..decode import check_readable, iter_video_files
from ..errors import PathNotAllowedError, VideoError, VsearchError
from .config import MAX_PATH_BYTES

#: Host names that always mean this machine.
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def _addresses(host: str) -> set[str]:
    """The addresses ``host`` stands for (itself if it is one; none if it does not resolve)."""
    try:
        return {str(ipaddress.ip_address(host.strip("[]")))}
    except ValueError:
        pass
    try:
        return {info[4][0].split("%")[0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return set()


def is_loopback(host: str) -> bool:
    """True if ``host`` (a name or an address) can only be reached from this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    addresses = _addresses(host)
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def loopback_host_names(host: str) -> list[str]:
    """``Host`` header values a loopback server at ``host`` answers: the usual names of
    this machine, and ``host`` itself with what it resolves to (``--host 127.0.0.2``,
    or a name of this machine)."""
    def spelled(address: str) -> str:  # an IPv6 address is bracketed in a Host header
        return f"[{address}]" if ":" in address else address

    given = spelled(host.strip("[]").lower())
    return sorted({"localhost", "127.0.0.1", "[::1]", given} | {spelled(address) for address in _addresses(host)})


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
        """The real path of ``raw``, or :class:`PathNotAllowedError` if it leaves every
        root (:class:`VideoError` if it is no path at all: empty, a NUL byte, too long,
        not text)."""
        check_path_text(raw)
        shown = shown_path(raw)
        if not self.roots:
            raise PathNotAllowedError(f"{shown}: server-side paths are disabled (start the server with --allow-dir)")
        candidate = Path(raw) if os.path.isabs(raw) else self.roots[0] / raw
        real = Path(os.path.realpath(candidate))
        if not self._inside(real):
            raise PathNotAllowedError(f"{shown}: outside the folders this server may read")
        return real

    def resolve_file(self, raw: str, *, folders: bool = False) -> Path:
        """:meth:`resolve`, and the result must be a regular file (or, with ``folders``,
        a folder): a missing file is the client's error, and so is a FIFO or a device,
        which would hold a query until the decode timeout."""
        real = self.resolve(raw)
        if folders and os.path.isdir(real):
            return real
        try:
            check_readable(str(real))
        except VideoError as exc:  # named as the client named it
            raise VideoError(shown_path(raw), exc.reason) from None
        if not os.path.isfile(real):
            raise VideoError(shown_path(raw), "not a regular file")
        return real

    def expand(self, raws: list[str]) -> list[str]:
        """Files and folders (searched recursively) as the real paths of the video files
        they hold; any of them reaching outside the roots refuses the whole request."""
        files: list[str] = []
        for raw in raws:
            real = self.resolve_file(raw, folders=True)
            for found in iter_video_files([real]):
                # A folder may hold a symlink to a file elsewhere: check each file found.
                target = Path(os.path.realpath(found))
                if not self._inside(target):
                    raise PathNotAllowedError(f"{found}: links outside the folders this server may read")
                if not os.path.isfile(target):
                    raise VideoError(found, "not a regular file")
                files.append(str(target))
        return files


def check_path_text(raw: str) -> None:
    """Refuse what cannot be a path: empty, a NUL byte, longer than
    :data:`MAX_PATH_BYTES`, or text that is not a file name (a lone surrogate)."""
    shown = shown_path(raw)
    if not raw or "\0" in raw:
        raise VideoError(shown, "not a valid path" + (" (empty)" if not raw else " (a NUL byte)"))
    try:
        size = len(os.fsencode(raw))
    except UnicodeEncodeError:
        raise VideoError(shown, "not a valid path (not UTF-8 text)") from None
    if size > MAX_PATH_BYTES:
        raise VideoError(shown, f"not a valid path (longer than {MAX_PATH_BYTES} bytes)")


def shown_path(raw: str, limit: int = 200) -> str:
    """A client's path as an error message quotes it: printable, at most ``limit`` characters."""
    if not raw:
        return "''"
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in raw)  # control characters, lone surrogates
    return text if len(text) <= limit else f"{text[:limit]}... ({len(raw)} characters)"

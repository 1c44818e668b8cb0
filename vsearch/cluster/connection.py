"""Joining a Ray cluster; Ray itself is imported only when a cluster is asked for."""

from __future__ import annotations

import logging
import os
import socket
import sys
from types import ModuleType

from ..errors import MissingExtraError, VsearchError

#: Seconds to wait for a head node to answer before saying it does not.
_CONNECT_TIMEOUT_S = 5.0


def require_ray() -> ModuleType:
    """The ``ray`` module, or :class:`MissingExtraError` naming the extra."""
    try:
        import ray
    except ImportError:
        raise MissingExtraError("--ray", "ray") from None
    return ray


def connect(address: str | None = None) -> ModuleType:
    """Join the Ray cluster at ``address`` (``auto``: the one ``ray start`` runs on this
    machine; ``HOST:PORT``: a head node's GCS address), or with None start a local one
    on loopback using every core. A driver already connected stays connected."""
    if address is None and "ray" not in sys.modules:
        # A cluster of this machine alone listens on loopback only (Ray otherwise binds
        # the machine's network address); read by Ray when it is imported.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = require_ray()
    if ray.is_initialized():
        return ray
    if address is not None and address != "auto":
        _check_reachable(address)
    try:
        if address is None:
            ray.init(include_dashboard=False, _node_ip_address="127.0.0.1", logging_level=logging.WARNING)
        else:
            ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise VsearchError(f"cannot join the Ray cluster at {address}: {first_line(exc)}") from None
    return ray


def _check_reachable(address: str) -> None:
    """Fail at once when nothing listens at HOST:PORT (Ray itself would wait minutes)."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=_CONNECT_TIMEOUT_S):
            pass
    except ValueError:
        raise VsearchError(f"--ray-address must be auto or HOST:PORT, got {address!r}") from None
    except OSError as exc:
        raise VsearchError(f"cannot join the Ray cluster at {address}: nothing answers there "
                           f"({exc.strerror or exc})") from None


def first_line(exc: BaseException) -> str:
    """An exception's message, first line only (Ray's carry whole tracebacks)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

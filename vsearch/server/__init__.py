"""``vsearch serve``: an HTTP search service that keeps the index open.

- :mod:`.config`: :class:`ServerConfig`, the settings, and the fixed limits;
- :mod:`.security`: who may call (token, loopback) and which files they may name;
- :mod:`.connections`: how many connections, for how long (uvicorn's limits and ours);
- :mod:`.guard`: what a request passes before its body is read (token, body limits);
- :mod:`.uploads`: clip uploads, written once to the server's upload folder;
- :mod:`.live`: the view of the index queries read, replaced whole after a commit;
- :mod:`.jobs`: additions and removals, one writer thread;
- :mod:`.app`: the FastAPI application and :func:`serve` (uvicorn).

FastAPI, uvicorn, python-multipart and swagger-ui-bundle-v2 (the API page's assets)
come with the ``serve`` extra; nothing in the rest of vsearch imports this package.
"""

from __future__ import annotations

from ..errors import MissingExtraError
from .config import ServerConfig

__all__ = ["ServerConfig", "require_extra", "serve"]


def require_extra() -> None:
    """Raise :class:`MissingExtraError` unless the ``serve`` extra is installed."""
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401
        import swagger_ui_bundle  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise MissingExtraError("vsearch serve", "serve") from None


def serve(config: ServerConfig) -> None:
    """Run the server until interrupted (see :func:`vsearch.server.app.serve`)."""
    require_extra()
    from .app import serve as run

    run(config)

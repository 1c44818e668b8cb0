"""vsearch: find where a video clip comes from in a library of videos."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "VideoIndex",
    "IndexConfig",
    "Hit",
    "QueryResult",
    "IngestResult",
    "IndexStats",
    "VideoRecord",
    "VsearchError",
    "__version__",
]


def __getattr__(name: str):
    # Lazy: `import vsearch` stays cheap; FAISS/LMDB load only when an index is used.
    if name == "VideoIndex":
        from .library.index import VideoIndex

        return VideoIndex
    if name == "IndexConfig":
        from .config import IndexConfig

        return IndexConfig
    if name in {"Hit", "QueryResult", "IngestResult", "IndexStats", "VideoRecord"}:
        from . import models

        return getattr(models, name)
    if name == "VsearchError":
        from .errors import VsearchError

        return VsearchError
    raise AttributeError(name)

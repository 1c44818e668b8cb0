"""Rebuilding an index written by an older vsearch: its videos are decoded again.

An index of an older format (see ``config.FORMAT_VERSION``) holds vectors this
vsearch cannot compare with its own, so opening it asks for ``vsearch rebuild``.
That decodes every video at its recorded path into a staging index inside the
folder, with the old settings, then swaps it in:

1. ``INDEX/.rebuild/`` is built as an ordinary index; a crash here leaves the old
   index as it was (the next rebuild starts the staging over);
2. ``INDEX/.rebuild/COMPLETE`` is written (fsync): from here the swap is finished by
   whoever opens the index next, whatever happens;
3. the staged vector file replaces ``vectors.faiss``; ``meta.lmdb`` moves to
   ``meta.lmdb.old`` and the staged one takes its place; the leftovers are removed
   (``vsearch.store.folder.finish_pending``, run by every open).

Videos whose files are missing or no longer decode are not silently dropped: the
rebuild stops, unchanged, unless asked to leave them out.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from typing import Callable

from ..config import FORMAT_VERSION, RETIRED_FEATURES, IndexConfig
from ..decode import DEFAULT_TIMEOUT
from ..errors import VsearchError
from ..lock import WriterLock
from ..models import IngestResult
from ..store import metastore
from ..store.folder import STAGING, finish_pending, mark_complete
from ..store.metastore import MetaStore
from .index import VideoIndex


def needs_upgrade(path: str | os.PathLike) -> bool:
    """True when ``path`` holds an index of an older format, or of features this vsearch
    replaced (``v1``: now ``v2``), than this vsearch writes."""
    finish_pending(path)
    if not os.path.isfile(os.path.join(path, metastore.DIRNAME, "data.mdb")):
        return False
    store = MetaStore(os.path.join(path, metastore.DIRNAME), readonly=True)
    try:
        with store.snapshot() as snap:
            stored = snap.meta("config") or {}
    finally:
        store.close()
    version = stored.get("format_version")
    return (isinstance(version, int) and version < FORMAT_VERSION) or stored.get("features") in RETIRED_FEATURES


def upgrade_index(
    path: str | os.PathLike,
    *,
    device: str = "auto",
    drop_missing: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Callable[[IngestResult], None] | None = None,
) -> list[IngestResult]:
    """Decode an old index's videos again into the current format, in place.

    Raises :class:`VsearchError`, leaving the index unchanged, when a video's file is
    missing or cannot be decoded any more, unless ``drop_missing``.
    """
    path = str(path)
    lock = WriterLock(path)
    lock.acquire(wait=2.0)
    try:
        finish_pending(path, locked=True)
        old = MetaStore(os.path.join(path, metastore.DIRNAME), readonly=True)
        try:
            with old.snapshot() as snap:
                stored = snap.meta("config") or {}
                paths = [rec.path for rec in snap.videos()]
        finally:
            old.close()
        fields = {f.name for f in dataclasses.fields(IndexConfig)} - {"decoder"}
        settings = {k: v for k, v in stored.items() if k in fields}
        settings["features"] = RETIRED_FEATURES.get(settings.get("features", ""), settings.get("features", "v2"))
        config = IndexConfig(**settings)
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing and not drop_missing:
            raise VsearchError(_refusal(path, "missing on disk", missing))
        staging = os.path.join(path, STAGING)
        shutil.rmtree(staging, ignore_errors=True)
        with VideoIndex.create(staging, config, device=device) as fresh:
            results = fresh.add([p for p in paths if p not in missing], progress=progress, timeout=timeout)
        failed = [r.path for r in results if r.status == "failed"]
        if failed and not drop_missing:
            shutil.rmtree(staging, ignore_errors=True)
            raise VsearchError(_refusal(path, "no longer decodable", failed))
        results += [IngestResult(path=p, status="failed", reason="missing on disk") for p in missing]
        mark_complete(staging)
        finish_pending(path, locked=True)
        return results
    finally:
        lock.release()


def _refusal(path: str, what: str, files: list[str]) -> str:
    shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    return (f"{path}: {len(files)} indexed video{'s are' if len(files) > 1 else ' is'} {what} ({shown}); "
            "restore them, or run `vsearch rebuild --drop-missing` to rebuild without them; "
            "the index is unchanged")

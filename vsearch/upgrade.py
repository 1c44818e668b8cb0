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
   ``meta.lmdb.old`` and the staged one takes its place; the leftovers are removed.

Videos whose files are missing or no longer decode are not silently dropped: the
rebuild stops, unchanged, unless asked to leave them out.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from typing import Callable

from .store import metastore
from .config import FORMAT_VERSION, IndexConfig
from .decode import DEFAULT_TIMEOUT
from .errors import VsearchError
from .lock import WriterLock
from .store.metastore import MetaStore
from .models import IngestResult

STAGING = ".rebuild"
_COMPLETE = "COMPLETE"


def needs_upgrade(path: str | os.PathLike) -> bool:
    """True when ``path`` holds an index of an older format than this vsearch writes."""
    finish_pending(path)
    if not os.path.isfile(os.path.join(path, metastore.DIRNAME, "data.mdb")):
        return False
    store = MetaStore(os.path.join(path, metastore.DIRNAME), readonly=True)
    try:
        with store.snapshot() as snap:
            version = (snap.meta("config") or {}).get("format_version")
    finally:
        store.close()
    return isinstance(version, int) and version < FORMAT_VERSION


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
    from .index import VideoIndex  # noqa: PLC0415 - index imports this module

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
        config = IndexConfig(**{k: v for k, v in stored.items() if k in fields})
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
        _write_durably(os.path.join(staging, _COMPLETE))
        finish_pending(path, locked=True)
        return results
    finally:
        lock.release()


def _refusal(path: str, what: str, files: list[str]) -> str:
    shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    return (f"{path}: {len(files)} indexed video{'s are' if len(files) > 1 else ' is'} {what} ({shown}); "
            "restore them, or run `vsearch rebuild --drop-missing` to rebuild without them; "
            "the index is unchanged")


def finish_pending(path: str | os.PathLike, *, locked: bool = False) -> None:
    """Finish the swap of a completed rebuild that a crash interrupted (no-op otherwise)."""
    path = str(path)
    staging = os.path.join(path, STAGING)
    if not os.path.exists(os.path.join(staging, _COMPLETE)):
        return
    lock = WriterLock(path)
    if not locked:
        lock.acquire(wait=10.0)
    try:
        if not os.path.exists(os.path.join(staging, _COMPLETE)):
            return  # another process finished it while we waited
        live, old = os.path.join(path, metastore.DIRNAME), os.path.join(path, metastore.DIRNAME + ".old")
        staged_vectors = os.path.join(staging, "vectors.faiss")
        if os.path.exists(staged_vectors):
            os.replace(staged_vectors, os.path.join(path, "vectors.faiss"))
        staged_meta = os.path.join(staging, metastore.DIRNAME)
        if os.path.exists(staged_meta):
            if os.path.exists(live):
                shutil.rmtree(old, ignore_errors=True)
                os.rename(live, old)
            os.rename(staged_meta, live)
            _fsync_dir(path)
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
    finally:
        if not locked:
            lock.release()


def _write_durably(path: str) -> None:
    with open(path, "w") as handle:
        handle.write("staged index complete\n")
        handle.flush()
        os.fsync(handle.fileno())
    _fsync_dir(os.path.dirname(path))


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


"""An index folder: the metadata store (LMDB) and the vector store (FAISS) kept in step.

Folder layout::

    meta.lmdb/       LMDB, the source of truth (config, videos, block descriptors)
    vectors.faiss    FAISS index under stable ids, derived from meta.lmdb, replaced atomically
    writer.lock      flock held by the one writer, with its pid
    .rebuild/        a staged index while ``vsearch rebuild`` decodes an old one again

Commit order: a video is committed to LMDB (one transaction) before its vectors go
into FAISS, and removed from LMDB before its vectors leave FAISS; the FAISS file is
saved atomically after. On open the in-memory vector index is reconciled with the
LMDB snapshot (missing videos re-added from stored blocks, vectors of videos LMDB
does not know dropped), so a crash between the two steps loses nothing committed.
A staged rebuild marked complete is swapped in by whoever opens the folder next
(:func:`finish_pending`).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any, Callable, Iterator

import numpy as np

from ..config import IndexConfig
from ..errors import (
    ConfigMismatchError,
    IndexCorruptError,
    IndexNotFoundError,
    NotIndexedError,
    RebuildNeededError,
    VsearchError,
)
from ..lock import WriterLock
from ..models import IndexStats, VerifyReport, VideoRecord
from ..windows import WINDOW_BITS, entry_count, index_entries, region_codes, windows_from_blocks
from . import metastore, vectorstore
from .matches import Matches
from .metastore import MetaStore, Snapshot
from .rerank import TwoStageSearch
from .vectorstore import VectorStore

#: How long a writer waits for the lock before reporting who holds it.
WRITER_WAIT_S = 2.0

#: The staging folder of a rebuild, and the file that marks it whole.
STAGING = ".rebuild"
COMPLETE = "COMPLETE"

log = logging.getLogger(__name__)


class IndexFolder:
    """One index folder, open: its stores, its videos by id and its vectors, in step.

    Open with :meth:`open`. Reads need no lock; :meth:`writing` holds the writer
    lock, and the commits made meanwhile (:meth:`commit`, :meth:`move`,
    :meth:`remove`) keep LMDB first and FAISS second.
    """

    def __init__(self, path: str | os.PathLike, *, config: IndexConfig, store: MetaStore, repair: bool = True,
                 owns_store: bool = True, pinned: bool = False) -> None:
        self.path = str(path)
        self.config = config
        self.store = store
        self._owns_store = owns_store
        self._lock = WriterLock(self.path)
        self._reads = store.reads(pinned=pinned)  # a view reads its own snapshot (see view)
        with self._reads.snapshot() as snap:
            self.index_type = snap.meta("index_type") or vectorstore.DEFAULT_INDEX_TYPE
            #: "auto" (type follows library size) or a fixed FAISS factory string.
            self.index_policy = snap.meta("index_policy") or self.index_type
        #: Committed videos by id, as this handle's vectors hold them.
        self.videos: dict[int, VideoRecord] = {}
        if self._load_vectors(mapped=True, warn=repair) and repair and not store.readonly:
            with suppress(VsearchError):  # a writer holds the lock (it will save); this copy is whole anyway
                self.repair(wait=0.0)

    @staticmethod
    def exists(path: str | os.PathLike) -> bool:
        return os.path.isfile(os.path.join(path, metastore.DIRNAME, "data.mdb"))

    @classmethod
    def open(cls, path: str, *, config: IndexConfig | None = None, create: bool = False,
             repair: bool = True) -> "IndexFolder":
        """Open the index at ``path`` (``create``: a missing one is created with ``config``,
        else the defaults). A ``config`` that differs from the stored one raises
        :class:`ConfigMismatchError`; an older format :class:`RebuildNeededError`."""
        if not cls.exists(path):
            if not create:
                raise IndexNotFoundError(f"{path}: no vsearch index here (create one with 'vsearch ingest')")
            config = config or IndexConfig()
            try:
                os.makedirs(os.path.join(path, metastore.DIRNAME), exist_ok=True)
            except OSError as exc:
                raise VsearchError(f"{path}: cannot create index folder ({exc.strerror})") from None
            store = MetaStore(os.path.join(path, metastore.DIRNAME))
            with store.snapshot() as snap:
                fresh = snap.meta("config") is None
            if fresh:
                store.initialise(config.to_dict())
                store.set_meta("index_policy", "auto")
        else:
            writable = os.access(os.path.join(path, metastore.DIRNAME), os.W_OK)
            store = MetaStore(os.path.join(path, metastore.DIRNAME), readonly=not writable)
        try:
            with store.snapshot() as snap:
                stored = IndexConfig.from_dict(snap.meta("config"))
        except RebuildNeededError as exc:
            store.close()
            raise RebuildNeededError(f"{path}: rebuild needed: run `vsearch rebuild --index {path}` ({exc})") from None
        except (ConfigMismatchError, IndexCorruptError) as exc:
            store.close()
            raise type(exc)(f"{path}: {exc}") from None
        if config is not None and config != stored:
            store.close()
            raise ConfigMismatchError(
                f"{path}: index settings cannot be changed after creation ("
                + "; ".join(config.differences(stored))
                + ")"
            )
        return cls(path, config=stored, store=store, repair=repair)

    def view(self) -> "IndexFolder":
        """Another handle on this folder sharing its store, which keeps the snapshot of
        the metadata store it was opened with until it writes or closes (see ``VideoIndex.view``)."""
        return IndexFolder(self.path, config=self.config, store=self.store, repair=False, owns_store=False, pinned=True)

    def close(self) -> None:
        self._reads.unpin()
        self._lock.release()
        if self._owns_store:
            self.store.close()

    def snapshot(self) -> AbstractContextManager[Snapshot]:
        """One read transaction of the metadata store (records by id, path or hash; blocks): a view's own."""
        return self._reads.snapshot()

    def generation(self) -> tuple:
        """A value that changes whenever something is committed to the index, by any
        process: the metadata store's last transaction and the vector file's identity."""
        try:
            stat = os.stat(self.vector_file)
            vector_file = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            vector_file = None
        return self.store.last_transaction(), vector_file

    # -- keeping the vectors in step ----------------------------------------------------

    @property
    def vector_file(self) -> str:
        return os.path.join(self.path, vectorstore.FILENAME)

    def _load_vectors(self, *, mapped: bool = False, warn: bool = True) -> bool:
        """Load the vector file and reconcile it with LMDB; True if it needed repair.

        ``mapped`` maps the file (cheap for queries) unless it needs repair, which
        is done on a loaded copy; writers always reload a copy. ``warn``: say so when
        the file cannot be read (not for a pure check, whose report says it).
        """
        damaged = False
        try:
            loaded = (VectorStore.load(self.vector_file, mapped=mapped)
                      if os.path.exists(self.vector_file) else None)
            if loaded is not None and mapped and any(self._gaps(loaded)):
                loaded = VectorStore.load(self.vector_file)
        except IndexCorruptError as exc:
            # The file is derived data: rebuild it from LMDB rather than refuse to open.
            if warn:
                log.warning("%s; rebuilding it from the metadata store", exc)
            loaded, damaged = None, True
        if loaded is not None and loaded.dim != self.config.dim:
            raise ConfigMismatchError(f"{self.vector_file}: vector dimension {loaded.dim} != configured {self.config.dim}")
        self.vectors = loaded or VectorStore.create(self.config.dim, self.index_type)
        added, dropped = self._reconcile()
        return damaged or bool(added or dropped)

    def repair(self, *, wait: float = WRITER_WAIT_S) -> None:
        """Restore the vector file from the metadata store where they differ, and save it
        (under the writer lock: :class:`IndexLockedError` while another writer holds it)."""
        self._lock.acquire(wait=wait)
        try:
            self._load_vectors(warn=False)  # re-read under the lock: a writer may have just saved
            self.save_vectors()
        finally:
            self._lock.release()

    def _gaps(self, vectors: VectorStore) -> tuple[list[int], list[VideoRecord]]:
        with self._reads.snapshot() as snap:
            return _gaps_between({rec.id: rec for rec in snap.videos()}, vectors, self.config)

    def _reconcile(self) -> tuple[int, int]:
        """Make the in-memory vectors match LMDB; returns (videos added, videos dropped)."""
        with self._reads.snapshot() as snap:
            self.videos = {rec.id: rec for rec in snap.videos()}
            stale, missing = _gaps_between(self.videos, self.vectors, self.config)
            self.vectors.remove_videos(stale)
            if missing and not self.vectors.is_trained:
                self.vectors.train(self._training_sample(snap, missing))
            for rec in missing:
                self.vectors.add(*self.windows_of(snap, rec))
        return len(missing), len(stale)

    def _training_sample(self, snap: Snapshot, records: list[VideoRecord]) -> np.ndarray:
        """Windows to train on, spread evenly over every video, at most what the type
        can use: a big library is never concatenated whole in memory."""
        total = sum(entry_count(rec, self.config) for rec in records)
        step = max(1, -(-total // self.vectors.training_size()))
        return np.concatenate([self.windows_of(snap, rec)[1][::step] for rec in records])

    def windows_of(self, snap: Snapshot, record: VideoRecord) -> tuple[np.ndarray, np.ndarray]:
        """Ids and vectors of a committed video's indexed windows, from its stored blocks."""
        return self._indexed(record, snap.blocks(record, self.config.block_dim))

    def _indexed(self, record: VideoRecord, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ids and vectors of a video's index entries (no window across a damaged span)."""
        return index_entries(record.id, blocks, record.damaged, self.config)

    def _add_vectors(self, record: VideoRecord, blocks: np.ndarray) -> None:
        self.vectors.add(*self._indexed(record, blocks))

    def save_vectors(self) -> None:
        """Save the vector file atomically (a writer does it now and then, and at the end)."""
        try:
            self.vectors.save(self.vector_file)
        except (OSError, RuntimeError) as exc:
            raise VsearchError(f"{self.vector_file}: cannot save vector index ({exc}); "
                               "committed videos are safe and will be re-added on next open") from None

    def _begin_write(self) -> None:
        if self.store.readonly:
            raise VsearchError(f"{self.path}: index folder is read-only")
        # A reader saving a repair holds the lock for a moment: wait that out.
        self._lock.acquire(wait=WRITER_WAIT_S)
        self._reads.unpin()  # a writer works on the index as it is now
        # Temporary files of a writer that was killed mid-save.
        for name in os.listdir(self.path):
            if name.startswith(".vectors-") and name.endswith(".tmp"):
                os.unlink(os.path.join(self.path, name))
        # Another writer may have changed the index since we opened it.
        self._load_vectors()

    def _end_write(self) -> None:
        try:
            if self.index_policy == "auto":
                wanted = vectorstore.auto_index_type(self.vectors.ntotal, self.config.dim)
                if wanted != self.index_type and _worth_retraining(self.index_type, wanted):
                    log.info("library reached %d vectors: switching index to %s", self.vectors.ntotal, wanted)
                    self._switch_index_type(wanted)
            self.save_vectors()
        finally:
            self._lock.release()

    def _switch_index_type(self, new_type: str) -> None:
        """Rebuild the vectors as ``new_type`` (trained on every stored window) and save."""
        self.vectors = VectorStore.create(self.config.dim, new_type)
        self._reconcile()
        self.save_vectors()
        self.store.set_meta("index_type", new_type)
        self.index_type = new_type

    # -- writes (under :meth:`writing`) -----------------------------------------------------

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the writer lock (the vectors reloaded first: another writer may have
        committed); on the way out, also on error, retrain if ``auto`` asks for
        another type, save the vector file and release the lock."""
        self._begin_write()
        try:
            yield
        finally:
            self._end_write()

    def commit(self, fields: dict[str, Any], blocks: np.ndarray, *, replaces: VideoRecord | None = None) -> VideoRecord:
        """Commit one video: its record and blocks in one LMDB transaction (replacing
        the video ``replaces``), then its vectors."""
        record = self.store.commit_video(fields, blocks, replaces=replaces.id if replaces is not None else None)
        if replaces is not None:
            self.vectors.remove_videos([replaces.id])
            self.videos.pop(replaces.id, None)
        self.videos[record.id] = record
        self._add_vectors(record, blocks)
        return record

    def move(self, video_id: int, path: str) -> VideoRecord:
        """Record that a committed video's content is now at ``path`` (its vectors stay)."""
        record = self.store.move_video(video_id, path)
        self.videos[record.id] = record
        return record

    def remove(self, record: VideoRecord) -> None:
        """Metadata first, then the vectors: a crash between leaves stale vectors, dropped on open."""
        self.store.delete_video(record.id)
        self.vectors.remove_videos([record.id])
        self.videos.pop(record.id, None)

    def rebuild(self, *, index_type: str | None = None) -> int:
        """Re-create the vector index from the stored block descriptors (no decoding).

        ``index_type`` switches to another FAISS factory type (trained on every
        stored window). The new file replaces the old one atomically.
        """
        policy = index_type or self.index_policy
        if policy != "auto":
            # Validate before locking: a bad string or too few vectors changes nothing.
            VectorStore.create(self.config.dim, policy)
            vectorstore.check_trainable(policy, sum(entry_count(rec, self.config) for rec in self.videos.values()))
        self._begin_write()
        try:
            target = vectorstore.auto_index_type(self.vectors.ntotal, self.config.dim) if policy == "auto" else policy
            self._switch_index_type(target)
            if policy != self.index_policy:
                self.store.set_meta("index_policy", policy)
                self.index_policy = policy
        finally:
            self._lock.release()
        return self.vectors.ntotal

    # -- reads ------------------------------------------------------------------------------

    def nearest(self, vectors: np.ndarray, n: int) -> Matches:
        """Each vector's ``n`` nearest indexed windows, nearest first (fewer columns
        when the index holds fewer windows); exact squared L2 distances whatever the
        index type (see :meth:`_searcher`)."""
        return self._searcher()(vectors, n)

    def _searcher(self) -> Callable[[np.ndarray, int], Matches]:
        """Nearest windows with exact distances: the vector store itself when its codes
        are exact (Flat, float16), else its candidates re-ranked against the stored
        blocks (:mod:`vsearch.store.rerank`)."""
        if self.vectors.exact_distances:
            return self.vectors.search
        return TwoStageSearch(candidates=self.vectors.search, gather=self.stored_windows)

    def stored_windows(self, ids: np.ndarray) -> np.ndarray:
        """Full-precision window vectors by id, from the stored blocks (NaN for a
        window of a video no longer stored): what a compact index's candidates are
        re-ranked with."""
        blocks = self._reads.window_blocks(ids, self.config.window_blocks, self.config.block_dim)
        return windows_from_blocks(blocks, self.config, region_codes(ids))

    def video_blocks(self, video_id: int) -> np.ndarray:
        """The stored blocks of one video by block number (zero over damaged spans)."""
        with self._reads.snapshot() as snap:
            record = snap.video(video_id)
            if record is None:
                raise NotIndexedError(f"video {video_id} is not in the index")
            return snap.blocks(record, self.config.block_dim)

    def stats(self) -> IndexStats:
        """What the folder holds, its size on disk and its settings."""
        with self._reads.snapshot() as snap:
            created, updated = snap.meta("created"), snap.meta("updated")
        size = self.store.disk_bytes()
        if os.path.exists(self.vector_file):
            size += os.path.getsize(self.vector_file)
        return IndexStats(
            path=os.path.abspath(self.path),
            videos=len(self.videos),
            vectors=self.vectors.ntotal,
            duration_s=round(sum(r.duration_s for r in self.videos.values()), 3),
            partial_videos=sum(r.partial for r in self.videos.values()),
            dim=self.config.dim,
            index_type=("IDMap2," if self.vectors.layout == "IDMap2" else "") + self.index_type
            + (" (auto)" if self.index_policy == "auto" else ""),
            bytes=size,
            config=self.config.to_dict(),
            created=created,
            updated=updated,
        )

    def verify(self) -> VerifyReport:
        """Check the vector file on disk against LMDB without changing anything: its
        ``problems`` (repairable from LMDB) and LMDB's own ``damage`` (beyond repair)."""
        problems, damage = [], []
        with self.store.snapshot() as snap:
            videos = {rec.id: rec for rec in snap.videos()}
            for rec in videos.values():
                try:
                    snap.blocks(rec, self.config.block_dim)
                except VsearchError as exc:
                    damage.append(str(exc))
        on_disk = VectorStore.create(self.config.dim, self.index_type)
        if not os.path.exists(self.vector_file):
            problems += [f"{self.vector_file}: missing"] if videos else []
        else:
            try:
                on_disk = VectorStore.load(self.vector_file)
            except IndexCorruptError as exc:
                problems.append(str(exc))
        # A missing or unreadable file lacks every video: said once, not once per video.
        held = ({vid: entry_count(rec, self.config) for vid, rec in videos.items()} if problems
                else _windows_per_video(on_disk.ids()))
        for vid, rec in videos.items():
            if held.get(vid, 0) != entry_count(rec, self.config):
                problems.append(f"video {vid} ({rec.path}): committed, but {held.get(vid, 0)} of its "
                                f"{entry_count(rec, self.config)} vectors are in the vector file")
        for vid in set(held) - set(videos):
            problems.append(f"video {vid}: {held[vid]} vectors in the vector file for a video that is not committed")
        return VerifyReport(ok=not problems and not damage, videos=len(videos), vectors=on_disk.ntotal,
                            partial_videos=sum(rec.partial for rec in videos.values()), problems=problems,
                            damage=damage)


def _worth_retraining(current: str, wanted: str) -> bool:
    """Retrain when the family changes, or IVF lists should grow or shrink 4x or more."""
    def parts(index_type: str) -> tuple[list[str], int]:
        found = [p for p in index_type.split(",") if re.fullmatch(r"IVF\d+", p)]
        lists = int(found[0][3:]) if found else 0
        return [p for p in index_type.split(",") if p not in found], lists

    (current_family, current_lists), (wanted_family, wanted_lists) = parts(current), parts(wanted)
    if current_family != wanted_family or not current_lists or not wanted_lists:
        return current != wanted
    return max(current_lists, wanted_lists) >= 4 * min(current_lists, wanted_lists)


def _windows_per_video(ids: np.ndarray) -> dict[int, int]:
    """{video id: vectors held}. Video ids are small and dense, so counting them is
    linear (np.unique would sort 10^7 ids on every open of a big library)."""
    video_ids = np.asarray(ids, dtype=np.int64) >> np.int64(WINDOW_BITS)
    if len(video_ids) == 0:
        return {}
    if video_ids.min() < 0 or video_ids.max() > 4 * len(video_ids) + 1_000_000:
        present, counts = np.unique(video_ids, return_counts=True)
    else:
        counts = np.bincount(video_ids)
        present = np.flatnonzero(counts)
        counts = counts[present]
    return dict(zip(present.tolist(), counts.tolist()))


def _gaps_between(videos: dict[int, VideoRecord], vectors: VectorStore, config: IndexConfig
                  ) -> tuple[list[int], list[VideoRecord]]:
    """Ids of videos whose vectors are stale (uncommitted or partial), and committed videos to (re-)add."""
    held = _windows_per_video(vectors.ids())
    stale = [vid for vid, n in held.items() if vid not in videos or n != entry_count(videos[vid], config)]
    missing = [rec for vid, rec in videos.items() if vid not in held or vid in stale]
    return stale, missing


def finish_pending(path: str | os.PathLike, *, locked: bool = False) -> None:
    """Finish the swap of a completed rebuild that a crash interrupted (no-op otherwise)."""
    path = str(path)
    staging = os.path.join(path, STAGING)
    if not os.path.exists(os.path.join(staging, COMPLETE)):
        return
    lock = WriterLock(path)
    if not locked:
        lock.acquire(wait=10.0)
    try:
        if not os.path.exists(os.path.join(staging, COMPLETE)):
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


def mark_complete(staging: str) -> None:
    """Mark a staged rebuild whole (fsync): from here the swap is finished whatever happens."""
    path = os.path.join(staging, COMPLETE)
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

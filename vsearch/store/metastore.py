"""Metadata store (LMDB): the source of truth of an index.

Sub-databases, all values JSON or raw little-endian float32 (never pickle):

- ``meta``:   ``config`` (IndexConfig.to_dict), ``created``, ``updated``, ``next_video_id``
- ``videos``: video id (8-byte big-endian) -> VideoRecord JSON
- ``paths``:  absolute path (UTF-8, surrogate-escaped) -> video id
- ``hashes``: content hash -> video id
- ``blocks``: video id -> float32 block descriptors ``(blocks, block_dim)``

A window id is ``video_id << 32 | window`` and its time span follows from the video
record and the configuration, so the id -> (video, start, end) mapping is stored
per video instead of once per vector.

A video and its blocks are written in one transaction, so a video is either fully
committed or absent.

LMDB maps the file; the map grows (doubling) when a write fills it, and a map that
another process grew is adopted. LMDB may change its map only while no transaction
of this process is open, and a server keeps snapshots open for as long as a view
lives (:class:`PinnedSnapshot`): every transaction passes a :class:`MapGate`, which
holds a change of the map until the last one closes, asking the holders of pinned
snapshots to let them go (:meth:`MetaStore.on_map_change`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, TypeVar

import lmdb
import numpy as np

from ..errors import IndexCorruptError, VsearchError
from ..models import VideoRecord
from ..windows import split_ids

T = TypeVar("T")

_DB_NAMES = (b"meta", b"videos", b"paths", b"hashes", b"blocks")
#: What LMDB raises on a file that is not (or no longer) a whole LMDB database.
_DAMAGE = (lmdb.InvalidError, lmdb.CorruptedError, lmdb.PageNotFoundError, lmdb.VersionMismatchError,
           lmdb.IncompatibleError, lmdb.PanicError)
_INITIAL_MAP_SIZE = 1 << 30
DIRNAME = "meta.lmdb"

#: How long a change of the map waits for this process's transactions to close.
MAP_CHANGE_WAIT_S = 120.0


def _damaged(path: str, exc: lmdb.Error) -> IndexCorruptError:
    return IndexCorruptError(f"{path}: the metadata store is damaged ({str(exc).removeprefix(path + ': ')}); "
                             "index the videos again into a new index")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _vid_key(video_id: int) -> bytes:
    return struct.pack(">Q", video_id)


def _path_key(path: str) -> bytes:
    return os.fsencode(path)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True).encode("utf-8")


def _loads(raw: bytes) -> Any:
    return json.loads(raw.decode("utf-8"))


class Snapshot:
    """A consistent read-only view of the store (one LMDB read transaction)."""

    def __init__(self, store: "MetaStore", txn: lmdb.Transaction) -> None:
        self._store, self._txn = store, txn

    def _get(self, db: str, key: bytes) -> bytes | None:
        return self._txn.get(key, db=self._store.dbs[db])

    def meta(self, key: str) -> Any:
        raw = self._get("meta", key.encode())
        return None if raw is None else _loads(raw)

    def video(self, video_id: int) -> VideoRecord | None:
        raw = self._get("videos", _vid_key(video_id))
        return None if raw is None else VideoRecord(**_loads(raw))

    def videos(self) -> Iterator[VideoRecord]:
        with self._txn.cursor(db=self._store.dbs["videos"]) as cursor:
            for _, raw in cursor:
                yield VideoRecord(**_loads(bytes(raw)))

    def video_by_path(self, path: str) -> VideoRecord | None:
        raw = self._get("paths", _path_key(path))
        return None if raw is None else self.video(struct.unpack(">Q", raw)[0])

    def video_by_hash(self, digest: str) -> VideoRecord | None:
        raw = self._get("hashes", digest.encode())
        return None if raw is None else self.video(struct.unpack(">Q", raw)[0])

    def blocks(self, record: VideoRecord, block_dim: int) -> np.ndarray:
        raw = self._get("blocks", _vid_key(record.id))
        if raw is None:
            raise IndexCorruptError(f"block descriptors of video {record.id} ({record.path}) are missing")
        arr = np.frombuffer(raw, dtype="<f4")
        if arr.size != record.blocks * block_dim:
            raise IndexCorruptError(f"block descriptors of video {record.id} ({record.path}) have the wrong size")
        return arr.reshape(record.blocks, block_dim)


class PinnedSnapshot(Snapshot):
    """A snapshot kept open until :meth:`close`, shared by threads.

    What a long-lived reader (a server's view of the index) reads at any time: what
    was committed when it was taken, even a video removed since. LMDB lets a read
    transaction move between threads if its uses never overlap, so each read holds
    a lock; values are copied out before it is released. While it is open, LMDB
    keeps the pages it sees (the file may grow meanwhile): close it when done.
    """

    def __init__(self, store: "MetaStore") -> None:
        super().__init__(store, store._begin(pinned=True, buffers=True))
        self._lock = threading.Lock()
        self._open = True

    def _get(self, db: str, key: bytes) -> bytes | None:
        with self._lock:
            raw = super()._get(db, key)
            return None if raw is None else bytes(raw)

    def videos(self) -> Iterator[VideoRecord]:
        with self._lock:
            with self._txn.cursor(db=self._store.dbs["videos"]) as cursor:
                raws = [bytes(raw) for _, raw in cursor]
        return (VideoRecord(**_loads(raw)) for raw in raws)

    def window_blocks(self, ids: np.ndarray, window_blocks: int, block_dim: int) -> np.ndarray:
        """As :meth:`MetaStore.window_blocks`, in this snapshot."""
        with self._lock:  # the map's pages are read in place, and copied, under the lock
            return _gather_windows(lambda key: Snapshot._get(self, "blocks", key), ids, window_blocks, block_dim)

    def close(self) -> None:
        with self._lock:
            if not self._open:
                return
            self._open = False
            self._txn.abort()
        self._store.gate.leave(pinned=True)


class Reads:
    """Where a handle on the store reads (an index folder's, a view's): what is
    committed at each read, or, pinned, one :class:`PinnedSnapshot` until :meth:`unpin`."""

    def __init__(self, store: "MetaStore", *, pinned: bool) -> None:
        self._store = store
        self._pinned = store.pinned_snapshot() if pinned else None

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        """The pinned snapshot, else one of what is committed now."""
        if self._pinned is not None:
            yield self._pinned
        else:
            with self._store.snapshot() as snap:
                yield snap

    def window_blocks(self, ids: np.ndarray, window_blocks: int, block_dim: int) -> np.ndarray:
        """As :meth:`MetaStore.window_blocks`, where this handle reads."""
        return (self._pinned or self._store).window_blocks(ids, window_blocks, block_dim)

    def unpin(self) -> None:
        """Release the pinned snapshot, if any: from here on, read what is committed now."""
        if self._pinned is not None:
            self._pinned.close()
            self._pinned = None


def _gather_windows(get_blocks: Callable[[bytes], Any], ids: np.ndarray, window_blocks: int,
                    block_dim: int) -> np.ndarray:
    """Windows' blocks by id, each video's stored blocks fetched once with ``get_blocks``
    (a video no longer stored gives NaN windows)."""
    ids = np.asarray(ids, dtype=np.int64)
    out = np.full((len(ids), window_blocks, block_dim), np.nan, np.float32)
    videos, numbers = split_ids(ids)
    steps = np.arange(window_blocks)
    order = np.argsort(videos, kind="stable")
    bounds = np.flatnonzero(np.diff(videos[order])) + 1
    for rows in np.split(order, bounds):
        raw = get_blocks(_vid_key(int(videos[rows[0]])))
        if raw is None:
            continue
        blocks = np.frombuffer(raw, dtype="<f4").reshape(-1, block_dim)
        starts = numbers[rows]
        fits = starts + window_blocks <= len(blocks)
        out[rows[fits]] = blocks[starts[fits, None] + steps]
    return out


class MapGate:
    """This process's transactions on one side, a change of LMDB's map on the other.

    LMDB may change its map only while no transaction of the process is open
    (py-lmdb's ``set_mapsize`` aborts them, and a read in flight would touch pages
    that are no longer mapped). A transaction is inside the gate while it is open: a
    short one for its block (a thread already holding one enters again freely), a
    pinned snapshot for its whole life. :meth:`change_map` lets no new one in, asks
    for pinned ones to be let go, waits for the last to close, then changes the map.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._open = 0
        self._changing = False
        self._held = threading.local()  # short transactions this thread holds

    def _depth(self) -> int:
        return getattr(self._held, "depth", 0)

    def enter(self, *, pinned: bool) -> None:
        """One more transaction open: waits while the map changes, unless this thread
        already holds a short one (the change waits for that one)."""
        with self._changed:
            while self._changing and (pinned or not self._depth()):
                self._changed.wait()
            self._open += 1
        if not pinned:
            self._held.depth = self._depth() + 1

    def leave(self, *, pinned: bool) -> None:
        if not pinned:
            self._held.depth = self._depth() - 1
        with self._changed:
            self._open -= 1
            self._changed.notify_all()

    def change_map(self, change: Callable[[], None], *, let_go: Callable[[], None], what: str) -> None:
        """Run ``change`` once no transaction is open; ``let_go`` asks holders of pinned
        snapshots to close them. Raises :class:`VsearchError` if some stay open."""
        if self._depth():  # it would wait for this thread's own transaction
            raise VsearchError(f"{what}: the metadata store grew meanwhile (another process wrote); try again")
        with self._changed:
            while self._changing:
                self._changed.wait()
            self._changing = True
        try:
            let_go()
            with self._changed:
                if not self._changed.wait_for(lambda: self._open == 0, timeout=MAP_CHANGE_WAIT_S):
                    raise VsearchError(f"{what}: cannot grow the metadata store while {self._open} snapshot(s) "
                                       "stay open; the index is unchanged since its last commit")
                change()
        finally:
            with self._changed:
                self._changing = False
                self._changed.notify_all()


class MetaStore:
    """LMDB environment holding everything needed to rebuild the vector index."""

    def __init__(self, path: str | os.PathLike, *, readonly: bool = False) -> None:
        self.path = str(path)
        self.readonly = readonly
        self.gate = MapGate()
        self._map_change_hooks: list[Callable[[], None]] = []
        try:
            self.env = self._open_env(readonly)
            self.dbs = {name.decode(): self.env.open_db(name, create=not readonly) for name in _DB_NAMES}
        except _DAMAGE as exc:
            raise _damaged(self.path, exc) from None
        except lmdb.Error as exc:
            raise VsearchError(f"{self.path}: cannot open metadata store ({exc})") from None

    def _open_env(self, readonly: bool) -> lmdb.Environment:
        common = dict(subdir=True, max_dbs=len(_DB_NAMES), map_size=_INITIAL_MAP_SIZE)
        if not readonly:
            return lmdb.open(self.path, **common)
        try:
            return lmdb.open(self.path, readonly=True, **common)
        except lmdb.Error:
            # A read-only folder cannot hold LMDB's reader lock table.
            return lmdb.open(self.path, readonly=True, lock=False, **common)

    def close(self) -> None:
        self.env.close()

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        try:
            with self._transaction(buffers=False) as txn:
                yield Snapshot(self, txn)
        except _DAMAGE as exc:
            raise _damaged(self.path, exc) from None

    @contextmanager
    def _transaction(self, **options: Any) -> Iterator[lmdb.Transaction]:
        """One short LMDB transaction, committed at the end of the block (aborted on error)."""
        txn = self._begin(pinned=False, **options)
        try:
            with txn:
                yield txn
        finally:
            self.gate.leave(pinned=False)

    def _begin(self, *, pinned: bool, **options: Any) -> lmdb.Transaction:
        """A transaction begun inside the gate (the caller leaves it when the transaction
        ends); a map another process grew past ours is adopted first."""
        for _ in range(3):
            self.gate.enter(pinned=pinned)
            try:
                return self.env.begin(**options)
            except lmdb.MapResizedError:
                self.gate.leave(pinned=pinned)
            except BaseException:
                self.gate.leave(pinned=pinned)
                raise
            self._change_map(0)
        raise VsearchError(f"{self.path}: the metadata store keeps changing size; try again")

    def on_map_change(self, let_go: Callable[[], None]) -> Callable[[], None]:
        """Call ``let_go`` when the map must change (the store grows): it should close the
        pinned snapshots it keeps (new ones wait until the map has changed). Returns
        the function that stops it."""
        self._map_change_hooks.append(let_go)
        return lambda: self._map_change_hooks.remove(let_go)

    def _change_map(self, size: int) -> None:
        """Make the map ``size`` bytes (0: adopt the size another process gave it), once no
        transaction of this process is open (see :class:`MapGate`)."""
        def let_go() -> None:
            for hook in list(self._map_change_hooks):
                hook()

        self.gate.change_map(lambda: self.env.set_mapsize(size), let_go=let_go, what=self.path)

    def window_blocks(self, ids: np.ndarray, window_blocks: int, block_dim: int) -> np.ndarray:
        """The stored blocks of windows by id, ``(len(ids), window_blocks, block_dim)``
        float32, read in one transaction straight from the map (each video's blocks
        are not copied whole); a window of a video no longer stored is NaN."""
        with self._transaction(buffers=True) as txn:
            return _gather_windows(lambda key: txn.get(key, db=self.dbs["blocks"]), ids, window_blocks, block_dim)

    def pinned_snapshot(self) -> "PinnedSnapshot":
        """A snapshot of what is committed now, kept until closed (see :class:`PinnedSnapshot`)."""
        return PinnedSnapshot(self)

    def reads(self, *, pinned: bool) -> "Reads":
        """Where a handle reads: what is committed at each read, or (``pinned``) one snapshot kept."""
        return Reads(self, pinned=pinned)

    def last_transaction(self) -> int:
        """Id of the last committed write transaction, by any process (grows with each)."""
        return int(self.env.info()["last_txnid"])

    def _transact(self, work: Callable[[lmdb.Transaction], T]) -> T:
        """Run ``work`` in one write transaction, growing the map if it fills up."""
        for _ in range(40):
            try:
                with self._transaction(write=True) as txn:
                    result = work(txn)
                    txn.put(b"updated", _dumps(now_iso()), db=self.dbs["meta"])
                return result
            except lmdb.MapFullError:
                self._change_map(self.env.info()["map_size"] * 2)
            except lmdb.Error as exc:
                # Disk full, read-only media...: the transaction was aborted, nothing changed.
                raise VsearchError(f"{self.path}: cannot write metadata store ({exc}); "
                                   "the index is unchanged since its last commit") from None
        raise VsearchError(f"{self.path}: metadata store cannot grow")

    # -- writes ------------------------------------------------------------------------

    def initialise(self, config: dict[str, Any]) -> None:
        def work(txn: lmdb.Transaction) -> None:
            for key, value in (("config", config), ("created", now_iso()), ("next_video_id", 1)):
                txn.put(key.encode(), _dumps(value), db=self.dbs["meta"])

        self._transact(work)

    def set_meta(self, key: str, value: Any) -> None:
        self._transact(lambda txn: txn.put(key.encode(), _dumps(value), db=self.dbs["meta"]))

    def allocate_video_id(self, txn: lmdb.Transaction) -> int:
        raw = txn.get(b"next_video_id", db=self.dbs["meta"])
        video_id = _loads(raw)
        txn.put(b"next_video_id", _dumps(video_id + 1), db=self.dbs["meta"])
        return int(video_id)

    def commit_video(self, record_fields: dict[str, Any], blocks: np.ndarray, *, replaces: int | None = None) -> VideoRecord:
        """Atomically store a new video (and drop the one it replaces, if any).

        ``record_fields`` are the VideoRecord fields except ``id``, allocated here.
        """
        payload = np.ascontiguousarray(blocks, dtype="<f4").tobytes()

        def work(txn: lmdb.Transaction) -> VideoRecord:
            if replaces is not None:
                self._delete(txn, replaces)
            record = VideoRecord(id=self.allocate_video_id(txn), **record_fields)
            key = _vid_key(record.id)
            txn.put(key, _dumps(dataclasses.asdict(record)), db=self.dbs["videos"])  # full precision
            txn.put(key, payload, db=self.dbs["blocks"])
            txn.put(_path_key(record.path), key, db=self.dbs["paths"])
            txn.put(record.hash.encode(), key, db=self.dbs["hashes"])
            return record

        return self._transact(work)

    def move_video(self, video_id: int, new_path: str) -> VideoRecord:
        """Record that an indexed file now lives at ``new_path`` (same content)."""

        def work(txn: lmdb.Transaction) -> VideoRecord:
            data = _loads(txn.get(_vid_key(video_id), db=self.dbs["videos"]))
            if txn.get(_path_key(data["path"]), db=self.dbs["paths"]) == _vid_key(video_id):
                txn.delete(_path_key(data["path"]), db=self.dbs["paths"])
            data["path"] = new_path
            txn.put(_vid_key(video_id), _dumps(data), db=self.dbs["videos"])
            txn.put(_path_key(new_path), _vid_key(video_id), db=self.dbs["paths"])
            return VideoRecord(**data)

        return self._transact(work)

    def delete_video(self, video_id: int) -> None:
        self._transact(lambda txn: self._delete(txn, video_id))

    def _delete(self, txn: lmdb.Transaction, video_id: int) -> None:
        key = _vid_key(video_id)
        raw = txn.get(key, db=self.dbs["videos"])
        if raw is None:
            return
        data = _loads(raw)
        # Only drop secondary keys that still point at this video.
        if txn.get(_path_key(data["path"]), db=self.dbs["paths"]) == key:
            txn.delete(_path_key(data["path"]), db=self.dbs["paths"])
        if txn.get(data["hash"].encode(), db=self.dbs["hashes"]) == key:
            txn.delete(data["hash"].encode(), db=self.dbs["hashes"])
        txn.delete(key, db=self.dbs["videos"])
        txn.delete(key, db=self.dbs["blocks"])

    def disk_bytes(self) -> int:
        return sum(
            os.path.getsize(os.path.join(self.path, name))
            for name in os.listdir(self.path)
            if name.endswith(".mdb") and name != "lock.mdb"
        )

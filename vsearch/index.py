"""The index facade: one folder holding a metadata store and a vector store.

Folder layout::

    meta.lmdb/       LMDB, the source of truth (config, videos, block descriptors)
    vectors.faiss    FAISS index under stable ids, derived from meta.lmdb, replaced atomically
    writer.lock      flock held by the one writer, with its pid

Commit order: a video is committed to LMDB (one transaction) before its vectors go
into FAISS, and removed from LMDB before its vectors leave FAISS; the FAISS file is
saved atomically after. On open the in-memory vector index is reconciled with the
LMDB snapshot (missing videos re-added from stored blocks, vectors of videos LMDB
does not know dropped), so a crash between the two steps loses nothing committed.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from . import upgrade
from .store import metastore, vectorstore
from .config import IndexConfig
from .device import Device, resolve_device
from .decode import DEFAULT_TIMEOUT, VideoInfo
from .describe import VideoDescriptors
from .search.clip import DEFAULT_SPEEDS, FeatureClip, QueryClip, check_speeds
from .extractors import Extractor, create_extractor
from .featurefiles.read import FeatureRate, ImportedFeatures, read_features
from .errors import (
    ConfigMismatchError,
    FeatureFileError,
    IndexCorruptError,
    IndexNotFoundError,
    NotIndexedError,
    RebuildNeededError,
    VideoError,
    VsearchError,
)
from .lock import WriterLock
from .store.metastore import MetaStore, Snapshot
from .models import IndexStats, IngestResult, QueryResult, VerifyReport, VideoRecord
from .prepare import FileReader, PreparedVideo, ThreadReader, absolute, file_digest, prepare_file
from .query import DEFAULT_MIN_SCORE, Library, search_clip
from .store.rerank import TwoStageSearch
from .windows import WINDOW_BITS, indexed_windows, window_count, window_ids, window_vectors, windows_from_blocks

__all__ = ["IndexWriter", "VideoIndex", "default_index_path", "file_digest", "query_clip", "query_feature_file"]

#: While ingesting, the vector file is saved at most this often (and at the end);
#: anything committed since is re-added from LMDB on the next open.
_SAVE_INTERVAL_S = 60.0

#: How long a writer waits for the lock before reporting who holds it.
_WRITER_WAIT_S = 2.0

ProgressCallback = Callable[[IngestResult], None]

log = logging.getLogger(__name__)


class VideoIndex:
    """A searchable library of videos.

    Open with :meth:`open` (or :meth:`create`); use as a context manager so the
    writer lock and stores are released. Reads need no lock; ``add``, ``remove`` and
    ``rebuild`` take the writer lock for their duration.
    """

    def __init__(
        self, path: str | os.PathLike, *, config: IndexConfig, store: MetaStore, device: Device, repair: bool = True,
        model: str | None = None,
        owns_store: bool = True,
    ) -> None:
        self.path = str(path)
        self.config = config
        self.device = device
        self._model = model or None
        self._extractor: Extractor | None = None
        self._store = store
        self._owns_store = owns_store
        self._lock = WriterLock(self.path)
        with store.snapshot() as snap:
            self.index_type = snap.meta("index_type") or vectorstore.DEFAULT_INDEX_TYPE
            #: "auto" (type follows library size) or a fixed FAISS factory string.
            self.index_policy = snap.meta("index_policy") or self.index_type
        self._videos: dict[int, VideoRecord] = {}
        if self._load_vectors(mapped=True) and repair and not store.readonly:
            self._persist_repair()

    # -- opening ------------------------------------------------------------------

    @classmethod
    def exists(cls, path: str | os.PathLike) -> bool:
        return os.path.isfile(os.path.join(path, metastore.DIRNAME, "data.mdb"))

    @classmethod
    def create(cls, path: str | os.PathLike, config: IndexConfig | None = None, *, device: str = "auto") -> "VideoIndex":
        """Create a new, empty index folder (or open it if it exists with the same config)."""
        return cls.open(path, config=config or IndexConfig(), create=True, device=device)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        *,
        config: IndexConfig | None = None,
        settings: dict | None = None,
        create: bool = False,
        device: str = "auto",
        repair: bool = True,
    ) -> "VideoIndex":
        """Open an index folder.

        With ``create=True`` a missing index is created with ``config`` (or the
        defaults overridden by ``settings``, a dict of IndexConfig fields). Settings are
        fixed when an index is created: a ``config`` that differs from the stored one,
        or ``settings`` that disagree with it, raise :class:`ConfigMismatchError`.
        A gap between the vector file and the metadata store is always repaired in
        memory; with ``repair`` (default) the repaired file is also saved.
        """
        path = str(path)
        upgrade.finish_pending(path)  # a rebuild that a crash interrupted mid-swap
        dev = resolve_device(device)
        model = (settings or {}).get("model_path") or (config.model_path if config is not None else None)
        if config is None and settings:
            if cls.exists(path):
                with cls.open(path, device="cpu") as existing:
                    current = existing.config
                if settings.get("features", current.features) != current.features:
                    raise ConfigMismatchError(f"{path}: index settings cannot be changed after creation (features: "
                                              f"index has {current.features!r}, requested {settings['features']!r})")
                config = dataclasses.replace(current, **settings)
            else:
                config = IndexConfig(**settings)
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
        except ConfigMismatchError as exc:
            store.close()
            raise ConfigMismatchError(f"{path}: {exc}") from None
        if config is not None and config != stored:
            store.close()
            raise ConfigMismatchError(
                f"{path}: index settings cannot be changed after creation ("
                + "; ".join(config.differences(stored))
                + ")"
            )
        return cls(path, config=stored, store=store, device=dev, repair=repair, model=model)

    @property
    def extractor(self) -> Extractor:
        """What describes videos for this index (made on first use: an index of
        imported features has none, and says so)."""
        if self._extractor is None:
            self._extractor = create_extractor(self.config, self.device, model=self._model)
        return self._extractor

    def use_features(self, spec: str | None) -> None:
        """Check a ``--features`` value given with a query against the index's.

        ``onnx:PATH`` must be the index's model (same hash), possibly moved; it is
        then the copy used. None: the index's own. Anything else is refused.
        """
        if spec is None:
            return
        if self.config.extractor == "onnx" and spec.startswith("onnx:"):
            self._model, self._extractor = os.path.expanduser(spec[len("onnx:"):]), None
            self.extractor  # noqa: B018 - checks the model's hash now, before any clip is read
            return
        if spec != self.config.features:
            raise ConfigMismatchError(f"{self.path}: built with {self.config.features} features"
                                      + (f" ({self.config.model_path})" if self.config.model_path else "")
                                      + f"; clips must be described the same way, not with {spec}")

    def close(self) -> None:
        self._lock.release()
        if self._owns_store:
            self._store.close()

    def view(self) -> "VideoIndex":
        """Another handle on this open index, as committed now, for long-lived processes.

        It loads the vector file (mapped) and reconciles it with one snapshot of the
        metadata store, so it shows every video committed so far, whole, by any
        process. Writes through another handle never change it: a server queries
        one view from many threads and publishes a new view after a commit. Each
        view may write (it takes the writer lock like any handle) and shares this
        index's store, so it must not outlive it; closing it releases only its lock.
        """
        return VideoIndex(self.path, config=self.config, store=self._store, device=self.device, repair=False,
                          model=self._model, owns_store=False)

    def generation(self) -> tuple:
        """A value that changes whenever something is committed to the index, by any
        process: the metadata store's last transaction and the vector file's identity."""
        try:
            stat = os.stat(self._vector_file)
            vector_file = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            vector_file = None
        return self._store.last_transaction(), vector_file

    def __enter__(self) -> "VideoIndex":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"VideoIndex({self.path!r}, videos={len(self._videos)}, vectors={self._vectors.ntotal}, features={self.config.features!r})"

    # -- vector store synchronisation ----------------------------------------------

    @property
    def _vector_file(self) -> str:
        return os.path.join(self.path, vectorstore.FILENAME)

    def _load_vectors(self, *, mapped: bool = False) -> bool:
        """Load the vector file and reconcile it with LMDB; True if it needed repair.

        ``mapped`` maps the file (cheap for queries) unless it needs repair, which
        is done on a loaded copy; writers always reload a copy.
        """
        damaged = False
        try:
            loaded = (vectorstore.VectorStore.load(self._vector_file, mapped=mapped)
                      if os.path.exists(self._vector_file) else None)
            if loaded is not None and mapped and any(self._gaps(loaded)):
                loaded = vectorstore.VectorStore.load(self._vector_file)
        except IndexCorruptError as exc:
            # The file is derived data: rebuild it from LMDB rather than refuse to open.
            log.warning("%s; rebuilding it from the metadata store", exc)
            loaded, damaged = None, True
        if loaded is not None and loaded.dim != self.config.dim:
            raise ConfigMismatchError(f"{self._vector_file}: vector dimension {loaded.dim} != configured {self.config.dim}")
        self._vectors = loaded or vectorstore.VectorStore.create(self.config.dim, self.index_type)
        added, dropped = self._reconcile()
        return damaged or bool(added or dropped)

    def _persist_repair(self) -> None:
        """Save a repaired vector file now, unless a writer is busy (it will save)."""
        try:
            self._lock.acquire()
        except VsearchError:
            return
        try:
            self._load_vectors()  # re-read under the lock: a writer may have just saved
            self._save_vectors()
        finally:
            self._lock.release()

    def _gaps(self, vectors: vectorstore.VectorStore) -> tuple[list[int], list[VideoRecord]]:
        with self._store.snapshot() as snap:
            return _gaps_between({rec.id: rec for rec in snap.videos()}, vectors)

    def _reconcile(self) -> tuple[int, int]:
        """Make the in-memory vectors match LMDB; returns (videos added, videos dropped)."""
        with self._store.snapshot() as snap:
            self._videos = {rec.id: rec for rec in snap.videos()}
            stale, missing = _gaps_between(self._videos, self._vectors)
            self._vectors.remove_videos(stale)
            if missing and not self._vectors.is_trained:
                self._vectors.train(self._training_sample(snap, missing))
            for rec in missing:
                self._vectors.add(*self._windows_of(snap, rec))
        return len(missing), len(stale)

    def _training_sample(self, snap: Snapshot, records: list[VideoRecord]) -> np.ndarray:
        """Windows to train on, spread evenly over every video, at most what the type
        can use: a big library is never concatenated whole in memory."""
        total = sum(rec.windows for rec in records)
        step = max(1, -(-total // self._vectors.training_size()))
        return np.concatenate([self._windows_of(snap, rec)[1][::step] for rec in records])

    def _windows_of(self, snap: Snapshot, record: VideoRecord) -> tuple[np.ndarray, np.ndarray]:
        return self._indexed(record, snap.blocks(record, self.config.block_dim))

    def _indexed(self, record: VideoRecord, blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ids and vectors of a video's indexed windows (none across a damaged span)."""
        numbers = indexed_windows(len(blocks), record.damaged, self.config)
        return window_ids(record.id, numbers), window_vectors(blocks, self.config)[numbers]

    def _add_vectors(self, record: VideoRecord, blocks: np.ndarray) -> None:
        self._vectors.add(*self._indexed(record, blocks))

    def _save_vectors(self) -> None:
        try:
            self._vectors.save(self._vector_file)
        except (OSError, RuntimeError) as exc:
            raise VsearchError(f"{self._vector_file}: cannot save vector index ({exc}); "
                               "committed videos are safe and will be re-added on next open") from None

    def _begin_write(self) -> None:
        if self._store.readonly:
            raise VsearchError(f"{self.path}: index folder is read-only")
        # A reader saving a repair holds the lock for a moment: wait that out.
        self._lock.acquire(wait=_WRITER_WAIT_S)
        # Temporary files of a writer that was killed mid-save.
        for name in os.listdir(self.path):
            if name.startswith(".vectors-") and name.endswith(".tmp"):
                os.unlink(os.path.join(self.path, name))
        # Another writer may have changed the index since we opened it.
        self._load_vectors()

    def _end_write(self) -> None:
        try:
            if self.index_policy == "auto":
                wanted = vectorstore.auto_index_type(self._vectors.ntotal, self.config.dim)
                if wanted != self.index_type and _worth_retraining(self.index_type, wanted):
                    log.info("library reached %d vectors: switching index to %s", self._vectors.ntotal, wanted)
                    self._switch_index_type(wanted)
            self._save_vectors()
        finally:
            self._lock.release()

    def _switch_index_type(self, new_type: str) -> None:
        """Rebuild the vectors as ``new_type`` (trained on every stored window) and save."""
        self._vectors = vectorstore.VectorStore.create(self.config.dim, new_type)
        self._reconcile()
        self._save_vectors()
        self._store.set_meta("index_type", new_type)
        self.index_type = new_type

    # -- writes ---------------------------------------------------------------------

    def add(
        self,
        paths: Iterable[str | os.PathLike],
        *,
        progress: ProgressCallback | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        reader: FileReader | None = None,
    ) -> list[IngestResult]:
        """Index video files (folders are not expanded here; see ``iter_video_files``).

        Each file is handled on its own: a bad file yields a ``failed`` result with a
        one-line reason and the others go on. Content already indexed is skipped, a
        file whose content changed is re-indexed, a moved file keeps its vectors. A
        damaged or truncated file is indexed as far as it plays (``partial``). A file
        whose decoding makes no progress for ``timeout`` seconds, or runs below a
        tenth of real time, fails and the others go on.

        ``reader`` decodes and describes the files (default: a few at a time in
        threads here; ``vsearch.cluster.RayReader`` on a Ray cluster); whoever reads
        them, this process alone commits them, one by one in the order given.
        """
        extractor = self.extractor  # made (and its model checked) before anything is read
        reader = reader or ThreadReader()
        results: list[IngestResult] = []
        with self.writing(timeout=timeout) as writer:
            read = reader.read(paths, config=self.config, device=self.device, extractor=extractor,
                               known=writer.known, timeout=timeout)
            try:
                for path, prepared in read:
                    result = writer.commit(path, prepared)
                    results.append(result)
                    if progress is not None:
                        progress(result)
            finally:
                read.close()  # files still being read are abandoned
        return results

    @contextmanager
    def writing(self, *, timeout: float = DEFAULT_TIMEOUT) -> Iterator["IndexWriter"]:
        """Hold the writer lock and commit prepared files through the yielded
        :class:`IndexWriter`; the vector file is saved on the way out (also on error)."""
        self._begin_write()
        try:
            yield IndexWriter(self, timeout=timeout)
        finally:
            self._end_write()

    def add_features(
        self,
        files: Iterable[str | os.PathLike],
        *,
        layout: str | None = None,
        rate: FeatureRate = FeatureRate(),
        progress: ProgressCallback | None = None,
    ) -> list[IngestResult]:
        """Index features another tool computed (see :mod:`vsearch.featurefiles.read`).

        Only into an index of imported features (``IndexConfig(features="imported",
        embedding_dim=D)``). Each file is handled on its own, like a video in
        :meth:`add`: one of the wrong layout, shape, dimension or time axis (or a
        pickle) yields a ``failed`` result naming the reason and the others go on;
        the same features again are skipped, changed ones replace the video's.
        """
        if self.config.extractor != "imported":
            raise ConfigMismatchError(f"{self.path}: this index computes its own {self.config.features} features; "
                                      "import features into an index created with --from-features")
        self._begin_write()
        results: list[IngestResult] = []
        try:
            for file in files:
                errors: list[FeatureFileError] = []
                try:
                    videos = read_features(file, layout=layout, rate=rate, errors=errors)
                except FeatureFileError as exc:
                    videos, errors = [], [exc]
                done = [IngestResult(path=exc.path, status="failed", reason=exc.reason) for exc in errors]
                for imported in videos:
                    try:
                        done.append(self._commit(self._prepare_imported(imported), DEFAULT_TIMEOUT))
                    except VideoError as exc:
                        done.append(IngestResult(path=imported.source, status="failed", reason=exc.reason))
                for result in done:  # the file's bad videos first
                    results.append(result)
                    if progress is not None:
                        progress(result)
        finally:
            self._end_write()
        return results

    def _prepare_imported(self, imported: ImportedFeatures) -> PreparedVideo:
        """Imported features as a prepared video: on the block grid, dimension checked."""
        if imported.dim != self.config.block_dim:
            raise FeatureFileError(imported.source, f"features have {imported.dim} dimensions, the index holds "
                                                    f"{self.config.block_dim}")
        blocks = imported.blocks(self.config)
        windows = window_count(len(blocks), self.config)
        if windows == 0:
            raise FeatureFileError(imported.source, f"features span {imported.duration:.2f} s, shorter than one "
                                                    f"window ({self.config.window_seconds:g} s)")
        info = VideoInfo(path=absolute(imported.video) if os.path.exists(imported.video) else imported.video,
                         duration=imported.duration, fps=imported.fps, width=0, height=0, frame_count=len(blocks))
        return PreparedVideo(path=info.path, digest=imported.digest, described=VideoDescriptors(info=info, blocks=blocks),
                         windows=windows)

    def _commit(self, prepared: PreparedVideo, timeout: float) -> IngestResult:
        """Commit one prepared file (under the writer lock: see :class:`IndexWriter`)."""
        path, digest = prepared.path, prepared.digest
        with self._store.snapshot() as snap:
            same_content = snap.video_by_hash(digest)
            same_path = snap.video_by_path(path)
        if same_content is not None:
            if same_content.path == path:
                return IngestResult(path=path, status="skipped", video_id=same_content.id, duration_s=same_content.duration_s)
            if not os.path.exists(same_content.path):
                record = self._store.move_video(same_content.id, path)
                self._videos[record.id] = record
                return IngestResult(path=path, status="moved", video_id=record.id, duration_s=record.duration_s)
            return IngestResult(path=path, status="skipped", video_id=same_content.id, duration_s=same_content.duration_s,
                                reason=f"same content as {same_content.path}")
        if prepared.described is None:  # its twin was removed meanwhile: read it after all
            prepared = prepare_file(path, config=self.config, device=self.device, extractor=self.extractor,
                                    timeout=timeout)
        described, info, damaged = prepared.described, prepared.described.info, prepared.damaged
        record = self._store.commit_video(
            dict(path=path, hash=digest, duration_s=round(info.duration, 6), fps=round(info.fps, 6),
                 width=info.width, height=info.height, frames=info.frame_count,
                 blocks=len(described.blocks), windows=prepared.windows, added=metastore.now_iso(),
                 partial=info.partial, damaged=damaged, reason=info.partial_reason()),
            described.blocks,
            replaces=same_path.id if same_path is not None else None,
        )
        if same_path is not None:
            self._vectors.remove_videos([same_path.id])
            self._videos.pop(same_path.id, None)
        self._videos[record.id] = record
        self._add_vectors(record, described.blocks)
        status = "partial" if record.partial else "replaced" if same_path else "added"
        return IngestResult(path=path, status=status, video_id=record.id, duration_s=record.duration_s,
                            reason=record.reason)

    def remove(self, paths: Iterable[str | os.PathLike]) -> list[VideoRecord]:
        """Remove videos by path (as given at ingest, or absolute). Other ids never change."""
        self._begin_write()
        removed = []
        try:
            with self._store.snapshot() as snap:
                records = []
                for raw in paths:
                    record = snap.video_by_path(absolute(raw)) or snap.video_by_path(os.fsdecode(os.fspath(raw)))
                    if record is None:
                        raise NotIndexedError(f"{os.fsdecode(os.fspath(raw))}: not in the index")
                    records.append(record)
            for record in records:
                self._remove_record(record)
                removed.append(record)
        finally:
            self._end_write()
        return removed

    def _remove_record(self, record: VideoRecord) -> None:
        """Metadata first, then the vectors: a crash between leaves stale vectors, dropped on open."""
        self._store.delete_video(record.id)
        self._vectors.remove_videos([record.id])
        self._videos.pop(record.id, None)

    def rebuild(self, *, index_type: str | None = None) -> int:
        """Re-create the vector index from the stored block descriptors (no decoding).

        ``index_type`` switches to another FAISS factory type (trained on every
        stored window). The new file replaces the old one atomically.
        """
        policy = index_type or self.index_policy
        if policy != "auto":
            # Validate before locking: a bad string or too few vectors changes nothing.
            vectorstore.VectorStore.create(self.config.dim, policy)
            vectorstore.check_trainable(policy, sum(record.windows for record in self._videos.values()))
        self._begin_write()
        try:
            target = vectorstore.auto_index_type(self._vectors.ntotal, self.config.dim) if policy == "auto" else policy
            self._switch_index_type(target)
            if policy != self.index_policy:
                self._store.set_meta("index_policy", policy)
                self.index_policy = policy
        finally:
            self._lock.release()
        return self._vectors.ntotal

    # -- reads ------------------------------------------------------------------------

    def query(
        self,
        clip: str | os.PathLike,
        *,
        k: int = 5,
        min_score: float = DEFAULT_MIN_SCORE,
        mirrored: bool = True,
        speeds: tuple[float, ...] = DEFAULT_SPEEDS,
        inset: bool = True,
        rotations: bool = True,
        decoder: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_duration: float | None = None,
    ) -> QueryResult:
        """Find the library segments a clip comes from, best first.

        ``mirrored`` also searches the horizontally flipped clip, so flipped copies
        are found too; ``speeds`` are the playback speeds the clip is also read at,
        so sped-up or slowed-down copies are found (each speed tolerates about
        +-5 %; the rate reported is fitted along the clip); ``inset`` also searches a
        picture-in-picture inset when the clip has one (v1 features); ``rotations``
        also searches the clip turned by quarter turns. Edited readings are searched
        only when the plain one finds no near-exact hit (see ``vsearch.query``), so
        they cost nothing for plain copies; ``speeds=(1.0,)``, ``mirrored=False``,
        ``inset=False`` and ``rotations=False`` is the fastest, plain query.
        ``min_score`` only filters the hits: it changes nothing else.

        The clip is decoded like the library, by the index's decoder; ``decoder``
        naming another is refused (decoders differ in scaling and colour, so their
        vectors do not compare). ``timeout`` bounds a stalled decode, as in :meth:`add`;
        a clip longer than ``max_duration`` seconds raises :class:`ClipTooLongError`
        before it is decoded whole.
        """
        self.check_decoder(decoder)
        return query_clip(clip, self.library(), device=self.device, extractor=self.extractor, k=k,
                          min_score=min_score, mirrored=mirrored, speeds=speeds, inset=inset, rotations=rotations,
                          timeout=timeout, max_duration=max_duration)

    def query_features(
        self,
        features: str | os.PathLike,
        *,
        layout: str | None = None,
        rate: FeatureRate = FeatureRate(),
        k: int = 5,
        min_score: float = DEFAULT_MIN_SCORE,
    ) -> QueryResult:
        """Like :meth:`query`, for a clip given as features (one video's file, of the
        index's dimension). Only the plain reading is searched: speeds, mirroring,
        rotations and insets need the clip's frames."""
        return query_feature_file(features, self.library(), layout=layout, rate=rate, k=k, min_score=min_score)

    def library(self) -> Library:
        """What the query path reads: this handle's videos, vector search and stored windows."""
        return Library(config=self.config, videos=self._videos, search=self.nearest,
                       windows=functools.lru_cache(maxsize=64)(self.window_vectors))

    def nearest(self, vectors: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Squared L2 distances and window ids of each vector's ``n`` nearest indexed
        windows, nearest first (fewer columns when the index holds fewer windows);
        exact distances whatever the index type (see :meth:`_searcher`)."""
        return self._searcher()(vectors, n)

    def _searcher(self) -> Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]:
        """Nearest windows with exact distances: the vector store itself when its codes
        are exact (Flat, float16), else its candidates re-ranked against the stored
        blocks (:mod:`vsearch.store.rerank`)."""
        if self._vectors.exact_distances:
            return self._vectors.search
        return TwoStageSearch(candidates=self._vectors.search, gather=self.stored_windows)

    def stored_windows(self, ids: np.ndarray) -> np.ndarray:
        """Full-precision window vectors by id, from the stored blocks (NaN for a
        window of a video no longer stored): what a compact index's candidates are
        re-ranked with."""
        blocks = self._store.window_blocks(ids, self.config.window_blocks, self.config.block_dim)
        return windows_from_blocks(blocks, self.config)

    def check_decoder(self, decoder: str | None) -> None:
        """Refuse a decoder other than the index's (None: the index's own)."""
        if decoder is not None and decoder != self.config.decoder:
            raise ConfigMismatchError(
                f"{self.path}: built with the {self.config.decoder} decoder; clips must be decoded the same way "
                f"(decoders differ in scaling and colour): use --decoder {self.config.decoder} or a new index")

    def window_vectors(self, video_id: int) -> np.ndarray:
        """All window vectors of one video by window number, rebuilt from its stored
        blocks; windows across a damaged span (not indexed) are zero."""
        with self._store.snapshot() as snap:
            record = snap.video(video_id)
            if record is None:
                raise NotIndexedError(f"video {video_id} is not in the index")
            vectors = window_vectors(snap.blocks(record, self.config.block_dim), self.config)
        if record.partial:
            keep = np.zeros(len(vectors), dtype=bool)
            keep[indexed_windows(record.blocks, record.damaged, self.config)] = True
            vectors[~keep] = 0.0
        return vectors

    def videos(self) -> list[VideoRecord]:
        """Indexed videos, in id order."""
        return [self._videos[vid] for vid in sorted(self._videos)]

    def stats(self) -> IndexStats:
        with self._store.snapshot() as snap:
            created, updated = snap.meta("created"), snap.meta("updated")
        size = self._store.disk_bytes()
        if os.path.exists(self._vector_file):
            size += os.path.getsize(self._vector_file)
        return IndexStats(
            path=os.path.abspath(self.path),
            videos=len(self._videos),
            vectors=self._vectors.ntotal,
            duration_s=round(sum(r.duration_s for r in self._videos.values()), 3),
            partial_videos=sum(r.partial for r in self._videos.values()),
            dim=self.config.dim,
            index_type=("IDMap2," if self._vectors.layout == "IDMap2" else "") + self.index_type
            + (" (auto)" if self.index_policy == "auto" else ""),
            bytes=size,
            config=self.config.to_dict(),
            created=created,
            updated=updated,
        )

    def verify(self) -> VerifyReport:
        """Check the vector file on disk against LMDB without changing anything."""
        problems = []
        with self._store.snapshot() as snap:
            videos = {rec.id: rec for rec in snap.videos()}
            for rec in videos.values():
                try:
                    snap.blocks(rec, self.config.block_dim)
                except VsearchError as exc:
                    problems.append(str(exc))
        if not os.path.exists(self._vector_file):
            on_disk = vectorstore.VectorStore.create(self.config.dim, self.index_type)
            if videos:
                problems.append(f"{self._vector_file}: missing")
        else:
            try:
                on_disk = vectorstore.VectorStore.load(self._vector_file)
            except IndexCorruptError as exc:
                problems.append(str(exc))
                on_disk = vectorstore.VectorStore.create(self.config.dim, self.index_type)
        held = _windows_per_video(on_disk.ids())
        for vid, rec in videos.items():
            if held.get(vid, 0) != rec.windows:
                problems.append(f"video {vid} ({rec.path}): {held.get(vid, 0)} vectors on disk, expected {rec.windows}")
        for vid in set(held) - set(videos):
            problems.append(f"video {vid}: {held[vid]} vectors on disk for a video that is not committed")
        return VerifyReport(ok=not problems, videos=len(videos), vectors=on_disk.ntotal,
                            partial_videos=sum(rec.partial for rec in videos.values()), problems=problems)


def query_clip(
    clip: str | os.PathLike, library: Library, *, device: Device, extractor: Extractor, k: int, min_score: float,
    mirrored: bool, speeds: tuple[float, ...], inset: bool, rotations: bool, timeout: float,
    max_duration: float | None,
) -> QueryResult:
    """Decode and describe ``clip`` once and search ``library`` (one index, or several
    shards merged: see ``vsearch.shards``); the options are those of :meth:`VideoIndex.query`."""
    if k < 1:
        raise VsearchError("k must be at least 1")
    reader = QueryClip(clip, library.config, device, mirrored=mirrored, speeds=check_speeds(speeds), inset=inset,
                       rotations=rotations, timeout=timeout, extractor=extractor, max_duration=max_duration)
    hits = search_clip(reader, library, k=k, min_score=min_score)
    return QueryResult(query=os.fsdecode(os.fspath(clip)), duration=reader.duration, hits=hits)


def query_feature_file(
    features: str | os.PathLike, library: Library, *, layout: str | None, rate: FeatureRate, k: int, min_score: float,
) -> QueryResult:
    """Search ``library`` with a clip given as features (see :meth:`VideoIndex.query_features`)."""
    if k < 1:
        raise VsearchError("k must be at least 1")
    videos = read_features(features, layout=layout, rate=rate)
    if len(videos) != 1:
        raise FeatureFileError(features, f"holds {len(videos)} videos; a query clip is one")
    reader = FeatureClip(videos[0], library.config)
    hits = search_clip(reader, library, k=k, min_score=min_score)
    return QueryResult(query=os.fsdecode(os.fspath(features)), duration=reader.duration, hits=hits)


class IndexWriter:
    """The one committing writer of an index, while :meth:`VideoIndex.writing` holds
    the lock: commits prepared files in the order they are handed over, each in one
    LMDB transaction before its vectors, and saves the vector file now and then.

    ``known`` is the set of content hashes the index holds, grown with every
    commit: a reader consults it to skip decoding content that is indexed already.
    """

    def __init__(self, index: VideoIndex, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.index = index
        self.timeout = timeout
        self.known: set[str] = {record.hash for record in index._videos.values()}
        self._last_save = time.monotonic()

    def commit(self, path: str, prepared: PreparedVideo | VideoError) -> IngestResult:
        """Commit one file a reader prepared (or record why it could not be read)."""
        if isinstance(prepared, VideoError):
            return IngestResult(path=path, status="failed", reason=prepared.reason)
        try:
            result = self.index._commit(prepared, self.timeout)
            self.known.add(prepared.digest)  # a later copy of the same content is not read again
        except VideoError as exc:
            result = IngestResult(path=path, status="failed", reason=exc.reason)
        if time.monotonic() - self._last_save > _SAVE_INTERVAL_S:
            self.index._save_vectors()
            self._last_save = time.monotonic()
        return result

    def holds_path(self, path: str) -> VideoRecord | None:
        """The committed video at ``path``, if any."""
        with self.index._store.snapshot() as snap:
            return snap.video_by_path(path)

    def holds_hash(self, digest: str) -> bool:
        """Whether content with this hash is committed."""
        return digest in self.known

    def remove(self, record: VideoRecord) -> None:
        """Remove one video (metadata first, then its vectors)."""
        self.index._remove_record(record)


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


def default_index_path() -> Path:
    """``$VSEARCH_INDEX`` or ``indexes/default``."""
    return Path(os.environ.get("VSEARCH_INDEX") or os.path.join("indexes", "default"))


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


def _gaps_between(videos: dict[int, VideoRecord], vectors: vectorstore.VectorStore) -> tuple[list[int], list[VideoRecord]]:
    """Ids of videos whose vectors are stale (uncommitted or partial), and committed videos to (re-)add."""
    held = _windows_per_video(vectors.ids())
    stale = [vid for vid, n in held.items() if vid not in videos or n != videos[vid].windows]
    missing = [rec for vid, rec in videos.items() if vid not in held or vid in stale]
    return stale, missing

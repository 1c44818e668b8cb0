"""A library held in several ordinary indexes (*shards*), searched and filled as one.

Each shard is a complete vsearch index (its own LMDB, FAISS file and writer lock),
so every single-index guarantee holds per shard. A :class:`ShardedIndex` puts
them together:

- **search**: each query window's nearest windows are asked of every shard with
  the same ``n`` and merged by distance, keeping the ``n`` nearest overall; voting,
  alignment and scoring then run once, over the merged neighbours, exactly as for
  one index. With exact (Flat) shards the hits are those of a single index holding
  the same videos; with IVF shards each shard's search is approximate, as one
  IVF index's would be.
- **ids**: a video is known library-wide by ``local id * shards + shard number``
  (:func:`global_video_id`), in hits and in :meth:`ShardedIndex.videos`.
- **ingest**: a file goes to the shard that already holds its content, else to
  the shard its content hash picks (:func:`shard_for`), so shards stay balanced and
  a copy is recognised whichever shard holds it. One process commits, holding every
  shard's writer lock (taken in shard order).

Shards are named by several ``--index`` options or by a manifest, a JSON file::

    {"shards": ["shard-0", "shard-1", "/mnt/b/shard-2"]}

(relative paths are relative to the manifest's folder). A shard is anything with
the :class:`Shard` methods: :class:`LocalShard` opens an index here;
``vsearch.cluster.actors`` keeps one in a Ray actor on any machine of a cluster.
"""

from __future__ import annotations

import dataclasses
import json
import os
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Protocol, Sequence

import numpy as np

from ..config import IndexConfig
from ..decode import DEFAULT_MAX_PIXELS, DEFAULT_TIMEOUT
from ..device import Device, resolve_device
from ..errors import ConfigMismatchError, IndexNotFoundError, VideoError, VsearchError
from ..extractors import Extractor, create_extractor
from ..ingest.readers import PreparedVideo
from ..ingest.writer import IndexWriter
from ..models import IndexStats, IngestResult, LibraryStats, VideoRecord
from ..store.matches import Matches
from ..windows import WINDOW_BITS, split_ids
from .base import BaseIndex
from .index import VideoIndex

MANIFEST_KEY = "shards"


class Shard(Protocol):
    """One index of a sharded library, wherever it is kept."""

    path: str
    config: IndexConfig

    def videos(self) -> list[VideoRecord]: ...

    def nearest(self, vectors: np.ndarray, n: int) -> "Future[Matches]":
        """Start the search (``VideoIndex.nearest``); the future holds its result."""

    def video_blocks(self, video_id: int) -> np.ndarray: ...

    def stats(self) -> IndexStats: ...

    def close(self) -> None: ...


class LocalShard:
    """A shard opened in this process."""

    def __init__(self, index: VideoIndex) -> None:
        self.index = index
        self.path = index.path
        self.config = index.config

    def videos(self) -> list[VideoRecord]:
        return self.index.videos()

    def nearest(self, vectors: np.ndarray, n: int) -> "Future[Matches]":
        done: Future = Future()
        done.set_result(self.index.nearest(vectors, n))
        return done

    def video_blocks(self, video_id: int) -> np.ndarray:
        return self.index.video_blocks(video_id)

    def stats(self) -> IndexStats:
        return self.index.stats()

    def close(self) -> None:
        self.index.close()


def global_video_id(local_id: int | np.ndarray, shard: int, shards: int) -> int | np.ndarray:
    """The library-wide id of video ``local_id`` of shard number ``shard``."""
    return local_id * shards + shard


def shard_for(digest: str, shards: int) -> int:
    """The shard new content goes to: its hash (uniform) modulo the shard count."""
    return int(digest[:16], 16) % shards


def merge_nearest(results: Sequence[Matches], n: int) -> Matches:
    """Each shard's nearest windows (local ids) -> the ``n`` nearest of all, under global ids.

    Ties keep shard order (a stable sort); missing neighbours (id -1) sort last.
    """
    shards = len(results)
    distances, ids = [], []
    for number, matches in enumerate(results):
        dist, local = matches.distances, matches.ids
        videos = split_ids(local)[0]
        within = local & np.int64((1 << WINDOW_BITS) - 1)  # the window and its region, as they are
        missing = ~matches.found
        ids.append(np.where(missing, -1, (global_video_id(videos, number, shards) << np.int64(WINDOW_BITS)) + within))
        distances.append(np.where(missing, np.inf, dist).astype(np.float32, copy=False))
    dist, glob = np.concatenate(distances, axis=1), np.concatenate(ids, axis=1)
    order = np.argsort(dist, axis=1, kind="stable")[:, :n]
    return Matches(np.take_along_axis(dist, order, axis=1), np.take_along_axis(glob, order, axis=1))


def read_manifest(path: str | os.PathLike) -> list[str]:
    """The shard folders a manifest names (relative ones resolved against its folder)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexNotFoundError(f"{path}: no such manifest") from None
    except OSError as exc:
        raise VsearchError(f"{path}: cannot read shard manifest ({exc.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        data = None
    shards = data.get(MANIFEST_KEY) if isinstance(data, dict) else None
    if not isinstance(shards, list) or not shards or not all(isinstance(s, str) and s for s in shards):
        # A video or any other file given as --index by mistake.
        raise IndexNotFoundError(f"{path}: no vsearch index here: a file, not an index folder or a shard manifest "
                                 f'({{"{MANIFEST_KEY}": ["folder", ...]}})')
    base = Path(path).resolve().parent
    return [str(base / s) for s in shards]


def write_manifest(path: str | os.PathLike, shards: Sequence[str | os.PathLike]) -> None:
    """Write a manifest naming ``shards`` (stored relative to its folder when inside it)."""
    base = Path(path).resolve().parent
    names = [os.path.relpath(Path(s).resolve(), base) if Path(s).resolve().is_relative_to(base) else str(Path(s).resolve())
             for s in shards]
    Path(path).write_text(json.dumps({MANIFEST_KEY: names}, indent=2) + "\n", encoding="utf-8")


def shard_paths(indexes: Sequence[str | os.PathLike]) -> list[str]:
    """Shard folders from ``--index`` values: folders as given, manifests (files) expanded."""
    paths: list[str] = []
    for index in indexes:
        paths += read_manifest(index) if os.path.isfile(index) else [os.fspath(index)]
    if len(set(map(os.path.abspath, paths))) != len(paths):
        raise VsearchError("a shard is named twice: " + ", ".join(map(str, paths)))
    return paths


def library_exists(indexes: Sequence[str | os.PathLike]) -> bool:
    """Whether every index named (folders, or the shards of manifests) exists."""
    return all(VideoIndex.exists(path) for path in shard_paths(indexes))


def is_sharded(indexes: Sequence[str | os.PathLike]) -> bool:
    """Whether ``--index`` values name a sharded library (several, or a manifest)."""
    return len(indexes) > 1 or any(os.path.isfile(index) for index in indexes)


def open_library(
    indexes: Sequence[str | os.PathLike], *, device: str = "auto", create: bool = False, settings: dict | None = None,
) -> "VideoIndex | ShardedIndex":
    """One index folder as a :class:`VideoIndex`; several, or a manifest, as a :class:`ShardedIndex`."""
    if is_sharded(indexes):
        return ShardedIndex.open(indexes, device=device, create=create, settings=settings)
    return VideoIndex.open(indexes[0], device=device, create=create, settings=settings)


class ShardedIndex(BaseIndex):
    """Several indexes searched as one library (see the module docstring).

    Open with :meth:`open` (local shards) or build from :class:`Shard` objects (e.g.
    Ray actors, ``vsearch.cluster.actors.open_remote_shards``). Every shard must have
    been built with the same settings: their vectors are compared with one another.
    """

    def __init__(self, shards: Sequence[Shard], *, device: Device | None = None) -> None:
        if not shards:
            raise VsearchError("a sharded library needs at least one shard")
        self.shards = list(shards)
        self.config = self.shards[0].config
        for shard in self.shards[1:]:
            if shard.config != self.config:
                differences = "; ".join(shard.config.differences(self.config))
                self.close()
                raise ConfigMismatchError(f"{shard.path}: built with other settings than {self.shards[0].path} "
                                          f"({differences}); shards of one library must match")
        self.device = device or resolve_device("cpu")
        self._refresh()

    @classmethod
    def open(
        cls, indexes: Sequence[str | os.PathLike], *, device: str = "auto", create: bool = False,
        settings: dict | None = None,
    ) -> "ShardedIndex":
        """Open local shards: index folders and/or manifests (``create``: missing ones
        are created with ``settings``, as ``VideoIndex.open`` does)."""
        opened: list[Shard] = []
        try:
            for path in shard_paths(indexes):
                opened.append(LocalShard(VideoIndex.open(path, device=device, create=create, settings=settings)))
            return cls(opened, device=opened[0].index.device)
        except BaseException:
            for shard in opened:
                shard.close()
            raise

    def _refresh(self) -> None:
        count = len(self.shards)
        self._records = {}
        for number, shard in enumerate(self.shards):
            for record in shard.videos():
                glob = global_video_id(record.id, number, count)
                self._records[glob] = dataclasses.replace(record, id=glob)

    def locate(self, video_id: int) -> tuple[Shard, int]:
        """The shard holding library-wide video ``video_id``, and its id there."""
        return self.shards[video_id % len(self.shards)], video_id // len(self.shards)

    @property
    def path(self) -> str:
        return ", ".join(shard.path for shard in self.shards)

    def _make_extractor(self) -> Extractor:
        """One of the shards' own, when local (unless a moved model was given)."""
        first = self.shards[0]
        if isinstance(first, LocalShard) and self._model is None:
            return first.index.extractor
        return create_extractor(self.config, self.device, model=self._model)

    def close(self) -> None:
        for shard in self.shards:
            shard.close()

    # -- reads --------------------------------------------------------------------

    def _videos_by_id(self) -> dict[int, VideoRecord]:
        return self._records

    def nearest(self, vectors: np.ndarray, n: int) -> Matches:
        """Every shard's ``n`` nearest windows, asked at once and merged (global ids)."""
        pending = [shard.nearest(vectors, n) for shard in self.shards]
        return merge_nearest([future.result() for future in pending], n)

    def video_blocks(self, video_id: int) -> np.ndarray:
        shard, local = self.locate(video_id)
        return shard.video_blocks(local)

    def videos(self) -> list[VideoRecord]:
        """Every shard's videos, under library-wide ids, in id order."""
        return [self._records[vid] for vid in sorted(self._records)]

    def stats(self) -> LibraryStats:
        """Each shard's stats and the totals."""
        return LibraryStats.of([shard.stats() for shard in self.shards])

    # -- writes -------------------------------------------------------------------

    def add_features(self, files: Iterable[str | os.PathLike], **options: object) -> list[IngestResult]:
        """Imported features go into one index (``VideoIndex.add_features``), not shards."""
        raise VsearchError("--from-features imports into one index, not into shards")

    @contextmanager
    def writing(self, *, timeout: float = DEFAULT_TIMEOUT, extractor: Extractor | None = None,
                max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Iterator["ShardedWriter"]:
        """Hold every shard's writer lock (in shard order) and commit through the
        yielded :class:`ShardedWriter`; only shards opened here can be written."""
        local = [shard.index for shard in self.shards if isinstance(shard, LocalShard)]
        if len(local) != len(self.shards):
            raise VsearchError("ingest into shards opened here (index folders or a manifest), not into Ray actors")
        extractor = extractor or self.extractor
        with ExitStack() as stack:
            writers = [stack.enter_context(index.writing(timeout=timeout, extractor=extractor, max_pixels=max_pixels))
                       for index in local]  # in shard order
            yield ShardedWriter(writers)
        self._refresh()


class ShardedWriter:
    """The shards' writers as one (``ShardedIndex.add``): a file goes to the shard
    holding its content already, else to :func:`shard_for` its hash. A file whose
    path another shard holds with other content is re-indexed where its new content
    belongs, then removed there (so a crash between leaves the old entry too, until
    the same ingest runs again). Results name videos by library-wide id.
    """

    def __init__(self, writers: list[IndexWriter]) -> None:
        self.writers = writers
        #: Content hashes held by any shard (a reader skips decoding those).
        self.known: set[str] = set().union(*(writer.known for writer in writers))

    def commit(self, path: str, prepared: PreparedVideo | VideoError) -> IngestResult:
        """Commit one prepared file into the shard it belongs to."""
        writers, count = self.writers, len(self.writers)
        if isinstance(prepared, VideoError):
            return writers[0].commit(path, prepared)  # only reports the failure
        holder = [n for n, writer in enumerate(writers) if writer.holds_hash(prepared.digest)]
        target = holder[0] if holder else shard_for(prepared.digest, count)
        result = writers[target].commit(path, prepared)
        if result.ok:
            self.known.add(prepared.digest)
        if result.status in ("added", "partial", "moved"):
            replaced = False
            for number, writer in enumerate(writers):
                stale = writer.holds_path(path) if number != target else None
                if stale is not None:
                    writer.remove(stale)
                    replaced = True
            if replaced and result.status == "added":
                result = dataclasses.replace(result, status="replaced")
        if result.video_id is not None:
            result = dataclasses.replace(result, video_id=global_video_id(result.video_id, target, count))
        return result

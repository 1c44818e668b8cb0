"""The index facade: one folder holding a metadata store and a vector store.

:class:`VideoIndex` opens an index folder (:class:`vsearch.store.folder.IndexFolder`:
LMDB and FAISS kept in step, the commit order, verify) and offers a library's
operations (:class:`vsearch.library.base.BaseIndex`: queries, ingest), plus what one
folder alone has: removal, rebuild, imported features, stats and verify.
"""

from __future__ import annotations

import dataclasses
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from ..config import IndexConfig
from ..decode import DEFAULT_MAX_PIXELS, DEFAULT_TIMEOUT
from ..device import Device, resolve_device
from ..errors import ConfigMismatchError, FeatureFileError, NotIndexedError, VideoError
from ..extractors import Extractor, create_extractor
from ..featurefiles.read import FeatureReading, iter_source
from ..featurefiles.sources import FeatureSource, feature_sources
from ..ingest.readers import absolute, prepare_imported
from ..ingest.writer import IndexWriter
from ..models import IndexStats, IngestResult, VerifyReport, VideoRecord
from ..store.folder import IndexFolder, finish_pending
from ..store.matches import Matches
from ..search.calibration import RAW, measure_noise
from ..search.pipeline import search_clip
from .base import BaseIndex, ProgressCallback

__all__ = ["VideoIndex", "default_index_path"]


class VideoIndex(BaseIndex):
    """A searchable library of videos.

    Open with :meth:`open` (or :meth:`create`); use as a context manager so the
    writer lock and stores are released. Reads need no lock; ``add``, ``remove`` and
    ``rebuild`` take the writer lock for their duration.
    """

    def __init__(self, folder: IndexFolder, *, device: Device, model: str | None = None) -> None:
        self._folder = folder
        self.path = folder.path
        self.config = folder.config
        self.device = device
        self._model = model or None
        self._extractor = None

    # -- opening ------------------------------------------------------------------

    @classmethod
    def exists(cls, path: str | os.PathLike) -> bool:
        return IndexFolder.exists(path)

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
        finish_pending(path)  # a rebuild that a crash interrupted mid-swap
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
        folder = IndexFolder.open(path, config=config, create=create, repair=repair)
        return cls(folder, device=dev, model=model)

    @property
    def folder(self) -> IndexFolder:
        """The storage: LMDB and FAISS kept in step (for tools and tests that look inside)."""
        return self._folder

    @property
    def index_type(self) -> str:
        """The FAISS factory string of the vector index."""
        return self._folder.index_type

    @property
    def index_policy(self) -> str:
        """``auto`` (the type follows the library's size) or a fixed FAISS factory string."""
        return self._folder.index_policy

    def _make_extractor(self) -> Extractor:
        return create_extractor(self.config, self.device, model=self._model)

    def close(self) -> None:
        self._folder.close()

    def view(self) -> "VideoIndex":
        """Another handle on this open index, as committed now, for long-lived processes.

        It takes one snapshot of the metadata store and keeps it: the vector file
        (mapped) is reconciled with it, and everything the view reads later (videos,
        their stored windows, stats) is read there, so it shows every video committed
        until then, whole, by any process, even one removed since. Writes through
        another handle never change it: a server queries one view from many threads
        and publishes a new view after a commit. Each view may write (it takes the
        writer lock like any handle, and from then on reads the index as it is) and
        shares this index's store, so it must not outlive it; close it when done
        (that releases its snapshot and its lock). A commit that must grow the
        metadata store waits until every view is closed: see :meth:`on_map_change`.
        """
        return VideoIndex(self._folder.view(), device=self.device, model=self._model)

    def on_map_change(self, let_go: Callable[[], None]) -> Callable[[], None]:
        """Call ``let_go`` when the metadata store must grow its map, which LMDB allows
        only once no snapshot of this process is open: it should close the views it
        keeps (new views wait until the map has grown). Returns the function that stops it."""
        return self._folder.store.on_map_change(let_go)

    def generation(self) -> tuple:
        """A value that changes whenever something is committed to the index, by any
        process: the metadata store's last transaction and the vector file's identity."""
        return self._folder.generation()

    def __repr__(self) -> str:
        return (f"VideoIndex({self.path!r}, videos={len(self._folder.videos)}, vectors={self._folder.vectors.ntotal}, "
                f"features={self.config.features!r})")

    # -- writes ---------------------------------------------------------------------

    @contextmanager
    def writing(self, *, timeout: float = DEFAULT_TIMEOUT, extractor: Extractor | None = None,
                max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Iterator[IndexWriter]:
        """Hold the writer lock and commit prepared files through the yielded
        :class:`IndexWriter`; the vector file is saved on the way out (also on error).
        ``extractor`` reads again a file whose twin was removed meanwhile (default: the index's)."""
        extractor = extractor or self.extractor
        with self._folder.writing():
            yield IndexWriter(self._folder, extractor=extractor, timeout=timeout, max_pixels=max_pixels)

    def add_features(
        self,
        sources: Iterable[FeatureSource | str | os.PathLike],
        *,
        reading: FeatureReading = FeatureReading(),
        progress: ProgressCallback | None = None,
    ) -> list[IngestResult]:
        """Index features another tool computed (see :mod:`vsearch.featurefiles.read`):
        files, folders (searched) or ``file.h5::name``, read as ``reading`` says.

        Only into an index of imported features (``IndexConfig(features="imported",
        embedding_dim=D)``). Each video is handled on its own, like a video in
        :meth:`add`: one of the wrong layout, shape, dimension or time axis, without
        times or a video of its name (or a pickle) yields a ``failed`` result naming
        the reason and the others go on; the same features again are skipped, changed
        ones replace the video's.
        """
        if self.config.extractor != "imported":
            raise ConfigMismatchError(f"{self.path}: this index computes its own {self.config.features} features; "
                                      "import features into an index created with --from-features")
        results: list[IngestResult] = []
        with self._folder.writing():
            writer = IndexWriter(self._folder, extractor=None)  # features are never read again
            for imported in (video for source in feature_sources(sources) for video in iter_source(source, reading)):
                try:
                    if isinstance(imported, FeatureFileError):
                        raise imported
                    result = writer.commit(imported.source, prepare_imported(imported, self.config))
                except VideoError as exc:
                    result = IngestResult(path=exc.path, status="failed", reason=exc.reason)
                results.append(result)
                if progress is not None:
                    progress(result)
        self._calibrate_if_grown()
        return results

    def remove(self, paths: Iterable[str | os.PathLike]) -> list[VideoRecord]:
        """Remove videos by path (as given at ingest, or absolute). Other ids never change."""
        removed = []
        with self._folder.writing():
            with self._folder.snapshot() as snap:
                records = []
                for raw in paths:
                    record = snap.video_by_path(absolute(raw)) or snap.video_by_path(os.fsdecode(os.fspath(raw)))
                    if record is None:
                        raise NotIndexedError(f"{os.fsdecode(os.fspath(raw))}: not in the index")
                    records.append(record)
            for record in records:
                self._folder.remove(record)
                removed.append(record)
        return removed

    def rebuild(self, *, index_type: str | None = None) -> int:
        """Re-create the vector index from the stored block descriptors (no decoding).

        ``index_type`` switches to another FAISS factory type (trained on every
        stored window). The new file replaces the old one atomically.
        """
        return self._folder.rebuild(index_type=index_type)

    # -- reads ------------------------------------------------------------------------

    def _videos_by_id(self) -> dict[int, VideoRecord]:
        return self._folder.videos

    def nearest(self, vectors: np.ndarray, n: int) -> Matches:
        """Each vector's ``n`` nearest indexed windows, nearest first (fewer columns
        when the index holds fewer windows); exact squared L2 distances whatever the
        index type (a compact index's candidates are re-ranked: :mod:`vsearch.store.rerank`)."""
        return self._folder.nearest(vectors, n)

    def stored_windows(self, ids: np.ndarray) -> np.ndarray:
        """Full-precision window vectors by id, from the stored blocks (NaN for a
        window of a video no longer stored)."""
        return self._folder.stored_windows(ids)

    def video_blocks(self, video_id: int) -> np.ndarray:
        """The stored blocks of one video by block number (zero over damaged spans)."""
        return self._folder.video_blocks(video_id)

    def videos(self) -> list[VideoRecord]:
        """Indexed videos, in id order."""
        videos = self._folder.videos
        return [videos[vid] for vid in sorted(videos)]

    def noise_levels(self) -> dict | None:
        """The noise levels measured on this library and its size then (:meth:`calibrate`), or None."""
        with self._folder.snapshot() as snap:
            return snap.meta("noise_levels")

    def calibrate(self) -> dict:
        """Measure the noise levels of this library's comparisons (see
        :mod:`vsearch.search.calibration`) and keep them in the index, so a score means
        the same for any features; returns them. (Kernel features keep their own.)"""
        library = dataclasses.replace(self.library(), noise=RAW)
        levels = measure_noise(library, lambda clip, lib: search_clip(clip, lib, k=5, min_score=0.3))
        measured = {"levels": levels, "videos": len(library.videos)}
        self._folder.store.set_meta("noise_levels", measured)
        return measured

    def stats(self) -> IndexStats:
        return self._folder.stats()

    def verify(self, *, repair: bool = False) -> VerifyReport:
        """Check the vector file on disk against LMDB, changing nothing; with ``repair``,
        restore a repairable vector file from LMDB (under the writer lock) and check again."""
        report = self._folder.verify()
        if repair and report.status == "repairable":
            self._folder.repair()
            report = dataclasses.replace(self._folder.verify(), repaired=report.problems)
        return report


def default_index_path() -> Path:
    """``$VSEARCH_INDEX`` or ``indexes/default``."""
    return Path(os.environ.get("VSEARCH_INDEX") or os.path.join("indexes", "default"))

"""What a library of videos offers, whether one index folder or several shards: written once.

:class:`BaseIndex` holds what :class:`~vsearch.library.index.VideoIndex` and
:class:`~vsearch.library.sharded.ShardedIndex` share: the extractor that describes
clips (and the checks of a query's ``--features`` and ``--decoder``), the queries,
and the ingest loop (readers prepare files, the one writer commits them in order).
A subclass says how to search its windows, fetch a video's stored windows, list
its videos, and commit (``writing``).
"""

from __future__ import annotations

import functools
import os
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import Callable, Iterable, Protocol

import numpy as np

from ..config import IndexConfig
from ..decode import DEFAULT_MAX_PIXELS, DEFAULT_TIMEOUT
from ..device import Device
from ..errors import ConfigMismatchError, VideoError, VsearchError
from ..extractors import ONNX_PREFIX, Extractor
from ..featurefiles.read import FeatureReading
from ..featurefiles.sources import FeatureSource
from ..ingest.readers import FileReader, PreparedVideo, ThreadReader
from ..models import IndexStats, IngestResult, LibraryStats, QueryResult, VideoRecord
from ..search.clip import DEFAULT_SPEEDS
from ..search.calibration import MEASURE_FROM_VIDEOS
from ..search.library import Library
from ..search.pipeline import query_clip, query_feature_file
from ..search.tuning import DEFAULT_MIN_SCORE
from ..store.matches import Matches
from ..windows import video_windows

ProgressCallback = Callable[[IngestResult], None]


class Writer(Protocol):
    """What commits prepared files during an ingest (one index's writer, or the shards' together)."""

    known: set[str]

    def commit(self, path: str, prepared: PreparedVideo | VideoError) -> IngestResult: ...


class BaseIndex(ABC):
    """A searchable library of videos (see the module docstring)."""

    path: str
    config: IndexConfig
    device: Device
    #: A moved copy of the index's ONNX model, given with a query (``use_features``).
    _model: str | None = None
    _extractor: Extractor | None = None

    # -- what a subclass provides ---------------------------------------------------------

    @abstractmethod
    def _make_extractor(self) -> Extractor:
        """The extractor of the library's features (``self._model``: a moved ONNX model)."""

    @abstractmethod
    def _videos_by_id(self) -> dict[int, VideoRecord]:
        """The videos the search names, by id."""

    @abstractmethod
    def nearest(self, vectors: np.ndarray, n: int) -> Matches:
        """Each vector's ``n`` nearest indexed windows, nearest first, exact distances."""

    @abstractmethod
    def video_blocks(self, video_id: int) -> np.ndarray:
        """The stored blocks of one video by block number (zero over damaged spans)."""

    @abstractmethod
    def writing(self, *, timeout: float = DEFAULT_TIMEOUT, extractor: Extractor | None = None,
                max_pixels: int | None = DEFAULT_MAX_PIXELS) -> AbstractContextManager[Writer]:
        """Hold the writer lock(s) and yield what commits prepared files."""

    @abstractmethod
    def videos(self) -> list[VideoRecord]: ...

    @abstractmethod
    def stats(self) -> IndexStats | LibraryStats: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- describing clips -------------------------------------------------------------------

    @property
    def extractor(self) -> Extractor:
        """What describes videos for this library (made on first use: a library of
        imported features has none, and says so)."""
        if self._extractor is None:
            self._extractor = self._make_extractor()
        return self._extractor

    def use_features(self, spec: str | None) -> None:
        """Check a ``--features`` value given with a query against the library's.

        ``onnx:PATH`` must be the library's model (same hash), possibly moved; it is
        then the copy used. None: the library's own. Anything else is refused.
        """
        if spec is None:
            return
        if self.config.extractor == "onnx" and spec.startswith(ONNX_PREFIX):
            self._model, self._extractor = os.path.expanduser(spec[len(ONNX_PREFIX):]), None
            self.extractor  # noqa: B018 - checks the model's hash now, before any clip is read
            return
        if spec != self.config.features:
            raise ConfigMismatchError(f"{self.path}: built with {self.config.features} features"
                                      + (f" ({self.config.model_path})" if self.config.model_path else "")
                                      + f"; clips must be described the same way, not with {spec}")

    def check_decoder(self, decoder: str | None) -> None:
        """Refuse a decoder other than the library's (None: the library's own)."""
        if decoder is not None and decoder != self.config.decoder:
            raise ConfigMismatchError(
                f"{self.path}: built with the {self.config.decoder} decoder; clips must be decoded the same way "
                f"(decoders differ in scaling and colour): use --decoder {self.config.decoder} or a new index")

    # -- reads ------------------------------------------------------------------------------

    def window_vectors(self, video_id: int) -> np.ndarray:
        """All search vectors of one video's whole-frame windows by window number, rebuilt
        from its stored blocks; windows across a damaged span (not indexed) are zero."""
        return video_windows(self.video_blocks(video_id), self._videos_by_id()[video_id], self.config)

    def library(self) -> Library:
        """What the query path reads: the videos, the neighbour search, the stored blocks
        and the noise levels measured on the library (if any)."""
        return Library(config=self.config, videos=self._videos_by_id(), search=self.nearest,
                       blocks=functools.lru_cache(maxsize=64)(self.video_blocks), noise=(self.noise_levels() or {}).get("levels"))

    def noise_levels(self) -> dict | None:
        """The noise levels measured on this library and its size then (:meth:`calibrate`), or None."""
        return None

    def calibrate(self) -> dict:
        """Measure the noise levels of this library's comparisons (see
        :mod:`vsearch.search.calibration`) and keep them, so a score means the same
        for any features; returns them. Kernel features keep their own levels."""
        raise VsearchError(f"{self.path}: only a single index measures its noise levels")

    def _calibrate_if_grown(self) -> None:
        """Measure the noise levels again after an ingest that grew a library of learned
        or imported features by a quarter (the kernels' levels are known)."""
        if self.config.extractor == "kernels":
            return
        count = len(self._videos_by_id())
        last = (self.noise_levels() or {}).get("videos", 0)
        if count >= MEASURE_FROM_VIDEOS and count >= 1.25 * last:
            self.calibrate()

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
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> QueryResult:
        """Find the library segments a clip comes from, best first.

        ``mirrored`` also searches the horizontally flipped clip, so flipped copies
        are found too; ``speeds`` are the playback speeds the clip is also read at,
        so sped-up or slowed-down copies are found (each speed tolerates about
        +-5 %; the rate reported is fitted along the clip); ``inset`` also searches a
        picture-in-picture inset when the clip has one (v1 features); ``rotations``
        also searches the clip turned by quarter turns. Edited readings are searched
        only when the plain one finds no near-exact hit (see ``vsearch.search.pipeline``),
        so they cost nothing for plain copies; ``speeds=(1.0,)``, ``mirrored=False``,
        ``inset=False`` and ``rotations=False`` is the fastest, plain query.
        ``min_score`` only filters the hits: it changes nothing else.

        The clip is decoded like the library, by the library's decoder; ``decoder``
        naming another is refused (decoders differ in scaling and colour, so their
        vectors do not compare). ``timeout`` bounds a stalled decode, as in :meth:`add`;
        a clip longer than ``max_duration`` seconds raises :class:`ClipTooLongError`
        before it is decoded whole, and one of frames larger than ``max_pixels`` a
        :class:`VideoError` before a frame is decoded. Over shards, hits name videos
        by library-wide id.
        """
        self.check_decoder(decoder)
        return query_clip(clip, self.library(), device=self.device, extractor=self.extractor, k=k,
                          min_score=min_score, mirrored=mirrored, speeds=speeds, inset=inset, rotations=rotations,
                          timeout=timeout, max_duration=max_duration, max_pixels=max_pixels)

    def query_features(
        self,
        features: FeatureSource | str | os.PathLike,
        *,
        reading: FeatureReading = FeatureReading(),
        k: int = 5,
        min_score: float = DEFAULT_MIN_SCORE,
    ) -> QueryResult:
        """Like :meth:`query`, for a clip given as features (one video's: a file, or
        ``file.h5::name``; of the library's dimension), read as ``reading`` says. Only
        the plain reading is searched: speeds, mirroring, rotations and insets need
        the clip's frames."""
        return query_feature_file(features, self.library(), reading=reading, k=k, min_score=min_score)

    # -- writes -----------------------------------------------------------------------------

    def add(
        self,
        paths: Iterable[str | os.PathLike],
        *,
        progress: ProgressCallback | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        reader: FileReader | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> list[IngestResult]:
        """Index video files (folders are not expanded here; see ``iter_video_files``).

        Each file is handled on its own: a bad file yields a ``failed`` result with a
        one-line reason and the others go on. Content already indexed is skipped, a
        file whose content changed is re-indexed, a moved file keeps its vectors. A
        damaged or truncated file is indexed as far as it plays (``partial``). A file
        whose decoding makes no progress for ``timeout`` seconds, or runs below a
        tenth of real time, fails and the others go on, and so does one whose frames are
        larger than ``max_pixels`` (read from its headers, before anything is decoded).

        ``reader`` decodes and describes the files (default: a few at a time in
        threads here; ``vsearch.cluster.RayReader`` on a Ray cluster); whoever reads
        them, this process alone commits them, one by one in the order given.
        """
        extractor = self.extractor  # made (and its model checked) before anything is read
        reader = reader or ThreadReader()
        results: list[IngestResult] = []
        with self.writing(timeout=timeout, extractor=extractor, max_pixels=max_pixels) as writer:
            read = reader.read(paths, config=self.config, device=self.device, extractor=extractor,
                               known=writer.known, timeout=timeout, max_pixels=max_pixels)
            try:
                for path, prepared in read:
                    result = writer.commit(path, prepared)
                    results.append(result)
                    if progress is not None:
                        progress(result)
            finally:
                read.close()  # files still being read are abandoned
        self._calibrate_if_grown()
        return results

"""The reading side of ingest: files hashed, decoded and described, never written.

:func:`prepare_file` turns one file into a :class:`PreparedVideo` (its content hash
and, unless that content is indexed already, its block descriptors). A *reader*
prepares many files and hands them back **in the order given**, so that the one
writer (:class:`vsearch.ingest.writer.IndexWriter`) commits them in that order
whoever read them:

- :class:`ThreadReader` (default): a few files at a time in threads of this process;
- ``vsearch.cluster.ingest.RayReader``: one Ray task per file, across a cluster.

A reader never touches the index: it only sees the set of content hashes the
index holds (``known``), to skip decoding those. :func:`prepare_imported` makes a
prepared video of features another tool computed (nothing is decoded).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Protocol

from ..config import IndexConfig
from ..decode import DEFAULT_MAX_PIXELS, DEFAULT_TIMEOUT, VideoInfo, check_readable
from ..device import Device
from ..describe import VideoDescriptors, describe_video
from ..errors import FeatureFileError, VideoError
from ..extractors import Extractor
from ..featurefiles.read import ImportedFeatures
from ..windows import indexed_windows, window_count

#: Files read (hashed, decoded, described) at once by :class:`ThreadReader`.
PARALLEL_FILES = 2


@dataclass
class PreparedVideo:
    """A file read for ingest: its hash, and unless its content is indexed, its blocks."""

    path: str
    digest: str
    described: VideoDescriptors | None = None
    damaged: list[tuple[float, float]] = field(default_factory=list)
    windows: int = 0  # indexed ones: none across a damaged span


#: What a reader yields per file, in input order: the absolute path and either the
#: prepared file or the reason it cannot be indexed.
ReadResult = tuple[str, "PreparedVideo | VideoError"]


def file_digest(path: str) -> str:
    """BLAKE2b-128 of the whole file content, hex."""
    digest = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise VideoError(path, f"cannot read file ({exc.strerror})") from None
    return digest.hexdigest()


def absolute(path: str | os.PathLike) -> str:
    """The path as the index records it: absolute, as text."""
    return os.path.abspath(os.fsdecode(os.fspath(path)))


def prepare_file(
    path: str, *, config: IndexConfig, device: Device, extractor: Extractor, known: set[str] | frozenset[str] = frozenset(),
    timeout: float = DEFAULT_TIMEOUT, stop: threading.Event | None = None, decode_threads: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> PreparedVideo:
    """Hash, decode and describe one file (no index access: safe in any thread or process).

    Content whose hash is in ``known`` is only hashed. Raises :class:`VideoError`
    for a file that cannot be indexed (unreadable, not a video, shorter than one
    window, damaged throughout, frames larger than ``max_pixels``). ``decode_threads``:
    FFmpeg's threads (default: one per core).
    """
    check_readable(path)
    if not os.path.isfile(path):
        raise VideoError(path, "not a regular file (a library video must be a file that can be read again)")
    digest = file_digest(path)
    if digest in known:  # indexed already: the writer decides between skipped and moved
        return PreparedVideo(path=path, digest=digest)
    described = describe_video(path, config, device, timeout=timeout, stop=stop, extractor=extractor,
                               threads=decode_threads, max_pixels=max_pixels)
    info = described.info
    if window_count(len(described.blocks), config) == 0:
        lost = f"; {info.partial_reason()}" if info.partial else ""
        raise VideoError(path, f"video {'plays only' if lost else 'is'} {info.duration:.2f} s, shorter than one "
                               f"window ({config.window_seconds:g} s){lost}")
    damaged = [(round(a, 6), round(b, 6)) for a, b in info.lost]
    windows = len(indexed_windows(len(described.blocks), damaged, config))
    if windows == 0:
        raise VideoError(path, f"damaged throughout: no {config.window_seconds:g} s stretch plays "
                               f"without a damaged span ({info.partial_reason()})")
    return PreparedVideo(path=path, digest=digest, described=described, damaged=damaged, windows=windows)


def prepare_imported(imported: ImportedFeatures, config: IndexConfig) -> PreparedVideo:
    """Imported features as a prepared video: on the block grid, dimension checked."""
    if imported.dim != config.block_dim:
        raise FeatureFileError(imported.source, f"features have {imported.dim} dimensions, the index holds "
                                                f"{config.block_dim}")
    blocks = imported.blocks(config)
    windows = window_count(len(blocks), config)
    if windows == 0:
        raise FeatureFileError(imported.source, f"features span {imported.duration:.2f} s, shorter than one "
                                                f"window ({config.window_seconds:g} s)")
    info = VideoInfo(path=absolute(imported.video) if os.path.exists(imported.video) else imported.video,
                     duration=imported.duration, fps=imported.fps, width=0, height=0, frame_count=len(blocks))
    return PreparedVideo(path=info.path, digest=imported.digest, described=VideoDescriptors(info=info, blocks=blocks),
                         windows=windows)


class FileReader(Protocol):
    """Prepares files for one writer: ``read`` yields one :data:`ReadResult` per path,
    in the order of ``paths``, consulting ``known`` (which the writer grows as it
    commits) to skip content already indexed, and refusing frames larger than
    ``max_pixels``. Closing the iterator stops the work."""

    def read(
        self, paths: Iterable[str | os.PathLike], *, config: IndexConfig, device: Device, extractor: Extractor,
        known: set[str], timeout: float, max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> Iterator[ReadResult]: ...


class ThreadReader:
    """The single-machine reader: ``files`` at a time in threads (each with its
    decoder process, of ``decode_threads`` FFmpeg threads: default one per core),
    while the caller's thread commits."""

    def __init__(self, *, files: int = PARALLEL_FILES, decode_threads: int | None = None) -> None:
        self.files = files
        self.decode_threads = decode_threads

    def read(
        self, paths: Iterable[str | os.PathLike], *, config: IndexConfig, device: Device, extractor: Extractor,
        known: set[str], timeout: float, max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> Iterator[ReadResult]:
        stop = threading.Event()
        queue: deque[tuple[str, Future]] = deque()
        todo = iter(paths)
        pool = ThreadPoolExecutor(max_workers=self.files, thread_name_prefix="vsearch-ingest")

        def submit_next() -> None:
            raw = next(todo, None)
            if raw is not None:
                path = absolute(raw)
                queue.append((path, pool.submit(prepare_file, path, config=config, device=device, extractor=extractor,
                                                known=known, timeout=timeout, stop=stop,
                                                decode_threads=self.decode_threads, max_pixels=max_pixels)))

        try:
            for _ in range(self.files):
                submit_next()
            while queue:
                path, future = queue.popleft()
                submit_next()
                try:
                    yield path, future.result()
                except VideoError as exc:
                    yield path, exc
        finally:
            stop.set()  # files still being read give up at their next chunk
            pool.shutdown(wait=True, cancel_futures=True)

"""The writing side of ingest: the one writer that commits prepared files to an index folder.

Readers (:mod:`.readers`) prepare files anywhere; the :class:`IndexWriter` commits
them here, in the order it is handed them, while the folder's writer lock is held
(``VideoIndex.writing``). It decides what each file is to the index (new, a
replacement, a moved copy, or content already indexed) and leaves keeping LMDB and
FAISS in step to the folder (:class:`vsearch.store.folder.IndexFolder`).
"""

from __future__ import annotations

import os
import time

from ..decode import DEFAULT_MAX_PIXELS, DEFAULT_TIMEOUT
from ..errors import VideoError
from ..extractors import Extractor
from ..models import IngestResult, VideoRecord
from ..store.folder import IndexFolder
from ..store.metastore import now_iso
from .readers import PreparedVideo, prepare_file

#: While ingesting, the vector file is saved at most this often (and at the end);
#: anything committed since is re-added from LMDB on the next open.
SAVE_INTERVAL_S = 60.0


class IndexWriter:
    """The one committing writer of an index folder, while its writer lock is held:
    commits prepared files in the order they are handed over, each in one LMDB
    transaction before its vectors, and saves the vector file now and then.

    ``known`` is the set of content hashes the index holds, grown with every
    commit: a reader consults it to skip decoding content that is indexed already.
    ``extractor`` reads a file again whose content was indexed when it was read
    but removed before it was committed (None where nothing is read again:
    imported features), within ``timeout`` and ``max_pixels`` as the readers.
    """

    def __init__(self, folder: IndexFolder, *, extractor: Extractor | None,
                 timeout: float = DEFAULT_TIMEOUT, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
        self.folder = folder
        self.extractor = extractor
        self.timeout, self.max_pixels = timeout, max_pixels
        self.known: set[str] = {record.hash for record in folder.videos.values()}
        self._last_save = time.monotonic()

    def commit(self, path: str, prepared: PreparedVideo | VideoError) -> IngestResult:
        """Commit one file a reader prepared (or record why it could not be read)."""
        if isinstance(prepared, VideoError):
            return IngestResult(path=path, status="failed", reason=prepared.reason)
        try:
            result = self._commit(prepared)
            self.known.add(prepared.digest)  # a later copy of the same content is not read again
        except VideoError as exc:
            result = IngestResult(path=path, status="failed", reason=exc.reason)
        if time.monotonic() - self._last_save > SAVE_INTERVAL_S:
            self.folder.save_vectors()
            self._last_save = time.monotonic()
        return result

    def _commit(self, prepared: PreparedVideo) -> IngestResult:
        path, digest = prepared.path, prepared.digest
        with self.folder.snapshot() as snap:
            same_content = snap.video_by_hash(digest)
            same_path = snap.video_by_path(path)
        if same_content is not None:
            if same_content.path == path:
                return IngestResult(path=path, status="skipped", video_id=same_content.id, duration_s=same_content.duration_s,
                                    reason="already indexed")
            if not os.path.exists(same_content.path):
                record = self.folder.move(same_content.id, path)
                return IngestResult(path=path, status="moved", video_id=record.id, duration_s=record.duration_s)
            return IngestResult(path=path, status="skipped", video_id=same_content.id, duration_s=same_content.duration_s,
                                reason=f"same content as {same_content.path}")
        if prepared.described is None:  # its twin was removed meanwhile: read it after all
            prepared = prepare_file(path, config=self.folder.config, device=self.extractor.device,
                                    extractor=self.extractor, timeout=self.timeout, max_pixels=self.max_pixels)
        described, info, damaged = prepared.described, prepared.described.info, prepared.damaged
        record = self.folder.commit(
            dict(path=path, hash=digest, duration_s=round(info.duration, 6), fps=round(info.fps, 6),
                 width=info.width, height=info.height, frames=info.frame_count,
                 blocks=len(described.blocks), windows=prepared.windows, added=now_iso(),
                 partial=info.partial, damaged=damaged, reason=info.partial_reason()),
            described.blocks,
            replaces=same_path,
        )
        status = "partial" if record.partial else "replaced" if same_path else "added"
        return IngestResult(path=path, status=status, video_id=record.id, duration_s=record.duration_s,
                            reason=record.reason)

    def holds_path(self, path: str) -> VideoRecord | None:
        """The committed video at ``path``, if any."""
        with self.folder.snapshot() as snap:
            return snap.video_by_path(path)

    def holds_hash(self, digest: str) -> bool:
        """Whether content with this hash is committed."""
        return digest in self.known

    def remove(self, record: VideoRecord) -> None:
        """Remove one video (metadata first, then its vectors)."""
        self.folder.remove(record)

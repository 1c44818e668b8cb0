"""The index a server keeps open: one read view shared by every query, replaced
whole after a commit.

A view (:meth:`VideoIndex.view`) shows the index as of one snapshot of the metadata
store, which it keeps: each video is in it whole or not at all, and nothing written
later changes it, not even a removal (a query reads a video's stored windows from
that snapshot too). Queries take the current view and keep it to the end, so a
query sees the index before a commit or after it, never half of one. A new view is
built when the index changed, by this server's jobs or by another process
(``vsearch ingest`` next to the server): :meth:`VideoIndex.generation` tells, and
the check costs one LMDB call. A replaced view is closed (its snapshot released)
when the last request reading it ends. When the metadata store must grow its map
(which LMDB allows only with no snapshot open), the current view is retired the
same way, and the next request reads a new one once the map has grown.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from ..library.index import VideoIndex

log = logging.getLogger(__name__)


class _Published:
    """A view and how many requests are reading it."""

    def __init__(self, view: VideoIndex, generation: tuple) -> None:
        self.view, self.generation, self.built_at = view, generation, time.monotonic()
        self.readers = 0
        self.retired = False


class LiveIndex:
    """An open index and the view queries read.

    ``refresh_interval`` bounds how often a changing index (a long ingest commits
    video after video) is re-read for queries: a commit is visible to queries at
    most that many seconds later, and at once when a job of this server ends.
    """

    def __init__(self, index: VideoIndex, *, refresh_interval: float = 1.0) -> None:
        self.index = index
        self.refresh_interval = refresh_interval
        self._refresh_lock = threading.Lock()  # many queries noticing one change build one view
        self._readers_lock = threading.Lock()
        self._published = self._build()
        self._stop_map_change_hook = index.on_map_change(lambda: self._retire(self._published))

    def _build(self) -> _Published:
        generation = self.index.generation()  # read first: a commit after it only makes the view look stale
        return _Published(self.index.view(), generation)

    @contextmanager
    def reading(self) -> Iterator[VideoIndex]:
        """The view to read now, held until the block ends (re-read first if the index
        changed, at most every ``refresh_interval`` seconds, or if it was retired)."""
        while True:
            published = self._published
            if published.retired or (time.monotonic() - published.built_at >= self.refresh_interval
                                     and self.index.generation() != published.generation):
                self.refresh()
            with self._readers_lock:
                published = self._published
                if not published.retired:
                    published.readers += 1
                    break
        try:
            yield published.view
        finally:
            with self._readers_lock:
                published.readers -= 1
                done = published.retired and published.readers == 0
            if done:
                published.view.close()

    def refresh(self, *, force: bool = False) -> None:
        """Build and publish a new view if the index changed since the current one
        (``force``: even if it was re-read less than ``refresh_interval`` ago), or if
        the current one was retired."""
        with self._refresh_lock:
            current = self._published
            stale = self.index.generation() != current.generation
            recent = time.monotonic() - current.built_at < self.refresh_interval
            if not current.retired and (not stale or (recent and not force)):
                return
            started = time.monotonic()
            fresh = self._build()  # while the store's map grows, this waits for it
            with self._readers_lock:
                self._published = fresh
            self._retire(current)
            log.info("index re-read for queries in %.2f s: %d videos", time.monotonic() - started,
                     len(fresh.view.videos()))

    def _retire(self, published: _Published) -> None:
        """No new request gets ``published``; it is closed now if none reads it, else
        by the last request reading it."""
        with self._readers_lock:
            if published.retired:
                return
            published.retired = True
            idle = published.readers == 0
        if idle:
            published.view.close()

    def close(self) -> None:
        self._stop_map_change_hook()
        self._retire(self._published)
        self.index.close()

"""The index a server keeps open: one read view shared by every query, replaced
whole after a commit.

A view (:meth:`VideoIndex.view`) shows the index as of one snapshot of the metadata
store: each video is in it whole or not at all, and nothing written later changes
it. Queries take the current view and keep it to the end, so a query sees the index
before a commit or after it, never half of one. A new view is built when the index
changed, by this server's jobs or by another process (``vsearch ingest`` next to the
server): :meth:`VideoIndex.generation` tells, and the check costs one LMDB call.
"""

from __future__ import annotations

import logging
import threading
import time

from ..library.index import VideoIndex

log = logging.getLogger(__name__)


class LiveIndex:
    """An open index and the view queries read.

    ``refresh_interval`` bounds how often a changing index (a long ingest commits
    video after video) is re-read for queries: a commit is visible to queries at
    most that many seconds later, and at once when a job of this server ends.
    """

    def __init__(self, index: VideoIndex, *, refresh_interval: float = 1.0) -> None:
        self.index = index
        self.refresh_interval = refresh_interval
        self._refresh_lock = threading.Lock()
        self._view, self._view_generation, self._built_at = self._build()

    def _build(self) -> tuple[VideoIndex, tuple, float]:
        generation = self.index.generation()  # read first: a commit after it only makes the view look stale
        return self.index.view(), generation, time.monotonic()

    def current(self) -> VideoIndex:
        """The view to query now (re-read first if the index changed, at most every
        ``refresh_interval`` seconds)."""
        view = self._view
        if time.monotonic() - self._built_at >= self.refresh_interval and self.index.generation() != self._view_generation:
            view = self.refresh()
        return view

    def refresh(self, *, force: bool = False) -> VideoIndex:
        """Build and publish a new view if the index changed since the current one
        (``force``: even if it was re-read less than ``refresh_interval`` ago)."""
        with self._refresh_lock:  # many queries noticing one change build one view
            stale = self.index.generation() != self._view_generation
            recent = time.monotonic() - self._built_at < self.refresh_interval
            if stale and (force or not recent):
                started = time.monotonic()
                # Queries running on the old view keep it; it is freed when they end.
                self._view, self._view_generation, self._built_at = self._build()
                log.info("index re-read for queries in %.2f s: %d videos", time.monotonic() - started,
                         len(self._view.videos()))
            return self._view

    def close(self) -> None:
        self.index.close()

"""The views a server reads: each keeps its own snapshot, and is closed after its last reader."""

from __future__ import annotations

import shutil

import numpy as np

from vsearch import VideoIndex
from vsearch.server.live import LiveIndex


def _snapshots_open(index: VideoIndex) -> int:
    """Read transactions open on the index's metadata store (LMDB's reader table)."""
    rows = index.folder.store.env.readers().splitlines()[1:]
    return sum(not row.rstrip().endswith("-") for row in rows)


def test_a_view_reads_a_removed_video_from_its_own_snapshot(built_index, media, clips, tmp_path):
    shutil.copytree(built_index, tmp_path / "ix")
    index = VideoIndex.open(tmp_path / "ix", device="cpu")
    live = LiveIndex(index, refresh_interval=0.0)
    try:
        with live.reading() as before:
            video = next(r for r in before.videos() if r.path == str(media["lib12"]))
            windows = before.window_vectors(video.id)
            stored = before.stored_windows(np.array([video.id << 32 | 2]))
            with index.view() as writer:  # as the server's jobs write
                writer.remove([media["lib12"]])
            live.refresh(force=True)
            # Committed meanwhile, the removal changes nothing this view reads.
            assert np.array_equal(before.window_vectors(video.id), windows)
            assert np.array_equal(before.stored_windows(np.array([video.id << 32 | 2])), stored)
            assert before.stats().videos == 3
            best = before.query(clips["exact"][0]).hits[0]
            assert best.video_id == video.id
            assert _snapshots_open(index) == 2
        assert _snapshots_open(index) == 1  # the replaced view was closed after its last reader
        with live.reading() as after:
            assert video.id not in {r.id for r in after.videos()} and after.stats().videos == 2
            assert all(hit.video_id != video.id for hit in after.query(clips["exact"][0]).hits)
    finally:
        live.close()

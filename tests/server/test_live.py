"""The views a server reads: each keeps its own snapshot, and is closed after its last
reader, also when a commit must grow the metadata store's map meanwhile."""

from __future__ import annotations

import shutil
import threading
import time

import numpy as np

from vsearch import VideoIndex
from vsearch.server.live import LiveIndex
from vsearch.store import metastore


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


def test_a_commit_that_grows_the_map_waits_for_the_views_being_read(built_index, media, clips, tmp_path, monkeypatch):
    shutil.copytree(built_index, tmp_path / "ix")
    monkeypatch.setattr(metastore, "_INITIAL_MAP_SIZE", 1)  # opened at the size its data takes: any commit grows it
    index = VideoIndex.open(tmp_path / "ix", device="cpu")
    live = LiveIndex(index, refresh_interval=0.0)
    map_size = index.folder.store.env.info()["map_size"]
    growing = threading.Event()
    index.on_map_change(growing.set)
    added: list = []

    def add() -> None:  # as the server's jobs write
        with index.view() as writer:
            added.extend(writer.add([media["extra"]]))

    job = threading.Thread(target=add)
    try:
        with live.reading() as view:
            video = next(r for r in view.videos() if r.path == str(media["lib12"]))
            windows = view.window_vectors(video.id)
            job.start()
            assert growing.wait(60), "the job never had to grow the map"
            time.sleep(0.5)
            assert job.is_alive() and index.folder.store.env.info()["map_size"] == map_size  # it waits for this reader
            # The view reads on from its snapshot, a whole query included.
            assert np.array_equal(view.window_vectors(video.id), windows)
            assert view.query(clips["exact"][0]).hits[0].video_id == video.id
            assert view.stats().videos == 3
        job.join(60)
        assert not job.is_alive() and [r.status for r in added] == ["added"], added
        assert index.folder.store.env.info()["map_size"] > map_size
        with live.reading() as after:  # a new view, on the grown map
            assert str(media["extra"]) in {r.path for r in after.videos()} and after.stats().videos == 4
        assert _snapshots_open(index) == 1
    finally:
        job.join(60)
        live.close()

"""One writer at a time; readers see consistent states while a writer works."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vsearch import VideoIndex
from vsearch.errors import IndexLockedError
from vsearch.lock import WriterLock
from tools.support import cut_clip, make_video

from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]


def test_second_writer_is_told_who_holds_the_lock(built_index, media, tmp_path):
    lock = WriterLock(str(built_index))
    lock.acquire()
    try:
        proc = run_cli("ingest", str(media["extra"]), "--index", str(built_index))
        assert proc.returncode == IndexLockedError.exit_code
        assert f"pid {os.getpid()}" in proc.stderr and "locked" in proc.stderr
        with VideoIndex.open(built_index, device="cpu") as index, pytest.raises(IndexLockedError):
            index.remove([media["lib11"]])
        # Reading needs no lock.
        assert run_cli("stats", "--index", str(built_index)).returncode == 0
    finally:
        lock.release()


def test_stale_lock_of_a_dead_process_is_taken_over(media, tmp_path):
    index = tmp_path / "ix"
    VideoIndex.create(index, device="cpu").close()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (index / "writer.lock").write_text(f"{dead.pid}\n")  # left behind, but no flock is held
    proc = run_cli("ingest", str(media["extra"]), "--index", str(index))
    assert proc.returncode == 0, proc.stderr


def test_queries_during_ingest_see_only_committed_videos(tmp_path):
    videos = [make_video(tmp_path / f"w{i}.mp4", seconds=6, seed=700 + i, size=(160, 120)) for i in range(6)]
    clip = tmp_path / "clip.mp4"
    cut_clip(videos[0], clip, start=1.3, duration=3.0)
    index = tmp_path / "ix"
    with VideoIndex.create(index, device="cpu") as ix:
        ix.add([videos[0]])
    writer = subprocess.Popen([sys.executable, "-m", "vsearch", "ingest", *map(str, videos[1:]), "--index", str(index)],
                              cwd=ROOT, stderr=subprocess.PIPE)
    seen = []
    while writer.poll() is None or not seen:
        with VideoIndex.open(index, device="cpu") as ix:
            committed = {r.path for r in ix.videos()}
            hits = ix.query(clip, k=10, min_score=0.0).hits
        assert hits and hits[0].video == str(videos[0])
        assert {h.video for h in hits} <= committed
        seen.append(len(committed))
        time.sleep(0.05)
    assert writer.wait() == 0
    assert seen == sorted(seen)  # never goes backwards
    with VideoIndex.open(index, device="cpu") as ix:
        assert len(ix.videos()) == 6 and ix.verify().ok

"""Ingest through Ray tasks on a real local cluster: the same index as a plain ingest, killed workers."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time

import numpy as np

from vsearch import VideoIndex
from vsearch.cluster.ingest import TASK_NAME, RayReader

from tests.conftest import LIBRARY_SEEDS
from .conftest import running_tasks


def content(path) -> list[tuple]:
    """What an index holds, video by video: the record (less its time) and its window vectors."""
    with VideoIndex.open(path, device="cpu") as index:
        assert index.verify().ok
        return [(dataclasses.replace(r, added=""), index.window_vectors(r.id)) for r in index.videos()]


def assert_same_content(one: list[tuple], other: list[tuple]) -> None:
    assert [record for record, _ in one] == [record for record, _ in other]
    for (_, vectors), (_, others) in zip(one, other):
        assert np.array_equal(vectors, others)


class Killer(threading.Thread):
    """SIGKILLs the first Ray worker seen running an ingest task (a real crash, mid-task)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.killed: list[int] = []
        self.done = threading.Event()

    def run(self) -> None:
        title = f"ray::{TASK_NAME}".encode()
        while not self.done.is_set() and not self.killed:
            for pid in running_tasks(title)[:1]:
                os.kill(pid, signal.SIGKILL)
                self.killed.append(pid)
            time.sleep(0.005)

    def __enter__(self) -> "Killer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join()


def test_ray_ingest_gives_the_plain_index_and_resumes(ray_cluster, built_index, media, tmp_path):
    files = [media[f"lib{s}"] for s in LIBRARY_SEEDS]
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    with VideoIndex.create(tmp_path / "plain-bad", device="cpu") as plain:
        expected_reason = plain.add([bad])[0].reason
    with VideoIndex.create(tmp_path / "ix", device="cpu") as index:
        results = index.add([files[0], bad, files[1], files[2]], reader=RayReader())
    assert [r.status for r in results] == ["added", "failed", "added", "added"]
    assert results[1].reason == expected_reason  # reported per file, as a plain ingest does
    assert_same_content(content(tmp_path / "ix"), content(built_index))  # ids, records and vectors
    with VideoIndex.open(tmp_path / "ix", device="cpu") as index:  # the same command again
        again = index.add([files[0], bad, files[1], files[2]], reader=RayReader())
    assert [r.status for r in again] == ["skipped", "failed", "skipped", "skipped"]


def test_a_worker_killed_mid_task_loses_nothing(ray_cluster, built_index, media, long_video, tmp_path):
    files = [long_video] + [media[f"lib{s}"] for s in LIBRARY_SEEDS]
    with Killer() as killer, VideoIndex.create(tmp_path / "ix", device="cpu") as index:
        results = index.add(files, reader=RayReader())
    assert killer.killed, "no ingest task was seen running"
    assert [r.status for r in results] == ["added"] * 4  # the killed task ran again elsewhere
    with VideoIndex.create(tmp_path / "plain", device="cpu") as plain:
        plain.add(files[:1])
    got = content(tmp_path / "ix")
    assert_same_content(got[:1], content(tmp_path / "plain"))
    assert_same_content([(dataclasses.replace(r, id=r.id - 1), v) for r, v in got[1:]], content(built_index))


def test_a_file_whose_worker_keeps_dying_fails_alone_and_a_rerun_adds_it(ray_cluster, media, long_video, tmp_path):
    files = [long_video] + [media[f"lib{s}"] for s in LIBRARY_SEEDS]
    with Killer() as killer, VideoIndex.create(tmp_path / "ix", device="cpu") as index:
        results = index.add(files, reader=RayReader(max_retries=0))
    assert killer.killed
    failed = [r for r in results if r.status == "failed"]
    assert len(failed) == 1 and failed[0].reason.startswith("failed on the Ray cluster (")
    assert "\n" not in failed[0].reason
    assert sorted(r.status for r in results) == ["added"] * 3 + ["failed"]
    with VideoIndex.open(tmp_path / "ix", device="cpu") as index:
        assert len(index.videos()) == 3 and index.verify().ok
        again = index.add(files, reader=RayReader())
    assert [r.status for r in again] == ["added" if r.status == "failed" else "skipped" for r in results]

"""Queries during an addition, a CLI sharing the index with a server, kill -9 mid-addition."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from vsearch import VideoIndex
from vsearch.lock import WriterLock
from vsearch.windows import entry_count

from tests.conftest import run_cli
from tests.server.conftest import loop_video

# The server's extra: without it these tests are skipped (CI installs it with 'test').
pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from tools.support import ServerProcess, wait_job  # noqa: E402


@pytest.fixture(scope="module")
def feed(media, allowed, tmp_path_factory) -> Path:
    """Videos to add: long ones (lib 13 played over and over, so that an addition lasts
    seconds) and two short ones."""
    root = tmp_path_factory.mktemp("feed")
    loop_video(media["lib13"], root / "long.mp4", 30)
    loop_video(media["lib13"], root / "medium.mp4", 6)
    loop_video(media["negative"], root / "removable.mp4", 4)  # 48 s of a video no other resembles
    shutil.copy(media["extra"], root / "extra.mp4")
    shutil.copy(media["negative"], root / "negative.mp4")
    return root


def _index_copy(built_index, tmp_path) -> Path:
    shutil.copytree(built_index, tmp_path / "ix")
    return tmp_path / "ix"


def _state(path: Path) -> list[str]:
    """Open the index as a user would (repairing what a crash left) and check it."""
    with VideoIndex.open(path, device="cpu") as index:
        report = index.verify()
        assert report.ok, report.problems
        paths = [r.path for r in index.videos()]
        assert report.vectors == sum(entry_count(r, index.config) for r in index.videos())
    assert len(paths) == len(set(paths)), f"doubled: {paths}"
    return paths


def test_queries_and_a_cli_writer_during_an_addition(built_index, feed, clips, tmp_path):
    index = _index_copy(built_index, tmp_path)
    server = ServerProcess(index, "--allow-dir", str(feed), "--workers", "2", log=tmp_path / "server.log")
    try:
        with server.client() as client:
            job = client.post("/videos", json={"paths": ["long.mp4", "extra.mp4"]}).json()
            answers, during = [], []

            def ask() -> None:
                with open(clips["exact"][0], "rb") as handle:
                    data = handle.read()
                while True:
                    state = client.get(f"/jobs/{job['id']}").json()["state"]
                    reply = client.post("/query", files={"clip": ("exact.mp4", data)})
                    after = client.get(f"/jobs/{job['id']}").json()["state"]
                    answers.append(reply)
                    during.append(state == after == "running")
                    if after not in ("queued", "running"):
                        return

            askers = [threading.Thread(target=ask) for _ in range(2)]
            for thread in askers:
                thread.start()
            # The server holds the writer lock for the job: a CLI ingest is refused.
            while client.get(f"/jobs/{job['id']}").json()["state"] == "queued":
                time.sleep(0.02)
            refused = run_cli("ingest", str(feed / "negative.mp4"), "--index", str(index))
            still_running = client.get(f"/jobs/{job['id']}").json()["state"] == "running"
            for thread in askers:
                thread.join()
            finished = wait_job(client, job["id"])

            assert still_running, "the addition ended before the CLI tried: make the long video longer"
            assert refused.returncode == 4 and "locked by another writer" in refused.stderr, refused.stderr
            assert finished["state"] == "done", finished
            assert [f["status"] for f in finished["files"]] == ["added", "added"]
            assert any(during), "no query ran while the addition did"
            for reply in answers:
                assert reply.status_code == 200, reply.text
                best = reply.json()["hits"][0]
                assert Path(best["video"]).name == "lib 12.mp4" and abs(best["start"] - clips["exact"][2]) < 0.5

            # Idle, the server holds no lock: the CLI writes, and the server picks the change up.
            assert run_cli("ingest", str(feed / "negative.mp4"), "--index", str(index)).returncode == 0
            deadline = time.monotonic() + 10
            while "negative.mp4" not in {Path(v["path"]).name for v in client.get("/videos").json()}:
                assert time.monotonic() < deadline, "the server did not see the CLI's commit"
                time.sleep(0.1)
            # And a writer in another process makes an addition fail at once, with its message.
            lock = WriterLock(str(index))
            lock.acquire()
            try:
                reply = client.post("/videos", json={"paths": ["extra.mp4"]})
            finally:
                lock.release()
            assert reply.status_code == 409 and "locked by another writer" in reply.json()["detail"]
    finally:
        server.stop()
    assert sorted(Path(p).name for p in _state(index)) == ["extra.mp4", "lib 11.mp4", "lib 12.mp4", "lib 13.mp4",
                                                           "long.mp4", "negative.mp4"]


def test_queries_during_a_removal_see_the_index_before_it(built_index, feed, tmp_path):
    index = _index_copy(built_index, tmp_path)
    server = ServerProcess(index, "--allow-dir", str(feed), "--workers", "2", log=tmp_path / "server.log")
    try:
        with server.client() as client:
            added = wait_job(client, client.post("/videos", json={"paths": ["removable.mp4"]}).json()["id"])
            video_id = added["files"][0]["video_id"]
            answers: list = []

            def ask() -> None:  # a 48 s clip: seconds of decoding, then its windows are read
                answers.append((client.post("/query", data={"path": "removable.mp4"}), time.monotonic()))

            askers = [threading.Thread(target=ask) for _ in range(2)]
            for thread in askers:
                thread.start()
            time.sleep(0.5)
            removal = wait_job(client, client.delete(f"/videos/{video_id}").json()["id"])
            removed_at = time.monotonic()
            for thread in askers:
                thread.join()
            after = client.post("/query", data={"path": "removable.mp4"})
    finally:
        server.stop()
    assert removal["state"] == "done" and removal["files"][0]["status"] == "removed", removal
    assert all(answered > removed_at for _, answered in answers), "the removal ended after the queries: longer clip"
    for reply, _ in answers:
        # Started before the removal's commit, each query sees the index before it, whole.
        assert reply.status_code == 200, reply.text
        assert reply.json()["hits"][0]["video_id"] == video_id
    assert after.status_code == 200 and video_id not in {hit["video_id"] for hit in after.json()["hits"]}
    assert Path(feed / "removable.mp4").name not in {Path(p).name for p in _state(index)}


def test_kill_minus_nine_during_an_addition(built_index, feed, tmp_path):
    index = _index_copy(built_index, tmp_path)
    before = set(_state(index))
    wanted = [str(feed / name) for name in ("extra.mp4", "negative.mp4", "medium.mp4")]
    server = ServerProcess(index, "--allow-dir", str(feed), log=tmp_path / "server.log")
    with server.client() as client:
        job = client.post("/videos", json={"paths": ["extra.mp4", "negative.mp4", "medium.mp4"]}).json()
        deadline = time.monotonic() + 60
        while True:  # kill once a file is committed and the medium one is being read
            seen = client.get(f"/jobs/{job['id']}").json()
            if seen["processed"] >= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.01)
    server.kill()
    assert seen["state"] == "running" and seen["processed"] < 3, seen

    after = set(_state(index))
    committed = {f["path"] for f in seen["files"] if f["status"] == "added"}
    assert before | committed <= after <= before | set(wanted)

    server = ServerProcess(index, "--allow-dir", str(feed), log=tmp_path / "server.log")
    try:
        with server.client() as client:
            again = wait_job(client, client.post("/videos", json={"paths": ["extra.mp4", "negative.mp4", "medium.mp4"]}
                                                 ).json()["id"])
    finally:
        server.stop()
    assert again["state"] == "done"
    assert {f["path"]: f["status"] for f in again["files"]} == {
        path: "skipped" if path in after else "added" for path in wanted}
    assert set(_state(index)) == before | set(wanted)

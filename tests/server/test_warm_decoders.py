"""A server keeps a decoder process started per query worker: a burst of queries
starts none, and one that dies is replaced."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from tools.support import ServerProcess  # noqa: E402

WORKERS = 4


def _wait_for(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _burst(server: ServerProcess, clips: list[tuple[Path, Path | None]]) -> list[str]:
    """The clips queried at once, one client each; what went wrong, if anything."""
    problems: list[str] = []
    start = threading.Barrier(len(clips))

    def ask(clip: Path, source: Path | None) -> None:
        with server.client(timeout=120) as http:
            start.wait()
            reply = http.post("/query", files={"clip": (clip.name, clip.read_bytes())})
        hits = reply.json().get("hits") if reply.status_code == 200 else None
        if hits is None or (source is not None and (not hits or Path(hits[0]["video"]).resolve() != source.resolve())):
            problems.append(f"{clip.name}: HTTP {reply.status_code} {reply.text[:160]}")

    threads = [threading.Thread(target=ask, args=pair) for pair in clips]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return problems


def test_query_workers_find_their_decoders_started_and_kept(scratch_index, clips, tmp_path):
    server = ServerProcess(scratch_index, "--workers", str(WORKERS), log=tmp_path / "server.log")
    try:
        assert _wait_for(lambda: len(server.decoders()) == WORKERS), server.decoders()
        time.sleep(1.0)  # and no more come
        ready = server.decoders()
        assert len(ready) == WORKERS

        # A burst of as many queries as workers: every one gets a decoder that was ready.
        seen: set[int] = set()
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                seen.update(server.decoders())
                time.sleep(0.01)

        watcher = threading.Thread(target=watch)
        watcher.start()
        burst = [(clips["exact"][0], clips["exact"][1]), (clips["reencoded_small"][0], clips["reencoded_small"][1]),
                 (clips["negative"][0], None), (clips["exact"][0], clips["exact"][1])]
        try:
            problems = _burst(server, burst)
        finally:
            done.set()
            watcher.join()
        assert not problems, problems
        assert seen == ready, f"started during the burst: {sorted(seen - ready)}"
        assert server.decoders() == ready

        # One killed while idle: replaced, and the server answers as before.
        victim = sorted(ready)[0]
        os.kill(victim, signal.SIGKILL)
        assert _wait_for(lambda: victim not in server.decoders() and len(server.decoders()) == WORKERS), \
            server.decoders()
        assert len(server.decoders() - ready) == 1
        assert not _burst(server, burst[:2])
    finally:
        server.stop()
    assert _wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in ready | seen), timeout=10)

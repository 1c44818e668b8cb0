"""kill -9 at random moments of ingest, remove and rebuild never loses or duplicates a video."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vsearch import VideoIndex
from vsearch.windows import entry_count
from tools.support import make_video

ROOT = Path(__file__).resolve().parents[2]
TRIALS = int(os.environ.get("VSEARCH_KILL_TRIALS", "30"))


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vsearch", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vsearch", *args], cwd=ROOT, capture_output=True, text=True)


@pytest.fixture(scope="module")
def crash_media(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("crash_media")
    return [str(make_video(root / f"v{i}.mp4", seconds=4, seed=300 + i, size=(160, 120))) for i in range(6)]


@pytest.fixture(scope="module")
def base_index(crash_media, tmp_path_factory) -> Path:
    """An index already holding the first two videos: they must survive every crash."""
    path = tmp_path_factory.mktemp("crash_base") / "ix"
    assert _run("ingest", *crash_media[:2], "--index", str(path)).returncode == 0
    return path


def _state(path: Path) -> list[str]:
    """Open the index as a user would after the crash; check it and list its videos."""
    with VideoIndex.open(path, device="cpu") as index:
        paths = [r.path for r in index.videos()]
        report = index.verify()
        assert report.ok, report.problems
        assert report.vectors == sum(entry_count(r, index.config) for r in index.videos())
    assert len(paths) == len(set(paths)), f"duplicated videos: {paths}"
    return paths


def _kill_at_random(proc: subprocess.Popen, rng: random.Random, longest: float) -> bool:
    """SIGKILL after a random delay; True if the process was still running."""
    deadline = time.monotonic() + rng.uniform(0.0, longest)
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    alive = proc.poll() is None
    if alive:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    return alive


def test_kill_minus_nine_at_random_points(crash_media, base_index, tmp_path):
    rng = random.Random(20261122)
    timing = tmp_path / "timing"
    shutil.copytree(base_index, timing)
    durations = {}
    for op, args in [("ingest", ("ingest", *crash_media)), ("rebuild", ("rebuild",)), ("remove", ("remove", *crash_media[3:]))]:
        scratch = tmp_path / f"time-{op}"
        shutil.copytree(timing if op != "ingest" else base_index, scratch)
        t0 = time.monotonic()
        assert _run(*args, "--index", str(scratch)).returncode == 0
        durations[op] = time.monotonic() - t0
        if op == "ingest":
            shutil.rmtree(timing)
            shutil.copytree(scratch, timing)  # the full index, for remove and rebuild trials
        shutil.rmtree(scratch)

    outcomes = {"ingest": [], "remove": [], "rebuild": []}
    for trial in range(TRIALS):
        op = ("ingest", "ingest", "remove", "rebuild")[trial % 4]
        path = tmp_path / f"trial{trial}"
        if op == "ingest":
            shutil.copytree(base_index, path)
            before = set(crash_media[:2])
            proc = _start("ingest", *crash_media, "--index", str(path))
        else:
            shutil.copytree(timing, path)  # the full index
            before = set(crash_media)
            args = ("remove", *crash_media[3:]) if op == "remove" else ("rebuild",)
            proc = _start(*args, "--index", str(path))
        killed = _kill_at_random(proc, rng, durations[op])

        after = set(_state(path))
        if op == "ingest":
            assert before <= after <= set(crash_media)
            rerun = _run("ingest", *crash_media, "--index", str(path))
            expected = set(crash_media)
        elif op == "remove":
            assert set(crash_media[:3]) <= after <= before
            rerun = _run("remove", *sorted(after - set(crash_media[:3])), "--index", str(path)) if after != set(crash_media[:3]) else None
            expected = set(crash_media[:3])
        else:
            assert after == before
            rerun = _run("rebuild", "--index", str(path))
            expected = before
        if rerun is not None:
            assert rerun.returncode == 0, rerun.stderr
        assert set(_state(path)) == expected
        outcomes[op].append("killed" if killed else "finished")
        shutil.rmtree(path)
    print(f"\nkill -9 trials: { {op: (o.count('killed'), len(o)) for op, o in outcomes.items()} } (killed, total)")
    # Most trials must really interrupt the operation, or the test proves nothing.
    assert sum(o.count("killed") for o in outcomes.values()) >= 0.6 * TRIALS

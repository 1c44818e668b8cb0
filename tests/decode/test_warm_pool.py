"""Decoder processes kept warm (``keep_warm``): started ahead of need, at most one more
than asked kept idle after a larger burst, and one that crashes on a file replaced.

The cases run in a fresh interpreter: the pool is per process, and this one's holds
what earlier tests left in it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tools.support import run_ffmpeg

ROOT = Path(__file__).resolve().parents[2]

# A decode whose decoder is killed mid-file; then five decodes at once on FIFOs
# nobody writes yet (each holds its decoder until they are fed).
SCRIPT = r"""
import json, os, signal, sys, threading, time
from pathlib import Path
from vsearch.decode import VideoSource
from vsearch.decode.source import keep_warm
from vsearch.errors import VideoError
from tools.support.processes import decoder_children

data, root = Path(sys.argv[1]).read_bytes(), Path(sys.argv[2])
me, report = os.getpid(), {}

def settle(count, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(decoder_children(me)) != count:
        time.sleep(0.05)
    time.sleep(0.5)  # and no more come
    return decoder_children(me)

def holder(pid, fifo):
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(fifo) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False

stop = keep_warm(2)
warm = settle(2)
report["warm"] = len(warm)

fifo = root / "crash.ts"
os.mkfifo(fifo)
held = threading.Event()
def writer():  # opened (so the decoder's open returns), nothing written: the decode waits
    with open(fifo, "wb"):
        held.wait(60)
def crash():
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for pid in decoder_children(me):
            if holder(pid, fifo):
                report["crashed"] = pid
                os.kill(pid, signal.SIGSEGV)
                return
        time.sleep(0.05)
helpers = [threading.Thread(target=writer), threading.Thread(target=crash)]
for thread in helpers:
    thread.start()
try:
    VideoSource(fifo, width=64, height=48).frames_at_rates([10.0])
except VideoError as exc:
    report["error"] = exc.reason
held.set()
for thread in helpers:
    thread.join()
after = settle(2)
report["replaced"] = report.get("crashed") not in after and len(after - warm) == 1
report["after_crash"] = len(after)
warm = after

fifos, frames = [root / f"held{n}.ts" for n in range(5)], []
for fifo in fifos:
    os.mkfifo(fifo)
threads = [threading.Thread(target=lambda f=f: frames.append(len(VideoSource(f, width=64, height=48)
                                                                 .frames_at_rates([10.0])[0]))) for f in fifos]
for thread in threads:
    thread.start()
busy = settle(5)  # each decoder waits in its FIFO's open until a writer comes
report["busy"] = len(busy)
report["warm_used"] = len(warm & busy)
for fifo in fifos:
    with open(fifo, "wb") as pipe:
        pipe.write(data)
for thread in threads:
    thread.join()
report["frames"] = sorted(frames)
kept = settle(3)
report["idle_after_burst"] = len(kept)

stop()
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def small_ts(tmp_path_factory) -> Path:
    """A 6 s MPEG-TS file (readable from a FIFO)."""
    from tools.support import make_video

    root = tmp_path_factory.mktemp("warm")
    small = make_video(root / "small.mp4", seconds=6, seed=802, size=(160, 120))
    run_ffmpeg(["-i", str(small), "-c", "copy", "-f", "mpegts", str(root / "small.ts")])
    return root / "small.ts"


def test_warm_decoders_are_started_bounded_and_replaced(small_ts, tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(small_ts), str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["warm"] == 2  # started before any decode was asked for
    assert "the decoder crashed (SIGSEGV)" in report["error"]
    assert report["replaced"] and report["after_crash"] == 2  # a fresh one in place of the crashed one
    assert report["busy"] == 5 and report["warm_used"] == 2  # the burst used them, and started three more
    assert report["frames"] == [60] * 5
    assert report["idle_after_burst"] == 3  # two kept warm and one more; the others stopped

"""No file stalls a library: a decode that stops making progress, or crawls, or whose
decoder dies, ends that file with a one-line error, and the next decode works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from vsearch.decode import VideoSource
from vsearch.errors import VideoError
from tools.support import make_video, run_ffmpeg
from tools.support.processes import decoder_children, is_decoder


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    """A small MPEG-TS clip (readable from a pipe), and a heavy one of ~5 Mbit/s."""
    root = tmp_path_factory.mktemp("watchdog")
    small = make_video(root / "small.mp4", seconds=6, seed=801, size=(320, 240))
    run_ffmpeg(["-i", str(small), "-c", "copy", "-f", "mpegts", str(root / "small.ts")])
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=640x480:r=25:d=8", "-vf", "noise=alls=30:allf=t",
                "-c:v", "libx264", "-preset", "ultrafast", "-crf", "8", "-f", "mpegts", str(root / "heavy.ts")])
    return root


def _feed(fifo, data: bytes, *, head: int, chunk: int = 0, every: float = 0.0, hold: float = 30.0):
    """Write ``head`` bytes into ``fifo`` at once, then ``chunk`` bytes every ``every`` s
    (nothing more if ``chunk`` is 0), keeping the pipe open up to ``hold`` seconds."""
    stop = threading.Event()

    def run():
        try:
            with open(fifo, "wb") as pipe:
                pipe.write(data[:head])
                pipe.flush()
                sent = head
                deadline = time.monotonic() + hold
                while not stop.is_set() and time.monotonic() < deadline:
                    if chunk and sent < len(data):
                        pipe.write(data[sent : sent + chunk])
                        pipe.flush()
                        sent += chunk
                    stop.wait(every or 0.1)
        except BrokenPipeError:
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return stop


def test_a_decode_that_stops_making_progress_is_abandoned(streams, tmp_path):
    fifo = tmp_path / "stalled.ts"
    os.mkfifo(fifo)
    data = (streams / "small.ts").read_bytes()
    stop = _feed(fifo, data, head=len(data) // 2)  # the writer stops half-way, pipe still open
    t0 = time.monotonic()
    with pytest.raises(VideoError) as err:
        VideoSource(fifo, width=64, height=48, timeout=2.0).frames_at_rates([10.0])
    elapsed = time.monotonic() - t0
    stop.set()
    assert str(err.value).startswith(str(fifo)) and "stalled at" in err.value.reason and "\n" not in str(err.value)
    assert 2.0 <= elapsed < 10.0
    # The stuck decoder was killed; the next file decodes as usual.
    frames = VideoSource(streams / "small.ts", width=64, height=48).frames_at_rates([10.0])[0]
    assert len(frames) == 60


def test_a_decode_slower_than_a_tenth_of_real_time_is_abandoned(streams, tmp_path):
    fifo = tmp_path / "crawling.ts"
    os.mkfifo(fifo)
    data = (streams / "heavy.ts").read_bytes()
    per_second = len(data) / 8.0
    # A good first second, then about 0.04 s of video per second in steady drips:
    # frames keep coming (no stall), hopelessly slowly.
    chunk = int(0.04 * 0.25 * per_second) // 188 * 188
    stop = _feed(fifo, data, head=int(per_second) // 188 * 188, chunk=chunk, every=0.25)
    with pytest.raises(VideoError, match="too slow") as err:
        VideoSource(fifo, width=64, height=48, timeout=2.0).frames_at_rates([10.0])
    stop.set()
    assert "x real time" in err.value.reason


def test_a_crashed_decoder_fails_that_file_only(streams, tmp_path):
    fifo = tmp_path / "slow.ts"
    os.mkfifo(fifo)
    data = (streams / "small.ts").read_bytes()
    stop = _feed(fifo, data, head=len(data) // 3)
    killer = threading.Timer(1.0, lambda: [os.kill(pid, signal.SIGSEGV) for pid in decoder_children(os.getpid())])
    killer.start()
    with pytest.raises(VideoError, match="the decoder crashed") as err:
        VideoSource(fifo, width=64, height=48, timeout=20.0).frames_at_rates([10.0])
    stop.set()
    killer.join()
    assert "SIGSEGV" in err.value.reason
    frames = VideoSource(streams / "small.ts", width=64, height=48).frames_at_rates([10.0])[0]
    assert len(frames) == 60 and frames.dtype == np.uint8


def test_a_stuck_decoder_dies_with_its_parent(streams, tmp_path):
    fifo = tmp_path / "held.ts"
    os.mkfifo(fifo)
    data = (streams / "small.ts").read_bytes()
    stop = _feed(fifo, data, head=len(data) // 2)  # the decode will wait for more, forever
    script = ("from vsearch.decode import VideoSource\n"
              f"VideoSource({str(fifo)!r}, width=64, height=48, timeout=600).frames_at_rates([10.0])\n")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2])
    deadline = time.monotonic() + 20
    children = []
    while time.monotonic() < deadline and not children:
        time.sleep(0.2)
        children = decoder_children(parent.pid)
    assert children, "the decoder process did not start"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(is_decoder(pid) for pid in children):
        time.sleep(0.1)
    stop.set()
    assert not any(is_decoder(pid) for pid in children)

"""Frame size: a file of frames too large is refused from its headers, by the command
line as by the server, before a frame is decoded (so it costs no memory)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import run_cli
from tools.support import lavfi_video
from vsearch.decode.pyav import PyAVBackend

#: A frame limit under the test videos' 320x240.
SMALL_LIMIT = "320x200"
REASON = "frames too large: 320x240, over the 64,000 pixels allowed"
ROOT = Path(__file__).resolve().parents[2]


def test_the_command_line_refuses_frames_over_max_pixels(built_index, media, clips, tmp_path):
    index = tmp_path / "ix"
    shutil.copytree(built_index, index)
    added = run_cli("ingest", str(media["extra"]), "--index", str(index), "--max-pixels", SMALL_LIMIT)
    assert added.returncode == 2, added.stderr
    assert f"FAILED {media['extra']}: {REASON}" in added.stderr.splitlines()
    asked = run_cli("query", str(clips["exact"][0]), "--index", str(index), "--max-pixels", "64000")
    assert asked.returncode == 2
    assert asked.stderr.strip().splitlines() == [f"vsearch: error: {clips['exact'][0]}: {REASON}"]
    bad = run_cli("query", str(clips["exact"][0]), "--index", str(index), "--max-pixels", "big")
    assert bad.returncode == 1 and "--max-pixels must look like 7680x4320" in bad.stderr
    # Within the limit (here 320x240 exactly), both work as before.
    assert run_cli("ingest", str(media["extra"]), "--index", str(index), "--max-pixels", "320x240").returncode == 0
    assert "1. " in run_cli("query", str(clips["exact"][0]), "--index", str(index), "--max-pixels", "320x240",
                            check=True).stdout


def test_the_default_refuses_a_small_file_of_huge_frames_in_little_memory(built_index, huge_frames, tmp_path):
    code, stderr, peak = _run_measured(["query", str(huge_frames), "--index", str(built_index)], tmp_path / "err.txt")
    assert code == 2, stderr
    assert stderr.strip().splitlines() == [
        f"vsearch: error: {huge_frames}: frames too large: 16000x16000, over the 33,177,600 pixels allowed"]
    assert peak < 400 << 20, f"peak RSS {peak >> 20} MiB"


def test_decoding_threads_shrink_with_the_frame_size(tmp_path):
    """16 FFmpeg threads on 8K frames held 1.6 GB; the frames' size bounds them."""
    uhd = lavfi_video("color=c=black:s=7680x4320:r=2:d=1", tmp_path / "uhd.mp4")
    small = lavfi_video("color=c=black:s=1920x1080:r=2:d=1", tmp_path / "small.mp4")
    for path, threads in ((uhd, 5), (small, 16)):
        backend = PyAVBackend(str(path), width=128, height=96, pixel_format="gray", threads=16)
        try:
            assert backend._stream.codec_context.thread_count == threads
        finally:
            backend.close()


def _run_measured(args: list[str], err: Path) -> tuple[int, str, int]:
    """``vsearch ARGS``: exit code, stderr, and the peak RSS (bytes) of it and its decoder processes.

    A small launcher starts it and reads its children's peak: measured from this
    process, the peak would include this process's own memory at the fork.
    """
    launcher = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
                "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)")
    with open(err, "w") as handle:
        proc = subprocess.run([sys.executable, "-c", launcher, sys.executable, "-m", "vsearch", *args], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=handle, text=True)
    return proc.returncode, err.read_text(), int(proc.stdout.split()[-1]) << 10

"""Media for server tests: the folder servers may read, and long videos to add.

The servers themselves are ``tools.support.server.ServerProcess`` (real child processes).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tools.support import cut_clip, run_ffmpeg, scale_filter


def loop_video(src: Path, dst: Path, times: int) -> Path:
    """``src`` played ``times`` times in a row (stream copy: instant, and a long ingest)."""
    run_ffmpeg(["-stream_loop", str(times - 1), "-i", str(src), "-c", "copy", "-an", str(dst)])
    return dst


@pytest.fixture(scope="session")
def allowed(media, clips, tmp_path_factory) -> Path:
    """The folder servers may read: clips and videos copied in, plus escapes by symlink."""
    root = tmp_path_factory.mktemp("allowed")
    for name in ("exact", "reencoded_small"):
        shutil.copy(clips[name][0], root / f"{name}.mp4")
    shutil.copy(media["extra"], root / "extra.mp4")
    cut_clip(media["extra"], root / "extra_clip.mp4", start=2.3, duration=5.0, crf=20)
    shutil.copy(media["lib11"], root / "long_clip.mp4")  # 16 s: over a 12 s clip limit
    # 640x480: over a frame limit of 320x240 (the other videos' size)
    cut_clip(media["extra"], root / "large_frames.mp4", start=0.0, duration=6.0, crf=23, vf=scale_filter(2))
    (root / "escape.mp4").symlink_to(media["negative"])
    (root / "linked").mkdir()
    (root / "linked" / "outside.mp4").symlink_to(media["negative"])
    return root

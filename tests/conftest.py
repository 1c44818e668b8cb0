"""Session fixtures: small real videos generated with ffmpeg, and indexes built from them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tools.ffmpeg_tools import cut_clip, joined_video, scale_filter
from tools.synth import make_video

SHARED_VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "videos"

LIBRARY_SEEDS = (11, 12, 13)
NEGATIVE_SEED = 99


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, Path]:
    """Three library videos, one never-indexed video, one extra video for incremental adds."""
    root = tmp_path_factory.mktemp("media")
    out = {}
    for seed in LIBRARY_SEEDS:
        out[f"lib{seed}"] = make_video(root / f"lib {seed}.mp4", seconds=16, seed=seed, fps=25, size=(320, 240))
    out["negative"] = make_video(root / "negative.mp4", seconds=12, seed=NEGATIVE_SEED, fps=30, size=(320, 240))
    out["extra"] = make_video(root / "extra.mp4", seconds=10, seed=21, fps=30, size=(320, 240))
    return out


@pytest.fixture(scope="session")
def clips(media, tmp_path_factory) -> dict[str, tuple[Path, Path, float]]:
    """Query clips: (clip path, source video, true start in the source)."""
    root = tmp_path_factory.mktemp("clips")
    out = {}
    src = media["lib12"]
    out["exact"] = (root / "exact.mp4", src, 5.27)
    cut_clip(src, out["exact"][0], start=5.27, duration=5.0, crf=12)
    src = media["lib13"]
    out["reencoded_small"] = (root / "small.mp4", src, 7.63)
    cut_clip(src, out["reencoded_small"][0], start=7.63, duration=5.0, crf=28, vf=scale_filter(0.5))
    out["negative"] = (root / "neg.mp4", media["negative"], 3.4)
    cut_clip(media["negative"], out["negative"][0], start=3.4, duration=5.0, crf=23)
    out["too_short"] = (root / "short.mp4", media["lib11"], 1.0)
    cut_clip(media["lib11"], out["too_short"][0], start=1.0, duration=1.0, crf=23)
    return out


@pytest.fixture(scope="session")
def built_index(media, tmp_path_factory) -> Path:
    """An index of the three library videos, built once and only read by tests."""
    from vsearch import VideoIndex

    path = tmp_path_factory.mktemp("index") / "ix"
    with VideoIndex.create(path, device="cpu") as index:
        results = index.add([media[f"lib{s}"] for s in LIBRARY_SEEDS])
    assert all(r.status == "added" for r in results), results
    return path


@pytest.fixture(scope="session")
def shards(media, tmp_path_factory) -> list[Path]:
    """The three library videos of ``built_index`` split over two shards (a: 11 and 13; b: 12)."""
    from vsearch import VideoIndex

    root = tmp_path_factory.mktemp("shards")
    for name, seeds in (("a", (11, 13)), ("b", (12,))):
        with VideoIndex.create(root / name, device="cpu") as index:
            assert all(r.status == "added" for r in index.add([media[f"lib{s}"] for s in seeds]))
    return [root / "a", root / "b"]


@pytest.fixture(scope="session")
def joined_clip(media, tmp_path_factory) -> Path:
    """6 s of lib11 (shard a) then 6 s of lib12 (shard b): hits in both shards."""
    return joined_video(media["lib11"], 6.0, media["lib12"], 4.0, 6.0, tmp_path_factory.mktemp("joined") / "joined.mp4")


def run_cli(*args: str, env: dict | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run ``python -m vsearch`` as a user would, capturing its output."""
    proc = subprocess.run(
        [sys.executable, "-m", "vsearch", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=Path(__file__).resolve().parents[1],
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"vsearch {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc

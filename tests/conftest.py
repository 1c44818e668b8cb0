"""Session fixtures: small real videos generated with ffmpeg, and indexes built from them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tools.support import cut_clip, joined_video, lavfi_video, make_video, scale_filter

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


@pytest.fixture()
def scratch_index(built_index, tmp_path):
    """A private copy of the built index that a test may modify."""
    path = tmp_path / "ix"
    shutil.copytree(built_index, path)
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


@pytest.fixture(scope="session")
def huge_frames(tmp_path_factory) -> Path:
    """The frames of issue #27: 16000x16000 H.264 in 750 KB. Read whole, it took 2 GB."""
    return lavfi_video("color=c=black:s=16000x16000:r=2:d=3", tmp_path_factory.mktemp("huge") / "huge.mp4")


def run_cli(*args: str, env: dict | None = None, check: bool = False,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m vsearch`` as a user would (in ``cwd``, default the project), capturing its output."""
    project = Path(__file__).resolve().parents[1]
    path = os.pathsep.join(p for p in (str(project), os.environ.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "vsearch", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": path, **(env or {})},
        cwd=cwd or project,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"vsearch {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def ids_by_video(index) -> dict[str, np.ndarray]:
    """The window ids each video of an open ``VideoIndex`` holds in its vector file, by path."""
    ids = index.folder.vectors.ids()
    return {r.path: np.sort(ids[(ids >> 32) == r.id]) for r in index.videos()}


def random_frames(seed: int, n: int = 20) -> np.ndarray:
    """``n`` grey 96 x 128 frames of smooth random structure (float32, 20-235)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(120, 40, size=(n, 96, 128)).cumsum(axis=2) / 8
    return np.clip(base - base.min() + 20, 0, 235).astype(np.float32)


def comparable(hits) -> list[dict]:
    """Hits without their video ids (one index and shards number videos differently)."""
    return [{k: v for k, v in hit.to_dict().items() if k != "video_id"} for hit in hits]


def assert_same_hits(single, sharded) -> None:
    """The hits of one index and of shards holding the same videos agree (scores to 2e-4)."""
    assert len(single) == len(sharded), (comparable(single), comparable(sharded))
    for one, other in zip(comparable(single), comparable(sharded)):
        assert one.keys() == other.keys()
        for key, value in one.items():
            assert other[key] == (pytest.approx(value, abs=2e-4) if isinstance(value, float) else value), key

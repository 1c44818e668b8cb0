"""Damaged and truncated files: what ffmpeg decodes against what vsearch indexes.

    python -m tools.damage_matrix [--workdir DIR] [--seed 1]

A 20 s synthetic video is written in several containers (MP4 with its index at the
front and at the end, MKV, WebM, AVI, MPEG-PS, MPEG-TS); each copy is then damaged
the ways copies and downloads damage files, from a fixed seed: cut at 50 % and 90 %
of its bytes, runs of bytes overwritten mid-stream, its first 4 KB overwritten. For
each file it prints the seconds of pictures ffmpeg decodes, the seconds vsearch
indexes (the union of its indexed windows), and vsearch's status and reason. The
tests (``tests/test_damaged.py``) use the same files.
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools.support import encoder_args, ffmpeg_exe, make_video, run_ffmpeg

SOURCE_SECONDS = 20.0
SOURCE_FPS = 25

#: Container -> ffmpeg output arguments (from the lossless-enough source).
CONTAINERS: dict[str, list[str]] = {
    "mp4_front": [*encoder_args("libx264", 20), "-g", "50", "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4"],
    "mp4_end": [*encoder_args("libx264", 20), "-g", "50", "-pix_fmt", "yuv420p", "-f", "mp4"],
    "mkv": [*encoder_args("libx264", 20), "-g", "50", "-pix_fmt", "yuv420p", "-f", "matroska"],
    "webm": [*encoder_args("libvpx", 20), "-g", "50", "-f", "webm"],
    "avi": ["-c:v", "mpeg4", "-vtag", "XVID", "-q:v", "4", "-g", "50", "-f", "avi"],
    "mpg": ["-c:v", "mpeg2video", "-q:v", "4", "-g", "25", "-f", "mpeg"],
    "ts": [*encoder_args("libx264", 20), "-g", "50", "-pix_fmt", "yuv420p", "-f", "mpegts"],
}
SUFFIX = {"mp4_front": ".mp4", "mp4_end": ".mp4", "mkv": ".mkv", "webm": ".webm", "avi": ".avi", "mpg": ".mpg",
          "ts": ".ts"}

#: Damage kinds, applied to the bytes of a file.
DAMAGES = ("cut50", "cut90", "runs", "header")


def damage(data: bytes, kind: str, rng: random.Random) -> bytes:
    """``data`` damaged as ``kind`` says (seeded by ``rng``)."""
    if kind.startswith("cut"):
        return data[: len(data) * int(kind[3:]) // 100]
    out = bytearray(data)
    if kind == "header":
        out[:4096] = bytes(rng.randrange(256) for _ in range(4096))
    elif kind == "runs":
        # Ten runs of 64-512 random bytes between 20 % and 90 % of the file.
        for _ in range(10):
            length = rng.randrange(64, 513)
            at = rng.randrange(len(out) // 5, len(out) * 9 // 10 - length)
            out[at : at + length] = bytes(rng.randrange(256) for _ in range(length))
    else:
        raise ValueError(kind)
    return bytes(out)


def whole_copy(damaged: Path) -> Path:
    """The undamaged copy a damaged one was made from."""
    container = damaged.stem.rsplit("_", 1)[0]
    return damaged.with_name(container + damaged.suffix)


def build(workdir: Path, seed: int = 1) -> tuple[Path, dict[str, Path]]:
    """The source video and every damaged copy (cached): ``{"avi/cut50": path, ...}``."""
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "source.mkv"
    if not source.exists():
        make_video(source, seconds=SOURCE_SECONDS, seed=900 + seed, fps=SOURCE_FPS, size=(320, 240), crf=12)
    files = {}
    for container, args in CONTAINERS.items():
        whole = workdir / f"{container}{SUFFIX[container]}"
        if not whole.exists():  # one thread: the same bytes on every machine, so the same damage
            run_ffmpeg(["-i", str(source), "-threads", "1", *args, str(whole)])
        data = whole.read_bytes()
        for kind in DAMAGES:
            path = workdir / f"{container}_{kind}{SUFFIX[container]}"
            if not path.exists():
                path.write_bytes(damage(data, kind, random.Random(f"{seed}/{container}/{kind}")))
            files[f"{container}/{kind}"] = path
    return source, files


def ffmpeg_decodable_seconds(path: Path) -> float:
    """Seconds of pictures ffmpeg decodes from ``path`` (frames times the frame period)."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-an", "-vf", "showinfo",
                           "-f", "null", "-"], capture_output=True)
    frames = len(re.findall(rb"pts_time:", proc.stderr))
    return frames / SOURCE_FPS


def indexed_seconds(record, config) -> float:
    """Seconds of a video covered by its indexed windows (their union)."""
    from vsearch.windows import indexed_windows

    covered = np.zeros(record.blocks, dtype=bool)
    for window in indexed_windows(record.blocks, record.damaged, config):
        covered[window : window + config.window_blocks] = True
    return float(covered.sum() * config.block_seconds)


@dataclass
class Row:
    case: str
    ffmpeg_seconds: float
    indexed_seconds: float
    status: str
    reason: str


def evaluate(files: dict[str, Path], index_path: Path) -> list[Row]:
    """Ingest every damaged file into one index; one row per file."""
    from vsearch import VideoIndex

    rows = []
    with VideoIndex.create(index_path, device="cpu") as index:
        results = index.add(list(files.values()))
        records = {r.path: r for r in index.videos()}
        for (case, path), result in zip(files.items(), results):
            record = records.get(result.path)
            seconds = indexed_seconds(record, index.config) if record is not None else 0.0
            rows.append(Row(case, ffmpeg_decodable_seconds(path), seconds, result.status, result.reason))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "vsearch-damage-matrix")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    _, files = build(args.workdir, args.seed)
    index = args.workdir / "index"
    import shutil

    shutil.rmtree(index, ignore_errors=True)
    print(f"{'case':<18}{'ffmpeg s':>9}{'indexed s':>10}  status   reason")
    for row in evaluate(files, index):
        print(f"{row.case:<18}{row.ffmpeg_seconds:>9.1f}{row.indexed_seconds:>10.1f}  {row.status:<8} {row.reason}")


if __name__ == "__main__":
    main()

"""The main job in one command: build an index of sample videos and query it.

Uses ``../shared/videos`` when present, otherwise generates a few synthetic videos.
It drives vsearch exactly as a user would, through its command line:

    python -m tools.demo [--videos DIR] [--index indexes/demo]
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tools.ffmpeg_tools import cut_clip, probe_duration, scale_filter
from tools.synth import make_video

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "videos"
VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".mpg", ".mpeg", ".m4v"}


def vsearch(*args: str) -> None:
    cmd = [sys.executable, "-m", "vsearch", *args]
    shown = list(args) if len(args) <= 8 else [*args[:3], f"...({len(args) - 5} more)...", *args[-2:]]
    print("$ vsearch " + " ".join(shown), flush=True)
    subprocess.run(cmd, check=False, cwd=ROOT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=SHARED if SHARED.is_dir() else None)
    parser.add_argument("--index", type=Path, default=ROOT / "indexes" / "demo")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vsearch-demo-"))
    if args.videos is None:
        print(f"generating sample videos in {work}", flush=True)
        library = [make_video(work / f"sample_{i:02d}.mp4", seconds=20, seed=100 + i) for i in range(6)]
    else:
        library = sorted(p for p in args.videos.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    rng = random.Random(args.seed)
    held_out = library[-1]
    indexed = library[:-1]
    stale = subprocess.run([sys.executable, "-m", "vsearch", "stats", "--index", str(args.index)],
                           capture_output=True, text=True, cwd=ROOT)
    if stale.returncode == 5:  # built by an older vsearch: the demo's own index, so start afresh
        print(f"demo index {args.index} is from an incompatible vsearch version; recreating it", flush=True)
        shutil.rmtree(args.index)
    vsearch("ingest", *map(str, indexed), "--index", str(args.index))

    clips = []
    for name, src, transform in [
        ("exact", rng.choice(indexed), dict(crf=18)),
        ("reencoded_half_size", rng.choice(indexed), dict(crf=28, vf=scale_filter(0.5))),
        ("never_indexed", held_out, dict(crf=23)),
    ]:
        length = probe_duration(src)
        start = round(rng.uniform(0, max(length - 5.5, 0)), 2)
        clip = work / f"{name}.mp4"
        cut_clip(src, clip, start=start, duration=min(5.0, length), **transform)
        print(f"clip {clip.name}: {src.name} from {start:.2f} s", flush=True)
        clips.append(str(clip))
    vsearch("query", *clips, "--index", str(args.index), "-k", "3")
    vsearch("stats", "--index", str(args.index))


if __name__ == "__main__":
    main()

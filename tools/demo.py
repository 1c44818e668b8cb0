"""The main job in one command: build an index of sample videos and query it.

Uses ``../shared/videos`` when present, otherwise generates a few synthetic videos.
It drives vsearch exactly as a user would, through its command line:

    python -m tools.demo [--videos DIR | --synthetic] [--out indexes/demo]

Everything goes in one folder, emptied at the start of each run so that no entry
of an earlier run survives: ``OUT/index`` (the index), ``OUT/videos`` (generated
sample videos) and ``OUT/clips`` (the query clips). Nothing is left in temporary
folders, and two runs print the same (but for the index's timestamps).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

from tools.support import cut_clip, make_video, probe_duration, scale_filter

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "videos"
VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".mpg", ".mpeg", ".m4v"}
#: Marks a folder the demo made, so that it never empties anyone else's.
MARKER = ".vsearch-demo"
DEFAULT_OUT = ROOT / "indexes" / "demo"


def _shown(path: Path) -> str:
    """A path as the user typed it from the repository root (relative when inside)."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def vsearch(*args: str) -> None:
    cmd = [sys.executable, "-m", "vsearch", *args]
    shown = list(args) if len(args) <= 8 else [*args[:3], f"...({len(args) - 5} more)...", *args[-2:]]
    print("$ vsearch " + " ".join(shown), flush=True)
    subprocess.run(cmd, check=False, cwd=ROOT)


#: What the demo of earlier versions left in ``indexes/demo``: its index, nothing else.
_OLD_DEMO_INDEX = {"meta.lmdb", "meta.lmdb.old", "vectors.faiss", "writer.lock", ".rebuild"}


def _made_by_demo(out: Path) -> bool:
    if (out / MARKER).exists():
        return True
    # Earlier versions kept just their index in indexes/demo, without a marker.
    names = {p.name for p in out.iterdir()}
    return out == DEFAULT_OUT and "meta.lmdb" in names and names <= _OLD_DEMO_INDEX


def fresh_folder(out: Path) -> None:
    """Empty ``out`` if the demo made it (or create it); refuse any other folder."""
    if out.exists() and any(out.iterdir()) and not _made_by_demo(out):
        sys.exit(f"demo: {out} exists and was not made by the demo; choose another --out")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / MARKER).write_text("made by python -m tools.demo; emptied at each run\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=None,
                        help="library folder, e.g. your own footage (searched recursively) [../shared/videos when present]")
    parser.add_argument("--synthetic", action="store_true", help="generate the library even if ../shared/videos exists")
    parser.add_argument("--count", type=int, default=6, help="synthetic videos to generate [6]")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each synthetic video [20]")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the demo's folder [indexes/demo]")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    videos = None if args.synthetic else (args.videos or (SHARED if SHARED.is_dir() else None))
    out = args.out.resolve()
    fresh_folder(out)
    index, clips_dir = out / "index", out / "clips"
    clips_dir.mkdir()
    if videos is None:
        samples = out / "videos"
        samples.mkdir()
        print(f"generating {args.count} sample videos in {_shown(samples)}", flush=True)
        library = [make_video(samples / f"sample_{i:02d}.mp4", seconds=args.seconds, seed=100 + i)
                   for i in range(args.count)]
    else:
        library = sorted(p for p in videos.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
        print(f"library: {len(library)} videos in {_shown(videos)}", flush=True)
        if len(library) < 2:
            sys.exit(f"demo: {videos} needs at least 2 videos (one is kept out of the index as a negative)")
    rng = random.Random(args.seed)
    held_out = library[-1]
    indexed = library[:-1]
    print(f"index: {_shown(index)} (all but {held_out.name}, kept out as a never-indexed video)", flush=True)
    vsearch("ingest", *(_shown(p) for p in indexed), "--index", _shown(index))

    clips = []
    for name, src, transform in [
        ("exact", rng.choice(indexed), dict(crf=18)),
        ("reencoded_half_size", rng.choice(indexed), dict(crf=28, vf=scale_filter(0.5))),
        ("never_indexed", held_out, dict(crf=23)),
    ]:
        length = probe_duration(src)
        start = round(rng.uniform(0, max(length - 5.5, 0)), 2)
        clip = clips_dir / f"{name}.mp4"
        cut_clip(src, clip, start=start, duration=min(5.0, length), **transform)
        print(f"clip {_shown(clip)}: {src.name} from {start:.2f} s", flush=True)
        clips.append(_shown(clip))
    vsearch("query", *clips, "--index", _shown(index), "-k", "3")
    vsearch("stats", "--index", _shown(index))
    print(f"done: everything is in {_shown(out)} (emptied by the next run)", flush=True)
    if args.videos is None:
        print("your own footage: python -m tools.demo --videos DIR (a folder of videos, searched recursively)",
              flush=True)


if __name__ == "__main__":
    os.chdir(ROOT)
    main()

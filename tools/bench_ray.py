"""Ingest throughput on Ray with 1 and 2 workers against plain ingest, side by side in one run.

    python -m tools.bench_ray [--videos DIR] [--files 8] [--seconds 20] [--size 960x540]
                              [--repeat 1] [--workdir DIR] [--no-query]

The same files (generated 30 fps H.264 test patterns with grain, each different, or
those of ``--videos``) are ingested into a fresh index by:

  plain x1     ``VideoIndex.add`` reading one file at a time, FFmpeg on 1 thread:
               what one Ray worker (a task of 1 CPU) does, without Ray;
  ray 1 worker a local Ray cluster of 1 CPU: tasks of 1 CPU, one at a time;
  ray 2 workers a local Ray cluster of 2 CPUs: two tasks at once;
  plain        ``vsearch ingest`` as it is (2 files at once, FFmpeg on every core).

With the 2-CPU cluster up, it also splits the files over 2 shards (routed by
content hash) and times 10 s clips (median per clip, and per fan-out search of a
clip's 85 windows) against one index, the 2 shards opened here, and the 2 shards in
Ray actors (``--no-query`` skips this).

It also times the one committing writer alone (one-hour videos already described,
committed one by one): the ceiling of a Ray ingest however many workers read.

Each Ray cluster is started (not timed: printed apart) and warmed up on a small
file first, so worker start-up is not counted as throughput. Every run's index
must hold the same videos and vectors. It prints video-seconds per wall-second
(x real time), the ratios (2 workers / 1 worker; 1 worker / plain x1, i.e. Ray's overhead) and
the load average before and after: the machine is shared, so compare ratios from
one run. ``--repeat N`` keeps each configuration's best of N.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from tools.support import probe_duration, run_ffmpeg

VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".mpg", ".mpeg", ".m4v"}


def generate(folder: Path, count: int, seconds: float, size: str) -> list[Path]:
    """``count`` different test-pattern files (grain seeded per file), cached in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for number in range(count):
        path = folder / f"pattern_{size}_{seconds:g}s_{number:02d}.mp4"
        if not path.exists():
            run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=s={size}:r=30:d={seconds}",
                        "-vf", f"noise=alls=3:allf=t:all_seed={number + 1}", "-c:v", "libx264", "-preset", "veryfast",
                        "-crf", "23", "-pix_fmt", "yuv420p", str(path)])
        files.append(path)
    return files


def ingest(files: list[Path], index: Path, reader) -> tuple[float, tuple]:
    """Wall seconds of one ingest into a fresh ``index``, and what the index holds."""
    from vsearch import VideoIndex

    shutil.rmtree(index, ignore_errors=True)
    started = time.perf_counter()
    with VideoIndex.create(index, device="cpu") as vindex:
        results = vindex.add(files, reader=reader)
        elapsed = time.perf_counter() - started
        failed = [r for r in results if not r.ok]
        if failed:
            sys.exit(f"bench_ray: {failed[0].path}: {failed[0].reason}")
        held = (tuple(sorted((r.path, r.hash, r.windows) for r in vindex.videos())), vindex.stats().vectors)
    return elapsed, held


def ray_cluster(cpus: int):
    """A local Ray cluster of ``cpus`` CPUs on loopback; returns (ray, seconds to start)."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, logging_level=logging.WARNING)
    return ray, time.perf_counter() - started


def query_latency(files: list[Path], work: Path) -> dict[str, float]:
    """Median seconds per 10 s clip, and per fan-out search of its 85 query windows:
    one index, the same videos in 2 local shards, and those shards in Ray actors
    (needs a running cluster)."""
    import numpy as np

    from tools.support import cut_clip
    from vsearch import VideoIndex
    from vsearch.cluster import open_remote_shards
    from vsearch.library.sharded import ShardedIndex

    shard_paths = [work / "shard-0", work / "shard-1"]
    for path in shard_paths:
        shutil.rmtree(path, ignore_errors=True)
    with ShardedIndex.open(shard_paths, device="cpu", create=True) as sharded:
        sharded.add(files)
    clips = []
    for number, source in enumerate(files[:3]):
        clips.append(cut_clip(source, work / f"clip{number}.mp4", start=3.0 + number, duration=10.0, crf=23))
    out = {}
    with VideoIndex.open(work / "index", device="cpu") as single, \
            ShardedIndex.open(shard_paths, device="cpu") as local, \
            open_remote_shards(shard_paths, device="cpu") as remote:
        queries = np.ascontiguousarray(single.window_vectors(single.videos()[0].id)[:85])
        for name, library in (("one index", single), ("2 local shards", local), ("2 Ray actor shards", remote)):
            library.query(clips[0])  # warm: decoder process, caches
            per_clip = [timed(lambda: library.query(clip)) for clip in clips for _ in range(2)]
            per_search = [timed(lambda: library.nearest(queries, 32)) for _ in range(20)]
            out[name] = (float(np.median(per_clip)), float(np.median(per_search)))
    return out


def writer_ceiling(work: Path, hours: int = 4) -> float:
    """Video-hours the one committing writer commits per wall-second: prepared
    one-hour videos (random descriptors) committed as a Ray ingest hands them over."""
    import numpy as np

    from vsearch import VideoIndex
    from vsearch.decode import VideoInfo
    from vsearch.describe import VideoDescriptors
    from vsearch.ingest.readers import PreparedVideo

    shutil.rmtree(work / "writer", ignore_errors=True)
    rng = np.random.default_rng(0)
    with VideoIndex.create(work / "writer", device="cpu") as index:
        blocks_per_hour = int(3600 / index.config.block_seconds)
        prepared = []
        for number in range(hours):
            info = VideoInfo(path=f"/hour{number}.mp4", duration=3600.0, fps=30.0, width=1920, height=1080,
                             frame_count=108000)
            blocks = rng.random((blocks_per_hour, index.config.block_dim), dtype=np.float32)
            prepared.append(PreparedVideo(path=info.path, digest=f"{number:032x}",
                                          described=VideoDescriptors(info=info, blocks=blocks),
                                          windows=blocks_per_hour - index.config.window_blocks + 1))
        with index.writing() as writer:
            elapsed = timed(lambda: [writer.commit(p.path, p) for p in prepared])
    return hours / elapsed


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=Path, help="ingest these videos instead of generated ones")
    parser.add_argument("--files", type=int, default=8, help="generated files [8]")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each generated file [20]")
    parser.add_argument("--size", default="960x540", help="size of the generated files [960x540]")
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs per configuration [1]")
    parser.add_argument("--workdir", type=Path, help="keep generated files here (default: a temp folder)")
    parser.add_argument("--no-query", dest="query", action="store_false",
                        help="skip the query latency of one index, local shards and Ray actor shards")
    args = parser.parse_args()

    from vsearch.cluster.ingest import RayReader
    from vsearch.ingest.readers import ThreadReader

    work = Path(args.workdir or tempfile.mkdtemp(prefix="vsearch-bench-ray-"))
    try:
        if args.videos:
            files = sorted(p for p in args.videos.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
        else:
            files = generate(work / "videos", args.files, args.seconds, args.size)
        warm = generate(work / "warm", 1, 3.0, "320x240")
        video_s = sum(probe_duration(f) for f in files)
        load_before = os.getloadavg()
        print(f"{len(files)} files, {video_s:.0f} s of video; {os.cpu_count()} cores; "
              f"load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")

        def best(reader) -> tuple[float, tuple]:
            runs = [ingest(files, work / "index", reader) for _ in range(args.repeat)]
            return min(run[0] for run in runs), runs[0][1]

        timings, contents = {}, {}
        timings["plain x1"], contents["plain x1"] = best(ThreadReader(files=1, decode_threads=1))
        for workers in (1, 2):
            ray, start_s = ray_cluster(workers)
            try:
                reader = RayReader(cpus_per_task=1.0)
                ingest(warm, work / "warm-index", reader)
                name = f"ray {workers} worker{'s' if workers > 1 else ''}"
                timings[name], contents[name] = best(reader)
                print(f"  (Ray cluster of {workers} CPU{'s' if workers > 1 else ''} started in {start_s:.1f} s)")
                if workers == 2 and args.query:
                    latency = query_latency(files, work)
            finally:
                ray.shutdown()
        timings["plain"], contents["plain"] = best(ThreadReader())

        load_after = os.getloadavg()
        print(f"\n{'configuration':<16}{'wall s':>8}{'x real time':>13}")
        for name, seconds in timings.items():
            print(f"{name:<16}{seconds:>8.2f}{video_s / seconds:>12.1f}x")
        same = len({content for content in contents.values()}) == 1
        print(f"\nsame index content in every run: {'yes' if same else 'NO'}")
        print(f"2 workers / 1 worker:       {timings['ray 1 worker'] / timings['ray 2 workers']:.2f}x  (aim >= 1.7)")
        overhead = timings["ray 1 worker"] / timings["plain x1"] - 1
        print(f"1 worker against plain x1:  {overhead * 100:+.1f}% time  (aim <= +10%)")
        print(f"2 workers against plain:    {timings['plain'] / timings['ray 2 workers']:.2f}x")
        print(f"one committing writer: {writer_ceiling(work):.2f} video-hours committed per second "
              "(LMDB + FAISS Flat, one-hour videos)")
        if args.query:
            print(f"\n{'query (10 s clip)':<22}{'per clip':>10}{'per search':>12}  (median; 85 windows, 32 neighbours)")
            for name, (per_clip, per_search) in latency.items():
                print(f"{name:<22}{per_clip * 1000:>8.0f} ms{per_search * 1000:>9.1f} ms")
        print(f"load average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
        if not same:
            sys.exit(1)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

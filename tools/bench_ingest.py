"""Ingest throughput against the decode limit, and peak memory, side by side in one run.

    python -m tools.bench_ingest [--videos DIR] [--hd-seconds 60] [--uhd-seconds 20] [--workdir DIR]

For each input group (the shared real videos, generated 1080p30 H.264 files with
heavy grain (~10 Mbit/s) and with light, web-like grain, and a generated 4K30 H.264
file) it measures, one after the other on the same machine:

  (a) ffmpeg decoding to null at the working resolution, grey, same thread count:
      the decode limit;
  (b) decord decoding only, through vsearch's own reader;
  (c) the full ``vsearch ingest`` (process start, hashing, descriptors, LMDB, FAISS).

It prints each input's bitrate, video-seconds per wall-second for each and the
ratios c/a and c/b, plus the peak RSS of each ingest process. A second 1080p file
twice as long shows how memory follows video length (frames are streamed in chunks,
but decord keeps what it reads ahead of the decoder: see ``--long-minutes``).

``--long-minutes M`` (default 30) also ingests a 1080p file M minutes long (the
heavy-grain file looped by stream copy, so it costs no encoding) and prints its peak
RSS: the memory target is for a 30-minute 1080p video.

``--library-hours H`` also ingests the 1080p web file into a library of H hours (one
real video plus synthetic ones, see ``tools.synth.make_library_index``) and prints the
peak RSS next to the empty-index ingest and the size of the library's vector file: a
writer holds the vector index in memory, and should hold little else.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.ffmpeg_tools import ffmpeg_exe, probe_duration, run_ffmpeg

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "videos"
VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".mpg", ".mpeg", ".m4v"}


def generate(path: Path, size: str, seconds: float, noise: int = 8) -> Path:
    """A test pattern with grain: ``noise`` 8 gives a heavy ~10 Mbit/s at 1080p (like a
    camera original), 2 a web-like few Mbit/s. Cheap to make."""
    if not path.exists():
        run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=s={size}:r=30:d={seconds}", "-vf", f"noise=alls={noise}:allf=t",
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", str(path)])
    return path


def mbit_per_s(files: list[str], seconds: float) -> float:
    return sum(os.path.getsize(f) for f in files) * 8 / 1e6 / max(seconds, 1e-9)


def ffmpeg_null(files: list[str], width: int, height: int, threads: int) -> float:
    t0 = time.perf_counter()
    for f in files:
        subprocess.run([ffmpeg_exe(), "-v", "error", "-threads", str(threads), "-i", f, "-an",
                        "-vf", f"scale={width}:{height},format=gray", "-f", "null", "-"], check=True)
    return time.perf_counter() - t0


def decord_only(files: list[str], width: int, height: int, fps: float) -> float:
    from vsearch.decode import VideoSource

    t0 = time.perf_counter()
    for f in files:
        source = VideoSource(f, width=width, height=height)
        for _ in source.iter_frames(fps):
            pass
        source.close()
    return time.perf_counter() - t0


def full_ingest(files: list[str], index: Path, *, fresh: bool = True) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one `vsearch ingest` process."""
    if fresh:
        shutil.rmtree(index, ignore_errors=True)
    # VmHWM is the peak of this process image; ru_maxrss would carry over the parent's
    # peak through fork + exec (this benchmark's own process can be large).
    script = (
        "import sys\n"
        "from vsearch.cli import app\n"
        "try:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
        "peak = next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:'))\n"
        "print('PEAK_KB', peak, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", script, "ingest", *files, "--index", str(index), "--quiet"],
                          cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 2):
        sys.exit(f"ingest failed: {proc.stderr[-500:]}")
    peak = next(int(l.split()[1]) for l in proc.stderr.splitlines() if l.startswith("PEAK_KB")) / 1024
    return wall, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=SHARED if SHARED.is_dir() else None)
    parser.add_argument("--hd-seconds", type=float, default=60)
    parser.add_argument("--uhd-seconds", type=float, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "vsearch-bench")
    parser.add_argument("--long-minutes", type=float, default=30,
                        help="also measure ingest memory for a 1080p file this long (0: skip)")
    parser.add_argument("--library-hours", type=float, default=0,
                        help="also measure ingest memory into a library of this many hours (0: skip)")
    args = parser.parse_args()
    from vsearch.config import IndexConfig

    config = IndexConfig()
    args.workdir.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[str]] = {}
    if args.videos is not None:
        groups["shared"] = sorted(str(p) for p in args.videos.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    print("generating inputs (cached in", args.workdir, ")", flush=True)
    groups["1080p"] = [str(generate(args.workdir / f"hd_{args.hd_seconds:g}s.mp4", "1920x1080", args.hd_seconds))]
    groups["1080p web"] = [str(generate(args.workdir / f"hdweb_{args.hd_seconds:g}s.mp4", "1920x1080",
                                        args.hd_seconds, noise=2))]
    groups["1080p x2 length"] = [str(generate(args.workdir / f"hd_{2 * args.hd_seconds:g}s.mp4", "1920x1080", 2 * args.hd_seconds))]
    groups["4K"] = [str(generate(args.workdir / f"uhd_{args.uhd_seconds:g}s.mp4", "3840x2160", args.uhd_seconds))]

    print(f"\nworking size {config.width}x{config.height}, {args.threads} threads, analysis {config.analysis_fps:g} fps\n")
    header = f"{'input':<16}{'video s':>9}{'Mbit/s':>8}{'(a) ffmpeg':>12}{'(b) decord':>12}{'(c) ingest':>12}{'c/a':>7}{'c/b':>7}{'peak RSS':>10}"
    print(header + "\n" + "-" * len(header), flush=True)
    for name, files in groups.items():
        seconds = sum(probe_duration(f) for f in files)
        a = ffmpeg_null(files, config.width, config.height, args.threads)
        b = decord_only(files, config.width, config.height, config.analysis_fps)
        c, peak = full_ingest(files, args.workdir / "index")
        print(f"{name:<16}{seconds:>9.0f}{mbit_per_s(files, seconds):>8.1f}{seconds / a:>11.1f}x{seconds / b:>11.1f}x{seconds / c:>11.1f}x"
              f"{a / c:>7.2f}{b / c:>7.2f}{peak:>8.0f} MiB", flush=True)
    print("\nrates are video-seconds per wall-second; c/a = ingest speed / ffmpeg decode speed")
    if args.long_minutes:
        long_file_memory(groups["1080p"][0], args.long_minutes, args.hd_seconds, args.workdir)
    if args.library_hours:
        library_memory(groups["1080p web"], args.library_hours, args.workdir)


def long_file_memory(short: str, minutes: float, short_seconds: float, workdir: Path) -> None:
    """Peak RSS of ingesting a long 1080p file, made by looping a short one (stream copy)."""
    loops = max(1, round(minutes * 60 / short_seconds))
    long = workdir / f"hd_{short_seconds:g}s_x{loops}.mp4"
    if not long.exists():
        run_ffmpeg(["-stream_loop", str(loops - 1), "-i", short, "-c", "copy", str(long)])
    seconds = probe_duration(str(long))
    wall, peak = full_ingest([str(long)], workdir / "index")
    print(f"\ningest of a {seconds / 60:.0f}-minute 1080p file ({mbit_per_s([str(long)], seconds):.1f} Mbit/s): "
          f"{seconds / wall:.1f}x real time, peak RSS {peak:.0f} MiB", flush=True)


def library_memory(files: list[str], hours: float, workdir: Path) -> None:
    """Peak RSS of the same ingest into an empty index and into a library of ``hours``."""
    from tools.synth import make_library_index, make_video
    from vsearch import VideoIndex

    library = workdir / f"library_{hours:g}h"
    if not (library / "vectors.faiss").exists():
        shutil.rmtree(library, ignore_errors=True)
        print(f"\nbuilding a {hours:g} h library (cached in {library})", flush=True)
        make_library_index(library, hours, make_video(workdir / "library_seed.mp4", seconds=30, seed=4242, size=(1280, 720)))
    with VideoIndex.open(library, device="cpu") as index:
        before = index.stats()
    work = workdir / "library_copy"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(library, work)
    _, empty_peak = full_ingest(files, workdir / "index")
    _, library_peak = full_ingest(files, work, fresh=False)
    shutil.rmtree(work, ignore_errors=True)
    vector_mib = os.path.getsize(library / "vectors.faiss") / 2**20
    print(f"\ningest of {Path(files[0]).name} into an empty index: peak RSS {empty_peak:.0f} MiB; into {hours:g} h "
          f"({before.vectors} vectors, {before.index_type}, vector file {vector_mib:.0f} MiB): {library_peak:.0f} MiB; "
          f"growth {library_peak - empty_peak:.0f} MiB = {(library_peak - empty_peak) / vector_mib:.2f} x the vector file")


if __name__ == "__main__":
    main()

"""Ingest throughput against the decode limit, and peak memory, side by side in one run.

    python -m tools.bench_ingest [--videos DIR] [--hd-seconds 60] [--uhd-seconds 20]
                                 [--long-minutes 10 120] [--library-hours H] [--workdir DIR]

For each input group (the shared real videos; generated 1080p30 H.264 files with
heavy grain, ~11 Mbit/s, and with light, web-like grain, ~5 Mbit/s; a 4K30 file; and
a 10-minute 1080p web file) it measures, one after the other on the same machine:

  (a) ffmpeg decoding to null, scaled to the working size and grey by its own scaler,
      with the same thread count: the decode limit;
  (b) vsearch's decoder alone (frames at the analysis rate, as ingest reads them);
  (c) the whole ``vsearch ingest`` process (start-up, hashing, decoding, descriptors,
      LMDB, FAISS; per-file costs included).

It prints each input's bitrate, video-seconds per wall-second for each, the ratios
c/a and c/b, and the peak memory of each ingest: the resident memory of the ingest
process and its decoder process together, sampled every 50 ms.

``--long-minutes`` (default 10 120) ingests 1080p web files that long (the 60 s file
looped by stream copy: no encoding) and prints each one's speed and peak memory, and
how much the peak grows from the shortest to the longest: memory must not follow
the file's length.

``--library-hours H`` also ingests the 1080p web file into a library of H hours (one
real video plus synthetic ones, see ``tools.support.synth.make_library_index``) and prints the
peak memory next to the empty-index ingest and the size of the library's vector file:
a writer holds the vector index in memory, and should hold little else.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tools.support import ffmpeg_exe, probe_duration, run_ffmpeg

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


def looped(short: Path, minutes: float, short_seconds: float) -> Path:
    """``short`` repeated to about ``minutes`` long, by stream copy (cached)."""
    loops = max(1, round(minutes * 60 / short_seconds))
    long = short.with_name(f"{short.stem}_x{loops}.mp4")
    if not long.exists():
        run_ffmpeg(["-stream_loop", str(loops - 1), "-i", str(short), "-c", "copy", str(long)])
    return long


def mbit_per_s(files: list[str], seconds: float) -> float:
    return sum(os.path.getsize(f) for f in files) * 8 / 1e6 / max(seconds, 1e-9)


def ffmpeg_null(files: list[str], width: int, height: int, threads: int) -> float:
    t0 = time.perf_counter()
    for f in files:
        subprocess.run([ffmpeg_exe(), "-v", "error", "-threads", str(threads), "-i", f, "-an",
                        "-vf", f"scale={width}:{height},format=gray", "-f", "null", "-"], check=True)
    return time.perf_counter() - t0


def decoder_only(files: list[str], width: int, height: int, fps: float, threads: int) -> float:
    from vsearch.decode import VideoSource

    t0 = time.perf_counter()
    for f in files:
        for _ in VideoSource(f, width=width, height=height, threads=threads).iter_frames(fps, integrate=True):
            pass
    return time.perf_counter() - t0


def _tree_rss_kib(pid: int) -> int:
    """Resident memory of a process and all its descendants (KiB)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                total += next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0)
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    stack += [int(c) for c in children.read().split()]
        except (OSError, ValueError):
            continue
    return total


def full_ingest(files: list[str], index: Path, *, fresh: bool = True) -> tuple[float, float]:
    """Wall seconds and peak memory (MiB, ingest + decoder process) of one `vsearch ingest`."""
    if fresh:
        shutil.rmtree(index, ignore_errors=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "vsearch", "ingest", *files, "--index", str(index), "--quiet"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss_kib(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    sampler.join()
    if proc.returncode not in (0, 2):
        sys.exit(f"ingest failed: {err[-500:]}")
    return wall, peak[0] / 1024


def _commit() -> str:
    proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return (proc.stdout.strip() or "unknown") + ("+changes" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=SHARED if SHARED.is_dir() else None)
    parser.add_argument("--hd-seconds", type=float, default=60)
    parser.add_argument("--uhd-seconds", type=float, default=20)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "vsearch-bench")
    parser.add_argument("--long-minutes", type=float, nargs="*", default=[10, 120],
                        help="also measure ingest memory of 1080p files this long (none: skip)")
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
    web = generate(args.workdir / f"hdweb_{args.hd_seconds:g}s.mp4", "1920x1080", args.hd_seconds, noise=2)
    groups["1080p"] = [str(generate(args.workdir / f"hd_{args.hd_seconds:g}s.mp4", "1920x1080", args.hd_seconds))]
    groups["1080p web"] = [str(web)]
    groups["4K"] = [str(generate(args.workdir / f"uhd_{args.uhd_seconds:g}s.mp4", "3840x2160", args.uhd_seconds))]
    groups["1080p web 10 min"] = [str(looped(web, 10, args.hd_seconds))]

    print(f"\ncommit {_commit()}: working size {config.width}x{config.height}, {args.threads} threads, "
          f"analysis {config.analysis_fps:g} fps, decoder {config.decoder}\n")
    header = (f"{'input':<18}{'video s':>8}{'Mbit/s':>7}{'(a) ffmpeg':>11}{'(b) decoder':>12}{'(c) ingest':>11}"
              f"{'c/a':>6}{'c/b':>6}{'peak memory':>13}")
    print(header + "\n" + "-" * len(header), flush=True)
    for name, files in groups.items():
        seconds = sum(probe_duration(f) for f in files)
        a = ffmpeg_null(files, config.width, config.height, args.threads)
        b = decoder_only(files, config.width, config.height, config.analysis_fps, args.threads)
        c, peak = full_ingest(files, args.workdir / "index")
        print(f"{name:<18}{seconds:>8.0f}{mbit_per_s(files, seconds):>7.1f}{seconds / a:>10.1f}x{seconds / b:>11.1f}x"
              f"{seconds / c:>10.1f}x{a / c:>6.2f}{b / c:>6.2f}{peak:>9.0f} MiB", flush=True)
    print("\nrates are video-seconds per wall-second; c/a = ingest speed / ffmpeg decode speed; memory is the\n"
          "ingest process and its decoder process together")
    if args.long_minutes:
        long_file_memory(web, sorted(args.long_minutes), args.hd_seconds, args.workdir)
    if args.library_hours:
        library_memory([str(web)], args.library_hours, args.workdir)


def long_file_memory(short: Path, minutes: list[float], short_seconds: float, workdir: Path) -> None:
    """Peak memory of ingesting 1080p files of several lengths (a short one looped)."""
    print()
    peaks = []
    for length in minutes:
        long = looped(short, length, short_seconds)
        seconds = probe_duration(str(long))
        wall, peak = full_ingest([str(long)], workdir / "index")
        peaks.append(peak)
        print(f"ingest of a {seconds / 60:.0f}-minute 1080p file ({os.path.getsize(long) / 1e9:.1f} GB, "
              f"{mbit_per_s([str(long)], seconds):.1f} Mbit/s): {seconds / wall:.1f}x real time, "
              f"peak memory {peak:.0f} MiB", flush=True)
    if len(peaks) > 1:
        print(f"peak memory, {minutes[-1]:g} min against {minutes[0]:g} min: {peaks[-1] / peaks[0]:.2f}x")


def library_memory(files: list[str], hours: float, workdir: Path) -> None:
    """Peak memory of the same ingest into an empty index and into a library of ``hours``."""
    from tools.support import make_library_index, make_video
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
    print(f"\ningest of {Path(files[0]).name} into an empty index: peak memory {empty_peak:.0f} MiB; into {hours:g} h "
          f"({before.vectors} vectors, {before.index_type}, vector file {vector_mib:.0f} MiB): {library_peak:.0f} MiB; "
          f"growth {library_peak - empty_peak:.0f} MiB = {(library_peak - empty_peak) / vector_mib:.2f} x the vector file")


if __name__ == "__main__":
    main()

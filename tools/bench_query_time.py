"""Query time of this tree against a baseline commit, side by side in one run.

    python -m tools.bench_query_time [--videos DIR] [--baseline REF] [--clips 8] [--seconds 10]
                                     [--repeat 3] [--index DIR]

Both engines query the same index (built here from ``--videos``, default
../shared/videos, unless ``--index`` names one) with the same clips: ``--clips``
clips of ``--seconds`` s per group, cut from random library videos (seed 7):

- ``copy``: re-encoded, otherwise unedited (the plain reading finds them);
- ``mild``: CRF 28 at half size, brightness, gamma, crop 10 %, 24 fps;
- ``hard``: the hard edits of ``tools.support.ffmpeg`` in turn (flip, speed, rotation,
  picture-in-picture, logo, crop ...), which search the edited readings too.

The baseline is checked out (``git worktree``) at ``--baseline`` (default: HEAD, the
last commit) and run with its own code. For each group and engine, one ``vsearch
query`` process answers all clips of the group; engines alternate, each group is
timed ``--repeat`` times and the median kept. Prints seconds per clip (process start
included, spread over the group's clips) and current / baseline for each group.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.support import HARD, apply_transform, probe_duration

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "videos"
VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".mpg", ".mpeg", ".m4v"}
GROUPS = {
    "copy": ["crf23"],
    "mild": ["crf28_half", "bright", "gamma", "crop10", "fps24"],
    "hard": [t for t in HARD if not t.startswith("pip")] + ["pip_video", "pip_flat"],
}


def _query_seconds(engine: Path, index: Path, clips: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "vsearch", "query", *clips, "--index", str(index), "--json"],
                          cwd=engine, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode not in (0, 2):
        sys.exit(f"{engine}: vsearch query failed: {(proc.stderr.strip().splitlines() or ['-'])[-1]}")
    return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=SHARED if SHARED.is_dir() else None)
    parser.add_argument("--baseline", default="HEAD", help="git commit to compare with [HEAD]")
    parser.add_argument("--clips", type=int, default=8, help="clips per group")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--index", type=Path, default=None, help="an existing index (else built from --videos)")
    args = parser.parse_args(argv)
    if args.videos is None and args.index is None:
        parser.error("no --videos given and ../shared/videos does not exist")
    work = Path(tempfile.mkdtemp(prefix="vsearch-bench-qt-"))
    baseline = work / "baseline"
    try:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(baseline), args.baseline],
                       check=True, capture_output=True)
        commit = subprocess.run(["git", "-C", str(baseline), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        videos = sorted(str(p) for p in args.videos.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES) if args.videos else []
        index = args.index or work / "index"
        if args.index is None:
            subprocess.run([sys.executable, "-m", "vsearch", "ingest", *videos, "--index", str(index), "--quiet"],
                           cwd=ROOT, check=True)
        if not videos:
            sys.exit("--index needs --videos too (the clips are cut from them)")
        rng = random.Random(7)
        long_enough = [v for v in videos if probe_duration(v) >= args.seconds * 1.3 + 0.5]
        if not long_enough:
            sys.exit(f"no video is longer than {args.seconds * 1.3 + 0.5:g} s")
        clips: dict[str, list[str]] = {}
        for group, edits in GROUPS.items():
            clips[group] = []
            for i in range(args.clips):
                src = rng.choice(long_enough)
                edit = edits[i % len(edits)]
                span = args.seconds * 1.3
                start = round(rng.uniform(0.0, probe_duration(src) - span - 0.2), 3)
                out = work / f"{group}{i}_{edit}.mp4"
                apply_transform(edit, src, out, start=start, duration=args.seconds, background=videos[0],
                                seed=rng.randrange(1 << 30))
                clips[group].append(str(out))
        print(f"{len(videos)} videos indexed; {args.clips} clips of {args.seconds:g} s per group; "
              f"baseline {args.baseline} ({commit}) vs this tree; median of {args.repeat}")
        print(f"{'group':<8}{'baseline s/clip':>17}{'current s/clip':>16}{'current/baseline':>18}")
        for group, paths in clips.items():
            times: dict[str, list[float]] = {"baseline": [], "current": []}
            for _ in range(args.repeat):
                for name, engine in (("baseline", baseline), ("current", ROOT)):
                    times[name].append(_query_seconds(engine, index, paths) / len(paths))
            base, cur = statistics.median(times["baseline"]), statistics.median(times["current"])
            print(f"{group:<8}{base:>17.3f}{cur:>16.3f}{cur / base:>17.2f}x", flush=True)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(baseline)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""What a query costs against what ingesting the same clip costs, per second of clip:
this tree beside a baseline commit, side by side in one run.

    python -m tools.bench_query_time [--videos DIR] [--baseline REF] [--clips 8] [--seconds 5 10]
                                     [--holdout 4] [--repeat 3] [--groups never mild hard]

A monitoring service queries every upload, and almost none is in its library: a
query should cost about what ingesting the same seconds costs (issue #25).

The library: the videos of ``--videos`` (default ../shared/videos) but ``--holdout``
drawn (seed 7) from those long enough, which are never indexed. ``--clips`` clips per
group, each 5-10 s long (``--seconds MIN MAX``), drawn from a seed per group:

- ``never``: cut from the held-out videos, re-encoded at CRF 23 (no hit is right);
- ``copy``: cut from indexed videos, re-encoded, otherwise unedited (only when asked);
- ``mild``: CRF 28 at half size, brightness, gamma, crop 10 %, 24 fps;
- ``hard``: the hard edits of ``tools.support.ffmpeg`` in turn (flip, speed, rotation,
  picture-in-picture over a held-out video or a flat colour, logo, crop ...), which
  search the edited readings too.

Engines: this tree and ``--baseline`` (default HEAD, the last commit), checked out
with ``git worktree`` and run with its own code. Each builds its own library index
(its own ``vsearch ingest``, in its own folder: an index of one engine may not open
with another). Then, per group, engines alternating, ``--repeat`` times (medians kept):

- ingest: one ``vsearch ingest`` process ingests the group's clip files themselves
  into a fresh scratch index, with the library's settings (the defaults);
- query: one ``vsearch query --json`` process queries the same clip files against
  the engine's library.

So both sides pay one process start and one index open per group, spread over the
same clips and the same seconds of clip. Prints, per group and engine: clips, seconds
of clip (the clip files' own lengths), clips answered right (edits: their source
video first; never-indexed: no hit), ingest and query wall seconds per second of clip,
query / ingest, and the same ratio in CPU seconds (each process with the decoder
processes it ran: on a shared machine wall time counts the neighbours too); then
current / baseline query time, each engine's query time over its library's own
ingest time per second (one process for every library video, its files read once
before: start-up weighs nothing there; one run), and issue #25's targets.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tools.support import HARD, apply_transform, probe_duration
from tools.support.engines import Engine, Timed, baseline_engine, current_engine
from vsearch.decode import iter_video_files

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "videos"
#: The edits of each group's clips, in turn.
GROUPS = {
    "never": ["crf23"],
    "copy": ["crf23"],
    "mild": ["crf28_half", "bright", "gamma", "crop10", "fps24"],
    "hard": [t for t in HARD if not t.startswith("pip")] + ["pip_video", "pip_flat"],
}
#: Query / ingest time per second of clip, at most (issue #25).
TARGETS = {"never": 3.0, "mild": 2.0}
#: The longest clip covers this much more source (speed edits up to 1.25x), plus a margin.
_SOURCE_SPAN = 1.3


@dataclass(frozen=True)
class Clip:
    path: Path
    source: Path | None  # the indexed video it was cut from; None: never indexed
    seconds: float


@dataclass
class Costs:
    """One engine's measurements of one group, a value per repeat."""

    ingest_wall: list[float]
    query_wall: list[float]
    ingest_cpu: list[float]
    query_cpu: list[float]
    right: int = 0


def _cut(group: str, sources: list[Path], count: int, lengths: tuple[float, float], background: Path,
         work: Path) -> list[Clip]:
    """A group's clips, drawn from a seed of the group's own (the same whichever groups run)."""
    edits, clips, rng = GROUPS[group], [], random.Random(f"7-{group}")
    for number in range(count):
        source = rng.choice(sources)
        edit = edits[number % len(edits)]
        seconds = round(rng.uniform(*lengths), 2)
        start = round(rng.uniform(0.0, probe_duration(source) - seconds * _SOURCE_SPAN - 0.2), 3)
        path = work / f"{group}{number}_{edit}.mp4"
        apply_transform(edit, source, path, start=start, duration=seconds, background=background,
                        seed=rng.randrange(1 << 30))
        clips.append(Clip(path, None if group == "never" else source, probe_duration(path)))
    return clips


def _answered_right(stdout: str, clips: list[Clip]) -> int:
    """Clips answered right: an edit's source video first, a never-indexed clip without hits."""
    by_name = {str(clip.path): clip for clip in clips}
    right = 0
    for line in stdout.splitlines():
        record = json.loads(line)
        clip, hits = by_name[record["query"]], record.get("hits") or []
        if clip.source is None:
            right += not hits
        else:
            right += bool(hits) and Path(hits[0]["video"]).resolve() == clip.source.resolve()
    return right


def _measure(engine: Engine, library: Path, clips: list[Clip], scratch: Path, costs: Costs) -> None:
    files = [str(clip.path) for clip in clips]
    shutil.rmtree(scratch, ignore_errors=True)
    ingest = engine.must_run("ingest", *files, "--index", str(scratch), "--quiet")
    shutil.rmtree(scratch)
    query = engine.must_run("query", *files, "--index", str(library), "--json")
    costs.ingest_wall.append(ingest.wall)
    costs.ingest_cpu.append(ingest.cpu)
    costs.query_wall.append(query.wall)
    costs.query_cpu.append(query.cpu)
    costs.right = _answered_right(query.stdout, clips)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=SHARED if SHARED.is_dir() else None)
    parser.add_argument("--baseline", default="HEAD", help="git commit to compare with [HEAD]")
    parser.add_argument("--clips", type=int, default=8, help="clips per group [8]")
    parser.add_argument("--seconds", type=float, nargs=2, default=[5.0, 10.0], metavar=("MIN", "MAX"),
                        help="clip lengths, drawn per clip [5 10]")
    parser.add_argument("--holdout", type=int, default=4, help="videos never indexed [4]")
    parser.add_argument("--repeat", type=int, default=3, help="runs per group and engine; medians kept [3]")
    parser.add_argument("--groups", nargs="+", choices=list(GROUPS), default=["never", "mild", "hard"])
    args = parser.parse_args(argv)
    if args.videos is None or not args.videos.is_dir():
        parser.error(f"{args.videos or '../shared/videos'}: no such folder (--videos)")
    shortest, longest = sorted(args.seconds)
    if shortest < 1 or args.clips < 1 or args.holdout < 1 or args.repeat < 1:
        parser.error("--seconds from 1, --clips, --holdout and --repeat from 1")
    if args.clips > 50 or longest > 60 or args.repeat > 10:
        parser.error("bounded on purpose: at most 50 clips per group of at most 60 s, 10 repeats")

    videos = [Path(v) for v in iter_video_files([args.videos])]
    long_enough = [v for v in videos if probe_duration(v) >= longest * _SOURCE_SPAN + 0.5]
    if len(long_enough) < args.holdout + 1:
        sys.exit(f"{args.videos}: {args.holdout + 1} videos of {longest * _SOURCE_SPAN + 0.5:g} s or more needed, "
                 f"found {len(long_enough)}")
    held_out = sorted(random.Random(7).sample(long_enough, args.holdout))
    library_videos = [v for v in videos if v not in held_out]
    work = Path(tempfile.mkdtemp(prefix="vsearch-bench-qt-"))
    try:
        clips = {group: _cut(group, held_out if group == "never" else [v for v in long_enough if v not in held_out],
                             args.clips, (shortest, longest), held_out[0], work)
                 for group in args.groups}
        with baseline_engine(args.baseline) as baseline:
            engines = [baseline, current_engine()]
            footage = sum(probe_duration(v) for v in library_videos)
            print(f"library: {len(library_videos)} of {len(videos)} videos of {args.videos} ({footage:.0f} s), "
                  f"{len(held_out)} held out, never indexed ({', '.join(v.name for v in held_out)}); "
                  f"{args.clips} clips of {shortest:g}-{longest:g} s per group")
            for video in library_videos:  # the first build must not be the one that reads them from disk
                video.read_bytes()
            libraries, bulk = {}, {}
            for engine in engines:
                libraries[engine.name] = work / f"library-{engine.name}"
                bulk[engine.name] = built = engine.must_run("ingest", *map(str, library_videos), "--index",
                                                       str(libraries[engine.name]), "--quiet")
                print(f"  {engine.name} ({engine.label}): library built in {built.wall:.1f} s "
                      f"({footage / built.wall:.0f}x real time; {built.wall / footage:.4f} s, "
                      f"cpu {built.cpu / footage:.4f} s per second)", flush=True)
            print("per group and engine: one `vsearch ingest` process (the clip files into a fresh scratch index, "
                  "default settings) and one `vsearch query --json` process (the same clips against the library): "
                  "process start-up and index open are spread over the group's clips alike on both sides; "
                  f"engines alternate; median of {args.repeat}")
            costs = {(group, engine.name): Costs([], [], [], []) for group in clips for engine in engines}
            for _ in range(args.repeat):
                for group, group_clips in clips.items():
                    for engine in engines:
                        _measure(engine, libraries[engine.name], group_clips, work / "scratch",
                                 costs[group, engine.name])
            _print_table(clips, engines, costs, bulk, footage)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _print_table(clips: dict[str, list[Clip]], engines: list[Engine], costs: dict[tuple[str, str], Costs],
                 bulk: dict[str, Timed], footage: float) -> None:
    """The table; then current / baseline, the query time against the library's own
    ingest rate (start-up negligible there: issue #25's first comparison), the targets."""
    print(f"{'group':<7}{'engine':<10}{'clips':>6}{'clip s':>8}{'right':>7}{'ingest s/s':>12}{'query s/s':>11}"
          f"{'query/ingest':>14}{'cpu query/ingest':>18}")
    query_wall: dict[tuple[str, str], float] = {}
    query_cpu: dict[tuple[str, str], float] = {}
    for group, group_clips in clips.items():
        seconds = sum(clip.seconds for clip in group_clips)
        for engine in engines:
            cost, key = costs[group, engine.name], (group, engine.name)
            ingest = statistics.median(cost.ingest_wall) / seconds
            query_wall[key] = statistics.median(cost.query_wall) / seconds
            query_cpu[key] = statistics.median(cost.query_cpu) / seconds
            cpu_ratio = query_cpu[key] / (statistics.median(cost.ingest_cpu) / seconds)
            print(f"{group:<7}{engine.name:<10}{len(group_clips):>6}{seconds:>8.1f}"
                  f"{f'{cost.right}/{len(group_clips)}':>7}{ingest:>12.4f}{query_wall[key]:>11.4f}"
                  f"{query_wall[key] / ingest:>13.2f}x{cpu_ratio:>17.2f}x", flush=True)
    print("current / baseline query time: " + ", ".join(
        f"{group} {query_wall[group, 'current'] / query_wall[group, 'baseline']:.2f}x "
        f"(cpu {query_cpu[group, 'current'] / query_cpu[group, 'baseline']:.2f}x)" for group in clips))
    for engine in engines:
        wall, cpu = bulk[engine.name].wall / footage, bulk[engine.name].cpu / footage
        print(f"{engine.name} query s/s over its library's ingest s/s (one run): " + ", ".join(
            f"{group} {query_wall[group, engine.name] / wall:.1f}x (cpu {query_cpu[group, engine.name] / cpu:.1f}x)"
            for group in clips))
    print("targets (issue #25), query / ingest per second of clip: "
          + ", ".join(f"{group} <= {limit:g}x" for group, limit in TARGETS.items()))


if __name__ == "__main__":
    main()

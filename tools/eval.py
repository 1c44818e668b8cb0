"""Evaluate vsearch on real footage through its command line.

    python -m tools.eval [--videos DIR] [--queries 100] [--seed 1] [--clip-seconds 5]
                         [--transform crf28_half] [--features v1|seed] [--holdout 4]
                         [--index DIR] [--json OUT] [--workdir DIR]

It indexes the videos (all but ``--holdout`` of them, which give never-indexed
negative clips), cuts seeded random clips at start times that are not aligned to
block boundaries, edits them with ffmpeg (``--transform``, see
``tools/ffmpeg_tools.TRANSFORMS``; several may be given), runs one ``vsearch query``
process over all clips and reports:

- top-1: the first hit is the right video and its start is within ``--tolerance``
  (0.5 s) of the truth; top-5: any of the first five hits is;
- median and p95 start error of correct top-1 hits;
- false alarms: share of never-indexed clips that return any hit;
- queries per second of the query process (decoding included).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tools.ffmpeg_tools import TRANSFORMS, cut_clip, probe_duration, probe_video_delay, transform_args

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "videos"
VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".mpg", ".mpeg", ".m4v"}


def _vsearch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vsearch", *args], capture_output=True, text=True, cwd=ROOT)


def _random_start(rng: random.Random, duration: float, clip_seconds: float, block: float = 0.5) -> float:
    while True:
        start = rng.uniform(0.0, duration - clip_seconds - 0.1)
        phase = start % block
        if 0.05 < phase < block - 0.05:  # never aligned to the library's block grid
            return round(start, 3)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=SHARED if SHARED.is_dir() else None)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clip-seconds", type=float, default=5.0)
    parser.add_argument("--transform", action="append", choices=sorted(TRANSFORMS),
                        help="edit applied to every clip (repeat to cycle through several) [crf28_half]")
    parser.add_argument("--features", default=None, help="feature kind of a new index (v1 or seed)")
    parser.add_argument("--holdout", type=int, default=4, help="videos kept out of the index as negatives")
    parser.add_argument("--negatives", type=int, default=None, help="negative clips [max(20, queries/5)]")
    parser.add_argument("--tolerance", type=float, default=0.5)
    parser.add_argument("--min-score", type=float, default=None)
    parser.add_argument("--no-mirrored", action="store_true", help="pass --no-mirrored to vsearch query")
    parser.add_argument("--index", type=Path, default=None, help="index folder (reused if it exists)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write summary and per-query records here")
    args = parser.parse_args(argv)
    if args.videos is None:
        parser.error("no --videos given and ../shared/videos does not exist")
    transforms = args.transform or ["crf28_half"]
    rng = random.Random(args.seed)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="vsearch-eval-"))
    work.mkdir(parents=True, exist_ok=True)

    videos = sorted(str(p.resolve()) for p in args.videos.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    durations = {v: probe_duration(v) for v in videos}
    delays = {v: probe_video_delay(v) for v in videos}
    held_out = set(rng.sample(videos, min(args.holdout, len(videos) - 1))) if args.holdout else set()
    library = [v for v in videos if v not in held_out]

    index = args.index or work / "index"
    ingest_s = 0.0
    if not (index / "meta.lmdb").exists():
        extra = ["--features", args.features] if args.features else []
        t0 = time.perf_counter()
        proc = _vsearch("ingest", *library, "--index", str(index), "--quiet", *extra)
        ingest_s = time.perf_counter() - t0
        if proc.returncode not in (0, 2):
            sys.exit(f"ingest failed: {proc.stderr.strip()}")
        print(proc.stdout.strip() or proc.stderr.strip(), flush=True)

    jobs = []
    eligible = [v for v in library if durations[v] >= args.clip_seconds + 0.3]
    for i in range(args.queries):
        src = rng.choice(eligible)
        jobs.append(dict(kind="positive", source=src, start=_random_start(rng, durations[src], args.clip_seconds),
                         transform=transforms[i % len(transforms)]))
    negatives = [v for v in held_out if durations[v] >= args.clip_seconds + 0.3]
    for i in range(args.negatives if args.negatives is not None else max(20, args.queries // 5) if negatives else 0):
        src = rng.choice(negatives)
        jobs.append(dict(kind="negative", source=src, start=_random_start(rng, durations[src], args.clip_seconds),
                         transform=transforms[i % len(transforms)]))
    for i, job in enumerate(jobs):
        job["clip"] = str(work / f"{job['kind'][0]}{i:04d}_{job['transform']}.mp4")

    def cut(job: dict) -> None:
        if not os.path.exists(job["clip"]):
            cut_clip(job["source"], job["clip"], start=job["start"], duration=args.clip_seconds,
                     **transform_args(job["transform"]))

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(cut, jobs))
    cut_s = time.perf_counter() - t0

    query_args = ["query", *[j["clip"] for j in jobs], "--index", str(index), "--json", "-k", "5"]
    if args.min_score is not None:
        query_args += ["--min-score", str(args.min_score)]
    if args.no_mirrored:
        query_args.append("--no-mirrored")
    t0 = time.perf_counter()
    proc = _vsearch(*query_args)
    query_s = time.perf_counter() - t0
    answers = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            answer = json.loads(line)
            answers[answer["query"]] = answer["hits"]

    for job in jobs:
        hits = answers.get(job["clip"], [])
        job["hits"] = hits[:5]
        if job["kind"] == "negative":
            job["false_alarm"] = bool(hits)
            continue
        # Ground truth on vsearch's timeline (seconds from the first video frame).
        job["true_start"] = max(job["start"] - delays[job["source"]], 0.0)
        good = [abs(h["start"] - job["true_start"]) <= args.tolerance and h["video"] == job["source"] for h in hits]
        job["top1"] = bool(good and good[0])
        job["top5"] = any(good[:5])
        job["start_error"] = abs(hits[0]["start"] - job["true_start"]) if job["top1"] else None

    summary = _summarise(jobs, args, transforms, ingest_s, cut_s, query_s, len(library), len(held_out))
    _print(summary, jobs)
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "queries": jobs}, indent=1))
    return summary


def _summarise(jobs, args, transforms, ingest_s, cut_s, query_s, n_library, n_held) -> dict:
    def stats(rows: list[dict]) -> dict:
        errors = [r["start_error"] for r in rows if r.get("start_error") is not None]
        return {
            "queries": len(rows),
            "top1": float(np.mean([r["top1"] for r in rows])) if rows else None,
            "top5": float(np.mean([r["top5"] for r in rows])) if rows else None,
            "no_hit": float(np.mean([not r["hits"] for r in rows])) if rows else None,
            "median_start_error_s": float(np.median(errors)) if errors else None,
            "p95_start_error_s": float(np.percentile(errors, 95)) if errors else None,
        }

    positives = [j for j in jobs if j["kind"] == "positive"]
    negatives = [j for j in jobs if j["kind"] == "negative"]
    return {
        "videos_indexed": n_library,
        "videos_held_out": n_held,
        "clip_seconds": args.clip_seconds,
        "features": args.features or "index default",
        "overall": stats(positives),
        "per_transform": {t: stats([j for j in positives if j["transform"] == t]) for t in transforms},
        "negatives": len(negatives),
        "false_alarm_rate": float(np.mean([j["false_alarm"] for j in negatives])) if negatives else None,
        "ingest_s": round(ingest_s, 2),
        "cut_s": round(cut_s, 2),
        "query_s": round(query_s, 2),
        "queries_per_s": round(len(jobs) / query_s, 2) if query_s else None,
    }


def _print(summary: dict, jobs: list[dict]) -> None:
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    print(f"\n{'transform':<16}{'n':>5}{'top1':>8}{'top5':>8}{'no hit':>8}{'med err':>9}{'p95 err':>9}")
    rows = list(summary["per_transform"].items())
    if len(rows) > 1:
        rows.append(("ALL", summary["overall"]))
    for name, s in rows:
        print(f"{name:<16}{s['queries']:>5}{fmt(s['top1']):>8}{fmt(s['top5']):>8}{fmt(s['no_hit']):>8}"
              f"{fmt(s['median_start_error_s']):>9}{fmt(s['p95_start_error_s']):>9}")
    print(f"false alarms on {summary['negatives']} never-indexed clips: {fmt(summary['false_alarm_rate'])}")
    print(f"ingest {summary['ingest_s']} s, query {summary['query_s']} s ({summary['queries_per_s']} clips/s)")
    failures = [j for j in jobs if j["kind"] == "positive" and not j["top1"]]
    for job in failures[:10]:
        top = job["hits"][0] if job["hits"] else None
        got = f"{Path(top['video']).name} @ {top['start']:.2f} (score {top['score']:.2f})" if top else "no hit"
        print(f"  miss: {Path(job['source']).name} @ {job['start']:.2f} [{job['transform']}] -> {got}")


if __name__ == "__main__":
    main()

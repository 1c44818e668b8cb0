"""Evaluate vsearch on real footage through its command line.

    python -m tools.eval [--videos DIR] [--queries 300] [--seed 1] [--clip-seconds 2-20]
                         [--transform NAME|mild|hard|all ...] [--features v1|seed]
                         [--holdout 4] [--index DIR] [--json OUT] [--workdir DIR] [--keep] [--dry-run]

It indexes the videos (all but ``--holdout`` of them, which give never-indexed
negative clips), cuts seeded random clips (lengths uniform in ``--clip-seconds``,
start times never aligned to block boundaries), edits each with one transformation
of the ladder in ``tools/ffmpeg_tools.TRANSFORMS`` (re-encodes, scaling, frame rate,
colour, grey, crop, bars, blur, noise, logo, flip, speed, picture-in-picture and
combinations), runs one ``vsearch query`` process over all clips and reports per
transformation, per group (mild / hard / 2-second clips) and overall:

- recall@1 / recall@5: the right video with its start within ``--tolerance`` (0.5 s);
- median and p95 start error (correct top-1 hits);
- segment IoU of the top-1 hit with the true library segment;
- VCSL-style segment precision / recall / F1 per (clip, video) pair on the query axis
  and on the reference axis (0 when the top hit is another video);
- false alarms: share of never-indexed clips returning any hit;
- queries per second of the query process (decoding included).

Hard cases are reported separately by file-name pattern (``--case NAME=GLOB,GLOB``;
defaults fit ../shared/videos: look-alike talking heads and near-static cameras), and
misses per source video (the worst few are printed).

The engine is used only through its command line (``python -m vsearch ingest`` and
``query --json``), so the harness measures what a user gets. ``--dry-run`` cuts the
clips and prints the plan without touching the engine. A temporary work folder
(clips, and the index unless ``--index`` is given) is deleted at the end unless
``--keep``, ``--dry-run`` or ``--workdir`` is given.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tools.ffmpeg_tools import HARD, MILD, TRANSFORMS, apply_transform, probe_duration
from tools.synth import make_video

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "videos"
VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".mpg", ".mpeg", ".m4v"}
DEFAULT_CASES = ["talking_heads=liveportrait_d*,sadtalker_*", "near_static=intel_*,liveportrait_s18*,sam2_02_cups*"]


def _vsearch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vsearch", *args], capture_output=True, text=True, cwd=ROOT)


def indexed_paths(index: Path) -> set[str] | None:
    """Resolved paths of the videos an existing index holds (``vsearch list --json``), or None."""
    proc = _vsearch("list", "--index", str(index), "--json")
    try:
        return {os.path.realpath(row["path"]) for row in json.loads(proc.stdout)}
    except (json.JSONDecodeError, TypeError, KeyError):
        return None


def parse_query_output(stdout: str) -> dict[str, dict]:
    """Answers of ``vsearch query --json`` by query path; lines that are not JSON objects are skipped.

    Hit paths are resolved (symlinks, ``..``) so they compare equal to the resolved
    source paths the clips were cut from.
    """
    answers = {}
    for line in stdout.splitlines():
        try:
            answer = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(answer, dict) and "query" in answer:
            for hit in answer.get("hits", []):
                hit["video"] = os.path.realpath(hit["video"])
            answers[answer["query"]] = answer
    return answers


def _random_start(rng: random.Random, duration: float, span: float, block: float = 0.5) -> float:
    while True:
        start = rng.uniform(0.0, max(duration - span - 0.1, 0.0))
        if 0.05 < start % block < block - 0.05:  # never aligned to the library's block grid
            return round(start, 3)


def _expand_transforms(names: list[str]) -> list[str]:
    out = []
    for name in names:
        out += {"mild": MILD, "hard": HARD, "all": MILD + HARD}.get(name, [name])
    unknown = [n for n in out if n not in TRANSFORMS]
    if unknown:
        sys.exit(f"unknown transforms: {unknown}; choose from mild, hard, all, {', '.join(TRANSFORMS)}")
    return out


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def score_positive(job: dict, tolerance: float) -> None:
    """Fill recall, error, IoU and VCSL-style P/R/F1 of one positive query."""
    hits = job["hits"]
    good = [h["video"] == job["source"] and abs(h["start"] - job["true_start"]) <= tolerance for h in hits]
    job["top1"], job["top5"] = bool(good and good[0]), any(good[:5])
    job["start_error"] = abs(hits[0]["start"] - job["true_start"]) if job["top1"] else None
    top = hits[0] if hits and hits[0]["video"] == job["source"] else None
    ref = (job["true_start"], job["true_end"])
    qry = (0.0, job["clip_duration"])
    if top is None:
        job.update(iou=0.0, q_p=0.0, q_r=0.0, r_p=0.0, r_r=0.0)
        return
    pred_r, pred_q = (top["start"], top["end"]), (top["query_start"], top["query_end"])
    inter = _overlap(*pred_r, *ref)
    union = max(pred_r[1], ref[1]) - min(pred_r[0], ref[0])
    job["iou"] = inter / union if union > 0 else 0.0
    job["r_p"] = inter / max(pred_r[1] - pred_r[0], 1e-9)
    job["r_r"] = inter / max(ref[1] - ref[0], 1e-9)
    q_inter = _overlap(*pred_q, *qry)
    job["q_p"] = q_inter / max(pred_q[1] - pred_q[0], 1e-9)
    job["q_r"] = q_inter / max(qry[1] - qry[0], 1e-9)


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def per_video_misses(positives: list[dict]) -> list[dict]:
    """Positives and top-1 misses per source video, most misses first."""
    by_video: dict[str, list[dict]] = {}
    for job in positives:
        by_video.setdefault(job["source"], []).append(job)
    rows = [
        {"video": video, "queries": len(jobs), "misses": sum(not j["top1"] for j in jobs),
         "no_hit": sum(not j["hits"] for j in jobs)}
        for video, jobs in by_video.items()
    ]
    return sorted(rows, key=lambda r: (-r["misses"], -r["misses"] / r["queries"], r["video"]))


def summarise(rows: list[dict]) -> dict:
    if not rows:
        return {"queries": 0}
    errors = [r["start_error"] for r in rows if r.get("start_error") is not None]
    mean = lambda key: float(np.mean([r[key] for r in rows]))  # noqa: E731
    q_p, q_r, r_p, r_r = mean("q_p"), mean("q_r"), mean("r_p"), mean("r_r")
    return {
        "queries": len(rows),
        "recall@1": mean("top1"),
        "recall@5": mean("top5"),
        "no_hit": float(np.mean([not r["hits"] for r in rows])),
        "median_start_error_s": float(np.median(errors)) if errors else None,
        "p95_start_error_s": float(np.percentile(errors, 95)) if errors else None,
        "iou": mean("iou"),
        "query_axis": {"precision": q_p, "recall": q_r, "f1": _f1(q_p, q_r)},
        "reference_axis": {"precision": r_p, "recall": r_r, "f1": _f1(r_p, r_r)},
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=SHARED if SHARED.is_dir() else None)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clip-seconds", default="5", help="fixed length (5) or a range (2-20)")
    parser.add_argument("--short-share", type=float, default=0.0,
                        help="share of clips made exactly 2 s long (the 2-second group)")
    parser.add_argument("--transform", action="append",
                        help="a transform, or mild / hard / all (repeat; clips cycle through them) [crf28_half]")
    parser.add_argument("--features", default=None, help="feature kind of a new index (v1 or seed)")
    parser.add_argument("--ingest-args", default="", help="extra arguments for a new index, e.g. '--window 3'")
    parser.add_argument("--query-args", default="", help="extra arguments for vsearch query, e.g. '--speeds 1'")
    parser.add_argument("--holdout", type=int, default=4, help="videos kept out of the index as negatives")
    parser.add_argument("--negatives", type=int, default=None, help="negative clips [max(20, queries/5)]")
    parser.add_argument("--tolerance", type=float, default=0.5)
    parser.add_argument("--min-score", type=float, default=None)
    parser.add_argument("--no-mirrored", action="store_true", help="pass --no-mirrored to vsearch query")
    parser.add_argument("--case", action="append", help="NAME=GLOB[,GLOB] hard-case group by file name")
    parser.add_argument("--index", type=Path, default=None, help="index folder (reused if it exists)")
    parser.add_argument("--workdir", type=Path, default=None, help="clips (and a new index) go here; kept")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    parser.add_argument("--dry-run", action="store_true",
                        help="cut the clips and print the plan; skip ingest and query")
    parser.add_argument("--json", type=Path, default=None, help="write summary and per-query records here")
    args = parser.parse_args(argv)
    if args.videos is None:
        parser.error("no --videos given and ../shared/videos does not exist")
    transforms = _expand_transforms(args.transform or ["crf28_half"])
    lo, _, hi = args.clip_seconds.partition("-")
    length_range = (float(lo), float(hi or lo))
    rng = random.Random(args.seed)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="vsearch-eval-"))
    work.mkdir(parents=True, exist_ok=True)
    remove_work = args.workdir is None and not (args.keep or args.dry_run)
    try:
        return _evaluate(args, transforms, length_range, rng, work)
    finally:
        if remove_work:
            shutil.rmtree(work, ignore_errors=True)
        elif args.keep and args.workdir is None:
            print(f"work folder kept: {work}")


def _evaluate(args: argparse.Namespace, transforms: list[str], length_range: tuple[float, float],
              rng: random.Random, work: Path) -> dict:
    """Index, cut, query and score (see the module docstring); returns the summary."""
    t_start = time.perf_counter()

    videos = sorted(str(p.resolve()) for p in args.videos.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        sys.exit(f"{args.videos}: no video files ({', '.join(sorted(VIDEO_SUFFIXES))})")
    durations = {v: probe_duration(v) for v in videos}
    held_out = set(rng.sample(videos, min(args.holdout, len(videos) - 1))) if args.holdout else set()
    library = [v for v in videos if v not in held_out]
    index = args.index or work / "index"
    reuse_index = (index / "meta.lmdb").exists()
    if reuse_index:
        # A reused index was built by another run, perhaps with another seed or holdout:
        # what it really holds decides which clips are positives and which negatives.
        indexed = indexed_paths(index)
        if indexed is None:
            print(f"{index}: could not list the indexed videos; assuming the seeded holdout")
        else:
            library = [v for v in videos if v in indexed]
            held_out = set(videos) - indexed
            if not library:
                sys.exit(f"{index}: holds none of the videos in {args.videos}")
    background = work / "pip_background.mp4"  # never indexed
    if "pip" in transforms and not background.exists():
        make_video(background, seconds=30, seed=987654, size=(640, 360))

    def new_job(kind: str, pool: list[str], i: int) -> dict | None:
        length = 2.0 if rng.random() < args.short_share else round(rng.uniform(*length_range), 2)
        transform = transforms[i % len(transforms)]
        span = length * TRANSFORMS[transform].get("speed", 1.0)
        eligible = [v for v in pool if durations[v] >= span + 0.3]
        if not eligible:
            return None
        src = rng.choice(eligible)
        start = _random_start(rng, durations[src], span)
        return dict(kind=kind, source=src, start=start, length=length, span=span, transform=transform)

    jobs = [j for i in range(args.queries) if (j := new_job("positive", library, i))]
    n_neg = args.negatives if args.negatives is not None else max(20, args.queries // 5)
    jobs += [j for i in range(n_neg if held_out else 0) if (j := new_job("negative", sorted(held_out), i))]
    for i, job in enumerate(jobs):
        job["clip"] = str(work / f"{job['kind'][0]}{i:04d}_{job['transform']}_{job['length']:g}s.mp4")

    def cut(job: dict) -> None:
        if not os.path.exists(job["clip"]):
            apply_transform(job["transform"], job["source"], job["clip"], start=job["start"],
                            duration=job["length"], background=background)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(cut, jobs))
    cut_s = time.perf_counter() - t0
    if args.dry_run:
        return print_plan(jobs, library, held_out, work, cut_s)

    ingest_s = 0.0
    if not reuse_index:
        extra = (["--features", args.features] if args.features else []) + args.ingest_args.split()
        t0 = time.perf_counter()
        proc = _vsearch("ingest", *library, "--index", str(index), "--quiet", *extra)
        ingest_s = time.perf_counter() - t0
        if proc.returncode not in (0, 2):
            sys.exit(f"ingest failed: {proc.stderr.strip()}")

    query_args = ["query", *[j["clip"] for j in jobs], "--index", str(index), "--json", "-k", "5"]
    if args.min_score is not None:
        query_args += ["--min-score", str(args.min_score)]
    if args.no_mirrored:
        query_args.append("--no-mirrored")
    query_args += args.query_args.split()
    t0 = time.perf_counter()
    proc = _vsearch(*query_args)
    query_s = time.perf_counter() - t0
    if proc.returncode not in (0, 2):
        # Still score what came back (clips without an answer count as no hit), but say why.
        print(f"vsearch query exited {proc.returncode}: {(proc.stderr.strip().splitlines() or ['-'])[-1]}")
    answers = parse_query_output(proc.stdout)
    for job in jobs:
        answer = answers.get(job["clip"], {"hits": [], "duration": job["length"]})
        job["hits"], job["clip_duration"] = answer["hits"][:5], answer["duration"]
        if job["kind"] == "negative":
            job["false_alarm"] = bool(job["hits"])
            continue
        # Clips are cut with ffmpeg's -ss, on the player's timeline, as vsearch reports.
        job["true_start"] = job["start"]
        job["true_end"] = job["true_start"] + job["span"]
        score_positive(job, args.tolerance)

    positives = [j for j in jobs if j["kind"] == "positive"]
    negatives = [j for j in jobs if j["kind"] == "negative"]
    cases = {}
    for spec in args.case or DEFAULT_CASES:
        name, _, globs = spec.partition("=")
        cases[name] = [j for j in positives if any(fnmatch.fnmatch(Path(j["source"]).name, g) for g in globs.split(","))]
    summary = {
        "videos_indexed": len(library),
        "videos_held_out": sorted(Path(v).name for v in held_out),
        "clip_seconds": args.clip_seconds,
        "features": args.features or "index default",
        "overall": summarise(positives),
        "groups": {
            "mild": summarise([j for j in positives if TRANSFORMS[j["transform"]]["group"] == "mild"]),
            "hard": summarise([j for j in positives if TRANSFORMS[j["transform"]]["group"] == "hard"]),
            "2s_mild": summarise([j for j in positives if j["length"] <= 2.0 and TRANSFORMS[j["transform"]]["group"] == "mild"]),
            **{f"case:{name}": summarise(rows) for name, rows in cases.items()},
        },
        "per_transform": {t: summarise([j for j in positives if j["transform"] == t]) for t in dict.fromkeys(transforms)},
        "per_video": per_video_misses(positives),
        "negatives": len(negatives),
        "false_alarm_rate": float(np.mean([j["false_alarm"] for j in negatives])) if negatives else None,
        "ingest_s": round(ingest_s, 2),
        "cut_s": round(cut_s, 2),
        "query_s": round(query_s, 2),
        "queries_per_s": round(len(jobs) / query_s, 2) if query_s else None,
        "total_s": round(time.perf_counter() - t_start, 1),
    }
    print_report(summary, jobs)
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "queries": jobs}, indent=1))
    return summary


def print_plan(jobs: list[dict], library: list[str], held_out: set[str], work: Path, cut_s: float) -> dict:
    """--dry-run: list the cut clips (checking each one's real length) instead of scoring."""
    print(f"{len(library)} videos to index, {len(held_out)} held out: "
          f"{', '.join(sorted(Path(v).name for v in held_out)) or '-'}")
    print(f"{'clip':<44}{'source':<42}{'start':>8}{'len':>6}{'got':>7}")
    for job in jobs:
        job["clip_duration"] = probe_duration(job["clip"])
        print(f"{Path(job['clip']).name:<44}{Path(job['source']).name[:40]:<42}{job['start']:>8.3f}"
              f"{job['length']:>6g}{job['clip_duration']:>7.2f}")
    print(f"cut {len(jobs)} clips in {cut_s:.1f} s into {work} (kept); ingest and query skipped")
    return {"dry_run": True, "clips": len(jobs), "cut_s": round(cut_s, 2), "workdir": str(work)}


def print_report(summary: dict, jobs: list[dict]) -> None:
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    header = f"{'set':<28}{'n':>5}{'R@1':>7}{'R@5':>7}{'no hit':>8}{'med err':>8}{'p95 err':>8}{'IoU':>7}{'F1 q':>7}{'F1 ref':>7}"
    print("\n" + header + "\n" + "-" * len(header))
    rows = list(summary["per_transform"].items()) + [("", None)] + list(summary["groups"].items()) + [("ALL", summary["overall"])]
    for name, s in rows:
        if s is None:
            print()
            continue
        if not s.get("queries"):
            print(f"{name:<28}{0:>5}")
            continue
        print(f"{name:<28}{s['queries']:>5}{fmt(s['recall@1']):>7}{fmt(s['recall@5']):>7}{fmt(s['no_hit']):>8}"
              f"{fmt(s['median_start_error_s']):>8}{fmt(s['p95_start_error_s']):>8}{fmt(s['iou']):>7}"
              f"{fmt(s['query_axis']['f1']):>7}{fmt(s['reference_axis']['f1']):>7}")
    print(f"\nfalse alarms on {summary['negatives']} never-indexed clips: {fmt(summary['false_alarm_rate'])}")
    print(f"ingest {summary['ingest_s']} s, cutting {summary['cut_s']} s, query {summary['query_s']} s "
          f"({summary['queries_per_s']} clips/s), total {summary['total_s']} s")
    failures = [j for j in jobs if j["kind"] == "positive" and not j["top1"]]
    for job in failures[:12]:
        top = job["hits"][0] if job["hits"] else None
        got = f"{Path(top['video']).name} @ {top['start']:.2f} (score {top['score']:.2f})" if top else "no hit"
        print(f"  miss: {Path(job['source']).name} @ {job['true_start']:.2f} [{job['transform']}, {job['length']:g}s] -> {got}")
    worst = [row for row in summary["per_video"] if row["misses"]][:5]
    if worst:
        print("videos with most top-1 misses: " + ", ".join(
            f"{Path(r['video']).name} {r['misses']}/{r['queries']}" for r in worst))


if __name__ == "__main__":
    main()

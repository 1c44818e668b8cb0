"""Evaluate vsearch on real and generated footage through its command line, cross-validated.

    python -m tools.eval [--videos DIR] [--queries 400] [--seed N] [--clip-seconds 4-12]
                         [--transform NAME|mild|hard|spatial|all ...] [--folds 2] [--only-fold F]
                         [--stress-dir DIR | --no-stress] [--holdout 4] [--index DIR]
                         [--lookalikes 4] [--lookalike-videos GLOB,...] [--holdout-lookalikes]
                         [--engine CHECKOUT] [--json OUT] [--workdir DIR] [--keep] [--dry-run]

The library is the videos of ``--videos`` (all but ``--holdout`` of them, drawn per
run, which give never-indexed negatives, and ``--stress-sources`` more) plus **stress
footage** generated from those ``--stress-sources`` videos (``tools/stress_footage``:
near-static shaky stills, slow zooms, dark fades, scrolling textures, slideshows,
screen recordings, flat-colour cartoons); one more of each kind, made from the held-out
videos, is never indexed. So no negative shows an indexed frame. Seeded random clips (lengths uniform in ``--clip-seconds``, a
``--short-share`` of 2-4 s, starts never on the block grid) are each edited by one
transformation of ``tools.support.ffmpeg.TRANSFORMS`` with strengths and placements
drawn from the seed. A fresh seed is drawn per run and printed; ``--seed`` repeats one.

**Folds.** Every file (indexed, held out or generated) belongs to one of ``--folds``
folds by a hash of its name, so the split is the same in every run. Fold 0 is the
*tuning* fold: the one developers look at while choosing settings and the one the
score threshold is chosen on (the lowest keeping false alarms <= 1 %, best recall).
The others are *held out*: their columns are the figures to report. Both columns are
printed side by side; a tuning-minus-held-out recall gap above 0.03 is flagged as
overfitting. ``--only-fold 0`` cuts and queries only tuning-fold clips (quick
development runs that never look at held-out footage).

**Negatives** (must give no hit): clips of never-indexed real videos and of
never-indexed stress footage, flat / gradient / noise clips, and clips of a
never-indexed video that shares a 4 s intro with an indexed one (cut to start 2 s
before the intro ends: a hit on the intro part, and only there, is right).

**Look-alike benchmark**: clips (mild edits: ``LOOKALIKE_EDITS``) of every talking
head (``--lookalike-videos``) and of ``--lookalikes`` generated screen recordings of one
desktop layout that differ only in the typed text and the pointer's path
(``tools.stress_footage.same_layout_screens``), all indexed; each clip must return its
own video first. The talking heads are kept out of the holdout and of the stress
sources so that all of them are indexed (``--holdout-lookalikes`` lets the draw take
them again; the benchmark then covers the indexed ones). One more recording of that
layout per fold is never indexed: its clips are negatives (``lookalike_screen``).
Look-alike clips are scored in their own row, not in the per-edit tables.

**Engine**: ``--engine CHECKOUT`` runs ``python -m vsearch`` of another checkout (a
``git worktree`` of an older commit) on the same clips: the header names the package
imported and its commit, and the default index folder carries that commit, so an
index is never reused by another engine.

Scores per transformation, per group (mild / hard / spatial / short / stress / cases) and
overall: recall@1 / recall@5 (the right video, start within ``--tolerance``), median
and p95 start error, segment IoU, VCSL-style precision / recall / F1 on both axes,
false alarms, queries per second. The engine is used only through its command line
(``vsearch ingest``, ``vsearch query --json --min-score FLOOR``); hits are thresholded
here, which equals querying with that ``--min-score`` (the engine's threshold is a
final filter). A temporary work folder is deleted unless ``--keep``, ``--dry-run``
or ``--workdir`` is given.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tools.support import (
    HARD,
    MILD,
    SPATIAL,
    TRANSFORMS,
    apply_transform,
    display_size,
    first_picture_time,
    generated_clip,
    joined_video,
    make_video,
    probe_duration,
)
from tools.support.engines import Engine

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "videos"
VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".mpg", ".mpeg", ".m4v"}
DEFAULT_CASES = ["talking_heads=liveportrait_d*,sadtalker_*", "near_static=intel_*,liveportrait_s18*,sam2_02_cups*"]
#: The real videos of the look-alike benchmark (talking heads), by file name.
DEFAULT_LOOKALIKES = "liveportrait_*,sadtalker_*"
#: The mild edits look-alike clips get, in turn.
LOOKALIKE_EDITS = ("crf28_half", "crf23", "subtitles")


def indexed_paths(engine: Engine, index: Path) -> set[str] | None:
    """Resolved paths of the videos an existing index holds (``vsearch list --json``), or None."""
    proc = engine.run("list", "--index", str(index), "--json")
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
        out += {"mild": MILD, "hard": HARD, "spatial": SPATIAL, "all": MILD + HARD}.get(name, [name])
    unknown = [n for n in out if n not in TRANSFORMS]
    if unknown:
        sys.exit(f"unknown transforms: {unknown}; choose from mild, hard, spatial, all, {', '.join(TRANSFORMS)}")
    return out


def matches_any(path: str, globs: str) -> bool:
    """Whether the file name of ``path`` matches one of the comma-separated ``globs``."""
    return any(fnmatch.fnmatch(Path(path).name, g) for g in globs.split(",") if g)


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def clip_start(hit: dict) -> float:
    """Where a hit places the clip's first frame in the video: its start, less the
    clip seconds before its matched part (``query_start``) at its speed."""
    return hit["start"] - hit.get("query_start", 0.0) * hit.get("speed", 1.0)


def score_positive(job: dict, tolerance: float) -> None:
    """Fill recall, error, IoU and VCSL-style P/R/F1 of one positive query.

    A hit is right when it names the source and places the clip's start
    (:func:`clip_start`) within ``tolerance`` of the truth; how much of the clip it
    covers is measured by the IoU and the F1 scores.
    """
    hits = job["hits"]
    good = [h["video"] == job["source"] and abs(clip_start(h) - job["true_start"]) <= tolerance for h in hits]
    job["top1"], job["top5"] = bool(good and good[0]), any(good[:5])
    job["start_error"] = abs(clip_start(hits[0]) - job["true_start"]) if job["top1"] else None
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


def lookalike_summary(rows: list[dict], lookalikes: set[str]) -> dict:
    """The look-alike benchmark of scored look-alike clips: how many return their own
    video first (at any start), another look-alike first, another video first, or no hit.

    ``lookalikes`` are the videos of the clips' family (the clips' sources among them).
    A clip's top hit is the first of its hits kept at the threshold (:func:`score_all`).
    """
    counts = dict.fromkeys(LOOKALIKE_COUNTS, 0)
    counts["queries"] = len(rows)
    for job in rows:
        top = job["hits"][0]["video"] if job["hits"] else None
        key = ("no_hit" if top is None else "own_first" if top == job["source"]
               else "other_lookalike_first" if top in lookalikes else "elsewhere_first")
        counts[key] += 1
    counts["own_first_right_start"] = sum(j["top1"] for j in rows)
    return counts


#: What the look-alike benchmark counts per row.
LOOKALIKE_COUNTS = ("queries", "own_first", "other_lookalike_first", "elsewhere_first", "no_hit",
                    "own_first_right_start")


def lookalike_table(rows: list[dict], families: dict[str, list[str]]) -> dict[str, dict]:
    """:func:`lookalike_summary` per family of look-alikes (name -> its videos: another
    look-alike is one of the same family) and the sums over all families."""
    table = {name: lookalike_summary([j for j in rows if j["source"] in set(videos)], set(videos))
             for name, videos in families.items()}
    table["all look-alikes"] = {key: sum(t[key] for t in table.values()) for key in LOOKALIKE_COUNTS}
    return table


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


def fold_of(path: str, folds: int) -> int:
    """The fold a file belongs to: a hash of its name, the same in every run and machine."""
    return int(hashlib.blake2b(Path(path).name.encode(), digest_size=8).hexdigest(), 16) % folds


def thresholded(hits: list[dict], threshold: float) -> list[dict]:
    """Hits at or above ``threshold`` (hits come best first)."""
    return [h for h in hits if h["score"] >= threshold]


def false_alarm(job: dict, hits: list[dict], tolerance: float) -> bool:
    """Whether a negative clip's hits claim anything they should not.

    A clip of a video sharing an intro with an indexed one may be found on the intro
    part, and only there: the intro's source video, at the right place, ending within
    the clip's intro seconds (plus the tolerance).
    """
    intro = job.get("intro")
    for hit in hits:
        if intro and hit["video"] == intro["video"] and abs(hit["start"] - intro["start"]) <= tolerance \
                and hit["query_end"] <= intro["seconds"] + tolerance:
            continue
        return True
    return False


def score_all(jobs: list[dict], threshold: float, tolerance: float) -> None:
    """Score every job's hits kept at ``threshold`` (positives: recall etc., negatives: false alarm)."""
    for job in jobs:
        hits = thresholded(job["all_hits"], threshold)[:5]
        job["hits"] = hits
        if job["kind"] == "negative":
            job["false_alarm"] = false_alarm(job, hits, tolerance)
        else:
            score_positive(job, tolerance)


def choose_threshold(jobs: list[dict], tolerance: float, *, max_false_alarms: float = 0.01) -> float | None:
    """The threshold, on a 0.01 grid, giving the best recall@1 of ``jobs`` with false
    alarms <= ``max_false_alarms`` (the lowest such on ties); None if none qualifies."""
    best = None
    for threshold in np.round(np.arange(FLOOR, 1.0, 0.01), 2):
        score_all(jobs, float(threshold), tolerance)
        negatives = [j["false_alarm"] for j in jobs if j["kind"] == "negative"]
        positives = [j["top1"] for j in jobs if j["kind"] == "positive"]
        if negatives and np.mean(negatives) > max_false_alarms:
            continue
        recall = float(np.mean(positives)) if positives else 0.0
        if best is None or recall > best[1] + 1e-12:
            best = (float(threshold), recall)
    return None if best is None else best[0]


#: Hits are asked down to this score; thresholds are applied here.
FLOOR = 0.5


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=SHARED if SHARED.is_dir() else None)
    parser.add_argument("--queries", type=int, default=400, help="positive clips")
    parser.add_argument("--seed", type=int, default=None, help="clip seed (default: a fresh one, printed)")
    parser.add_argument("--clip-seconds", default="4-12", help="fixed length (5) or a range (4-12)")
    parser.add_argument("--short-share", type=float, default=0.15, help="share of clips 2-4 s long")
    parser.add_argument("--transform", action="append",
                        help="a transform, or mild / hard / spatial / all (repeat; clips cycle through them) [all]")
    parser.add_argument("--folds", type=int, default=2, help="folds of the library (fold 0 tunes, the rest report)")
    parser.add_argument("--only-fold", type=int, default=None, help="cut and query only this fold's clips")
    parser.add_argument("--stress-dir", type=Path, default=None,
                        help="generated stress footage goes (and is reused from) here [in the work folder]")
    parser.add_argument("--stress-seed", type=int, default=1)
    parser.add_argument("--stress-per-kind", type=int, default=1, help="indexed stress videos per kind (+1 never indexed)")
    parser.add_argument("--stress-sources", type=int, default=7,
                        help="real videos the indexed stress footage is made from, one per file (then kept out) [7]")
    parser.add_argument("--no-stress", action="store_true", help="no generated stress footage")
    parser.add_argument("--features", default=None,
                        help="features of a new index: v1, seed or onnx:MODEL.onnx (pip install 'vsearch[onnx]')")
    parser.add_argument("--ingest-args", default="", help="extra arguments for a new index, e.g. '--window 3'")
    parser.add_argument("--query-args", default="", help="extra arguments for vsearch query, e.g. '--speeds 1'")
    parser.add_argument("--holdout", type=int, default=4, help="real videos kept out of the index as negatives")
    parser.add_argument("--negatives", type=int, default=None, help="negative clips [max(40, queries/4)]")
    parser.add_argument("--tolerance", type=float, default=0.5)
    parser.add_argument("--min-score", type=float, default=None, help="threshold to report [the engine's default]")
    parser.add_argument("--case", action="append", help="NAME=GLOB[,GLOB] hard-case group by file name")
    parser.add_argument("--lookalikes", type=int, default=4,
                        help="indexed same-layout screen recordings of the look-alike benchmark (0: none) [4]")
    parser.add_argument("--lookalike-videos", default=DEFAULT_LOOKALIKES,
                        help="GLOB[,GLOB]: the real look-alike videos (talking heads), all kept indexed "
                             "('': none) [%(default)s]")
    parser.add_argument("--lookalike-clips", type=int, default=3, help="clips per look-alike video [3]")
    parser.add_argument("--holdout-lookalikes", action="store_true",
                        help="let the holdout and the stress sources draw look-alike videos too (the benchmark "
                             "then covers the indexed ones)")
    parser.add_argument("--engine", type=Path, default=None,
                        help="run vsearch of this checkout (e.g. a git worktree of an older commit) [this tree]")
    parser.add_argument("--index", type=Path, default=None,
                        help="index folder (reused if it exists) [WORKDIR/index-COMMIT, COMMIT the engine's]")
    parser.add_argument("--workdir", type=Path, default=None, help="clips (and a new index) go here; kept")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    parser.add_argument("--dry-run", action="store_true",
                        help="cut the clips and print the plan; skip ingest and query")
    parser.add_argument("--json", type=Path, default=None, help="write summary and per-query records here")
    parser.add_argument("--rescore", type=Path, default=None,
                        help="score the answers a --json file of an earlier run keeps again; no cutting or querying")
    args = parser.parse_args(argv)
    if args.rescore is not None:
        return rescore(args)
    if args.videos is None:
        parser.error("no --videos given and ../shared/videos does not exist")
    if args.folds < 2:
        parser.error("--folds must be at least 2 (one to tune on, one to report)")
    if args.only_fold is not None and not 0 <= args.only_fold < args.folds:
        parser.error(f"--only-fold must be in 0..{args.folds - 1}")
    if args.features and args.features.startswith("onnx:"):  # ingest runs elsewhere: the model's full path
        args.features = "onnx:" + str(Path(args.features[len("onnx:"):]).expanduser().resolve())
    try:
        engine = Engine.at(args.engine)
        imported = engine.imported_from()
    except (ValueError, RuntimeError) as exc:
        parser.error(f"--engine: {exc}")
    if imported != engine.root / "vsearch":
        parser.error(f"--engine {engine.root}: python -m vsearch there imports {imported}, not its own package")
    print(engine.describe(), flush=True)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 1_000_000)
    print(f"seed {args.seed} (repeat with --seed {args.seed})", flush=True)
    transforms = _expand_transforms(args.transform or ["all"])
    lo, _, hi = args.clip_seconds.partition("-")
    length_range = (float(lo), float(hi or lo))
    rng = random.Random(args.seed)
    # Absolute: the engine runs in its own folder.
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="vsearch-eval-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    args.index = (args.index or work / f"index-{engine.fingerprint()}").resolve()
    remove_work = args.workdir is None and not (args.keep or args.dry_run)
    try:
        return _evaluate(args, engine, transforms, length_range, rng, work)
    finally:
        if remove_work:
            shutil.rmtree(work, ignore_errors=True)
        elif args.keep and args.workdir is None:
            print(f"work folder kept: {work}")


def rescore(args: argparse.Namespace) -> dict:
    """--rescore: the report of an earlier run's answers, scored by this harness."""
    saved = json.loads(args.rescore.read_text())
    jobs, summary = saved["queries"], saved["summary"]
    summary.setdefault("stress_videos", sorted({j["source"] for j in jobs if Path(j["source"]).name.startswith("stress")}))
    transforms = list(dict.fromkeys(j["transform"] for j in jobs if j["kind"] == "positive"))
    print(f"re-scoring {len(jobs)} answered clips of {args.rescore} (seed {summary.get('seed')})")
    result = score_and_report(args, jobs, transforms, summary)
    if args.json:
        args.json.write_text(json.dumps({"summary": result, "queries": jobs}, indent=1))
    return result


def _stress_footage(args: argparse.Namespace, sources: list[str], unseen_sources: list[str],
                    work: Path) -> tuple[list[str], list[str]]:
    """(indexed, never-indexed) generated stress videos, made once per folder, sources and seed.

    The indexed ones are made from ``sources``, one each (real videos then kept out
    of the library and out of the negatives: the stress footage shows their frames), the
    never-indexed ones from ``unseen_sources`` (the held-out videos), so a hit on a
    negative is never a true match of some indexed frame.
    """
    if args.no_stress:
        return [], []
    from tools.stress_footage import make_stress_library

    folder = args.stress_dir or work / "stress"
    folder.mkdir(parents=True, exist_ok=True)
    tag = lambda paths: hashlib.blake2b("|".join(sorted(Path(p).name for p in paths)).encode(),  # noqa: E731
                                       digest_size=3).hexdigest()
    t0 = time.perf_counter()
    indexed = make_stress_library(sources, folder, seed=args.stress_seed, per_kind=args.stress_per_kind,
                                  prefix=f"stress{args.stress_seed}-{tag(sources)}", one_source_each=True)
    unseen = make_stress_library(unseen_sources, folder, seed=args.stress_seed + 10_000, per_kind=1,
                                 prefix=f"unseen{args.stress_seed}-{tag(unseen_sources)}") if unseen_sources else []
    print(f"stress footage: {len(indexed)} indexed (from {len(sources)} real videos kept out) + {len(unseen)} never "
          f"indexed (from the held-out videos) in {folder} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return sorted(str(p.resolve()) for p in indexed), sorted(str(p.resolve()) for p in unseen)


def _is_landscape(path: str) -> bool:
    width, height = display_size(path)
    return width > height


def screen_numbers(name, count: int, folds: int) -> tuple[list[int], list[int]]:
    """File numbers of ``count`` indexed look-alikes, shared out evenly among the folds,
    and of one never-indexed look-alike per fold; ``name(n)`` is file ``n``'s name,
    whose hash decides its fold (:func:`fold_of`)."""
    quota = [count // folds + (f < count % folds) for f in range(folds)]
    indexed: list[int] = []
    unseen: dict[int, int] = {}  # fold -> number
    number = 0
    while len(indexed) < count or len(unseen) < folds:
        fold = fold_of(name(number), folds)
        if quota[fold]:
            quota[fold] -= 1
            indexed.append(number)
        elif fold not in unseen:
            unseen[fold] = number
        number += 1
    return indexed, sorted(unseen.values())


def _lookalike_screens(args: argparse.Namespace, work: Path) -> tuple[list[str], list[str]]:
    """(indexed, never-indexed) screen recordings of one layout for the look-alike benchmark.

    ``--lookalikes`` indexed ones and one never-indexed one per fold, with numbers picked
    so that each fold gets its share of both (a file's fold is a hash of its name).
    """
    if args.lookalikes <= 0:
        return [], []
    from tools.stress_footage import same_layout_screens

    prefix = f"lookalike{args.stress_seed}"
    indexed, unseen = screen_numbers(lambda n: f"{prefix}_screen_{n}.mp4", args.lookalikes, args.folds)
    folder = args.stress_dir or work / "stress"
    t0 = time.perf_counter()
    made = same_layout_screens(folder, indexed + unseen, seed=args.stress_seed, prefix=prefix)
    print(f"look-alike screen recordings: {len(indexed)} indexed + {len(unseen)} never indexed, one layout, "
          f"in {folder} ({time.perf_counter() - t0:.0f} s)", flush=True)
    paths = [str(p.resolve()) for p in made]
    return paths[:len(indexed)], paths[len(indexed):]


def _evaluate(args: argparse.Namespace, engine: Engine, transforms: list[str], length_range: tuple[float, float],
              rng: random.Random, work: Path) -> dict:
    """Index, cut, query and score (see the module docstring); returns the summary."""
    t_start = time.perf_counter()

    real = sorted(str(p.resolve()) for p in args.videos.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    if not real:
        sys.exit(f"{args.videos}: no video files ({', '.join(sorted(VIDEO_SUFFIXES))})")
    # The look-alike benchmark's real videos stay indexed: the holdout and the stress
    # sources are drawn from the others (unless --holdout-lookalikes).
    lookalike_real = [v for v in real if matches_any(v, args.lookalike_videos)]
    drawable = real if args.holdout_lookalikes else [v for v in real if v not in lookalike_real]
    held_out = set(rng.sample(drawable, min(args.holdout, len(drawable) - 1))) if args.holdout else set()
    rest = [v for v in drawable if v not in held_out]
    stress_sources = [] if args.no_stress else rng.sample(rest, min(args.stress_sources, len(rest) - 1))
    stress, unseen_stress = _stress_footage(args, stress_sources, sorted(held_out), work)
    screens, unseen_screens = _lookalike_screens(args, work)
    videos = [v for v in real if v not in stress_sources] + stress + screens
    durations = {v: probe_duration(v) for v in real + stress + unseen_stress + screens + unseen_screens}
    library = [v for v in videos if v not in held_out]
    index = args.index
    reuse_index = (index / "meta.lmdb").exists()
    if reuse_index:
        # A reused index was built by another run, perhaps with another seed or holdout:
        # what it really holds decides which clips are positives and which negatives.
        indexed = indexed_paths(engine, index)
        if indexed is None:
            print(f"{index}: could not list the indexed videos; assuming the seeded holdout")
        else:
            library = [v for v in videos if v in indexed]
            held_out = set(real) - indexed - set(stress_sources)  # those show in the stress footage
            if not library:
                sys.exit(f"{index}: holds none of the videos in {args.videos}")
    lookalikes = [v for v in lookalike_real + screens if v in library]
    regular = [v for v in library if v not in screens]  # the benchmark's screens get look-alike clips only
    background = work / "pip_background.mp4"  # never indexed
    if any(TRANSFORMS[t].get("pip_over") == "video" or TRANSFORMS[t].get("beside") for t in transforms) \
            and not background.exists():
        make_video(background, seconds=30, seed=987654, size=(640, 360))
    partners = sorted(held_out) or [str(background)]  # side-by-side partners: never-indexed real footage
    landscape = {v: _is_landscape(v) for v in regular} \
        if any(TRANSFORMS[t].get("landscape_only") for t in transforms) else {}

    def wanted(path: str) -> bool:
        return args.only_fold is None or fold_of(path, args.folds) == args.only_fold

    def new_job(kind: str, pool: list[str], i: int, transform: str | None = None, *,
                fit: bool = False) -> dict | None:
        """A clip of a video of ``pool``; with ``fit``, shortened to fit the longest rather than left out."""
        short = rng.random() < args.short_share
        length = round(rng.uniform(2.0, 4.0) if short else rng.uniform(*length_range), 2)
        if transform is None:
            transform = transforms[i % len(transforms)] if kind == "positive" else rng.choice(["crf23", "crf28_half"])
        speed = TRANSFORMS[transform].get("speed", 1.0)
        if fit:
            length = round(min(length, (max(durations[v] for v in pool) - 0.5) / speed), 2)
        span = length * speed
        eligible = [v for v in pool if durations[v] >= span + 0.3
                    and (landscape.get(v, False) or not TRANSFORMS[transform].get("landscape_only"))]
        edit_seed = rng.randrange(1 << 30)
        if not eligible:
            return None
        src = rng.choice(eligible)
        start = _random_start(rng, durations[src], span)
        job = dict(kind=kind, source=src, start=start, length=length, span=span, transform=transform,
                   edit_seed=edit_seed, negative_kind=None)
        if TRANSFORMS[transform].get("beside"):
            job["partner"] = partners[edit_seed % len(partners)]
        return job

    jobs = [j for i in range(args.queries) if (j := new_job("positive", regular, i))]
    n_neg = args.negatives if args.negatives is not None else max(40, args.queries // 4)
    shares = {"unseen_real": 0.45 if held_out else 0.0, "unseen_stress": 0.2 if unseen_stress else 0.0,
              "synthetic": 0.15, "shared_intro": 0.2 if held_out or unseen_stress else 0.0}
    total_share = sum(shares.values())
    for neg_kind, share in shares.items():
        for i in range(round(n_neg * share / total_share)):
            jobs.append(_negative_job(neg_kind, i, rng, sorted(held_out), unseen_stress, regular, durations, new_job))
    # The look-alike benchmark: clips of every indexed look-alike (short videos give
    # shorter clips), and of the never-indexed same-layout screens as negatives.
    for video in lookalikes + unseen_screens:
        for i in range(args.lookalike_clips):
            kind = "negative" if video in unseen_screens else "lookalike"
            job = new_job(kind, [video], i, LOOKALIKE_EDITS[i % len(LOOKALIKE_EDITS)], fit=True)
            if job is not None and kind == "negative":
                job["negative_kind"] = "lookalike_screen"
            jobs.append(job)
    jobs = [j for j in jobs if j is not None]
    for i, job in enumerate(jobs):
        job["fold"] = fold_of(job["source"], args.folds)
        name = job["negative_kind"] or job["transform"]
        job["clip"] = str(work / f"{job['kind'][0]}{i:04d}_{name}_{job['length']:g}s.mp4")
    jobs = [j for j in jobs if wanted(j["source"])]

    def cut(job: dict) -> None:
        if os.path.exists(job["clip"]):
            return
        # Written under another name first: an interrupted run leaves no half clip to reuse.
        part = str(Path(job["clip"]).with_suffix(".part.mp4"))
        if job["negative_kind"] == "synthetic":
            generated_clip(job["synthetic"], part, seconds=job["length"], seed=job["edit_seed"])
        else:
            source = job["source"]
            if job["negative_kind"] == "shared_intro":
                intro = job["intro"]
                source = joined_video(intro["video"], intro["start"] + intro["seconds"], job["other"],
                                      job["other_start"], job["length"], work / f"joined_{Path(job['clip']).stem}.mp4")
            apply_transform(job["transform"], source, part, start=job["start"], duration=job["length"],
                            background=job.get("partner", background), seed=job["edit_seed"])
        os.replace(part, job["clip"])

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
        proc = engine.run("ingest", *library, "--index", str(index), "--quiet", *extra)
        ingest_s = time.perf_counter() - t0
        if proc.returncode not in (0, 2):
            sys.exit(f"ingest failed: {proc.stderr.strip()}")

    query_args = ["query", *[j["clip"] for j in jobs], "--index", str(index), "--json", "-k", "5",
                  "--min-score", str(FLOOR), *args.query_args.split()]
    t0 = time.perf_counter()
    proc = engine.run(*query_args)
    query_s = time.perf_counter() - t0
    if proc.returncode not in (0, 2):
        # Still score what came back (clips without an answer count as no hit), but say why.
        print(f"vsearch query exited {proc.returncode}: {(proc.stderr.strip().splitlines() or ['-'])[-1]}")
    answers = parse_query_output(proc.stdout)
    for job in jobs:
        answer = answers.get(job["clip"], {"hits": [], "duration": job["length"]})
        job["all_hits"], job["clip_duration"] = answer["hits"], answer["duration"]
    summary = {
        "seed": args.seed,
        "folds": args.folds,
        "only_fold": args.only_fold,
        "engine": str(engine.root),
        "engine_commit": engine.commit(),
        "engine_min_score": engine.default_min_score(),
        "index": str(index),
        "videos_indexed": len(library),
        "stress_videos_indexed": sum(v in library for v in stress),
        "videos_held_out": sorted(Path(v).name for v in held_out),
        "clip_seconds": args.clip_seconds,
        "features": args.features or "index default",
        "stress_videos": sorted(stress),
        "lookalike_videos": {"talking heads": [v for v in lookalikes if v not in screens],
                             "same-layout screens": [v for v in lookalikes if v in screens]},
        "lookalike_screens_unseen": unseen_screens,
        "ingest_s": round(ingest_s, 2),
        "cut_s": round(cut_s, 2),
        "query_s": round(query_s, 2),
        "queries_per_s": round(len(jobs) / query_s, 2) if query_s else None,
        "run_s": round(time.perf_counter() - t_start, 1),
    }
    return score_and_report(args, jobs, transforms, summary)


def true_segments(jobs: list[dict]) -> None:
    """Where each positive (and look-alike) clip really starts and ends in its source.

    Clips are cut with ffmpeg's ``-ss`` (or ``trim``) on the player's timeline, as
    vsearch reports: the clip starts with the first picture at or after the cut. A
    source whose video starts after its container (audio first) has no picture
    before that: a cut before it starts at its first picture.
    """
    first: dict[str, float] = {}
    for job in jobs:
        if job["kind"] == "negative":
            continue
        if job["source"] not in first:
            first[job["source"]] = first_picture_time(job["source"])
        job["true_start"] = max(job["start"], first[job["source"]])
        job["true_end"] = job["start"] + job["span"]


def score_and_report(args: argparse.Namespace, jobs: list[dict], transforms: list[str], summary: dict) -> dict:
    """Score the answered ``jobs`` at the default and at the tuned threshold, print
    the report and return the summary (see the module docstring)."""
    true_segments(jobs)
    threshold = args.min_score if args.min_score is not None else summary.get("engine_min_score")
    if threshold is None:
        from vsearch.search.tuning import DEFAULT_MIN_SCORE

        print(f"the engine's default --min-score is not known; using this tree's, {DEFAULT_MIN_SCORE}")
        threshold = DEFAULT_MIN_SCORE
    tuning = [j for j in jobs if j["fold"] == 0]
    tuned = choose_threshold(tuning, args.tolerance) if tuning else None
    columns = {"tune": lambda j: j["fold"] == 0, "held-out": lambda j: j["fold"] != 0}
    stress = set(summary["stress_videos"])
    summary.update(threshold=threshold, tuned_threshold=tuned)
    score_all(jobs, threshold, args.tolerance)
    lookalikes = summary.get("lookalike_videos", {})
    summary["columns"] = {name: _tables(args, [j for j in jobs if keep(j)], transforms, stress, lookalikes)
                          for name, keep in columns.items()}
    if tuned is not None:
        score_all(jobs, tuned, args.tolerance)
        summary["at_tuned_threshold"] = {name: _headline([j for j in jobs if keep(j)])
                                         for name, keep in columns.items()}
        score_all(jobs, threshold, args.tolerance)
    summary["total_s"] = summary.get("run_s")
    print_report(summary, jobs)
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "queries": jobs}, indent=1))
    return summary


def _negative_job(kind: str, i: int, rng: random.Random, held_out: list[str], unseen_stress: list[str],
                  library: list[str], durations: dict[str, float], new_job) -> dict | None:
    if kind == "unseen_real":
        job = new_job("negative", held_out, i)
    elif kind == "unseen_stress":
        job = new_job("negative", unseen_stress, i)
    elif kind == "synthetic":
        job = dict(kind="negative", synthetic=("flat", "gradient", "noise")[i % 3], transform="crf23",
                   length=round(rng.uniform(3.0, 8.0), 2), start=0.0, edit_seed=rng.randrange(1 << 30))
        job.update(source=f"synthetic_{job['synthetic']}_{i}", span=job["length"])
    else:  # shared_intro: a never-indexed video opening with 4 s of an indexed one
        intro_pool = [v for v in library if durations[v] >= 6.0]
        others = [v for v in held_out + unseen_stress if durations[v] >= 9.0]
        if not intro_pool or not others:
            return None
        first, other = rng.choice(intro_pool), rng.choice(others)
        intro_start = round(rng.uniform(0.0, durations[first] - 4.5), 2)
        job = dict(kind="negative", source=other, transform=rng.choice(["crf23", "crf28_half"]),
                   length=round(rng.uniform(5.0, 8.0), 2), edit_seed=rng.randrange(1 << 30), other=other,
                   other_start=round(rng.uniform(0.0, durations[other] - 8.5), 2))
        # The joined video plays first[intro_start - ... ]: it is cut from first's start.
        job["intro"] = dict(video=first, start=intro_start + 2.0, seconds=2.0)
        # joined = first[0 : intro_start + 4] + other; the clip starts 2 s before the join.
        job["start"], job["span"] = round(intro_start + 2.0, 3), job["length"]
        job["intro"]["join"] = intro_start + 4.0
    if job is not None:
        job["negative_kind"] = kind
    return job


def _headline(rows: list[dict]) -> dict:
    positives = [j for j in rows if j["kind"] == "positive"]
    negatives = [j for j in rows if j["kind"] == "negative"]
    groups = {g: summarise([j for j in positives if TRANSFORMS[j["transform"]]["group"] == g]) for g in ("mild", "hard")}
    return {
        "mild": groups["mild"].get("recall@1"),
        "hard": groups["hard"].get("recall@1"),
        "spatial": summarise([j for j in positives if j["transform"] in SPATIAL]).get("recall@1"),
        "all": summarise(positives).get("recall@1"),
        "median_start_error_s": summarise(positives).get("median_start_error_s"),
        "false_alarm_rate": float(np.mean([j["false_alarm"] for j in negatives])) if negatives else None,
        "negatives": len(negatives),
    }


def _tables(args: argparse.Namespace, rows: list[dict], transforms: list[str], stress: set[str],
            lookalikes: dict[str, list[str]]) -> dict:
    positives = [j for j in rows if j["kind"] == "positive"]
    negatives = [j for j in rows if j["kind"] == "negative"]
    lookalike_clips = [j for j in rows if j["kind"] == "lookalike"]
    cases = {}
    for spec in args.case or DEFAULT_CASES:
        name, _, globs = spec.partition("=")
        cases[name] = [j for j in positives if matches_any(j["source"], globs)]
    group = lambda j: TRANSFORMS[j["transform"]]["group"]  # noqa: E731
    return {
        "overall": summarise(positives),
        "groups": {
            "mild": summarise([j for j in positives if group(j) == "mild"]),
            "hard": summarise([j for j in positives if group(j) == "hard"]),
            "spatial": summarise([j for j in positives if j["transform"] in SPATIAL]),
            "short 2-4 s": summarise([j for j in positives if j["length"] <= 4.0]),
            "real footage": summarise([j for j in positives if j["source"] not in stress]),
            "  mild, real": summarise([j for j in positives if j["source"] not in stress and group(j) == "mild"]),
            "  hard, real": summarise([j for j in positives if j["source"] not in stress and group(j) == "hard"]),
            "stress footage": summarise([j for j in positives if j["source"] in stress]),
            **{f"case:{name}": summarise(r) for name, r in cases.items()},
        },
        "per_transform": {t: summarise([j for j in positives if j["transform"] == t]) for t in dict.fromkeys(transforms)},
        "per_video": per_video_misses(positives),
        "lookalikes": lookalike_table(lookalike_clips, lookalikes),
        "negatives": len(negatives),
        "false_alarm_rate": float(np.mean([j["false_alarm"] for j in negatives])) if negatives else None,
        "false_alarms_by_kind": {
            kind: [sum(j["false_alarm"] for j in negatives if j["negative_kind"] == kind),
                   sum(j["negative_kind"] == kind for j in negatives)]
            for kind in dict.fromkeys(j["negative_kind"] for j in negatives)
        },
        **_headline(rows),
    }


def print_plan(jobs: list[dict], library: list[str], held_out: set[str], work: Path, cut_s: float) -> dict:
    """--dry-run: list the cut clips (checking each one's real length) instead of scoring."""
    print(f"{len(library)} videos to index, {len(held_out)} held out: "
          f"{', '.join(sorted(Path(v).name for v in held_out)) or '-'}")
    print(f"{'clip':<44}{'source':<42}{'fold':>5}{'start':>8}{'len':>6}{'got':>7}")
    for job in jobs:
        job["clip_duration"] = probe_duration(job["clip"])
        print(f"{Path(job['clip']).name:<44}{Path(job['source']).name[:40]:<42}{job['fold']:>5}{job['start']:>8.3f}"
              f"{job['length']:>6g}{job['clip_duration']:>7.2f}")
    print(f"cut {len(jobs)} clips in {cut_s:.1f} s into {work} (kept); ingest and query skipped")
    return {"dry_run": True, "clips": len(jobs), "cut_s": round(cut_s, 2), "workdir": str(work)}


#: A tuning-minus-held-out recall@1 gap above this is overfitting.
OVERFIT_GAP = 0.03


def print_lookalikes(tune: dict[str, dict], held: dict[str, dict]) -> None:
    """The look-alike benchmark's rows (counts of clips by what came first): tuning | held-out."""
    if not any(row["queries"] for row in [*tune.values(), *held.values()]):
        return
    columns = f"{'n':>4}{'own':>6}{'other l-a':>10}{'elsewhere':>10}{'no hit':>7}"
    header = f"{'look-alikes: own video first?':<31}{columns} |{columns}"
    print("\n" + header + "\n" + "-" * len(header))
    for name in held:
        left, right = ("".join(f"{row[key]:>{width}}" for key, width in zip(LOOKALIKE_COUNTS, (4, 6, 10, 10, 7)))
                       for row in (tune[name], held[name]))
        print(f"{name:<31}{left} |{right}")


def print_report(summary: dict, jobs: list[dict]) -> None:
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    tune, held = summary["columns"]["tune"], summary["columns"]["held-out"]
    header = (f"{'set':<27}{'n':>4}{'R@1':>7}{'med err':>8} |{'n':>4}{'R@1':>7}{'R@5':>7}{'no hit':>7}"
              f"{'med err':>8}{'p95 err':>8}{'IoU':>6}{'F1 ref':>7}  gap")
    print(f"\nthreshold {summary['threshold']:g}; columns: tuning fold (0) | held-out folds (1..{summary['folds'] - 1})")
    print(header + "\n" + "-" * len(header))
    names = list(held["per_transform"]) + [""] + list(held["groups"]) + ["ALL"]
    warnings = []
    for name in names:
        if not name:
            print()
            continue
        t = tune["overall"] if name == "ALL" else tune["groups"].get(name) or tune["per_transform"].get(name, {})
        h = held["overall"] if name == "ALL" else held["groups"].get(name) or held["per_transform"].get(name, {})
        gap = ""
        if t.get("queries") and h.get("queries"):
            diff = t["recall@1"] - h["recall@1"]
            gap = f"{diff:+.3f}"
            if diff > OVERFIT_GAP and (name in ("mild", "hard", "ALL") or h["queries"] >= 20):
                gap += " OVERFIT?"
                warnings.append(name)
        left = (f"{t['queries']:>4}{fmt(t['recall@1']):>7}{fmt(t['median_start_error_s']):>8}" if t.get("queries")
                else f"{0:>4}{'-':>7}{'-':>8}")
        right = (f"{h['queries']:>4}{fmt(h['recall@1']):>7}{fmt(h['recall@5']):>7}{fmt(h['no_hit']):>7}"
                 f"{fmt(h['median_start_error_s']):>8}{fmt(h['p95_start_error_s']):>8}{fmt(h['iou']):>6}"
                 f"{fmt(h['reference_axis']['f1']):>7}" if h.get("queries") else f"{0:>4}")
        print(f"{name:<27}{left} |{right}  {gap}")
    print_lookalikes(tune["lookalikes"], held["lookalikes"])
    for label, col in (("tuning", tune), ("held-out", held)):
        kinds = ", ".join(f"{k} {a}/{n}" for k, (a, n) in col["false_alarms_by_kind"].items())
        print(f"false alarms, {label}: {fmt(col['false_alarm_rate'])} of {col['negatives']} never-indexed clips ({kinds})")
    tuned = summary.get("tuned_threshold")
    if tuned is not None:
        at = summary["at_tuned_threshold"]
        print(f"threshold chosen on the tuning fold (false alarms <= 1 %, best recall@1): {tuned:g}; at it, held-out "
              f"mild {fmt(at['held-out']['mild'])} hard {fmt(at['held-out']['hard'])} "
              f"false alarms {fmt(at['held-out']['false_alarm_rate'])}")
    elif tune["negatives"]:
        print("threshold chosen on the tuning fold: none keeps its false alarms <= 1 %")
    if warnings:
        print(f"WARNING: tuning-fold recall@1 exceeds held-out by more than {OVERFIT_GAP} in: {', '.join(warnings)}"
              " (overfitting, or too few clips)")
    print(f"ingest {summary['ingest_s']} s, cutting {summary['cut_s']} s, query {summary['query_s']} s "
          f"({summary['queries_per_s']} clips/s), total {summary['total_s']} s; seed {summary['seed']}")
    # Held-out misses stay unseen while tuning.
    visible = [j for j in jobs if summary["only_fold"] is not None or j["fold"] == 0]
    misses = [j for j in visible if j["kind"] == "positive" and not j["top1"]]
    lookalike_misses = [j for j in visible if j["kind"] == "lookalike"
                        and not (j["hits"] and j["hits"][0]["video"] == j["source"])]
    for label, shown in (("miss", misses[:15]), ("look-alike miss", lookalike_misses[:10])):
        for job in shown:
            top = job["hits"][0] if job["hits"] else None
            got = f"{Path(top['video']).name} @ {top['start']:.2f} (score {top['score']:.2f})" if top else "no hit"
            print(f"  {label} (fold {job['fold']}): {Path(job['source']).name} @ {job['true_start']:.2f} "
                  f"[{job['transform']}, {job['length']:g}s] -> {got}")
    alarms = [j for j in jobs if j["kind"] == "negative" and j["false_alarm"] and j["fold"] == 0]
    for job in alarms[:8]:
        top = job["hits"][0]
        print(f"  false alarm (fold 0): {job['negative_kind']} {Path(job['source']).name} -> "
              f"{Path(top['video']).name} @ {top['start']:.2f} (score {top['score']:.2f})")


if __name__ == "__main__":
    main()

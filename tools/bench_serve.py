"""Load test of ``vsearch serve``: concurrent clients query while jobs add videos.

    python -m tools.bench_serve [DIR] [--library 3] [--add 3] [--clients 1 4 16]
                                [--seconds 4] [--clips 4] [--workers N]

Videos come from DIR (default ../shared/videos when present, else six generated
ones): the first ``--library`` files of at least 8 s (by name) are indexed before the
run, the next ``--add`` are added through the server while it is loaded, one job at
the start of each client level. Clips of 5 s, re-encoded at CRF 23, are cut from the
library videos (seed 7). Everything stays on loopback and in a temporary folder.

Prints, per number of clients: queries answered, throughput, p50 and p99 latency of
an upload query (client side), errors, and the p50 over the in-process p50 of
``VideoIndex.query`` on the same clips in the same run (what ``vsearch query`` does
after its start-up). Then checks that every added video is found by a clip of its
own, and that the index holds each video once and verifies clean.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "videos"
VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".mpg", ".mpeg", ".m4v"}


def _videos(folder: Path | None, count: int, work: Path) -> tuple[Path, list[Path]]:
    from tools.support import probe_duration
    from tools.support import make_video

    if folder is None:
        folder = work / "videos"
        folder.mkdir()
        for seed in range(count):
            make_video(folder / f"synthetic-{seed}.mp4", seconds=12, seed=500 + seed, fps=25, size=(320, 240))
    found = [p for p in sorted(folder.iterdir()) if p.suffix.lower() in VIDEO_SUFFIXES and probe_duration(p) >= 8]
    if len(found) < count:
        sys.exit(f"{folder}: {count} videos of 8 s or more needed, found {len(found)}")
    return folder, found[:count]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))] if ordered else float("nan")


def _load(url: str, clips: list[tuple[Path, Path]], clients: int, seconds: float) -> tuple[list[float], list[str]]:
    """``clients`` threads upload clips for ``seconds``; latencies of good answers, and errors."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    stop = time.monotonic() + seconds
    payloads = [(clip.name, clip.read_bytes(), source) for clip, source in clips]

    def client(number: int) -> None:
        with httpx.Client(base_url=url, timeout=300) as http:
            turn = number
            while time.monotonic() < stop:
                name, data, source = payloads[turn % len(payloads)]
                turn += 1
                started = time.perf_counter()
                try:
                    reply = http.post("/query", files={"clip": (name, data)})
                except httpx.HTTPError as exc:
                    errors.append(f"{name}: {type(exc).__name__}")
                    continue
                elapsed = time.perf_counter() - started
                hits = reply.json().get("hits") if reply.status_code == 200 else None
                if not hits or Path(hits[0]["video"]).resolve() != source.resolve():
                    errors.append(f"{name}: HTTP {reply.status_code} {reply.text[:120]}")
                else:
                    latencies.append(elapsed)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="?", type=Path, default=SHARED if SHARED.is_dir() else None)
    parser.add_argument("--library", type=int, default=3, help="videos indexed before the run [3]")
    parser.add_argument("--add", type=int, default=3, help="videos added during the run [3]")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16], help="client counts [1 4 16]")
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds of load per client count [4]")
    parser.add_argument("--clips", type=int, default=4, help="distinct query clips [4]")
    parser.add_argument("--workers", type=int, default=None, help="the server's --workers [CPU count]")
    args = parser.parse_args(argv)
    if args.seconds > 120 or max(args.clients) > 64:
        sys.exit("bounded on purpose: at most 120 s per level and 64 clients")

    from tools.support import ServerProcess, wait_job
    from tools.support import cut_clip, probe_duration
    from vsearch import VideoIndex

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        work = Path(tmp)
        folder, videos = _videos(args.videos, args.library + args.add, work)
        library, added = videos[: args.library], videos[args.library:]
        rng = random.Random(7)
        clips = []
        for number in range(args.clips):
            source = library[number % len(library)]
            start = round(rng.uniform(0.3, probe_duration(source) - 5.5), 2)
            clip = work / f"clip{number}.mp4"
            cut_clip(source, clip, start=start, duration=5.0, crf=23)
            clips.append((clip, source))
        own_clips = []
        for video in added:
            clip = work / f"own-{video.stem}.mp4"
            cut_clip(video, clip, start=1.0, duration=5.0, crf=23)
            own_clips.append((clip, video))

        index = work / "ix"
        started = time.perf_counter()
        with VideoIndex.open(index, create=True, device="cpu") as ix:
            results = ix.add(library)
            assert all(r.ok for r in results), results
            build_s = time.perf_counter() - started
            ix.query(clips[0][0])  # warm-up: decoder process, caches
            local = []
            for clip, _ in clips * 3:
                t0 = time.perf_counter()
                ix.query(clip)
                local.append(time.perf_counter() - t0)
        local_p50 = statistics.median(local)
        print(f"videos from {folder}: {len(library)} indexed in {build_s:.1f} s, {len(added)} added during the run; "
              f"{len(clips)} clips of 5 s")
        print(f"in-process VideoIndex.query p50: {local_p50 * 1000:.0f} ms ({len(local)} queries)")

        extra = ["--allow-dir", str(folder)] + (["--workers", str(args.workers)] if args.workers else [])
        server = ServerProcess(index, *extra, log=work / "server.log")
        rows, jobs, problems = [], [], []
        try:
            with server.client() as http:
                http.post("/query", files={"clip": (clips[0][0].name, clips[0][0].read_bytes())})  # warm-up
                shares = [added[i::len(args.clients)] for i in range(len(args.clients))]
                for clients, share in zip(args.clients, shares):
                    if share:
                        reply = http.post("/videos", json={"paths": [str(p) for p in share]})
                        assert reply.status_code == 202, reply.text
                        jobs.append(reply.json()["id"])
                    t0 = time.perf_counter()
                    latencies, errors = _load(server.url, clips, clients, args.seconds)
                    wall = time.perf_counter() - t0
                    rows.append((clients, len(latencies), len(latencies) / wall, _percentile(latencies, 0.5),
                                 _percentile(latencies, 0.99), len(errors)))
                    problems += errors
                for job_id in jobs:
                    job = wait_job(http, job_id)
                    bad = [f for f in job["files"] if f["status"] != "added"]
                    if job["state"] != "done" or bad:
                        problems.append(f"job {job_id}: {job['state']} {bad} {job['error']}")
                for clip, video in own_clips:
                    hits = http.post("/query", files={"clip": (clip.name, clip.read_bytes())}).json()["hits"]
                    if not hits or Path(hits[0]["video"]).resolve() != video.resolve():
                        problems.append(f"{video.name}: added, but a clip of it is not found")
                listed = [v["path"] for v in http.get("/videos").json()]
        finally:
            server.stop()
        with VideoIndex.open(index, device="cpu") as ix:
            report = ix.verify()
        expected = sorted(str(p.resolve()) for p in videos)
        lost = sorted(set(expected) - set(listed))
        doubled = len(listed) - len(set(listed))

    print(f"{'clients':>7} {'queries':>8} {'queries/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'p50/in-process':>15}")
    for clients, count, rate, p50, p99, errors in rows:
        print(f"{clients:>7} {count:>8} {rate:>10.2f} {p50 * 1000:>8.0f} {p99 * 1000:>8.0f} {errors:>7} "
              f"{p50 / local_p50:>15.2f}")
    print(f"added videos searchable: {len(own_clips) - sum('not found' in p for p in problems)}/{len(own_clips)}; "
          f"lost {len(lost)}, doubled {doubled}; verify {'clean' if report.ok else 'INCONSISTENT'}")
    for problem in problems[:20]:
        print(f"  {problem}")
    if problems or lost or doubled or not report.ok:
        sys.exit(1)


if __name__ == "__main__":
    main()

"""Load test of ``vsearch serve``: concurrent clients query while jobs add videos,
then a mixed run of queries, additions and removals beside idle slow connections.

    python -m tools.bench_serve [DIR] [--library 3] [--add 3] [--clients 1 4 16]
                                [--seconds 4] [--clips 4] [--workers N]
                                [--mixed-seconds 30] [--mixed-clients 4] [--slow 200]
                                [--monitor-seconds 20] [--unseen 3] [--baseline REF]

Videos come from DIR (default ../shared/videos when present, else nine generated
ones): the first ``--library`` files of at least 8 s (by name) are indexed before the
run, the next ``--add`` are added through the server while it is loaded, one job at
the start of each client level. Clips of 5 s, re-encoded at CRF 23, are cut from the
library videos (seed 7). Everything stays on loopback and in a temporary folder.

Prints, per number of clients: queries answered, throughput, p50 and p99 latency of
an upload query (client side), errors, and the p50 over the in-process p50 of
``VideoIndex.query`` on the same clips in the same run (what ``vsearch query`` does
after its start-up). Then checks that every added video is found by a clip of its
own, and that the index holds each video once and verifies clean.

The mixed run (``--mixed-seconds``, 0 to skip) is what a server on an open network
sees: ``--mixed-clients`` clients upload library clips (each must find its source),
one client queries clips of the videos being added and removed (any hits, but never
an error), one writer adds those videos and removes them again, job after job, and
``--slow`` connections send a request's headers a byte a second (slowloris; the server
closes each after its header timeout and it connects again). Prints queries per
second, p50 and p99, errors (any is a failure), jobs, the slow connections' closes,
and the peak RSS of the server with its decoder processes; then ``verify``.

The monitoring run (``--monitor-seconds`` per level, 0 to skip) is what a service
checking every upload sees (issue #25): 90 % of the clips are never indexed (3 clips of
5 s from each of the ``--unseen`` videos after the added ones: any answer but an
error), the rest are the library clips (each must find its source). It is run on this
tree and on ``--baseline`` (default HEAD, checked out with ``git worktree``), each
serving an index of the library videos built by its own ``vsearch ingest``. Each
server is left alone 5 s after it starts, then gets a first burst of as many queries
at once as the largest client count: printed are the time until the last answer, the
CPU seconds of the server and its decoders, and the decoder processes it started
meanwhile. Then per client count, engines alternating (which goes first, too):
queries answered, queries per second, p50 and p99, errors, never-indexed clips
answered with hits, and CPU seconds per query (server and decoders: what other load
on a shared machine does not change); last, current / baseline of both.
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "videos"
VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".mpg", ".mpeg", ".m4v"}
#: Seconds a server just started is left alone before its first burst (its start-up ends).
SETTLE_SECONDS = 5.0
#: Never-indexed clips per library clip in the monitoring mix (90 %), and per unseen video.
UNSEEN_PER_LIBRARY_CLIP = 9
CLIPS_PER_UNSEEN_VIDEO = 3
#: Throughput at 16 clients on the monitoring mix, against today's, at least (issue #25).
TARGET_SPEEDUP = 3.0


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


@dataclass
class Tally:
    """What clients saw: the latency of each right answer, errors, and the never-indexed
    clips answered with hits (false alarms: not errors, but counted)."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unseen_hits: list[str] = field(default_factory=list)


def _payloads(clips: list[tuple[Path, Path | None]]) -> list[tuple[str, bytes, Path | None]]:
    """(name, bytes, source) of each clip, each file read once however often it comes."""
    data = {clip: clip.read_bytes() for clip in {clip for clip, _ in clips}}
    return [(clip.name, data[clip], source) for clip, source in clips]


def _query(http, payload: tuple[str, bytes, Path | None], tally: Tally) -> None:
    """One upload. A clip with a source must find it first; one without must be
    answered (200); the latency of a right answer is kept."""
    import httpx

    name, data, source = payload
    started = time.perf_counter()
    try:
        reply = http.post("/query", files={"clip": (name, data)})
    except httpx.HTTPError as exc:
        tally.errors.append(f"{name}: {type(exc).__name__}")
        return
    elapsed = time.perf_counter() - started
    hits = reply.json().get("hits") if reply.status_code == 200 else None
    if source is None and hits is not None:
        tally.latencies.append(elapsed)
        if hits:
            tally.unseen_hits.append(name)
    elif not hits or source is None or Path(hits[0]["video"]).resolve() != source.resolve():
        tally.errors.append(f"{name}: HTTP {reply.status_code} {reply.text[:120]}")
    else:
        tally.latencies.append(elapsed)


def _ask(server, payloads: list[tuple[str, bytes, Path | None]], first: int, stop: float, tally: Tally) -> None:
    """One client: upload the clips in turn, from the ``first``, until ``stop``."""
    with server.client(timeout=300) as http:
        turn = first
        while time.monotonic() < stop:
            _query(http, payloads[turn % len(payloads)], tally)
            turn += 1


def _figures(tally: Tally, wall: float) -> tuple[int, float, float, float, int, int]:
    """Queries answered right, queries per second, p50 and p99 latency, errors, false alarms."""
    latencies = tally.latencies
    return (len(latencies), len(latencies) / wall, _percentile(latencies, 0.5), _percentile(latencies, 0.99),
            len(tally.errors), len(tally.unseen_hits))


def _run_all(threads: list[threading.Thread]) -> float:
    """Start the threads, wait for them all; the seconds it took."""
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def _load(server, clips: list[tuple[Path, Path | None]], clients: int, seconds: float
          ) -> tuple[Tally, float, float]:
    """``clients`` threads upload clips for ``seconds``, client n from the n-th clip
    on (so at any time a tenth of the clients of a 90 % mix ask a library clip): what
    they saw, the wall time, and the CPU seconds of the server and its decoders."""
    payloads, tally = _payloads(clips), Tally()
    stop = time.monotonic() + seconds
    cpu = server.cpu_seconds()
    wall = _run_all([threading.Thread(target=_ask, args=(server, payloads, n, stop, tally)) for n in range(clients)])
    return tally, wall, server.cpu_seconds() - cpu


class SlowClients:
    """``count`` connections sending a request's headers one byte a second; each one
    the server closes is opened again."""

    def __init__(self, host: str, port: int, count: int) -> None:
        self.address, self.count = (host, port), count
        self.request = f"GET /stats HTTP/1.1\r\nHost: {host}:{port}\r\nX-Slow: {'x' * 64}\r\n\r\n".encode()
        self.closed_by_server = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-clients")

    def _open(self) -> list:
        sock = socket.create_connection(self.address, timeout=5)
        sock.setblocking(False)
        return [sock, 0]

    def _run(self) -> None:
        held = [self._open() for _ in range(self.count)]
        while not self._stop.wait(1.0):
            for entry in held:
                sock, sent = entry
                try:
                    if sock.recv(4096) == b"":
                        raise ConnectionResetError
                except BlockingIOError:
                    pass  # nothing from the server: still open
                except OSError:
                    self.closed_by_server += 1
                    sock.close()
                    entry[:] = self._open()
                    continue
                try:
                    sock.send(self.request[sent % (len(self.request) - 2):][:1])
                    entry[1] = sent + 1
                except OSError:
                    pass
        for sock, _ in held:
            sock.close()

    def __enter__(self) -> "SlowClients":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _mixed(server, clips: list[tuple[Path, Path]], churn: list[tuple[Path, Path]], *, clients: int,
           seconds: float, slow: int) -> dict:
    """The mixed run (see the module docstring); its counts and latencies."""
    from tools.support import wait_job

    tally, churn_tally = Tally(), Tally()
    errors = tally.errors
    jobs = {"added": 0, "removed": 0}
    stop = time.monotonic() + seconds

    def churn_videos() -> None:
        with server.client(timeout=300) as http:
            turn = 0
            while time.monotonic() < stop:
                video = churn[turn % len(churn)][1]
                turn += 1
                job = wait_job(http, http.post("/videos", json={"paths": [str(video)]}).json()["id"], timeout=600)
                status = job["files"][0]
                if job["state"] != "done" or status["status"] not in ("added", "skipped"):
                    errors.append(f"adding {video.name}: {job['state']} {status}")
                    continue
                jobs["added"] += 1
                reply = http.delete(f"/videos/{status['video_id']}")
                job = wait_job(http, reply.json()["id"], timeout=600) if reply.status_code == 202 else None
                if job is None or job["state"] != "done":
                    errors.append(f"removing {video.name}: HTTP {reply.status_code} {job}")
                    continue
                jobs["removed"] += 1

    coming_and_going = _payloads([(clip, None) for clip, _ in churn])  # hits or none, never an error
    payloads = _payloads(clips)
    with SlowClients(server.host, server.port, slow) as slow_clients:
        wall = _run_all([threading.Thread(target=_ask, args=(server, payloads, n, stop, tally))
                         for n in range(clients)]
                        + [threading.Thread(target=_ask, args=(server, coming_and_going, 0, stop, churn_tally)),
                           threading.Thread(target=churn_videos)])
        with server.client() as http:  # an authorised request among the slow connections
            if http.get("/stats").status_code != 200:
                errors.append("GET /stats failed beside the slow connections")
    errors += churn_tally.errors
    latencies = tally.latencies
    return {"queries": len(latencies), "rate": len(latencies) / wall, "p50": _percentile(latencies, 0.5),
            "p99": _percentile(latencies, 0.99), "errors": errors, "jobs": jobs,
            "slow_closed": slow_clients.closed_by_server, "peak_rss": server.peak_rss()}


def _monitoring_mix(unseen: list[Path], library_clips: list[tuple[Path, Path]]) -> list[tuple[Path, Path | None]]:
    """Nine never-indexed clips, then a library clip, over and over."""
    mix, turn = [], 0
    for clip, source in library_clips:
        for _ in range(UNSEEN_PER_LIBRARY_CLIP):
            mix.append((unseen[turn % len(unseen)], None))
            turn += 1
        mix.append((clip, source))
    return mix


def _first_burst(server, clips: list[tuple[Path, Path | None]], clients: int) -> tuple[Tally, float, float, int]:
    """``clients`` queries at once, one each, on a server that has answered none: what
    they saw, the seconds until the last answer, the CPU seconds of the server and its
    decoders, and the decoder processes the server started meanwhile."""
    payloads, tally = _payloads(clips), Tally()
    before, seen, done = server.decoders(), set(), threading.Event()
    cpu = server.cpu_seconds()

    def watch() -> None:
        while not done.is_set():
            seen.update(server.decoders())
            time.sleep(0.01)

    start = threading.Barrier(clients)

    def one(number: int) -> None:
        with server.client(timeout=300) as http:
            start.wait()
            _query(http, payloads[number % len(payloads)], tally)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        wall = _run_all([threading.Thread(target=one, args=(n,)) for n in range(clients)])
    finally:
        done.set()
        watcher.join()
    return tally, wall, server.cpu_seconds() - cpu, len(seen - before)


def _monitor(args, library: list[Path], unseen_videos: list[Path], library_clips: list[tuple[Path, Path]],
             work: Path) -> dict:
    """The monitoring run on both engines (see the module docstring)."""
    from tools.support import ServerProcess, cut_clip, probe_duration
    from tools.support.engines import baseline_engine, current_engine

    rng = random.Random(8)
    unseen = []
    for video in unseen_videos:
        for number in range(CLIPS_PER_UNSEEN_VIDEO):
            clip = work / f"unseen-{video.stem}-{number}.mp4"
            cut_clip(video, clip, start=round(rng.uniform(0.3, probe_duration(video) - 5.5), 2), duration=5.0, crf=23)
            unseen.append(clip)
    mix = _monitoring_mix(unseen, library_clips)
    extra = ["--workers", str(args.workers)] if args.workers else []
    servers, bursts, levels = {}, {}, {}
    with baseline_engine(args.baseline) as baseline:
        engines = [baseline, current_engine()]
        try:
            for engine in engines:
                index = work / f"monitor-{engine.name}"
                engine.must_run("ingest", *map(str, library), "--index", str(index), "--quiet")
                servers[engine.name] = server = ServerProcess(index, *extra, log=work / f"monitor-{engine.name}.log",
                                                              token="bench-token", engine=engine.root)
                time.sleep(SETTLE_SECONDS)
                bursts[engine.name] = _first_burst(server, mix, max(args.clients))
            for level, clients in enumerate(args.clients):
                for engine in engines if level % 2 == 0 else engines[::-1]:  # drift of the machine evens out
                    levels[clients, engine.name] = _load(servers[engine.name], mix, clients, args.monitor_seconds)
        finally:
            for server in servers.values():
                server.stop()
    return {"engines": [(engine.name, engine.label) for engine in engines], "unseen": len(unseen),
            "library_clips": len(library_clips), "bursts": bursts, "levels": levels}


def _print_monitoring(args, run: dict) -> list[str]:
    """The monitoring run's lines; returns its errors."""
    names = [name for name, _ in run["engines"]]
    print(f"monitoring run (issue #25): 90 % never-indexed 5 s clips ({run['unseen']} clips of {args.unseen} videos "
          f"never indexed), 10 % library clips ({run['library_clips']}); each engine serves its own index of the "
          f"{args.library} library videos, --workers {args.workers or 'CPU count'}; {args.monitor_seconds:g} s per "
          "level, engines alternating")
    for name, label in run["engines"]:
        print(f"  {name}: {label}")
    print(f"first burst: {max(args.clients)} queries at once, {SETTLE_SECONDS:g} s after the server started")
    errors = []
    for name in names:
        tally, wall, cpu, started = run["bursts"][name]
        errors += tally.errors
        print(f"  {name:<9} last answer after {wall:.2f} s, p50 {_percentile(tally.latencies, 0.5) * 1000:.0f} ms, "
              f"cpu {cpu:.1f} s, {started} decoder processes started during it, errors {len(tally.errors)}")
    print(f"{'clients':>7} {'engine':<9} {'queries':>8} {'queries/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
          f"{'unseen with hits':>17} {'cpu s/query':>12}")
    rates: dict[tuple[int, str], float] = {}
    costs: dict[tuple[int, str], float] = {}
    for clients in args.clients:
        for name in names:
            tally, wall, cpu = run["levels"][clients, name]
            errors += tally.errors
            count, rate, p50, p99, failed, false_alarms = _figures(tally, wall)
            rates[clients, name], costs[clients, name] = rate, cpu / max(count, 1)
            print(f"{clients:>7} {name:<9} {count:>8} {rate:>10.2f} {p50 * 1000:>8.0f} {p99 * 1000:>8.0f} "
                  f"{failed:>7} {false_alarms:>17} {costs[clients, name]:>12.2f}")
    print("current / baseline: " + ", ".join(
        f"{clients} client{'s' if clients > 1 else ''} {rates[clients, 'current'] / rates[clients, 'baseline']:.2f}x "
        f"queries/s ({costs[clients, 'current'] / costs[clients, 'baseline']:.2f}x cpu per query)"
        for clients in args.clients) + f"; target (issue #25): >= {TARGET_SPEEDUP:g}x queries/s at 16 clients")
    return errors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="?", type=Path, default=SHARED if SHARED.is_dir() else None)
    parser.add_argument("--library", type=int, default=3, help="videos indexed before the run [3]")
    parser.add_argument("--add", type=int, default=3, help="videos added during the run [3]")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16], help="client counts [1 4 16]")
    parser.add_argument("--seconds", type=float, default=4.0, help="seconds of load per client count [4]")
    parser.add_argument("--clips", type=int, default=4, help="distinct query clips [4]")
    parser.add_argument("--workers", type=int, default=None, help="the server's --workers [CPU count]")
    parser.add_argument("--mixed-seconds", type=float, default=30.0, help="seconds of the mixed run, 0: none [30]")
    parser.add_argument("--mixed-clients", type=int, default=4, help="library clients in the mixed run [4]")
    parser.add_argument("--slow", type=int, default=200, help="slow connections in the mixed run [200]")
    parser.add_argument("--monitor-seconds", type=float, default=20.0,
                        help="seconds per level and engine of the monitoring run, 0: none [20]")
    parser.add_argument("--unseen", type=int, default=3, help="never-indexed videos of the monitoring run [3]")
    parser.add_argument("--baseline", default="HEAD", help="git commit the monitoring run compares with [HEAD]")
    args = parser.parse_args(argv)
    if (args.seconds > 120 or args.monitor_seconds > 120 or max(args.clients) > 64 or args.mixed_seconds > 600
            or args.slow > 1000):
        sys.exit("bounded on purpose: at most 120 s per level, 64 clients, a 600 s mixed run, 1000 slow connections")
    if args.unseen < 1:
        parser.error("--unseen from 1")

    from tools.support import ServerProcess, wait_job
    from tools.support import cut_clip, probe_duration
    from vsearch import VideoIndex

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        work = Path(tmp)
        folder, found = _videos(args.videos, args.library + args.add + args.unseen, work)
        library, added = found[: args.library], found[args.library: args.library + args.add]
        unseen_videos, videos = found[args.library + args.add:], library + added
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
        server = ServerProcess(index, *extra, log=work / "server.log", token="bench-token")
        rows, jobs, problems, mixed, stills = [], [], [], None, []
        try:
            with server.client() as http:
                http.post("/query", files={"clip": (clips[0][0].name, clips[0][0].read_bytes())})  # warm-up
                shares = [added[i::len(args.clients)] for i in range(len(args.clients))]
                for clients, share in zip(args.clients, shares):
                    if share:
                        reply = http.post("/videos", json={"paths": [str(p) for p in share]})
                        assert reply.status_code == 202, reply.text
                        jobs.append(reply.json()["id"])
                    tally, wall, _ = _load(server, clips, clients, args.seconds)
                    rows.append((clients, *_figures(tally, wall)))
                    problems += tally.errors
                for job_id in jobs:
                    job = wait_job(http, job_id)
                    bad = [f for f in job["files"] if f["status"] != "added"]
                    if job["state"] != "done" or bad:
                        problems.append(f"job {job_id}: {job['state']} {bad} {job['error']}")
                for clip, video in own_clips:
                    reply = http.post("/query", files={"clip": (clip.name, clip.read_bytes())})
                    if reply.status_code == 422 and "still picture" in reply.text:
                        stills.append(video.name)  # a static camera's stretch: refused by design
                        continue
                    if reply.status_code != 200:
                        problems.append(f"{video.name}: a clip of it is answered {reply.status_code}: {reply.text}")
                        continue
                    hits = reply.json()["hits"]
                    if not hits or Path(hits[0]["video"]).resolve() != video.resolve():
                        problems.append(f"{video.name}: added, but a clip of it is not found")
                listed = [v["path"] for v in http.get("/videos").json()]
            if args.mixed_seconds > 0:
                mixed = _mixed(server, clips, own_clips, clients=args.mixed_clients, seconds=args.mixed_seconds,
                               slow=args.slow)
                problems += mixed["errors"]
                with server.client() as http:
                    listed = [v["path"] for v in http.get("/videos").json()]
        finally:
            server.stop()
        with VideoIndex.open(index, device="cpu") as ix:
            report = ix.verify()
        # After the mixed run the added videos are removed again (as the last job left them).
        expected = sorted(str(p.resolve()) for p in (library if mixed else videos))
        lost = sorted(set(expected) - set(listed))
        doubled = len(listed) - len(set(listed))
        problems += [f"{path}: still indexed after its removal" for path in sorted(set(listed) - set(expected))]
        monitoring = _monitor(args, library, unseen_videos, clips, work) if args.monitor_seconds > 0 else None

    print(f"{'clients':>7} {'queries':>8} {'queries/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'p50/in-process':>15}")
    for clients, count, rate, p50, p99, errors, _ in rows:
        print(f"{clients:>7} {count:>8} {rate:>10.2f} {p50 * 1000:>8.0f} {p99 * 1000:>8.0f} {errors:>7} "
              f"{p50 / local_p50:>15.2f}")
    if mixed:
        print(f"mixed run, {args.mixed_seconds:g} s: {args.mixed_clients} library clients + 1 on videos being added "
              f"and removed, {mixed['jobs']['added']} additions and {mixed['jobs']['removed']} removals, "
              f"{args.slow} slow connections ({mixed['slow_closed']} closed by the server's header timeout)")
        print(f"  queries {mixed['queries']}, {mixed['rate']:.2f} queries/s, p50 {mixed['p50'] * 1000:.0f} ms, "
              f"p99 {mixed['p99'] * 1000:.0f} ms, errors {len(mixed['errors'])}, "
              f"peak RSS (server + decoders) {mixed['peak_rss'] / (1 << 20):.0f} MiB")
    searchable = len(own_clips) - len(stills) - sum("not found" in p for p in problems)
    print(f"added videos searchable: {searchable}/{len(own_clips) - len(stills)}"
          + (f" (the clip of {', '.join(stills)} refused as a still, by design)" if stills else "") + "; "
          f"lost {len(lost)}, doubled {doubled}; verify {'clean' if report.ok else 'INCONSISTENT'}")
    if monitoring:
        problems += _print_monitoring(args, monitoring)
    for problem in problems[:20]:
        print(f"  {problem}")
    if problems or lost or doubled or not report.ok:
        sys.exit(1)


if __name__ == "__main__":
    main()

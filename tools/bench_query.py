"""Search latency and recall of the FAISS index types vsearch supports, by library size.

    python -m tools.bench_query [--sizes 100000 1000000] [--videos DIR] [--clip-count 30]
    python -m tools.bench_query --clips [--sizes 1e6,1e7] [--clip-count 60]   (clip level, tools/bench_clips.py)

Database vectors have the real window dimension and a realistic distribution: real
windows of real videos (``--videos``, default ../shared/videos, else synthetic
footage) are sampled, mixed and perturbed, then L2-normalised like vsearch's own.
A "clip" is what a 10-second query sends to FAISS in its plain reading: 5 phases x
17 windows = 85 vectors, each asking for its 32 nearest neighbours (a clip that also
needs its edited readings, mirrored / re-timed / inset, sends about 6 times more). For each size and index type
it reports the per-clip latency p50/p95 (all cores), recall of the exact top-10,
bytes per vector and memory per indexed hour of video (7,200 windows/hour).
IVF types are measured at the smallest nprobe reaching 0.98 recall.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "videos"
WINDOWS_PER_HOUR = 7200  # one window every 0.5 s
CLIP_VECTORS = 85
NEIGHBOURS = 32


def real_windows(videos: Path | None, limit: int = 40) -> np.ndarray:
    from vsearch.config import IndexConfig
    from vsearch.device import resolve_device
    from vsearch.describe import describe_video
    from vsearch.windows import window_vectors

    config, device = IndexConfig(), resolve_device("cpu")
    if videos is None:
        from tools.support import make_video

        tmp = Path(tempfile.mkdtemp())
        files = [make_video(tmp / f"s{i}.mp4", seconds=20, seed=900 + i) for i in range(8)]
    else:
        files = sorted(p for p in videos.rglob("*") if p.suffix.lower() in {".mp4", ".webm", ".avi", ".mpg", ".mkv"})
    out = [window_vectors(describe_video(f, config, device).blocks, config) for f in files[:limit]]
    return np.concatenate(out)


def synthesise(base: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Mix two real windows, add noise, normalise: a large, realistic-looking library."""
    rng = np.random.default_rng(seed)
    a = base[rng.integers(0, len(base), n)]
    b = base[rng.integers(0, len(base), n)]
    w = rng.uniform(0.55, 1.0, size=(n, 1)).astype(np.float32)
    out = w * a + (1 - w) * b + rng.normal(0, 0.25 / np.sqrt(base.shape[1]), size=a.shape).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


def make_db(base: np.ndarray, n: int, batch: int = 200_000):
    for start in range(0, n, batch):
        yield synthesise(base, min(batch, n - start), seed=start)


def exact_topk(base: np.ndarray, n: int, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """Exact top-k over the whole database, batch by batch (it may not fit in memory)."""
    best_d = np.full((len(queries), k), np.inf, np.float32)
    best_i = np.zeros((len(queries), k), np.int64)
    offset = 0
    for chunk in make_db(base, n):
        d, i = faiss.knn(queries, chunk, k)
        d = np.concatenate([best_d, d], 1)
        i = np.concatenate([best_i, i + offset], 1)
        order = np.argsort(d, axis=1)[:, :k]
        best_d, best_i = np.take_along_axis(d, order, 1), np.take_along_axis(i, order, 1)
        offset += len(chunk)
    return best_i


def build(kind: str, dim: int, base: np.ndarray, n: int) -> faiss.Index:
    index = faiss.index_factory(dim, kind)
    if not index.is_trained:
        train = synthesise(base, min(n, max(100_000, 50 * _nlist(kind))), seed=10**9)
        index.train(train)
    for chunk in make_db(base, n):
        index.add(chunk)
    return index


def _nlist(kind: str) -> int:
    return int(kind.split(",")[0][3:]) if kind.startswith("IVF") else 1


def index_types(n: int) -> list[str]:
    from vsearch.store.vectorstore import ivf_lists

    nlist = ivf_lists(n)
    small = ["Flat", f"IVF{nlist},Flat", f"IVF{nlist},SQfp16", f"IVF{nlist},SQ8", f"IVF{nlist},PQ56", "HNSW32"]
    return small if n <= 1_000_000 else [f"IVF{nlist},SQfp16", f"IVF{nlist},SQ8"]


def bytes_per_vector(index: faiss.Index, n: int) -> float:
    """Memory per vector: the serialised size up to 10^6 (serialising 10^7 would need
    a second copy in memory), else codes + ids, or codes + graph links for HNSW."""
    if n <= 1_000_000:
        return len(faiss.serialize_index(index)) / n
    hnsw = getattr(index, "hnsw", None)
    if hnsw is not None:
        return index.storage.sa_code_size() + 4 * hnsw.neighbors.size() / n
    return index.sa_code_size() + 8


def measure(index: faiss.Index, clips: list[np.ndarray], truth: list[np.ndarray]) -> tuple[float, float, float]:
    times, hits = [], 0
    for q, t in zip(clips, truth):
        t0 = time.perf_counter()
        ids = index.search(q, NEIGHBOURS).ids
        times.append(time.perf_counter() - t0)
        hits += sum(len(set(row[:10]) & set(tr)) for row, tr in zip(ids, t))
    recall = hits / (len(clips) * CLIP_VECTORS * 10)
    return float(np.percentile(times, 50)) * 1e3, float(np.percentile(times, 95)) * 1e3, recall


def end_to_end(hours: float, videos: Path | None, runs: int = 5) -> None:
    """Wall time of a whole `vsearch query` process (start included) on a big index.

    The index holds one real video plus enough synthetic 10-minute "videos" (real
    block descriptors, perturbed) to reach ``hours``; its vector type is what
    ``auto`` picks for that size. The query is a 10 s 720p clip of the real video.
    """
    import statistics
    import subprocess
    import sys

    from tools.support import cut_clip
    from tools.support import make_library_index, make_video
    from vsearch import VideoIndex

    work = Path(tempfile.mkdtemp(prefix="vsearch-e2e-"))
    real = make_video(work / "real.mp4", seconds=30, seed=4242, size=(1280, 720))
    clip = cut_clip(real, work / "clip.mp4", start=7.3, duration=10.0, crf=23)
    index_path = work / "index"
    t0 = time.perf_counter()
    make_library_index(index_path, hours, real)
    with VideoIndex.open(index_path, device="cpu") as index:
        stats = index.stats()
    print(f"built a {hours:g} h library: {stats.vectors} vectors as {stats.index_type}, "
          f"{stats.bytes / 1e6:.0f} MB on disk, in {time.perf_counter() - t0:.0f} s", flush=True)
    walls, top = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "vsearch", "query", str(clip), "--index", str(index_path), "--json"],
                              capture_output=True, text=True, cwd=ROOT)
        walls.append(time.perf_counter() - t0)
        top = proc.stdout
    print(f"end-to-end `vsearch query` of a 10 s 720p clip against {hours:g} h: "
          f"median {statistics.median(walls):.2f} s, max {max(walls):.2f} s over {runs} runs")
    print(f"  top hit: {top.strip()[:200]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="*", default=None,
                        help="library sizes in windows, e.g. 1e6,1e7 or 100000 1000000 [1e5 1e6; --clips: 1e6 1e7]")
    parser.add_argument("--videos", type=Path, default=SHARED if SHARED.is_dir() else None)
    parser.add_argument("--clips", action="store_true",
                        help="clip level: recall@1 and search time of the compact two-stage index against "
                             "exact search, real library + distractor windows (see tools/bench_clips.py)")
    parser.add_argument("--clip-count", type=int, default=None, help="query clips [30; --clips: 60]")
    parser.add_argument("--clip-seconds", type=float, default=6.0, help="--clips: length of a query clip")
    parser.add_argument("--types", nargs="*", default=None,
                        help="factory strings to measure ({nlist} is replaced by the size's list count) "
                             "[Flat, IVF-Flat, IVF-SQfp16, IVF-SQ8, IVF-PQ56, HNSW32 up to 1e6; IVF-SQfp16, IVF-SQ8 above]")
    parser.add_argument("--e2e-hours", type=float, default=0, help="also time a whole query process on an index of this many hours")
    args = parser.parse_args()
    from vsearch.store.vectorstore import ivf_lists

    faiss.omp_set_num_threads(os.cpu_count() or 2)
    sizes = [int(float(part)) for text in (args.sizes or []) for part in text.split(",") if part]
    if args.clips:
        from tools.bench_clips import run

        if args.videos is None:
            raise SystemExit("--clips needs real videos: --videos DIR (default ../shared/videos)")
        results = run(sizes or [1_000_000, 10_000_000], args.videos, clip_count=args.clip_count or 60,
                      clip_seconds=args.clip_seconds)
        for result in results:
            print(result.line())
        return
    args.sizes = sizes or [100_000, 1_000_000]
    args.clips = args.clip_count or 30
    base = real_windows(args.videos)
    dim = base.shape[1]
    print(f"{len(base)} real windows of dim {dim}; {CLIP_VECTORS} vectors x top-{NEIGHBOURS} per clip, "
          f"{faiss.omp_get_max_threads()} threads\n")
    print(f"{'size':>10} {'index':<18}{'nprobe':>7}{'p50 ms':>9}{'p95 ms':>9}{'recall@10':>11}{'B/vec':>7}{'MB/hour':>9}")
    for n in args.sizes:
        rng = np.random.default_rng(n)
        # Queries: perturbed copies of library vectors, as a re-encoded clip would give.
        sample = next(make_db(base, min(n, 200_000)))
        clips = []
        for _ in range(args.clips):
            rows = sample[rng.integers(0, len(sample), CLIP_VECTORS)]
            noisy = rows + rng.normal(0, 0.15 / np.sqrt(dim), rows.shape).astype(np.float32)
            clips.append((noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32))
        # One pass over the (regenerated) database for all clips at once.
        truth = np.split(exact_topk(base, n, np.concatenate(clips)), len(clips))
        kinds = index_types(n) if args.types is None else [t.replace("{nlist}", str(ivf_lists(n))) for t in args.types]
        for kind in kinds:
            t0 = time.perf_counter()
            index = build(kind, dim, base, n)
            build_s = time.perf_counter() - t0
            bytes_per_vec = bytes_per_vector(index, n)
            settings = [None]
            if kind.startswith("IVF"):
                settings = [1, 2, 4, 8, 16, 32, 64, 128, 256]
            elif kind.startswith("HNSW"):
                settings = [16, 32, 64, 128, 256]
            for setting in settings:
                if kind.startswith("IVF"):
                    faiss.extract_index_ivf(index).nprobe = setting
                elif kind.startswith("HNSW"):
                    index.hnsw.efSearch = setting
                p50, p95, recall = measure(index, clips, truth)
                if recall >= 0.98 or setting == settings[-1]:
                    break
            label = "" if setting is None else (f"{setting}" if kind.startswith("IVF") else f"ef{setting}")
            print(f"{n:>10} {kind:<18}{label:>7}{p50:>9.1f}{p95:>9.1f}{recall:>11.3f}{bytes_per_vec:>7.0f}"
                  f"{bytes_per_vec * WINDOWS_PER_HOUR / 1e6:>9.2f}   (built in {build_s:.0f} s)", flush=True)
            del index
    if args.e2e_hours:
        end_to_end(args.e2e_hours, args.videos)


if __name__ == "__main__":
    main()

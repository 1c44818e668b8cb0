"""Clip-level search at 10^6-10^8 windows: the compact two-stage index against exact search.

    python -m tools.bench_query --clips [--sizes 1e6,1e7] [--clip-count 60] [--clip-seconds 6]

The library is real: half of the shared videos (every other file by name), described
by vsearch. The other half is the raw material of *distractor* videos, made the way
unrelated footage looks: 10-minute videos spliced from runs of 5-60 s of consecutive
block descriptors taken at random places of random source videos, each run mixed
with another (weight 0.6-1) and given small noise (Gaussian, 5 % of a block's
norm). Distractors never copy a queried video, so a distractor that wins is a false
match, as in a real archive.

Query clips are cut from the library videos at random places (never on the block
grid) and edited as ``tools.eval`` does, with the edits the plain reading handles
(re-encoding, scaling, colour, crops, bars, blur, noise, logos, subtitles; mirrored,
turned, re-timed and inset clips need the edited readings, which multiply every
figure alike and are left out). Each clip is decoded and described once.

For each size, distractors are generated in chunks and streamed, never whole in
memory: their block descriptors go to a float16 file on disk (the full-precision
store the re-rank reads, memory-mapped), their windows go into the compact index
(vsearch's ``VectorStore`` of ``compact_index_type``) and through an exact top-32
search of every clip window at once (the Flat baseline, one batched pass). Then
every clip is searched: the search stage (compact candidates + exact re-rank) is
timed per clip; both neighbour lists go through the same vote and alignment
(``vsearch.search.pipeline.aggregate``), and the top hit must name the clip's video with its
start within 1 s. The float16 file is deleted afterwards.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from vsearch.config import IndexConfig
from vsearch.models import VideoRecord
from vsearch.search.align import Aligner
from vsearch.search.pipeline import aggregate
from vsearch.search.tuning import NEIGHBOURS_PER_WINDOW
from vsearch.store.matches import Matches
from vsearch.store.rerank import DEFAULT_CANDIDATE_FACTOR, TwoStageSearch
from vsearch.store.vectorstore import VectorStore, compact_index_type
from vsearch.windows import window_ids, window_vectors, windows_from_blocks

#: Edits of the evaluation that the plain reading answers (see the module docstring).
PLAIN_EDITS = ["exact", "crf32", "half", "fps15", "bright", "contrast", "gamma", "saturation", "gray", "crop10",
               "subtitles", "crf40", "quarter", "crop20", "letterbox", "pillarbox", "blur", "noise", "logo"]

DISTRACTOR_BLOCKS = 1200  # 10 minutes a distractor video
START_TOLERANCE = 1.0


@dataclass(frozen=True, kw_only=True)
class EvalClip:
    video_id: int
    true_start: float
    edit: str
    clip: object  # a QueryClip, plain reading only, decoded once


@dataclass(kw_only=True)
class SizeResult:
    size: int
    recall1: float
    exact_recall1: float
    start_error_ms: float
    exact_start_error_ms: float
    p50_ms: float
    p99_ms: float
    exact_ms_per_clip: float
    bytes_per_window: float
    build_s: float
    removable: bool
    index_type: str

    def line(self) -> str:
        return (f"clips size={self.size} recall1={self.recall1:.3f} exact_recall1={self.exact_recall1:.3f} "
                f"p50_ms={self.p50_ms:.1f} p99_ms={self.p99_ms:.1f} bytes_per_window={self.bytes_per_window:.0f} "
                f"removable={'yes' if self.removable else 'no'}")


def _video_files(videos: Path) -> list[Path]:
    suffixes = {".mp4", ".webm", ".avi", ".mpg", ".mkv", ".mov"}
    return sorted(p for p in videos.rglob("*") if p.suffix.lower() in suffixes)


def describe_videos(files: list[Path], config: IndexConfig) -> list[np.ndarray]:
    from vsearch.device import resolve_device
    from vsearch.describe import describe_video

    device = resolve_device("cpu")
    return [describe_video(f, config, device).blocks.astype(np.float32) for f in files]


def make_clips(files: list[Path], blocks: list[np.ndarray], config: IndexConfig, *, count: int, seconds: float,
               work: Path, seed: int) -> list[EvalClip]:
    from tools.eval import _random_start
    from tools.support import apply_transform
    from vsearch.device import resolve_device
    from vsearch.search.clip import QueryClip

    rng = random.Random(seed)
    long_enough = [i for i, b in enumerate(blocks) if len(b) * config.block_seconds >= seconds + 1.0]
    device = resolve_device("cpu")
    clips = []
    for number in range(count):
        index = rng.choice(long_enough)
        start = _random_start(rng, len(blocks[index]) * config.block_seconds, seconds)
        edit = PLAIN_EDITS[number % len(PLAIN_EDITS)]
        path = apply_transform(edit, files[index], work / f"clip{number}.mp4", start=start, duration=seconds,
                               seed=seed + number)
        clip = QueryClip(path, config, device, mirrored=False, speeds=(1.0,), inset=False, rotations=False)
        clip.windows(clip.readings)  # decoded and described now, not inside the timed search
        clips.append(EvalClip(video_id=index + 1, true_start=start, edit=edit, clip=clip))
    return clips


class DistractorMaker:
    """10-minute distractor videos spliced from real block runs, mixed and noised."""

    def __init__(self, sources: list[np.ndarray], seed: int) -> None:
        self.sources = [s for s in sources if len(s) >= 12]
        self.rng = np.random.default_rng(seed)
        self.scale = float(np.median([np.linalg.norm(s, axis=1).mean() for s in self.sources]))

    def _run(self, length: int) -> np.ndarray:
        source = self.sources[self.rng.integers(len(self.sources))]
        start = self.rng.integers(0, max(len(source) - length, 0) + 1)
        run = source[start:start + length]
        if len(run) < length:  # a short source loops
            run = np.resize(run, (length, run.shape[1]))
        return run

    def video(self, blocks: int) -> np.ndarray:
        parts, total = [], 0
        while total < blocks:
            length = int(min(self.rng.integers(10, 121), blocks - total))
            weight = self.rng.uniform(0.6, 1.0)
            mixed = weight * self._run(length) + (1 - weight) * self._run(length)
            parts.append(mixed)
            total += length
        out = np.concatenate(parts)
        noise = self.rng.normal(0, 0.05 * self.scale / np.sqrt(out.shape[1]), out.shape)
        return (out + noise).astype(np.float16)


class BlockFile:
    """Every video's blocks in one float16 file, memory-mapped: the full-precision store
    the re-rank gathers from (as LMDB in an index), with each video's first row."""

    def __init__(self, path: Path, rows: int, block_dim: int, config: IndexConfig) -> None:
        self.config = config
        self.blocks = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(rows, block_dim))
        self.first_row: dict[int, int] = {}
        self.starts = np.zeros(0, np.int64)
        self.filled = 0

    def append(self, video_id: int, blocks: np.ndarray) -> None:
        self.first_row[video_id] = self.filled
        self.blocks[self.filled:self.filled + len(blocks)] = blocks
        self.filled += len(blocks)

    def freeze(self) -> None:
        self.blocks.flush()
        self.starts = np.full(max(self.first_row) + 1, -1, np.int64)
        for video_id, row in self.first_row.items():
            self.starts[video_id] = row

    def gather(self, ids: np.ndarray) -> np.ndarray:
        """Window vectors by id: W consecutive rows from the video's first row on."""
        rows = self.starts[ids >> 32] + (ids & 0xFFFFFFFF)
        stacked = self.blocks[rows[:, None] + np.arange(self.config.window_blocks)]
        return windows_from_blocks(stacked, self.config)

    def video_blocks(self, video_id: int, count: int) -> np.ndarray:
        row = self.first_row[video_id]
        return np.asarray(self.blocks[row:row + count], dtype=np.float32)


def _merge_topk(best_d, best_i, d, i, k):
    d = np.concatenate([best_d, d], 1)
    i = np.concatenate([best_i, i], 1)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, order, 1), np.take_along_axis(i, order, 1)


def _record(video_id: int, blocks: int, config: IndexConfig) -> VideoRecord:
    windows = max(blocks - config.window_blocks + 1, 0)
    return VideoRecord(id=video_id, path=f"video{video_id}", hash=str(video_id), duration_s=blocks * config.block_seconds,
                       fps=config.analysis_fps, width=0, height=0, frames=0, blocks=blocks, windows=windows, added="")


def _top_hit(clip: EvalClip, matches: Matches, videos: dict, config: IndexConfig,
             library_windows) -> tuple[bool, float | None]:
    query = clip.clip
    windows = query.windows(query.readings)
    aligner = Aligner(library=library_windows, readings=lambda r: query.windows([r], allow_empty=True), speeds=(1.0,))
    hits = aggregate(windows, matches, videos, config, k=1, min_score=0.5, aligner=aligner)
    if not hits:
        return False, None
    hit = hits[0]
    start = hit.start - hit.query_start * hit.speed
    error = abs(start - clip.true_start)
    good = hit.video_id == clip.video_id and error <= START_TOLERANCE
    return good, (error if good else None)


def measure_size(size: int, library: list[np.ndarray], sources: list[np.ndarray], clips: list[EvalClip],
                 config: IndexConfig, work: Path, *, seed: int, chunk_videos: int = 150) -> SizeResult:
    dim, w, k = config.dim, config.window_blocks, NEIGHBOURS_PER_WINDOW
    per_video = DISTRACTOR_BLOCKS - w + 1
    real_windows = sum(max(len(b) - w + 1, 0) for b in library)
    distractors = max(0, -(-(size - real_windows) // per_video))
    rows = sum(len(b) for b in library) + distractors * DISTRACTOR_BLOCKS
    store = BlockFile(work / f"blocks-{size}.npy", rows, config.block_dim, config)
    videos: dict[int, VideoRecord] = {}
    index_type = compact_index_type(size, dim)
    vectors = VectorStore.create(dim, index_type)
    maker = DistractorMaker(sources, seed)
    queries = np.concatenate([c.clip.windows(c.clip.readings).vectors for c in clips]).astype(np.float32)
    best_d = np.full((len(queries), k), np.inf, np.float32)
    best_i = np.full((len(queries), k), -1, np.int64)
    build_s = exact_s = 0.0

    def feed(batch: list[tuple[int, np.ndarray]]) -> None:
        nonlocal best_d, best_i, build_s, exact_s
        ids, vecs = [], []
        for video_id, blocks in batch:
            store.append(video_id, blocks)
            videos[video_id] = _record(video_id, len(blocks), config)
            v = window_vectors(blocks.astype(np.float32), config)
            ids.append(window_ids(video_id, len(v)))
            vecs.append(v)
        ids, vecs = np.concatenate(ids), np.concatenate(vecs)
        t0 = time.perf_counter()
        if not vectors.is_trained:
            sample = vecs[np.random.default_rng(seed).permutation(len(vecs))[:vectors.training_size()]]
            vectors.train(sample)
        vectors.add(ids, vecs)
        t1 = time.perf_counter()
        d, i = faiss.knn(queries, vecs, min(k, len(vecs)))
        best_d, best_i = _merge_topk(best_d, best_i, d, np.where(i >= 0, ids[np.maximum(i, 0)], -1), k)
        build_s += t1 - t0
        exact_s += time.perf_counter() - t1

    # Real videos, stored as float16 like every other (their windows from the rounded blocks).
    batch = [(number + 1, blocks.astype(np.float16)) for number, blocks in enumerate(library)]
    next_id = len(library) + 1
    # The first chunk trains the index: it must hold enough distractors for the lists.
    first = max(chunk_videos, -(-vectors.training_size() // per_video))
    made = 0
    while made < distractors or batch:
        count = min(first if made == 0 else chunk_videos, distractors - made)
        batch += [(next_id + j, maker.video(DISTRACTOR_BLOCKS)) for j in range(count)]
        next_id += count
        made += count
        feed(batch)
        batch = []
        print(f"  {size:.0e}: {vectors.ntotal:,} windows indexed", end="\r", flush=True)
    print(" " * 60, end="\r")
    store.freeze()

    def library_windows(video_id: int) -> np.ndarray:
        return window_vectors(store.video_blocks(video_id, videos[video_id].blocks), config)

    ivf = faiss.extract_index_ivf(vectors.index)
    default_nprobe = ivf.nprobe

    def timed_queries(factor: int, nprobe: int, *, exact: bool = False):
        """Search every clip at these settings: (times, found, start errors[, exact found, exact errors])."""
        ivf.nprobe = nprobe
        search = TwoStageSearch(candidates=vectors.search, gather=store.gather, factor=factor)
        times, good, exact_good, errors, exact_errors = [], 0, 0, [], []
        row = 0
        for clip in clips:
            vecs = clip.clip.windows(clip.clip.readings).vectors
            t0 = time.perf_counter()
            found = search(vecs, k)
            times.append(time.perf_counter() - t0)
            ok, err = _top_hit(clip, found, videos, config, library_windows)
            good += ok
            errors += [err] if ok else []
            if exact:
                exact_ok, exact_err = _top_hit(clip, Matches(best_d[row:row + len(vecs)], best_i[row:row + len(vecs)]),
                                               videos, config, library_windows)
                exact_good += exact_ok
                exact_errors += [exact_err] if exact_ok else []
            row += len(vecs)
        ivf.nprobe = default_nprobe
        return times, good, errors, exact_good, exact_errors

    times, good, errors, exact_good, exact_errors = timed_queries(DEFAULT_CANDIDATE_FACTOR, default_nprobe, exact=True)
    # The same index at other settings, so one run shows what more candidates or probes buy.
    for factor, nprobe in ((DEFAULT_CANDIDATE_FACTOR, 2 * default_nprobe), (2 * DEFAULT_CANDIDATE_FACTOR, default_nprobe),
                           (2 * DEFAULT_CANDIDATE_FACTOR, 2 * default_nprobe)):
        t, g, _, _, _ = timed_queries(factor, nprobe)
        print(f"  {size:.0e} variant: candidates x{factor}, nprobe {nprobe}: recall@1 {g / len(clips):.3f}, "
              f"p50 {1e3 * np.percentile(t, 50):.1f} ms, p99 {1e3 * np.percentile(t, 99):.1f} ms", flush=True)
    print(f"  {size:.0e} default: candidates x{DEFAULT_CANDIDATE_FACTOR}, nprobe {default_nprobe}: recall@1 "
          f"{good / len(clips):.3f}, p50 {1e3 * np.percentile(times, 50):.1f} ms", flush=True)

    path = work / f"compact-{size}.faiss"
    vectors.save(str(path))
    bytes_per_window = path.stat().st_size / vectors.ntotal
    path.unlink()
    # Removal in place: every window of the first library video goes, nothing else.
    before = vectors.ntotal
    removed = vectors.remove_videos([1])
    after_ids = vectors.search(clips[0].clip.windows(clips[0].clip.readings).vectors, k).ids
    removable = removed == videos[1].windows and vectors.ntotal == before - removed and not (
        (after_ids >> 32) == 1).any()
    del store
    (work / f"blocks-{size}.npy").unlink()
    return SizeResult(
        size=size, recall1=good / len(clips), exact_recall1=exact_good / len(clips),
        start_error_ms=1e3 * float(np.median(errors)) if errors else float("nan"),
        exact_start_error_ms=1e3 * float(np.median(exact_errors)) if exact_errors else float("nan"),
        p50_ms=1e3 * float(np.percentile(times, 50)), p99_ms=1e3 * float(np.percentile(times, 99)),
        exact_ms_per_clip=1e3 * exact_s / len(clips), bytes_per_window=bytes_per_window, build_s=build_s,
        removable=removable, index_type=index_type)


def run(sizes: list[int], videos: Path, *, clip_count: int, clip_seconds: float, seed: int = 16) -> list[SizeResult]:
    config = IndexConfig()
    files = _video_files(videos)
    library_files, source_files = files[0::2], files[1::2]
    work = Path(tempfile.mkdtemp(prefix="vsearch-bench-clips-", dir="/tmp" if os.path.isdir("/tmp") else None))
    try:
        t0 = time.perf_counter()
        library = describe_videos(library_files, config)
        sources = describe_videos(source_files, config)
        clips = make_clips(library_files, library, config, count=clip_count, seconds=clip_seconds, work=work, seed=seed)
        windows = sum(len(c.clip.windows(c.clip.readings).vectors) for c in clips)
        print(f"library: {len(library_files)} real videos ({sum(len(b) for b in library) * config.block_seconds:.0f} s); "
              f"distractors from {len(source_files)} others; {len(clips)} clips of {clip_seconds:g} s, "
              f"{windows / len(clips):.0f} windows each (plain reading), made in {time.perf_counter() - t0:.0f} s; "
              f"{faiss.omp_get_max_threads()} threads\n", flush=True)
        results = []
        for size in sizes:
            results.append(measure_size(size, library, sources, clips, config, work, seed=seed))
            print_table(results)
        return results
    finally:
        shutil.rmtree(work, ignore_errors=True)


def print_table(results: list[SizeResult]) -> None:
    print(f"{'windows':>11} {'index':<30}{'recall@1':>9}{'exact':>7}{'start err ms':>13}{'exact':>7}"
          f"{'p50 ms':>8}{'p99 ms':>8}{'flat ms':>9}{'B/window':>9}{'build s':>8}")
    for r in results:
        print(f"{r.size:>11,} {r.index_type:<30}{r.recall1:>9.3f}{r.exact_recall1:>7.3f}{r.start_error_ms:>13.0f}"
              f"{r.exact_start_error_ms:>7.0f}{r.p50_ms:>8.1f}{r.p99_ms:>8.1f}{r.exact_ms_per_clip:>9.0f}"
              f"{r.bytes_per_window:>9.0f}{r.build_s:>8.0f}", flush=True)
    print()

"""Windows: consecutive block descriptors concatenated into searchable vectors.

Window ``i`` of a video covers blocks ``i .. i+W-1`` (stride one block), i.e. seconds
``[i*block, (i+W)*block)``. Its 64-bit id is ``video_id << 32 | region << 28 | i``:
ids never shift when other videos are added or removed, and an id alone names its
video, time and the part of the frame it shows (``v2``: :data:`vsearch.cells.REGIONS`;
0, the whole frame, for every other kind). A window that overlaps a damaged span of
its video (frames that could not be decoded) is not indexed: its number is simply
absent.

An index of ``v2`` features holds, per video, the search vector of every window of
the whole frame and, for every ``REGION_STRIDE``-th window, one of each other region:
a copy cropped to a region is found from those, and aligned with the stored cells.
"""

from __future__ import annotations

import numpy as np

from .cells import FRAME, REGIONS, Region, region_vectors
from .config import IndexConfig

WINDOW_BITS = 32
REGION_BITS = 4
_NUMBER_BITS = WINDOW_BITS - REGION_BITS
_NUMBER_MASK = (1 << _NUMBER_BITS) - 1
_REGION_MASK = (1 << REGION_BITS) - 1

#: Every this many windows of a ``v2`` video also get one entry per region.
REGION_STRIDE = 3


def block_vectors(blocks: np.ndarray, config: IndexConfig, region: Region = FRAME,
                  grid: tuple[int, int] | None = None) -> np.ndarray:
    """Per-block vectors of stored ``blocks`` as windows are made of: ``v2`` cells pooled
    over ``region`` onto ``grid`` (default: the search grid) and finished; other kinds as stored."""
    if not config.pooled:
        return blocks
    return region_vectors(blocks, config.cells, region, grid or config.grid)


def window_vectors(blocks: np.ndarray, config: IndexConfig, region: Region = FRAME,
                   grid: tuple[int, int] | None = None) -> np.ndarray:
    """Stack ``W`` consecutive block vectors (stride 1) into window vectors.

    ``blocks`` are stored blocks ``(n, block_dim)``, turned into the vectors of
    ``region`` on ``grid`` first (:func:`block_vectors`); returns
    ``(max(n-W+1, 0), W * vector dim)`` float32, L2-normalised unless the feature kind
    keeps raw values (``seed``).
    """
    return stack_windows(block_vectors(blocks, config, region, grid), config)


def stack_windows(blocks: np.ndarray, config: IndexConfig) -> np.ndarray:
    """Window vectors of per-block vectors (already pooled and finished: see :func:`window_vectors`)."""
    w = config.window_blocks
    n = blocks.shape[0]
    if n < w:
        return np.zeros((0, w * blocks.shape[1]), dtype=np.float32)
    view = np.lib.stride_tricks.sliding_window_view(blocks, (w, blocks.shape[1]))[:, 0]
    vectors = np.array(view.reshape(n - w + 1, -1), dtype=np.float32, order="C")  # always a copy
    if config.normalization == "l2":
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors /= np.maximum(norms, 1e-6)
    return vectors


def windows_from_blocks(stacked: np.ndarray, config: IndexConfig, regions: np.ndarray | None = None) -> np.ndarray:
    """Window vectors from their stored blocks already gathered, ``(n, W, block_dim)``:
    the same vectors :func:`window_vectors` makes (float32, normalised alike), each of
    its region (``regions``, codes; default the whole frame)."""
    n, w, _ = stacked.shape
    if config.pooled:
        codes = np.zeros(n, np.int64) if regions is None else np.asarray(regions)
        pooled = np.zeros((n, w, config.search_block_dim), np.float32)
        for code in np.unique(codes):
            rows = codes == code
            pooled[rows] = block_vectors(stacked[rows].reshape(-1, stacked.shape[2]), config,
                                         REGIONS[int(code)]).reshape(int(rows.sum()), w, -1)
        stacked = pooled
    vectors = np.array(stacked.reshape(len(stacked), -1), dtype=np.float32, order="C")
    if config.normalization == "l2":
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors /= np.maximum(norms, 1e-6)
    return vectors


def window_ids(video_id: int, windows: int | np.ndarray, region: int = 0) -> np.ndarray:
    """Stable ids of a video's windows of one region: the first ``windows`` ones, or those numbered."""
    numbers = np.arange(windows, dtype=np.int64) if np.isscalar(windows) else np.asarray(windows, dtype=np.int64)
    return (np.int64(video_id) << np.int64(WINDOW_BITS)) + (np.int64(region) << np.int64(_NUMBER_BITS)) + numbers


def split_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`window_ids`: (video ids, window numbers)."""
    ids = np.asarray(ids, dtype=np.int64)
    return ids >> np.int64(WINDOW_BITS), ids & np.int64(_NUMBER_MASK)


def region_codes(ids: np.ndarray) -> np.ndarray:
    """The region code of each window id (0: the whole frame)."""
    return (np.asarray(ids, dtype=np.int64) >> np.int64(_NUMBER_BITS)) & np.int64(_REGION_MASK)


def indexed_regions(config: IndexConfig) -> tuple[Region, ...]:
    """The regions besides the whole frame an index of these settings holds entries of."""
    return REGIONS[1:] if config.pooled else ()


def index_entries(video_id: int, blocks: np.ndarray, damaged, config: IndexConfig) -> tuple[np.ndarray, np.ndarray]:
    """Ids and vectors of everything the vector index holds for one video: every
    indexed window of the whole frame, then (``v2``) every ``REGION_STRIDE``-th one's
    of each region."""
    numbers = indexed_windows(len(blocks), damaged, config)
    ids, vectors = [window_ids(video_id, numbers)], [window_vectors(blocks, config)[numbers]]
    sparse = numbers[numbers % REGION_STRIDE == 0]
    for region in indexed_regions(config):
        ids.append(window_ids(video_id, sparse, region.code))
        vectors.append(window_vectors(blocks, config, region)[sparse])
    return np.concatenate(ids), np.concatenate(vectors) if len(vectors) > 1 else vectors[0]


def entry_count(record, config: IndexConfig) -> int:
    """How many entries the vector index holds for a committed video (see :func:`index_entries`)."""
    regions = indexed_regions(config)
    if not regions:
        return record.windows
    numbers = indexed_windows(record.blocks, record.damaged, config)
    return len(numbers) + len(regions) * int(np.count_nonzero(numbers % REGION_STRIDE == 0))


def window_count(block_count: int, config: IndexConfig) -> int:
    return max(block_count - config.window_blocks + 1, 0)


#: A block counts as damaged when damaged spans cover more than this share of it;
#: less is a held frame or two, as in any variable frame rate file.
DAMAGED_SHARE = 0.4


def damaged_blocks(block_count: int, damaged, config: IndexConfig) -> np.ndarray:
    """Which blocks damaged spans ``(start, end)`` seconds cover (boolean per block)."""
    starts = np.arange(block_count) * config.block_seconds
    covered = np.zeros(block_count)
    for start, end in damaged:
        covered += np.clip(np.minimum(starts + config.block_seconds, end) - np.maximum(starts, start), 0, None)
    return covered > DAMAGED_SHARE * config.block_seconds


def flagged_per_window(flags: np.ndarray, config: IndexConfig) -> np.ndarray:
    """How many of each window's W blocks carry a flag (``flags``: one boolean per block)."""
    count = window_count(len(flags), config)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    return np.convolve(flags.astype(np.int64), np.ones(config.window_blocks, dtype=np.int64), mode="valid")[:count]


def video_windows(blocks: np.ndarray, record, config: IndexConfig, region: Region = FRAME,
                  grid: tuple[int, int] | None = None) -> np.ndarray:
    """All window vectors of one committed video by window number, of ``region`` on
    ``grid`` (see :func:`window_vectors`); windows across a damaged span (not indexed) are zero."""
    vectors = window_vectors(blocks, config, region, grid)
    if record.partial:
        keep = np.zeros(len(vectors), dtype=bool)
        keep[indexed_windows(record.blocks, record.damaged, config)] = True
        vectors[~keep] = 0.0
    return vectors


def indexed_windows(block_count: int, damaged, config: IndexConfig) -> np.ndarray:
    """Numbers of the windows that are indexed: those clear of every damaged span."""
    bad = damaged_blocks(block_count, damaged, config)
    if not bad.any():
        return np.arange(window_count(block_count, config), dtype=np.int64)
    return np.flatnonzero(flagged_per_window(bad, config) == 0).astype(np.int64)

"""Windows: consecutive block descriptors concatenated into searchable vectors.

Window ``i`` of a video covers blocks ``i .. i+W-1`` (stride one block), i.e. seconds
``[i*block, (i+W)*block)``. Its 64-bit id is ``video_id << 32 | i``: ids never shift
when other videos are added or removed, and an id alone names its video and time.
A window that overlaps a damaged span of its video (frames that could not be
decoded) is not indexed: its number is simply absent.
"""

from __future__ import annotations

import numpy as np

from .config import IndexConfig

WINDOW_BITS = 32
_WINDOW_MASK = (1 << WINDOW_BITS) - 1


def window_vectors(blocks: np.ndarray, config: IndexConfig) -> np.ndarray:
    """Stack ``W`` consecutive block descriptors (stride 1) into window vectors.

    ``blocks`` is ``(n, block_dim)``; returns ``(max(n-W+1, 0), W*block_dim)`` float32,
    L2-normalised unless the feature kind keeps raw values (``seed``).
    """
    w = config.window_blocks
    n = blocks.shape[0]
    if n < w:
        return np.zeros((0, config.dim), dtype=np.float32)
    view = np.lib.stride_tricks.sliding_window_view(blocks, (w, blocks.shape[1]))[:, 0]
    vectors = np.array(view.reshape(n - w + 1, -1), dtype=np.float32, order="C")  # always a copy
    if config.normalization == "l2":
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors /= np.maximum(norms, 1e-6)
    return vectors


def windows_from_blocks(stacked: np.ndarray, config: IndexConfig) -> np.ndarray:
    """Window vectors from their blocks already gathered, ``(n, W, block_dim)``: the
    same vectors :func:`window_vectors` makes (float32, normalised alike)."""
    vectors = np.array(stacked.reshape(len(stacked), -1), dtype=np.float32, order="C")
    if config.normalization == "l2":
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors /= np.maximum(norms, 1e-6)
    return vectors


def window_ids(video_id: int, windows: int | np.ndarray) -> np.ndarray:
    """Stable ids of a video's windows: the first ``windows`` ones, or those numbered."""
    numbers = np.arange(windows, dtype=np.int64) if np.isscalar(windows) else np.asarray(windows, dtype=np.int64)
    return (np.int64(video_id) << np.int64(WINDOW_BITS)) + numbers


def split_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`window_ids`: (video ids, window indices)."""
    ids = np.asarray(ids, dtype=np.int64)
    return ids >> np.int64(WINDOW_BITS), ids & np.int64(_WINDOW_MASK)


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


def indexed_windows(block_count: int, damaged, config: IndexConfig) -> np.ndarray:
    """Numbers of the windows that are indexed: those clear of every damaged span."""
    bad = damaged_blocks(block_count, damaged, config)
    if not bad.any():
        return np.arange(window_count(block_count, config), dtype=np.int64)
    return np.flatnonzero(flagged_per_window(bad, config) == 0).astype(np.int64)

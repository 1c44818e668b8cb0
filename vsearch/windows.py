"""Windows: consecutive block descriptors concatenated into searchable vectors.

Window ``i`` of a video covers blocks ``i .. i+W-1`` (stride one block), i.e. seconds
``[i*block, (i+W)*block)``. Its 64-bit id is ``video_id << 32 | i``: ids never shift
when other videos are added or removed, and an id alone names its video and time.
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


def window_ids(video_id: int, count: int) -> np.ndarray:
    """Stable ids of a video's ``count`` windows."""
    return (np.int64(video_id) << np.int64(WINDOW_BITS)) + np.arange(count, dtype=np.int64)


def split_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`window_ids`: (video ids, window indices)."""
    ids = np.asarray(ids, dtype=np.int64)
    return ids >> np.int64(WINDOW_BITS), ids & np.int64(_WINDOW_MASK)


def window_count(block_count: int, config: IndexConfig) -> int:
    return max(block_count - config.window_blocks + 1, 0)

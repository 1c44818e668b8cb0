from __future__ import annotations

import numpy as np

from vsearch.config import IndexConfig
from vsearch.windows import split_ids, window_count, window_ids, window_vectors


def test_windows_concatenate_consecutive_blocks_with_stride_one():
    config = IndexConfig(features="seed", window_blocks=3)
    blocks = np.arange(5 * 7, dtype=np.float32).reshape(5, 7)
    windows = window_vectors(blocks, config)
    assert windows.shape == (3, 21) == (window_count(5, config), config.dim)
    np.testing.assert_array_equal(windows[1], blocks[1:4].ravel())


def test_v1_windows_are_unit_length():
    config = IndexConfig()
    rng = np.random.default_rng(0)
    windows = window_vectors(rng.normal(size=(9, config.block_dim)).astype(np.float32), config)
    np.testing.assert_allclose(np.linalg.norm(windows, axis=1), 1.0, rtol=1e-5)


def test_too_few_blocks_give_no_window():
    config = IndexConfig()
    assert window_vectors(np.zeros((config.window_blocks - 1, config.block_dim), np.float32), config).shape == (0, config.dim)


def test_ids_round_trip_and_do_not_collide_between_videos():
    a, b = window_ids(7, 1000), window_ids(8, 1000)
    assert not set(a.tolist()) & set(b.tolist())
    videos, windows = split_ids(a)
    assert set(videos.tolist()) == {7} and windows.tolist() == list(range(1000))


def test_single_window_is_a_writable_copy():
    config = IndexConfig()
    blocks = np.ones((config.window_blocks, config.block_dim), np.float32)
    windows = window_vectors(blocks, config)
    assert windows.shape == (1, config.dim) and windows.flags.writeable
    assert blocks.max() == 1.0  # normalising the window did not touch the blocks


def test_damaged_spans_drop_the_windows_they_cover_most_of():
    from vsearch.windows import damaged_blocks, flagged_per_window, indexed_windows

    config = IndexConfig()  # 0.5 s blocks, 3 per window
    # 1.0-1.6 s covers block 2 wholly and 0.1 s of block 3 (a held frame, not damage).
    assert damaged_blocks(8, [(1.0, 1.6)], config).tolist() == [False, False, True] + [False] * 5
    assert indexed_windows(8, [(1.0, 1.6)], config).tolist() == [3, 4, 5]
    assert indexed_windows(8, [], config).tolist() == list(range(6))
    assert indexed_windows(8, [(3.9, 10.0)], config).tolist() == [0, 1, 2, 3, 4, 5]  # a missing tail
    assert flagged_per_window(np.zeros(2, dtype=bool), config).shape == (0,)

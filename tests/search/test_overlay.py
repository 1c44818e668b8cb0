"""Overlays: windows scored without the grid cells a burnt-in addition covers."""

from __future__ import annotations

import numpy as np

from vsearch.config import IndexConfig


def test_masked_windows_ignore_what_the_overlay_covers():
    from vsearch.search.overlay import mask_windows

    config = IndexConfig()
    rng = np.random.default_rng(5)
    windows = rng.normal(size=(4, config.dim)).astype(np.float32)
    covered = np.zeros(config.grid, bool)
    covered[0, 3] = True
    changed = windows.reshape(4, config.window_blocks, 7, -1).copy()
    changed[..., 3] += rng.normal(size=changed[..., 3].shape).astype(np.float32) * 5  # cell (0, 3) only
    a = mask_windows(windows, covered, config)
    b = mask_windows(changed.reshape(4, -1), covered, config)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(mask_windows(windows, np.zeros(config.grid, bool), config),
                           mask_windows(changed.reshape(4, -1), np.zeros(config.grid, bool), config))

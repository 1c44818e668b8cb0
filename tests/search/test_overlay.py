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
    a = mask_windows(windows, covered, config.grid, config)
    b = mask_windows(changed.reshape(4, -1), covered, config.grid, config)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(mask_windows(windows, np.zeros(config.grid, bool), config.grid, config),
                           mask_windows(changed.reshape(4, -1), np.zeros(config.grid, bool), config.grid, config))


def test_occlusion_masks_cover_bands_and_corners_on_any_grid():
    from vsearch.search.overlay import coarse, occlusion_masks

    fine = occlusion_masks((8, 8))
    assert fine[0][6:].all() and not fine[0][:6].any()  # the bottom quarter
    assert fine[1][:2].all() and not fine[1][2:].any()  # the top quarter
    assert any(m[4:6].all() and not m[:4].any() and not m[6:].any() for m in fine)  # a caption band, lower middle
    corners = [m for m in fine if not m.all(axis=1).any()]
    assert len(corners) == 4 and all(m.sum() == 16 for m in corners)  # the corner quarters
    assert [m.sum() for m in occlusion_masks((4, 4), bands=2)] == [4, 4]
    assert np.array_equal(coarse(fine[0], (4, 4)), occlusion_masks((4, 4), bands=1)[0])

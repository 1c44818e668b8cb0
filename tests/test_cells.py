"""Cells: pooling onto grids and regions, and the index entries made from them."""

from __future__ import annotations

import numpy as np
import pytest

from vsearch import cells
from vsearch.cells import REGIONS
from vsearch.config import IndexConfig
from vsearch.models import VideoRecord
from vsearch.windows import (
    REGION_STRIDE,
    entry_count,
    index_entries,
    region_codes,
    split_ids,
    window_ids,
    window_vectors,
    windows_from_blocks,
)

CONFIG = IndexConfig()


def panning_frames(seed: int, n: int) -> np.ndarray:
    """``n`` grey 96 x 128 frames of a camera panning over smooth random texture, detail everywhere."""
    rng = np.random.default_rng(seed)
    field = rng.normal(size=(140, 200))
    for axis in (0, 1):  # smooth it a little: structure at several scales
        field = field + np.roll(field, 1, axis) + np.roll(field, -1, axis)
    field = 128 + 40 * field / field.std()
    return np.stack([field[t // 3: t // 3 + 96, t: t + 128] for t in range(n)]).clip(0, 255).astype(np.float32)


def _blocks(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, CONFIG.block_dim)).astype(np.float32)


def test_pooling_splits_cells_by_the_share_each_part_covers():
    stored = np.arange(64, dtype=np.float32).reshape(1, 1, 8, 8)
    # A 6 x 6 grid over the centre 75 % is exactly cells 1..6, untouched.
    np.testing.assert_array_equal(cells.pool(stored, (6, 6), REGIONS[1].bounds)[0, 0], stored[0, 0, 1:7, 1:7])
    # Three columns over the left 3/8 of the frame: whole cells again.
    np.testing.assert_array_equal(cells.pool(stored, (8, 3), (0.0, 1.0, 0.0, 0.375))[0, 0], stored[0, 0, :, :3])
    # Four columns over six cells: each part 1.5 cells, the half cell weighted by half.
    row = cells.pool(stored, (8, 4), (0.0, 1.0, 0.125, 0.875))[0, 0, 0]
    np.testing.assert_allclose(row, [(1 * 1 + 2 * 0.5) / 1.5, (2 * 0.5 + 3 * 1) / 1.5,
                                     (4 * 1 + 5 * 0.5) / 1.5, (5 * 0.5 + 6 * 1) / 1.5])


def test_regions_are_the_crops_and_slices_a_copy_may_show():
    by_name = {r.name: r for r in REGIONS}
    assert len(REGIONS) <= 16 and [r.code for r in REGIONS] == list(range(len(REGIONS))) and REGIONS[0] is cells.FRAME
    for name in ("centre", "top-left", "top-right", "bottom-left", "bottom-right"):
        top, bottom, left, right = by_name[name].bounds
        assert bottom - top == right - left == 0.75
    # A 9:16 reframe of 16:9 footage keeps 31.6 % of the width: one slice holds it
    # within 1/8 of the frame (its edges, either side) wherever it was cut.
    slices = [by_name[n].bounds for n in ("left", "left-middle", "right-middle", "right")]
    for x in np.linspace(0, 1 - 0.316, 50):
        assert min(max(abs(left - x), abs(right - (x + 0.316))) for _, _, left, right in slices) <= 1 / 8 + 1e-9


def test_index_entries_hold_every_window_and_every_third_of_each_region():
    blocks = _blocks(20)
    ids, vectors = index_entries(7, blocks, (), CONFIG)
    windows = len(blocks) - CONFIG.window_blocks + 1
    sparse = len(range(0, windows, REGION_STRIDE))
    assert len(ids) == len(vectors) == windows + (len(REGIONS) - 1) * sparse
    videos, numbers = split_ids(ids)
    assert (videos == 7).all()
    codes = region_codes(ids)
    assert np.array_equal(numbers[codes == 0], np.arange(windows))
    for region in REGIONS[1:]:
        mine = codes == region.code
        assert np.array_equal(numbers[mine], np.arange(0, windows, REGION_STRIDE))
        np.testing.assert_allclose(vectors[mine], window_vectors(blocks, CONFIG, region)[::REGION_STRIDE], rtol=1e-6)
    record = VideoRecord(id=7, path="/v", hash="h", duration_s=10, fps=25, width=4, height=4, frames=250,
                         blocks=len(blocks), windows=windows, added="")
    assert entry_count(record, CONFIG) == len(ids)
    # Entries of windows gathered by id are the same vectors (what a compact index re-ranks with).
    gathered = np.stack([blocks[n:n + CONFIG.window_blocks] for n in numbers])
    np.testing.assert_allclose(windows_from_blocks(gathered, CONFIG, codes), vectors, rtol=1e-5, atol=1e-6)


def test_other_feature_kinds_hold_no_regions():
    config = IndexConfig(features="imported", embedding_dim=16)
    blocks = np.random.default_rng(1).random((12, 16)).astype(np.float32)
    ids, _ = index_entries(3, blocks, (), config)
    assert (region_codes(ids) == 0).all() and len(ids) == 10


def test_window_ids_keep_video_region_and_number_apart():
    ids = window_ids(5, np.array([0, 1, (1 << 28) - 1]), region=8)
    videos, numbers = split_ids(ids)
    assert videos.tolist() == [5, 5, 5] and numbers.tolist() == [0, 1, (1 << 28) - 1]
    assert region_codes(ids).tolist() == [8, 8, 8]


@pytest.mark.parametrize("region", REGIONS[1:], ids=lambda r: r.name)
def test_a_region_of_the_frame_is_what_the_crop_describes(region):
    """The cells pooled over a region, and the frame cropped to it and described, agree
    (not exactly: kernels see the crop magnified) far better than other footage does."""
    from vsearch.device import resolve_device
    from vsearch.extractors import create_extractor
    from vsearch.frames import resize_frames

    extractor = create_extractor(CONFIG, resolve_device("cpu"))
    frames = panning_frames(3, n=30)
    top, bottom, left, right = region.bounds
    crop = frames[:, round(top * 96):round(bottom * 96), round(left * 128):round(right * 128)]
    cropped = extractor.describe(resize_frames(crop, 96, 128, np))
    whole = extractor.describe(frames)

    def windows(blocks, bounds):
        return window_vectors(blocks, CONFIG, cells.Region(99, "x", bounds, region.detail), region.detail)

    same = np.einsum("ij,ij->i", windows(whole, region.bounds), windows(cropped, cells.FRAME.bounds)).mean()
    other = extractor.describe(panning_frames(4, n=30))
    chance = np.einsum("ij,ij->i", windows(other, region.bounds), windows(cropped, cells.FRAME.bounds)).mean()
    assert same > 0.6 and same > chance + 0.3

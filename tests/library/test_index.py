"""The VideoIndex facade: stats, removal, fixed settings, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from vsearch import IndexConfig, VideoIndex
from vsearch.errors import ConfigMismatchError, IndexNotFoundError, NotIndexedError

from tests.conftest import LIBRARY_SEEDS, ids_by_video


def test_stats_match_what_was_ingested(built_index, media):
    with VideoIndex.open(built_index, device="cpu") as index:
        stats = index.stats()
        records = index.videos()
    assert stats.videos == len(LIBRARY_SEEDS) == len(records)
    assert stats.duration_s == pytest.approx(16.0 * len(LIBRARY_SEEDS), abs=0.3)
    # 16 s at 0.5 s blocks = 32 blocks, minus (window - 1) = 30 windows per video.
    assert [r.blocks for r in records] == [32] * 3
    assert sum(r.windows for r in records) == 30 * 3
    # The index also holds every third window of each of 9 regions of the frame.
    assert stats.vectors == 3 * (30 + 9 * 10)
    assert stats.dim == IndexConfig().dim and stats.bytes > 0
    assert {r.path for r in records} == {str(media[f"lib{s}"]) for s in LIBRARY_SEEDS}
    assert all(len(r.hash) == 32 and r.fps == pytest.approx(25.0) for r in records)


def test_remove_drops_that_video_only(scratch_index, media, clips):
    clip, source, _ = clips["exact"]
    with VideoIndex.open(scratch_index, device="cpu") as index:
        before = ids_by_video(index)
        assert index.query(clip).hits[0].video == str(source)
        removed = index.remove([source])
        assert [r.path for r in removed] == [str(source)]
        assert all(h.video != str(source) for h in index.query(clip, min_score=0.0).hits)
        after = ids_by_video(index)
    assert str(source) not in after
    for path, ids in after.items():
        np.testing.assert_array_equal(ids, before[path])
    with VideoIndex.open(scratch_index, device="cpu") as index:
        assert str(source) not in {r.path for r in index.videos()}
        assert index.verify().ok
        with pytest.raises(NotIndexedError):
            index.remove([source])


def test_settings_cannot_change_after_creation(scratch_index):
    with pytest.raises(ConfigMismatchError, match="window_blocks"):
        VideoIndex.open(scratch_index, config=IndexConfig(window_blocks=6))


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(IndexNotFoundError):
        VideoIndex.open(tmp_path / "nothing")


def test_seed_features_index_side_by_side(media, clips, tmp_path):
    with VideoIndex.create(tmp_path / "seed", IndexConfig(features="seed"), device="cpu") as index:
        index.add([media[f"lib{s}"] for s in LIBRARY_SEEDS])
        assert index.stats().dim == 7 * IndexConfig().window_blocks
        hits = index.query(clips["exact"][0], min_score=0.0).hits
    assert hits and hits[0].video == str(clips["exact"][1])

"""What the writer makes of each file: added, skipped, replaced, moved, failed alone."""

from __future__ import annotations

import numpy as np

from vsearch import VideoIndex

from tests.conftest import ids_by_video


def test_incremental_ingest_keeps_existing_ids_and_skips_known_content(scratch_index, media):
    with VideoIndex.open(scratch_index, device="cpu") as index:
        before = ids_by_video(index)
        results = index.add([media["extra"], media["lib11"]])
        after = ids_by_video(index)
    assert [r.status for r in results] == ["added", "skipped"]
    for path, ids in before.items():
        np.testing.assert_array_equal(after[path], ids)
    assert len(after) == len(before) + 1
    with VideoIndex.open(scratch_index, device="cpu") as index:  # and it survives reopening
        np.testing.assert_array_equal(ids_by_video(index)[str(media["extra"])], after[str(media["extra"])])


def test_bad_file_fails_alone_and_leaves_index_unchanged(scratch_index, media, tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with VideoIndex.open(scratch_index, device="cpu") as index:
        before = ids_by_video(index)
        results = index.add([junk, media["extra"], empty])
        assert [r.status for r in results] == ["failed", "added", "failed"]
        assert "empty file" in results[2].reason and results[0].reason
        after = ids_by_video(index)
    assert set(after) == set(before) | {str(media["extra"])}


def test_changed_content_at_same_path_is_reindexed(scratch_index, media, tmp_path):
    path = tmp_path / "changing.mp4"
    path.write_bytes(media["extra"].read_bytes())
    with VideoIndex.open(scratch_index, device="cpu") as index:
        first = index.add([path])[0]
        path.write_bytes(media["negative"].read_bytes())  # same name, new footage
        second = index.add([path])[0]
        assert (first.status, second.status) == ("added", "replaced")
        assert second.video_id != first.video_id
        records = [r for r in index.videos() if r.path == str(path)]
        assert len(records) == 1 and records[0].id == second.video_id
        assert index.verify().ok


def test_moved_file_keeps_its_vectors_and_updates_its_path(scratch_index, media, tmp_path):
    old, new = tmp_path / "old.mp4", tmp_path / "sub" / "new.mp4"
    old.write_bytes(media["extra"].read_bytes())
    new.parent.mkdir()
    with VideoIndex.open(scratch_index, device="cpu") as index:
        added = index.add([old])[0]
        old.rename(new)
        moved = index.add([new])[0]
        assert moved.status == "moved" and moved.video_id == added.video_id
        assert [r.path for r in index.videos() if r.id == added.video_id] == [str(new)]
        assert len(index.videos()) == 4 and index.verify().ok
        # A copy (both files present) is recognised as known content, not indexed twice.
        copy = tmp_path / "copy.mp4"
        copy.write_bytes(new.read_bytes())
        assert index.add([copy])[0].status == "skipped"

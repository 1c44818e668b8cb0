"""An index folder keeps LMDB and FAISS in step: repairs, index types, training, no pickle."""

from __future__ import annotations

import numpy as np
import pytest

from vsearch import VideoIndex
from vsearch.errors import ConfigMismatchError, IndexTypeError

#: Entries of the scratch index: 3 videos of 30 windows, each with the whole frame,
#: and every third window (10) with each of 9 regions.
ENTRIES = 3 * (30 + 9 * 10)


@pytest.mark.parametrize("damage", ["delete", "garbage", "truncate"])
def test_lost_or_damaged_vector_file_is_repaired_from_lmdb(scratch_index, clips, damage):
    vectors = scratch_index / "vectors.faiss"
    if damage == "delete":
        vectors.unlink()
    elif damage == "garbage":
        vectors.write_bytes(b"not a faiss index" * 10)
    else:
        vectors.write_bytes(vectors.read_bytes()[: vectors.stat().st_size // 2])
    with VideoIndex.open(scratch_index, device="cpu") as index:
        assert index.stats().vectors == ENTRIES
        assert index.verify().ok  # the repair was saved, not only done in memory
        assert index.query(clips["exact"][0]).hits[0].video == str(clips["exact"][1])


def test_rebuild_can_switch_index_type_and_back(scratch_index, clips):
    with VideoIndex.open(scratch_index, device="cpu") as index:
        assert index.rebuild(index_type="IVF2,Flat") == ENTRIES
        assert index.stats().index_type == "IVF2,Flat"
    with VideoIndex.open(scratch_index, device="cpu") as index:
        assert index.index_type == "IVF2,Flat" and index.verify().ok
        assert index.query(clips["exact"][0]).hits[0].video == str(clips["exact"][1])
        index.rebuild(index_type="Flat")
        assert index.stats().index_type == "IDMap2,Flat"


def test_unsupported_index_type_is_refused_before_anything_changes(scratch_index):
    with VideoIndex.open(scratch_index, device="cpu") as index:
        with pytest.raises(IndexTypeError, match="HNSW32"):
            index.rebuild(index_type="HNSW32")
        assert index.verify().ok and index.index_type == "Flat"


def test_incompatible_format_version_is_refused(scratch_index):
    import json

    import lmdb

    env = lmdb.open(str(scratch_index / "meta.lmdb"), max_dbs=8)
    meta = env.open_db(b"meta")
    with env.begin(write=True) as txn:
        config = json.loads(txn.get(b"config", db=meta))
        config["format_version"] = 999
        txn.put(b"config", json.dumps(config).encode(), db=meta)
    env.close()
    with pytest.raises(ConfigMismatchError, match="format version 999"):
        VideoIndex.open(scratch_index)


def test_index_data_is_never_unpickled():
    """Index folders are data: the code must not read them with pickle or eval."""
    import pathlib
    import re

    package = pathlib.Path(__file__).resolve().parents[2] / "vsearch"
    assert (package / "store" / "folder.py").is_file()
    offenders = [
        f"{p.relative_to(package)}: {m.group(0)}"
        for p in package.rglob("*.py")
        for m in re.finditer(r"\bimport pickle\b|allow_pickle\s*=\s*True|\beval\(|\bpickle\.loads?\(", p.read_text())
    ]
    assert offenders == []


def _finds_both_clips(index, clips) -> None:
    for name in ("exact", "reencoded_small"):
        clip, source, start = clips[name]
        top = index.query(clip).hits[0]
        assert top.video == str(source) and abs(top.start - start) <= 0.25


def test_auto_index_type_follows_library_size(scratch_index, media, clips, monkeypatch):
    from vsearch.store import vectorstore

    with VideoIndex.open(scratch_index, device="cpu") as index:
        assert index.index_policy == "auto" and index.index_type == "Flat"
        # Pretend the library is large: past the limit, ingest trains and switches to IVF.
        monkeypatch.setattr(vectorstore, "AUTO_FLAT_LIMIT", 50)
        index.add([media["extra"]])
        assert index.index_type == "IVF64,SQfp16" and index.stats().index_type == "IVF64,SQfp16 (auto)"
    with VideoIndex.open(scratch_index, device="cpu") as index:
        assert index.index_type == "IVF64,SQfp16" and index.verify().ok
        top = index.query(clips["exact"][0]).hits[0]
        assert top.video == str(clips["exact"][1]) and abs(top.start - clips["exact"][2]) <= 0.15
        # IVF removes in place; windows of the videos added after the removed one keep their ids.
        index.remove([media["lib11"]])
        assert index.verify().ok
        top = index.query(clips["exact"][0]).hits[0]
        assert top.video == str(clips["exact"][1]) and abs(top.start - clips["exact"][2]) <= 0.15
        index.add([media["lib11"]])
    with VideoIndex.open(scratch_index, device="cpu") as index:
        assert index.verify().ok
        _finds_both_clips(index, clips)


def test_vector_file_of_the_old_ivf_layout_is_rebuilt_on_open(scratch_index, clips):
    import faiss

    with VideoIndex.open(scratch_index, device="cpu") as index:
        index.rebuild(index_type="IVF2,Flat")
        with index.folder.snapshot() as snap:
            per_video = [index.folder.windows_of(snap, rec) for rec in snap.videos()]
    # What vsearch 0.1.0 wrote: the IVF inside an IndexIDMap2 (its ids break on removal).
    old = faiss.IndexIDMap2(faiss.index_factory(per_video[0][1].shape[1], "IVF2,Flat"))
    old.train(np.concatenate([vectors for _, vectors in per_video]))
    for ids, vectors in per_video:
        old.add_with_ids(vectors, ids)
    faiss.write_index(old, str(scratch_index / "vectors.faiss"))
    with VideoIndex.open(scratch_index, device="cpu", repair=False) as index:
        report = index.verify()
        assert not report.ok and "inside an id map" in report.problems[0]
    with VideoIndex.open(scratch_index, device="cpu") as index:  # repaired and saved
        assert index.verify().ok and index.stats().index_type == "IVF2,Flat"
        clip, source, start = clips["exact"]
        top = index.query(clip).hits[0]
        assert top.video == str(source) and abs(top.start - start) <= 0.15


def test_training_reads_a_bounded_sample_spread_over_all_videos(scratch_index, clips, monkeypatch):
    from vsearch.store import vectorstore

    seen = []
    real_train = vectorstore.VectorStore.train

    def spy(store, vectors):
        seen.append(vectors.copy())
        real_train(store, vectors)

    monkeypatch.setattr(vectorstore.VectorStore, "training_size", lambda store: 45)
    monkeypatch.setattr(vectorstore.VectorStore, "train", spy)
    with VideoIndex.open(scratch_index, device="cpu") as index:
        total = sum(rec.windows for rec in index.videos())
        index.rebuild(index_type="IVF2,Flat")
        assert total >= 90 and len(seen) == 1 and 30 <= len(seen[0]) <= 45 + len(index.videos())
        # Every video contributed some of its own windows.
        with index.folder.snapshot() as snap:
            for rec in snap.videos():
                own = index.folder.windows_of(snap, rec)[1]
                assert (np.abs(seen[0][:, None, :] - own[None, :, :]).max(-1) == 0).any(), rec.path
        clip, source, start = clips["exact"]
        top = index.query(clip).hits[0]
        assert top.video == str(source) and abs(top.start - start) <= 0.15


def test_rebuild_validates_the_factory_string_and_size_first(scratch_index):
    with VideoIndex.open(scratch_index, device="cpu") as index:
        with pytest.raises(IndexTypeError) as caught:
            index.rebuild(index_type="IVF1024,Flat")
        assert str(caught.value) == "IVF1024 needs at least 39,936 training vectors; this index has 360; use IVF8,Flat or Flat"
        with pytest.raises(IndexTypeError, match=r"PQ8 needs at least 9,984 training vectors"):
            index.rebuild(index_type="IVF2,PQ8")
        with pytest.raises(IndexTypeError, match=r"^invalid index type 'IVF2,Bogus'") as caught:
            index.rebuild(index_type="IVF2,Bogus")
        assert "\n" not in str(caught.value) and "faiss::" not in str(caught.value)
        assert index.verify().ok and index.index_type == "Flat"


def test_check_trainable_suggests_what_fits():
    from vsearch.store.vectorstore import check_trainable

    with pytest.raises(IndexTypeError) as caught:
        check_trainable("IVF1024,Flat", 3120)
    assert str(caught.value) == "IVF1024 needs at least 39,936 training vectors; this index has 3,120; use IVF64,Flat or Flat"
    check_trainable("IVF64,SQfp16", 2496)
    check_trainable("Flat", 0)


def test_faiss_stays_quiet_on_small_trainings(scratch_index, monkeypatch, capfd):
    """FAISS prints k-means warnings from C++ straight to stderr; the Python API must not."""
    from vsearch.store import vectorstore

    # Fewer training points than k-means wants per list: FAISS would warn.
    monkeypatch.setattr(vectorstore.VectorStore, "training_size", lambda store: 50)
    capfd.readouterr()
    with VideoIndex.open(scratch_index, device="cpu") as index:
        index.rebuild(index_type="IVF2,Flat")
        assert index.verify().ok
    captured = capfd.readouterr()
    assert "WARNING" not in captured.err and "clustering" not in captured.err, captured.err


def test_auto_switches_to_compact_codes_and_queries_rerank_exactly(scratch_index, media, clips, monkeypatch):
    from vsearch.store import vectorstore

    with VideoIndex.open(scratch_index, device="cpu") as index:
        flat_top = index.query(clips["exact"][0]).hits[0]
        # Pretend the library is very large: past both limits, ingest switches to compact codes.
        monkeypatch.setattr(vectorstore, "AUTO_FLAT_LIMIT", 50)
        monkeypatch.setattr(vectorstore, "AUTO_COMPACT_LIMIT", 50)
        index.add([media["extra"]])
        assert index.index_type == "PCAR80,IVF64,PQ40x4fs" and not index.folder.vectors.exact_distances
    with VideoIndex.open(scratch_index, device="cpu") as index:
        assert index.index_type == "PCAR80,IVF64,PQ40x4fs" and index.verify().ok
        top = index.query(clips["exact"][0]).hits[0]
        # The same segment and, distances being re-computed from the stored blocks, the same score.
        assert top.video == flat_top.video and abs(top.start - flat_top.start) < 1e-6
        assert abs(top.score - flat_top.score) < 1e-4
        # Removed in place: the video's windows go from the compact lists, the others stay.
        index.remove([media["lib12"]])
        assert index.verify().ok
        assert all(hit.video != str(clips["exact"][1]) for hit in index.query(clips["exact"][0]).hits)
        index.add([media["lib12"]])
    with VideoIndex.open(scratch_index, device="cpu") as index:
        assert index.verify().ok
        _finds_both_clips(index, clips)
        # A user may pick the type too; too few windows to train its codes is refused first.
        with pytest.raises(IndexTypeError, match="PQ40x4fs needs at least 624 training vectors"):
            index.rebuild(index_type="PCAR80,IVF4,PQ40x4fs")
        assert index.index_type == "PCAR80,IVF64,PQ40x4fs" and index.verify().ok
        index.rebuild(index_type="Flat")
        assert index.query(clips["exact"][0]).hits[0].score == flat_top.score

"""The FAISS vector store on its own: ids stay right through removals, saves and loads."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from vsearch.errors import IndexCorruptError, IndexTypeError
from vsearch.store.vectorstore import VectorStore
from vsearch.windows import window_ids

DIM = 24
TYPES = ["Flat", "IVF8,Flat", "IVF8,SQfp16", "PCA16,IVF8,Flat"]


def _videos(count: int = 4, windows: int = 150, seed: int = 0) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {video_id: rng.normal(size=(windows, DIM)).astype(np.float32) for video_id in range(1, count + 1)}


def _assert_each_finds_itself(store: VectorStore, videos: dict[int, np.ndarray]) -> None:
    for video_id, vectors in videos.items():
        ids = store.search(vectors, 1).ids
        np.testing.assert_array_equal(ids[:, 0], window_ids(video_id, len(vectors)))


@pytest.mark.parametrize("index_type", TYPES)
def test_ids_survive_removing_a_video_in_the_middle(index_type, tmp_path):
    videos = _videos()
    store = VectorStore.create(DIM, index_type)
    store.train(np.concatenate(list(videos.values())))
    for video_id, vectors in videos.items():
        store.add(window_ids(video_id, len(vectors)), vectors)
    if store._ivf() is not None:
        store._ivf().nprobe = 8  # exhaustive: only the ids are under test here
    assert store.remove_videos([2]) == 150
    del videos[2]
    _assert_each_finds_itself(store, videos)
    # Vectors added after a removal get their own ids, not a removed video's.
    videos[5] = _videos(seed=1)[1]
    store.add(window_ids(5, 150), videos[5])
    _assert_each_finds_itself(store, videos)
    assert sorted(set((store.ids() >> 32).tolist())) == [1, 3, 4, 5]
    assert len(store.ids()) == store.ntotal == 600

    path = str(tmp_path / "vectors.faiss")
    store.save(path)
    for mapped in (False, True):
        again = VectorStore.load(path, mapped=mapped)
        again_ivf = again._ivf()
        if again_ivf is not None:
            again_ivf.nprobe = 8
            lists = type(faiss.downcast_InvertedLists(again_ivf.invlists)).__name__
            assert lists == ("OnDiskInvertedLists" if mapped else "ArrayInvertedLists")
        np.testing.assert_array_equal(np.sort(again.ids()), np.sort(store.ids()))
        _assert_each_finds_itself(again, videos)


def test_ivf_keeps_ids_in_its_lists_and_flat_in_an_id_map():
    assert VectorStore.create(DIM, "Flat").layout == "IDMap2"
    assert VectorStore.create(DIM, "IVF8,SQfp16").layout == "IVF"
    assert VectorStore.create(DIM, "IVF8,SQfp16").describe() == "IndexIVFScalarQuantizer"


def test_an_ivf_index_inside_an_id_map_is_refused_on_load(tmp_path):
    # vsearch 0.1.0 wrote IVF indexes inside an IndexIDMap2, whose ids break on removal.
    videos = _videos(count=2)
    old = faiss.IndexIDMap2(faiss.index_factory(DIM, "IVF8,Flat"))
    old.train(np.concatenate(list(videos.values())))
    old.add_with_ids(videos[1], window_ids(1, 150))
    faiss.write_index(old, str(tmp_path / "old.faiss"))
    with pytest.raises(IndexCorruptError, match="inside an id map"):
        VectorStore.load(str(tmp_path / "old.faiss"))


@pytest.mark.parametrize("index_type", ["HNSW32", "IVF8,PQ8x4fs,Refine(SQfp16)", "IVF8,Flat,RFlat", "IDMap2,Flat"])
def test_types_that_cannot_remove_in_place_are_refused(index_type):
    with pytest.raises(IndexTypeError, match="not supported"):
        VectorStore.create(DIM, index_type)


def _faiss_gpus() -> int:
    return int(getattr(faiss, "get_num_gpus", lambda: 0)())


@pytest.mark.parametrize("device", ["cpu", pytest.param("gpu", marks=[
    pytest.mark.gpu, pytest.mark.skipif(_faiss_gpus() == 0, reason="faiss-gpu with a GPU not present")])])
def test_ivf_trains_and_searches_on_each_device(device, tmp_path):
    # On a machine with faiss-gpu and a GPU, training and search go to the GPU by
    # themselves; the saved file is a CPU index either way.
    assert VectorStore.create(DIM, "Flat").uses_gpu == (device == "gpu")
    videos = _videos(count=3, windows=200)
    store = VectorStore.create(DIM, "IVF16,SQfp16")
    store.train(np.concatenate(list(videos.values())))
    assert store.is_trained and store._ivf().clustering_index is None
    for video_id, vectors in videos.items():
        store.add(window_ids(video_id, len(vectors)), vectors)
    store._ivf().nprobe = 16
    _assert_each_finds_itself(store, videos)
    store.save(str(tmp_path / "v.faiss"))
    assert VectorStore.load(str(tmp_path / "v.faiss")).describe() == "IndexIVFScalarQuantizer"


def test_compact_type_removes_in_place_and_reloads_mapped_or_not(tmp_path):
    from vsearch.store.vectorstore import compact_index_type

    videos = _videos(windows=300)
    kind = compact_index_type(1200, DIM).replace("IVF64", "IVF8")
    assert kind == "PCAR8,IVF8,PQ4x4fs"
    store = VectorStore.create(DIM, kind)
    store.train(np.concatenate(list(videos.values())))
    for video_id, vectors in videos.items():
        store.add(window_ids(video_id, len(vectors)), vectors)
    assert not store.exact_distances and store.layout == "IVF"
    assert store.remove_videos([2]) == 300 and store.ntotal == 900
    assert sorted(set((store.ids() >> 32).tolist())) == [1, 3, 4]
    path = str(tmp_path / "vectors.faiss")
    store.save(path)
    for mapped in (False, True):
        again = VectorStore.load(path, mapped=mapped)
        np.testing.assert_array_equal(np.sort(again.ids()), np.sort(store.ids()))
        ids = again.search(videos[2], 50).ids
        assert not ((ids >> 32) == 2).any()


def test_auto_policy_keeps_flat_and_float16_below_the_compact_limit():
    from vsearch.store.vectorstore import AUTO_COMPACT_LIMIT, auto_index_type

    assert auto_index_type(1000) == "Flat"
    assert auto_index_type(1_000_000) == "IVF2048,SQfp16"
    assert auto_index_type(AUTO_COMPACT_LIMIT, 336) == "PCAR80,IVF2048,PQ40x4fs"
    assert auto_index_type(10**7, 336) == "PCAR80,IVF8192,PQ40x4fs"
    assert VectorStore.create(DIM, "Flat").exact_distances and VectorStore.create(DIM, "IVF8,SQfp16").exact_distances

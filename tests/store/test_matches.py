"""Neighbour results as one named type: rows padded where the index has fewer windows."""

from __future__ import annotations

import numpy as np

from vsearch.library.sharded import merge_nearest
from vsearch.store.matches import Matches
from vsearch.store.vectorstore import VectorStore
from vsearch.windows import window_ids


def test_padding_is_marked_and_left_out_when_iterating():
    matches = Matches(np.array([[0.5, 1.5, np.inf], [0.25, np.inf, np.inf]], np.float32),
                      np.array([[7, 3, -1], [9, -1, -1]], np.int64))
    assert len(matches) == 2
    assert matches.found.tolist() == [[True, True, False], [True, False, False]]
    rows = list(matches)
    assert [ids.tolist() for ids, _ in rows] == [[7, 3], [9]]
    assert [distances.tolist() for _, distances in rows] == [[0.5, 1.5], [0.25]]
    empty = Matches.empty(3, 4)
    assert empty.ids.shape == (3, 4) and not empty.found.any() and [len(ids) for ids, _ in empty] == [0, 0, 0]


def test_a_vector_store_answers_with_matches_nearest_first(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(20, 8)).astype(np.float32)
    store = VectorStore.create(8, "Flat")
    store.add(window_ids(3, 20), vectors)
    found = store.search(vectors[:4], 5)
    assert isinstance(found, Matches) and found.ids.shape == (4, 5) and found.found.all()
    assert (found.ids[:, 0] == window_ids(3, 20)[:4]).all()
    assert (np.diff(found.distances, axis=1) >= 0).all()
    assert store.search(vectors[:2], 50).ids.shape == (2, 20)  # fewer columns where fewer are held


def test_shards_merge_by_distance_and_padding_sorts_last():
    # Shard 0 has one neighbour for the query, shard 1 two; 2 shards: global id = local * 2 + shard.
    one = Matches(np.array([[0.3, np.inf]], np.float32), np.array([[window_ids(4, [1])[0], -1]], np.int64))
    two = Matches(np.array([[0.1, 0.5]], np.float32), np.array([window_ids(5, [2, 3])], np.int64))
    merged = merge_nearest([one, two], 3)
    assert merged.distances.tolist()[0] == np.array([0.1, 0.3, 0.5], np.float32).tolist()
    assert (merged.ids[0] >> 32).tolist() == [5 * 2 + 1, 4 * 2 + 0, 5 * 2 + 1]
    assert merged.found.all()

"""Two-stage search: exact re-rank of compact candidates against stored vectors."""

from __future__ import annotations

import numpy as np

from vsearch.store.rerank import TwoStageSearch, exact_rerank
from vsearch.store.vectorstore import VectorStore
from vsearch.windows import window_ids


def _stored(count: int = 400, dim: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    vectors = np.random.default_rng(seed).normal(size=(count, dim)).astype(np.float32)
    return window_ids(3, count), vectors


def test_rerank_keeps_the_exact_nearest_of_the_candidates_in_order():
    ids, vectors = _stored()
    by_id = dict(zip(ids.tolist(), vectors))
    queries = vectors[:5] + 0.01
    candidates = np.stack([np.random.default_rng(i).permutation(ids)[:50] for i in range(5)])
    matches = exact_rerank(queries, candidates, 7, lambda wanted: np.stack([by_id[i] for i in wanted]))
    sq_dist, kept = matches.distances, matches.ids
    for row in range(5):
        pool = np.stack([by_id[i] for i in candidates[row]])
        truth = ((pool - queries[row]) ** 2).sum(1)
        order = np.argsort(truth)[:7]
        np.testing.assert_array_equal(kept[row], candidates[row][order])
        np.testing.assert_allclose(sq_dist[row], truth[order], rtol=1e-4, atol=1e-4)


def test_rerank_pads_missing_candidates_and_drops_windows_no_longer_stored():
    ids, vectors = _stored(count=6)
    gone = ids[2]

    def gather(wanted):
        out = np.stack([vectors[list(ids).index(i)] for i in wanted])
        out[wanted == gone] = np.nan  # its video was removed after the candidate search
        return out

    candidates = np.array([[ids[0], gone, ids[1], -1]])
    matches = exact_rerank(vectors[:1], candidates, 5, gather)
    sq_dist, kept = matches.distances, matches.ids
    assert kept[0, 0] == ids[0] and sq_dist[0, 0] < 1e-6
    assert set(kept[0, :2].tolist()) == {ids[0], ids[1]}
    assert (kept[0, 2:] == -1).all() and np.isinf(sq_dist[0, 2:]).all()


def test_two_stage_search_over_compact_codes_finds_each_window_itself():
    # Near-duplicate pairs: 4-bit codes cannot tell a window from its twin, the exact
    # re-rank of its candidates does.
    ids, base = _stored(count=2000)
    twins = base[:1000]
    vectors = np.concatenate([twins, twins + np.random.default_rng(1).normal(0, 0.02, twins.shape)]).astype(np.float32)
    store = VectorStore.create(vectors.shape[1], "PCAR16,IVF8,PQ8x4fs")
    store.train(vectors)
    store.add(ids, vectors)
    assert not store.exact_distances
    approx = store.search(vectors, 1).ids
    assert (approx[:, 0] != ids).any()
    order = {i: n for n, i in enumerate(ids.tolist())}
    search = TwoStageSearch(candidates=store.search, gather=lambda wanted: vectors[[order[i] for i in wanted]], factor=8)
    matches = search(vectors, 3)
    sq_dist, found = matches.distances, matches.ids
    assert found.shape == (2000, 3)
    assert (found[:, 0] == ids).mean() > 0.99 and np.median(sq_dist[:, 0]) < 1e-6

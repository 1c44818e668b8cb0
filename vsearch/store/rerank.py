"""Two-stage search: compact-code candidates, then exact distances from the stored descriptors.

A compact index (IVF with 4-bit product-quantised codes, a few tens of bytes a
window) keeps a large library's search in memory and fast, but its distances are
approximate: a vote scored on them would rank segments by quantisation noise. So
each query window fetches ``factor`` times more candidates than it needs, and the
candidates' distances are computed again from the full-precision block descriptors
(read only for those windows, from the memory-mapped metadata store), keeping the
``k`` nearest. The vote, the alignment and the scores then see exact distances, as
with a Flat index; only windows the candidate stage missed are lost, and a clip's
20-85 windows voting on one (video, offset) make up for a few of those.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .matches import Matches

#: ``ids -> (len(ids), dim) float32``: the stored full-precision vectors of windows,
#: normalised as indexed (a window no longer stored may come back as NaN).
WindowGather = Callable[[np.ndarray], np.ndarray]

#: Candidates fetched per neighbour kept. Measured with ``tools.bench_query --clips``:
#: see the README's Benchmarks section.
DEFAULT_CANDIDATE_FACTOR = 4


def exact_rerank(queries: np.ndarray, candidate_ids: np.ndarray, k: int, gather: WindowGather) -> Matches:
    """The ``k`` nearest of each row's candidates by exact squared L2 distance.

    ``candidate_ids`` is ``(n, c)`` (-1 where the index had fewer); each distinct id
    is gathered once. Returns ``(n, k)`` matches, nearest first, padded (id -1,
    distance ``inf``) where a row has fewer than ``k`` candidates.
    """
    n = len(queries)
    out_dist = np.full((n, k), np.inf, np.float32)
    out_ids = np.full((n, k), -1, np.int64)
    valid = candidate_ids >= 0
    if n == 0 or not valid.any():
        return Matches(out_dist, out_ids)
    unique, inverse = np.unique(candidate_ids[valid], return_inverse=True)
    stored = np.asarray(gather(unique), dtype=np.float32)
    queries = np.asarray(queries, dtype=np.float32)
    rows = np.broadcast_to(np.arange(n)[:, None], candidate_ids.shape)[valid]
    # |q - x|^2 = |q|^2 + |x|^2 - 2 q.x, on each (row, candidate) pair only.
    cross = np.einsum("ij,ij->i", queries[rows], stored[inverse])
    sq_dist = np.full(candidate_ids.shape, np.inf, np.float32)
    pair = (np.einsum("ij,ij->i", queries, queries)[rows] + np.einsum("ij,ij->i", stored, stored)[inverse] - 2 * cross)
    sq_dist[valid] = np.maximum(pair, 0.0)
    sq_dist[~np.isfinite(sq_dist)] = np.inf  # a window gone from the store since the search
    keep = min(k, candidate_ids.shape[1])
    order = np.argsort(sq_dist, axis=1, kind="stable")[:, :keep]
    out_dist[:, :keep] = np.take_along_axis(sq_dist, order, 1)
    out_ids[:, :keep] = np.where(np.isfinite(out_dist[:, :keep]), np.take_along_axis(candidate_ids, order, 1), -1)
    return Matches(out_dist, out_ids)


@dataclass(frozen=True, kw_only=True)
class TwoStageSearch:
    """A ``search(vectors, k)`` over a compact index: ``candidates(vectors, c)`` gives
    approximate neighbours, ``gather`` their stored vectors, and the exact ``k``
    nearest of ``factor * k`` candidates are returned (same contract as a Flat search)."""

    candidates: Callable[[np.ndarray, int], Matches]
    gather: WindowGather
    factor: int = DEFAULT_CANDIDATE_FACTOR

    def __call__(self, vectors: np.ndarray, k: int) -> Matches:
        return exact_rerank(vectors, self.candidates(vectors, self.factor * k).ids, k, self.gather)

"""Neighbour results: each query vector's nearest indexed windows, as one named type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np


@dataclass(frozen=True)
class Matches:
    """The nearest windows of each query vector, nearest first.

    ``distances`` are squared L2 distances and ``ids`` window ids (``video_id << 32 |
    window``), both ``(queries, k)``. A row holds fewer than ``k`` neighbours where
    the index has fewer to give: its remaining entries have id -1 and no meaningful
    distance; :attr:`found` marks the real ones, and iterating gives each row's.
    """

    distances: np.ndarray
    ids: np.ndarray

    @classmethod
    def empty(cls, queries: int = 0, k: int = 0) -> "Matches":
        """``queries`` rows of ``k`` missing neighbours."""
        return cls(np.full((queries, k), np.inf, np.float32), np.full((queries, k), -1, np.int64))

    @property
    def found(self) -> np.ndarray:
        """Which entries are real neighbours (the others pad a row)."""
        return self.ids >= 0

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Per query vector: the ids and squared distances of the neighbours found."""
        for ids, distances in zip(self.ids, self.distances):
            keep = ids >= 0
            yield ids[keep], distances[keep]

"""The library as the search reads it: one index, or several shards merged."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..cells import FRAME, Region
from ..config import IndexConfig
from ..models import VideoRecord
from ..store.matches import Matches
from ..windows import video_windows


@dataclass(frozen=True)
class Library:
    """What the query path reads from an index: its settings, its videos by id, a
    nearest-neighbour search over its windows (``search(vectors, n)`` -> the
    :class:`Matches` of each vector), and one video's stored blocks by block number
    (the windows it is aligned with are made from them, :func:`video_windows`)."""

    config: IndexConfig
    videos: dict[int, VideoRecord]
    search: Callable[[np.ndarray, int], Matches]
    blocks: Callable[[int], np.ndarray]
    #: Noise levels measured on the library (see :mod:`.calibration`), or None.
    noise: dict | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "windows", functools.lru_cache(maxsize=256)(self._windows))

    def _windows(self, video_id: int, region: Region = FRAME, grid: tuple[int, int] | None = None) -> np.ndarray:
        return video_windows(self.blocks(video_id), self.videos[video_id], self.config, region, grid)

    def detail(self, video_id: int, region: Region = FRAME) -> np.ndarray:
        """One video's windows of ``region`` by window number, at the grid hits are
        verified and aligned with (``v2``: the region's own cells; others: the search vectors)."""
        return self.windows(video_id, region, region.detail if self.config.pooled else None)

"""The library as the search reads it: one index, or several shards merged."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..config import IndexConfig
from ..models import VideoRecord
from ..store.matches import Matches


@dataclass(frozen=True)
class Library:
    """What the query path reads from an index: its settings, its videos by id, a
    nearest-neighbour search over its windows (``search(vectors, n)`` -> the
    :class:`Matches` of each vector), and one video's window vectors by window number."""

    config: IndexConfig
    videos: dict[int, VideoRecord]
    search: Callable[[np.ndarray, int], Matches]
    windows: Callable[[int], np.ndarray]

"""Sharded search on Ray: one actor per shard keeps its index open, a query fans out.

:func:`open_remote_shards` starts a :class:`ShardServer` actor per shard folder
(spread over the cluster's machines; each opens its index where it runs, so the
folder must be there) and returns a ``vsearch.library.sharded.ShardedIndex`` over
:class:`RemoteShard` handles. The driver decodes and describes the query clip
once; each search asks every actor at once for its nearest windows and merges
them (``vsearch.library.sharded.merge_nearest``), and alignment fetches one video's stored
windows from the actor holding it. Only NumPy arrays and plain records cross the
wire. The hits are those of the same shards opened locally.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import Future
from typing import Any, Sequence

import numpy as np

from ..config import IndexConfig
from ..device import resolve_device
from ..errors import VsearchError
from ..models import IndexStats, VideoRecord
from ..library.sharded import ShardedIndex, shard_paths
from ..store.matches import Matches
from .connection import connect, first_line


#: How often a shard actor that died is started again.
_RESTARTS = 3


class ShardServer:
    """The actor's body: one index, opened read-only for queries and kept in memory."""

    def __init__(self, path: str) -> None:
        from ..library.index import VideoIndex

        # An index that cannot be opened is reported by `describe`, as the vsearch
        # error it is (an actor that dies in its constructor only says it died).
        self.error: VsearchError | None = None
        try:
            self.index = VideoIndex.open(path, device="cpu")
        except VsearchError as exc:
            self.error = exc

    def describe(self) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        return {"path": self.index.path, "config": self.index.config.to_dict(),
                "videos": [dataclasses.asdict(record) for record in self.index.videos()]}

    def nearest(self, vectors: np.ndarray, n: int) -> Matches:
        return self.index.nearest(vectors, n)

    def video_blocks(self, video_id: int) -> np.ndarray:
        return self.index.video_blocks(video_id)

    def stats(self) -> dict[str, Any]:
        return dataclasses.asdict(self.index.stats())

    def pid(self) -> int:
        return os.getpid()


class RemoteShard:
    """A :class:`vsearch.library.sharded.Shard` served by a :class:`ShardServer` actor."""

    def __init__(self, actor: Any, described: dict[str, Any]) -> None:
        self.actor = actor
        self.path = described["path"]
        self.config = IndexConfig.from_dict(described["config"])
        self._videos = [VideoRecord(**record) for record in described["videos"]]

    def videos(self) -> list[VideoRecord]:
        return list(self._videos)

    def nearest(self, vectors: np.ndarray, n: int) -> "Future[Matches]":
        return self.actor.nearest.remote(vectors, n).future()

    def video_blocks(self, video_id: int) -> np.ndarray:
        import ray

        return ray.get(self.actor.video_blocks.remote(video_id))

    def stats(self) -> IndexStats:
        import ray

        return IndexStats(**ray.get(self.actor.stats.remote()))

    def close(self) -> None:
        import ray

        ray.kill(self.actor)


def open_remote_shards(
    indexes: Sequence[str | os.PathLike], *, address: str | None = None, device: str = "auto",
    cpus_per_shard: float = 0.0,
) -> ShardedIndex:
    """Shards (folders and/or manifests) each served by a Ray actor, as one library.

    ``cpus_per_shard``: CPUs an actor reserves (0: it only holds memory between
    queries); actors are spread over the cluster's machines.
    """
    ray = connect(address)
    actor_class = ray.remote(ShardServer)
    # Searches only read: an actor that dies is started again (it reopens its index)
    # and the calls it had in hand are retried, so a query does not see the crash.
    options = dict(num_cpus=cpus_per_shard, scheduling_strategy="SPREAD", max_restarts=_RESTARTS,
                   max_task_retries=_RESTARTS)
    actors = [actor_class.options(**options).remote(os.path.abspath(path)) for path in shard_paths(indexes)]
    try:
        described = ray.get([actor.describe.remote() for actor in actors])
    except ray.exceptions.RayError as exc:
        for actor in actors:
            ray.kill(actor)
        cause = getattr(exc, "cause", None)
        if isinstance(cause, VsearchError):
            raise cause from None
        raise VsearchError(f"a shard actor failed ({first_line(exc)})") from None
    return ShardedIndex([RemoteShard(actor, info) for actor, info in zip(actors, described)],
                        device=resolve_device(device))

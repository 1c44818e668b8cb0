"""vsearch on a Ray cluster (extra ``ray``): the same commands, more machines.

- :mod:`.ingest`: :class:`~.ingest.RayReader`, one Ray task per file decodes and
  describes it anywhere on the cluster; the driver stays the one committing writer
  (``VideoIndex.add(reader=...)``), so commit order, the writer lock, content-hash
  dedup and ``kill -9`` safety are those of a single machine;
- :mod:`.connection`: :func:`connect` (a local cluster on loopback, or ``auto`` /
  ``HOST:PORT``) and :func:`require_ray`;
- :mod:`.actors`: one Ray actor per shard keeps its index open in memory; a query
  fans out to every actor and merges (``vsearch.library.sharded.ShardedIndex``).

Ray is imported only here, and only when a Ray feature is used: the
single-machine path never imports it. Video files (and an ONNX model) must be at
the same paths on every machine, and vsearch installed there.
"""

from __future__ import annotations

from .connection import connect, require_ray

__all__ = ["RayReader", "connect", "open_remote_shards", "require_ray"]


def __getattr__(name: str):
    # Lazy, so that `require_ray` can say which extra is missing before ray is imported.
    if name == "RayReader":
        from .ingest import RayReader

        return RayReader
    if name == "open_remote_shards":
        from .actors import open_remote_shards

        return open_remote_shards
    raise AttributeError(name)

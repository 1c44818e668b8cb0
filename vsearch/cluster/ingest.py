"""Distributed ingest: Ray tasks read the files, this process commits them.

:class:`RayReader` is a reader for ``VideoIndex.add`` / ``ShardedIndex.add``: one
Ray task per file hashes, decodes and describes it on any worker of the cluster
and returns its block descriptors (a NumPy array) and a JSON record; tasks never
open the index. The driver hands the results to the one writer **in input
order**, so video ids and commit order are those of a plain ingest, with everything
that follows from it (the writer lock, content-hash dedup, ``kill -9`` safety: a
file is committed whole in one LMDB transaction or not at all).

- A killed task or worker is retried by Ray (``max_retries``); a file whose task
  keeps dying, or fails, is reported ``failed`` and the others go on.
- Re-running the same ingest after an interruption skips what is committed: the
  tasks only hash content the index holds (the ``known`` set, sent once).
- Up to ``in_flight`` tasks run or wait at once (default: twice the cluster's
  CPUs), so a long file holds back commits, not the workers.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections import deque
from typing import Any, Iterable, Iterator

import numpy as np

from ..config import IndexConfig
from ..decode import DEFAULT_MAX_PIXELS, VideoInfo
from ..device import Device, resolve_device
from ..describe import VideoDescriptors
from ..errors import VideoError
from ..extractors import Extractor, create_extractor
from ..ingest.readers import PreparedVideo, ReadResult, absolute, prepare_file
from .connection import connect, first_line

#: Name of the Ray task (workers show ``ray::vsearch.prepare`` while running one).
TASK_NAME = "vsearch.prepare"


@functools.lru_cache(maxsize=4)
def _worker_extractor(config_json: str, device_name: str) -> tuple[IndexConfig, Device, Extractor]:
    """Made once per worker process and index (an ONNX model is loaded once, not per file)."""
    config = IndexConfig.from_dict(json.loads(config_json))
    device = resolve_device(device_name)
    return config, device, create_extractor(config, device)


def prepare_on_worker(path: str, config_json: str, device_name: str, known: list[str], timeout: float,
                      decode_threads: int, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> dict[str, Any]:
    """The Ray task: one file prepared (see ``vsearch.ingest.readers.prepare_file``), as plain data:
    ``{"failed": reason}`` or the record's fields as JSON text plus the blocks array."""
    config, device, extractor = _worker_extractor(config_json, device_name)
    try:
        prepared = prepare_file(path, config=config, device=device, extractor=extractor, known=frozenset(known),
                                timeout=timeout, decode_threads=decode_threads, max_pixels=max_pixels)
    except VideoError as exc:
        return {"failed": exc.reason}
    described = prepared.described
    record = {"digest": prepared.digest, "damaged": prepared.damaged, "windows": prepared.windows,
              "info": dataclasses.asdict(described.info) if described is not None else None}
    return {"record": json.dumps(record), "blocks": described.blocks if described is not None else None}


def prepared_from_task(path: str, output: dict[str, Any]) -> PreparedVideo | VideoError:
    """A task's plain output back as what the writer commits."""
    if "failed" in output:
        return VideoError(path, output["failed"])
    record = json.loads(output["record"])
    described = None
    if record["info"] is not None:
        info = record["info"]
        info = VideoInfo(**{**info, "damaged": tuple(tuple(span) for span in info["damaged"])})
        # Ray hands arrays back read-only, from its object store: keep a copy of our own.
        described = VideoDescriptors(info=info, blocks=np.array(output["blocks"], dtype=np.float32))
    return PreparedVideo(path=path, digest=record["digest"], described=described,
                         damaged=[tuple(span) for span in record["damaged"]], windows=record["windows"])


class RayReader:
    """Reads files with Ray tasks across a cluster (see the module docstring).

    ``address``: as for :func:`vsearch.cluster.connect` (None starts a local cluster).
    ``max_retries``: how often a task whose worker died is run again.
    ``cpus_per_task``: CPUs a task reserves; it decodes with as many FFmpeg threads
    (a task that took every core of its machine would slow the others down).
    """

    def __init__(self, *, address: str | None = None, in_flight: int | None = None, max_retries: int = 3,
                 cpus_per_task: float = 1.0) -> None:
        self.address = address
        self.in_flight = in_flight
        self.max_retries = max_retries
        self.cpus_per_task = cpus_per_task

    @classmethod
    def connected(cls, address: str | None = None, **options: Any) -> "RayReader":
        """A reader whose cluster is joined now, so that one that cannot be joined is
        reported before the index is touched."""
        connect(address)
        return cls(address=address, **options)

    def workers(self) -> int:
        """CPUs of the cluster (joining it if needed): tasks that can run at once."""
        ray = connect(self.address)
        return int(ray.cluster_resources().get("CPU", 1) // self.cpus_per_task) or 1

    def read(
        self, paths: Iterable[str | os.PathLike], *, config: IndexConfig, device: Device, extractor: Extractor,
        known: set[str], timeout: float, max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> Iterator[ReadResult]:
        ray = connect(self.address)
        task = ray.remote(prepare_on_worker).options(
            name=TASK_NAME, max_retries=self.max_retries, num_cpus=self.cpus_per_task)
        config_json = json.dumps(config.to_dict())
        known_ref = ray.put(sorted(known))  # once, not once per task
        in_flight = self.in_flight or 2 * self.workers()
        queue: deque[tuple[str, Any]] = deque()
        todo = iter(paths)

        def submit_next() -> None:
            raw = next(todo, None)
            if raw is not None:
                path = absolute(raw)
                queue.append((path, task.remote(path, config_json, device.name, known_ref, timeout,
                                                max(1, round(self.cpus_per_task)), max_pixels)))

        try:
            for _ in range(in_flight):
                submit_next()
            while queue:
                path, ref = queue.popleft()
                submit_next()
                try:
                    output = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    yield path, VideoError(path, f"failed on the Ray cluster ({first_line(exc)})")
                    continue
                yield path, prepared_from_task(path, output)
        finally:
            for _, ref in queue:  # interrupted: tasks not yet done are dropped
                ray.cancel(ref, force=True)

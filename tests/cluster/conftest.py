"""One real local Ray cluster (2 CPUs, loopback, no dashboard) shared by the cluster tests."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from tools.support import run_ffmpeg


@pytest.fixture(scope="package")
def ray_cluster() -> str:
    """The cluster's address (a CLI in another process joins it with --ray-address);
    stopped after this folder's tests, so the rest of the suite runs without it."""
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only, as vsearch.cluster.connect
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", logging_level=logging.WARNING)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="session")
def long_video(media, tmp_path_factory) -> Path:
    """lib11 played four times (64 s, stream copy): a task that lasts long enough to be killed."""
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    run_ffmpeg(["-stream_loop", "3", "-i", str(media["lib11"]), "-c", "copy", "-an", str(path)])
    return path


def running_tasks(title: bytes) -> list[int]:
    """Pids of Ray workers running a task now (a worker's title is ``ray::TASK`` while it runs one)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if handle.read().split(b"\0")[0] == title:
                        pids.append(int(entry))
            except OSError:
                continue
    return pids

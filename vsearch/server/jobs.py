"""Additions and removals as jobs, run one at a time by one writer thread.

The index has one writer (its writer lock, :mod:`vsearch.lock`); a server runs its
writes in a single thread, in the order they were asked for, so they never wait on
each other's lock. Each job takes the lock only while it runs: between jobs a
``vsearch ingest`` in another process may write, and a job that starts while one
does fails with that lock's message. Jobs are kept in memory (the last
:data:`KEEP_JOBS`); what they committed is in the index, durable, whatever happens
to the server.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from ..errors import VsearchError
from ..store.metastore import now_iso
from ..models import IngestResult
from .live import LiveIndex

log = logging.getLogger(__name__)

#: Finished jobs remembered for ``GET /jobs/{id}``.
KEEP_JOBS = 1000


@dataclass(kw_only=True)
class FileStatus:
    """One file of a job: ``pending`` until handled, then an ingest status (``added``,
    ``replaced``, ``partial``, ``moved``, ``skipped``, ``failed``), or ``removed``;
    ``not started`` if the job ended first."""

    path: str
    status: str = "pending"
    video_id: int | None = None
    reason: str = ""


@dataclass(kw_only=True)
class Job:
    """An addition (``add``) or removal (``remove``) and how far it got.

    ``state``: ``queued``, ``running``, ``done`` (every file handled; some may have
    failed, see ``files``), ``failed`` (the job could not run: ``error`` says why) or
    ``cancelled`` (the server stopped; files handled so far are committed).
    """

    id: str
    kind: str
    state: str = "queued"
    submitted: str = field(default_factory=now_iso)
    started: str | None = None
    finished: str | None = None
    total: int = 0
    processed: int = 0
    error: str = ""
    files: list[FileStatus] = field(default_factory=list)


class _Cancelled(Exception):
    """Raised from the ingest progress callback to stop a job when the server stops."""


class JobRunner:
    """Runs jobs one after the other in one thread, against a :class:`LiveIndex`."""

    def __init__(self, live: LiveIndex, *, decode_timeout: float, max_pixels: int | None) -> None:
        self._live = live
        self._decode_timeout, self._max_pixels = decode_timeout, max_pixels
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vsearch-writer")

    # -- asking -------------------------------------------------------------------

    def add(self, paths: list[str]) -> Job:
        """Queue the addition of video files (already checked and expanded)."""
        return self._submit("add", paths, self._run_add)

    def remove(self, path: str) -> Job:
        """Queue the removal of one indexed video, by its indexed path."""
        return self._submit("remove", [path], self._run_remove)

    def get(self, job_id: str) -> Job | None:
        """A copy of the job as it stands (the writer thread keeps changing the original)."""
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else dataclasses.replace(job, files=[dataclasses.replace(f) for f in job.files])

    def busy(self) -> bool:
        """Whether a job of this server is queued or running."""
        with self._lock:
            return any(job.state in ("queued", "running") for job in self._jobs.values())

    def _submit(self, kind: str, paths: list[str], work: Callable[[Job], None]) -> Job:
        job = Job(id=secrets.token_hex(8), kind=kind, total=len(paths), files=[FileStatus(path=p) for p in paths])
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > KEEP_JOBS:
                self._jobs.popitem(last=False)
        self._thread.submit(self._run, job, work)
        return self.get(job.id)

    # -- running (writer thread) ----------------------------------------------------

    def _update(self, job: Job, **changes) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(job, name, value)

    def _run(self, job: Job, work: Callable[[Job], None]) -> None:
        if self._stopping.is_set():
            self._finish(job, "cancelled")
            return
        self._update(job, state="running", started=now_iso())
        try:
            work(job)
            state, error = "done", ""
        except _Cancelled:
            state, error = "cancelled", "the server stopped"
        except VsearchError as exc:
            state, error = "failed", str(exc)
        except Exception as exc:  # noqa: BLE001 - a job's bug is reported in the job, the server goes on
            log.exception("job %s failed", job.id)
            state, error = "failed", f"internal error: {type(exc).__name__}: {exc}"
        # Whatever was committed becomes visible to queries before the job reads as ended.
        try:
            self._live.refresh(force=True)
        finally:
            self._finish(job, state, error)

    def _finish(self, job: Job, state: str, error: str = "") -> None:
        with self._lock:
            for status in job.files:
                if status.status == "pending":
                    status.status = "not started"
            job.state, job.error, job.finished = state, error, now_iso()

    def _run_add(self, job: Job) -> None:
        def progress(result: IngestResult) -> None:
            # Results arrive one per file, in the order given.
            with self._lock:
                status = job.files[job.processed]
                status.status, status.video_id, status.reason = result.status, result.video_id, result.reason
                job.processed += 1
            self._live.refresh()
            if self._stopping.is_set():
                raise _Cancelled

        with self._live.index.view() as writer:
            writer.add(job_paths(job), progress=progress, timeout=self._decode_timeout, max_pixels=self._max_pixels)

    def _run_remove(self, job: Job) -> None:
        with self._live.index.view() as writer:
            try:
                removed = writer.remove(job_paths(job))
            except VsearchError as exc:
                self._update(job.files[0], status="failed", reason=str(exc))
                raise
        self._update(job.files[0], status="removed", video_id=removed[0].id)
        self._update(job, processed=1)

    def close(self) -> None:
        """Stop: queued jobs are cancelled, a running addition stops after the file it
        is committing (files being read are abandoned)."""
        self._stopping.set()
        self._thread.shutdown(wait=True)


def job_paths(job: Job) -> list[str]:
    return [status.path for status in job.files]

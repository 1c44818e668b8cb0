"""One writer at a time: an exclusive ``flock`` on ``writer.lock`` holding the pid.

The kernel drops a ``flock`` when its process dies, however it dies, so a lock left
by a killed writer is simply taken over; the pid in the file is for the message.
"""

from __future__ import annotations

import fcntl
import os
import time

from .errors import IndexLockedError, VsearchError

FILENAME = "writer.lock"


class WriterLock:
    def __init__(self, directory: str) -> None:
        self.path = os.path.join(directory, FILENAME)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, *, wait: float = 0.0) -> None:
        """Take the lock, retrying for up to ``wait`` seconds before giving up."""
        if self._fd is not None:
            return
        deadline = time.monotonic() + wait
        while True:
            try:
                self._try_acquire()
                return
            except IndexLockedError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.1)

    def _try_acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise VsearchError(f"{self.path}: cannot open writer lock ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise IndexLockedError(
                f"{os.path.dirname(self.path)}: index is locked by another writer (pid {holder}); "
                "wait for it to finish"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

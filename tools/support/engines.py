"""vsearch engines measured side by side in one run: this tree, and a baseline commit
checked out with ``git worktree`` and run with its own code (for the benchmarks).

Each engine runs as a user runs it, ``python -m vsearch ...`` in its own checkout, so
its decoder processes are its own too. An index one engine builds may not open with
another (the feature version differs): a benchmark builds one per engine.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .ffmpeg import last_stderr_line

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Timed:
    """A finished ``vsearch`` process: its exit status, output, wall seconds, and CPU
    seconds (its own and those of the processes it waited for: its decoders)."""

    returncode: int
    stdout: str
    stderr: str
    wall: float
    cpu: float


@dataclass(frozen=True)
class Engine:
    """A checkout of vsearch: ``name`` (``current`` or ``baseline``), its ``root``, and
    the commit it shows (``label``)."""

    name: str
    root: Path
    label: str

    def run(self, *args: str, ok: tuple[int, ...] = (0,)) -> Timed:
        """``vsearch ARGS`` in this checkout, timed; exits the benchmark with the command's
        last error line unless its status is in ``ok``. CPU time is read from this
        process's waited children: run one at a time."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "vsearch", *args], cwd=self.root, capture_output=True,
                              text=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode not in ok:
            sys.exit(f"{self.name} engine ({self.label}): vsearch {args[0]} failed with status {proc.returncode}: "
                     f"{last_stderr_line(proc.stderr)}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return Timed(proc.returncode, proc.stdout, proc.stderr, wall, cpu)


def current_engine() -> Engine:
    """This tree, as it is (uncommitted changes included)."""
    return Engine("current", ROOT, f"this tree, on {_short_commit(ROOT)}")


@contextmanager
def baseline_engine(ref: str) -> Iterator[Engine]:
    """``ref`` checked out in a temporary ``git worktree``, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="vsearch-baseline-")) / "checkout"
    added = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), ref],
                           capture_output=True, text=True)
    if added.returncode != 0:
        shutil.rmtree(folder.parent, ignore_errors=True)
        sys.exit(f"baseline {ref}: {last_stderr_line(added.stderr)}")
    try:
        yield Engine("baseline", folder, f"{ref} ({_short_commit(folder)})")
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)], capture_output=True)
        shutil.rmtree(folder.parent, ignore_errors=True)


def _short_commit(checkout: Path) -> str:
    return subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip() or "?"

"""The vsearch a tool drives through its command line: this tree, or another checkout
of it (a baseline commit checked out with ``git worktree``), measured side by side.

An :class:`Engine` runs ``python -m vsearch`` as a user runs it, with the checkout as
working folder and first on ``PYTHONPATH``: the checkout's own ``vsearch`` package is
imported, not the one this interpreter has installed (:meth:`Engine.imported_from`
proves which), and its decoder processes are its own too. Both use this interpreter's
dependencies. An index one engine builds may not open with another (the feature
version differs): a tool builds one per engine.
"""

from __future__ import annotations

import hashlib
import os
import re
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
    """A checkout holding a ``vsearch`` package (``root/vsearch/__main__.py``), the
    ``name`` a report gives it (``current``, ``baseline``) and the commit it shows
    (``label``)."""

    root: Path
    name: str = "current"
    label: str = ""

    @classmethod
    def at(cls, path: str | os.PathLike | None = None, *, name: str = "current") -> Engine:
        """The engine of checkout ``path`` (default: this tree); ValueError if it holds no vsearch."""
        root = Path(path or ROOT).expanduser().resolve()
        if not (root / "vsearch" / "__main__.py").is_file():
            raise ValueError(f"{root}: no vsearch package (vsearch/__main__.py) in this folder")
        return cls(root, name, _short_commit(root))

    def _env(self) -> dict[str, str]:
        paths = [str(self.root), *filter(None, [os.environ.get("PYTHONPATH")])]
        # A wide, plain terminal: help texts are parsed (default_min_score).
        return dict(os.environ, PYTHONPATH=os.pathsep.join(paths), COLUMNS="200", NO_COLOR="1", TERM="dumb")

    def _python(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=self.root, env=self._env())

    def run(self, *args: str) -> Timed:
        """``vsearch ARGS`` of this checkout, timed, output captured as text. CPU time is
        read from this process's waited children: run one at a time."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = self._python("-m", "vsearch", *args)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return Timed(proc.returncode, proc.stdout, proc.stderr, wall, cpu)

    def must_run(self, *args: str, ok: tuple[int, ...] = (0,)) -> Timed:
        """:meth:`run`, exiting the tool with the command's last error line unless its
        status is in ``ok``."""
        timed = self.run(*args)
        if timed.returncode not in ok:
            sys.exit(f"{self.name} engine ({self.label}): vsearch {args[0]} failed with status {timed.returncode}: "
                     f"{last_stderr_line(timed.stderr)}")
        return timed

    def imported_from(self) -> Path:
        """The folder of the ``vsearch`` package that :meth:`run` imports."""
        proc = self._python("-c", "import vsearch; print(vsearch.__file__)")
        if proc.returncode != 0:
            reason = (proc.stderr.strip().splitlines() or ["-"])[-1]
            raise RuntimeError(f"{self.root}: vsearch does not import: {reason}")
        return Path(proc.stdout.strip()).resolve().parent

    def commit(self) -> str:
        """The checkout's short commit (``git rev-parse --short HEAD``), or ``unknown``."""
        return _short_commit(self.root) or "unknown"

    def fingerprint(self) -> str:
        """The commit, plus a hash of the package's files where they differ from it.

        Names what built an index: an index is only reused by the same engine code.
        """
        proc = subprocess.run(["git", "-C", str(self.root), "status", "--porcelain", "--", "vsearch"],
                              capture_output=True, text=True)
        if proc.returncode == 0 and proc.stdout.strip() == "":
            return self.commit()
        digest = hashlib.blake2b(digest_size=4)
        for path in sorted((self.root / "vsearch").rglob("*.py")):
            digest.update(str(path.relative_to(self.root)).encode() + b"\0" + path.read_bytes())
        return f"{self.commit()}+{digest.hexdigest()}"

    def default_min_score(self) -> float | None:
        """The engine's default ``--min-score``, read from ``vsearch query --help``; None if not found."""
        help_text = self.run("query", "--help").stdout
        match = re.search(r"--min-score\b.{0,300}?\[(?:default: )?([01](?:\.\d+)?)\]", help_text, re.DOTALL)
        return float(match.group(1)) if match else None

    def describe(self) -> str:
        """One line for a report's header: where vsearch is imported from and its commit."""
        return f"engine {self.imported_from()} (commit {self.commit()}, index name {self.fingerprint()})"


def current_engine() -> Engine:
    """This tree, as it is (uncommitted changes included)."""
    return Engine(ROOT, "current", f"this tree, on {_short_commit(ROOT) or '?'}")


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
        yield Engine(folder, "baseline", f"{ref} ({_short_commit(folder) or '?'})")
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)], capture_output=True)
        shutil.rmtree(folder.parent, ignore_errors=True)


def _short_commit(checkout: Path) -> str:
    """The checkout's short commit, or an empty string where git cannot tell."""
    proc = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else ""

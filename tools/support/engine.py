"""The vsearch a tool drives through its command line: this tree, or another checkout of it.

An :class:`Engine` runs ``python -m vsearch`` with the checkout as working folder and
first on ``PYTHONPATH``, so the checkout's own ``vsearch`` package is imported, not
the one this interpreter has installed (:meth:`Engine.imported_from` proves which).
The same clips and harness can so measure an older commit (a ``git worktree``) and
this tree side by side; both use this interpreter's dependencies.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Engine:
    """A checkout holding a ``vsearch`` package (``root/vsearch/__main__.py``)."""

    root: Path

    @classmethod
    def at(cls, path: str | os.PathLike | None = None) -> Engine:
        """The engine of checkout ``path`` (default: this tree); ValueError if it holds no vsearch."""
        root = Path(path or ROOT).expanduser().resolve()
        if not (root / "vsearch" / "__main__.py").is_file():
            raise ValueError(f"{root}: no vsearch package (vsearch/__main__.py) in this folder")
        return cls(root)

    def _env(self) -> dict[str, str]:
        paths = [str(self.root), *filter(None, [os.environ.get("PYTHONPATH")])]
        # A wide, plain terminal: help texts are parsed (default_min_score).
        return dict(os.environ, PYTHONPATH=os.pathsep.join(paths), COLUMNS="200", NO_COLOR="1", TERM="dumb")

    def _python(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=self.root, env=self._env())

    def run(self, *args: str) -> subprocess.CompletedProcess:
        """``vsearch ARGS`` of this checkout, output captured as text."""
        return self._python("-m", "vsearch", *args)

    def imported_from(self) -> Path:
        """The folder of the ``vsearch`` package that :meth:`run` imports."""
        proc = self._python("-c", "import vsearch; print(vsearch.__file__)")
        if proc.returncode != 0:
            reason = (proc.stderr.strip().splitlines() or ["-"])[-1]
            raise RuntimeError(f"{self.root}: vsearch does not import: {reason}")
        return Path(proc.stdout.strip()).resolve().parent

    def _git(self, *args: str) -> str | None:
        proc = subprocess.run(["git", "-C", str(self.root), *args], capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def commit(self) -> str:
        """The checkout's short commit (``git rev-parse --short HEAD``), or ``unknown``."""
        return self._git("rev-parse", "--short", "HEAD") or "unknown"

    def fingerprint(self) -> str:
        """The commit, plus a hash of the package's files where they differ from it.

        Names what built an index: an index is only reused by the same engine code.
        """
        changed = self._git("status", "--porcelain", "--", "vsearch")
        if changed == "":
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

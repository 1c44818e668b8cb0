"""The processes a vsearch command or server runs, as Linux's /proc shows them: its
decoder processes, and their peak memory (for the tests and the benchmarks)."""

from __future__ import annotations

from pathlib import Path

#: What a decoder process's command line holds (``python -m vsearch.decode.worker``).
DECODER_MODULE = "vsearch.decode.worker"


def children(pid: int) -> list[int]:
    """The process ids whose parent is ``pid`` (zombies included)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def is_decoder(pid: int) -> bool:
    """Whether ``pid`` is a live vsearch decoder process (a zombie has no command line)."""
    try:
        return DECODER_MODULE in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False


def decoder_children(pid: int) -> set[int]:
    """The live decoder processes that ``pid`` started."""
    return {child for child in children(pid) if is_decoder(child)}


def peak_rss(pid: int) -> int:
    """VmHWM of a process (bytes; 0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) << 10
    except OSError:
        pass
    return 0

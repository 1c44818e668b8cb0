"""The processes a vsearch command or server runs, as Linux's /proc shows them: its
decoder processes, their peak memory and CPU time (for the tests and the benchmarks)."""

from __future__ import annotations

import os
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


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user and system) of a process, of the children it has waited for,
    and of its children still there: a server's with its decoders'. 0 once it is gone."""
    return sum(_cpu_of(process) for process in [pid, *children(pid)])


def _cpu_of(pid: int) -> float:
    """utime + stime + cutime + cstime of one process, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(ticks) for ticks in fields[11:15]) / os.sysconf("SC_CLK_TCK")

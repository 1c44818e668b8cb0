"""Which files are videos to read: folder expansion and readability checks."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterator

from ..errors import VideoError

#: File extensions picked up when a folder is ingested.
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
     ".wmv", ".flv", ".3gp", ".ogv", ".vob", ".mxf", ".dv"}
)


def check_readable(path: str) -> None:
    """Raise :class:`VideoError` unless ``path`` is a readable, non-empty file.

    Pipes are accepted (a clip streamed by another program); their size is unknown.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise VideoError(path, "no such file") from None
    except OSError as exc:
        raise VideoError(path, f"cannot read file ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise VideoError(path, "is a directory")
    if not os.access(path, os.R_OK):
        raise VideoError(path, "permission denied")
    if stat.S_ISREG(mode) and os.path.getsize(path) == 0:
        raise VideoError(path, "empty file")


def iter_video_files(paths: list[str | os.PathLike]) -> Iterator[str]:
    """Expand files and folders (recursively, sorted) into video file paths.

    Files named explicitly are always returned, whatever their extension, so that a
    bad file given on purpose gets a clear error instead of being silently skipped.
    A named path that does not exist raises :class:`VideoError` before anything is
    returned: a typo must not look like an empty folder.
    """
    paths = [Path(raw) for raw in paths]
    for path in paths:
        if not os.path.lexists(path):
            raise VideoError(path, "no such file or folder")
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if Path(name).suffix.lower() in VIDEO_EXTENSIONS:
                        yield os.path.join(root, name)
        else:
            yield str(path)

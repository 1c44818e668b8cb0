"""Decoding: video file -> grayscale frames sampled by timestamp, streamed in chunks.

decord scales every frame to the working resolution while decoding (much cheaper
than decoding full size and resizing in NumPy). Frames are chosen by presentation
timestamp on a fixed analysis grid ``t_k = k / analysis_fps``: the frame shown at
``t_k`` is taken, so a 25 fps and a 30 fps copy of the same footage, or a variable
frame rate file, give frames at the same instants. The working frame ignores the
aspect ratio on purpose, which also makes non-square pixels irrelevant.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import VideoError

#: File extensions picked up when a folder is ingested.
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
     ".wmv", ".flv", ".3gp", ".ogv", ".vob", ".mxf", ".dv"}
)

# Frame rates outside this range mean a broken header (e.g. a zero time scale).
_MIN_FPS, _MAX_FPS = 0.1, 1000.0

# ITU-R BT.601 luma weights, as video codecs use.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video, after timestamp validation."""

    path: str
    duration: float
    fps: float
    width: int
    height: int
    frame_count: int


class VideoSource:
    """An opened video whose frames can be read at the analysis rate, chunk by chunk."""

    def __init__(self, path: str | os.PathLike, *, width: int, height: int) -> None:
        self.path = os.fsdecode(os.fspath(path))
        self.width, self.height = width, height
        check_readable(self.path)
        self._fd: int | None = None
        decode_path = self.path
        try:
            self.path.encode("utf-8")
        except UnicodeEncodeError:
            # decord only takes UTF-8 paths; reach a file with a non-UTF-8 name through
            # its descriptor instead (Linux /proc; elsewhere the error below is raised).
            self._fd = os.open(os.fsencode(self.path), os.O_RDONLY)
            decode_path = f"/proc/self/fd/{self._fd}"
        try:
            import decord  # noqa: PLC0415 - heavy import, only when decoding

            decord.bridge.set_bridge("native")
            # FFmpeg's own decoder chatter (e.g. "non-intra slice in IDR") is noise for
            # users; real failures surface as exceptions. --verbose brings it back.
            quiet = not logging.getLogger("vsearch").isEnabledFor(logging.DEBUG)
            decord.logging.set_level(decord.logging.QUIET if quiet else decord.logging.WARNING)
            # Native size first (cheap: no frame is decoded) to report the real size.
            self._reader = decord.VideoReader(decode_path, ctx=decord.cpu(0), width=width, height=height)
            frame_count = len(self._reader)
            native = decord.VideoReader(decode_path, ctx=decord.cpu(0), num_threads=1)
            native_h, native_w = native[0].shape[:2] if frame_count else (0, 0)
            del native
            avg_fps = float(self._reader.get_avg_fps())
            stamps = (
                np.asarray(self._reader.get_frame_timestamp(np.arange(frame_count)), dtype=np.float64)
                if frame_count
                else np.zeros((0, 2))
            )
        except Exception as exc:  # decord raises its own DECORDError and RuntimeErrors
            self.close()
            raise VideoError(self.path, f"cannot decode video ({_one_line(exc)})") from None
        if frame_count < 1:
            raise VideoError(self.path, "no video frames")
        self._starts, duration, fps = _frame_start_times(self.path, stamps, avg_fps)
        self.info = VideoInfo(
            path=self.path,
            duration=duration,
            fps=fps,
            width=int(native_w),
            height=int(native_h),
            frame_count=frame_count,
        )

    def sample_indices(self, analysis_fps: float) -> np.ndarray:
        """Index of the frame on screen at each analysis instant ``k / analysis_fps``."""
        count = int(np.floor(self.info.duration * analysis_fps + 1e-6))
        times = np.arange(count, dtype=np.float64) / analysis_fps
        # A tiny epsilon so a frame stamped exactly on the instant is taken despite rounding.
        idx = np.searchsorted(self._starts, times + 1e-6, side="right") - 1
        return np.clip(idx, 0, self.info.frame_count - 1)

    def iter_frames(self, analysis_fps: float, chunk_frames: int = 80) -> Iterator[np.ndarray]:
        """Yield uint8 grey frames ``(n, height, width)`` at the analysis rate.

        Each chunk holds ``chunk_frames`` frames (the last one fewer), so memory does
        not grow with the video's length.
        """
        indices = self.sample_indices(analysis_fps)
        for start in range(0, len(indices), chunk_frames):
            wanted = indices[start : start + chunk_frames]
            unique, inverse = np.unique(wanted, return_inverse=True)
            yield self._gray(unique)[inverse]

    def frames_at_rates(self, rates: list[float]) -> list[np.ndarray]:
        """All uint8 grey frames at each analysis rate, decoding each frame once.

        For short clips only: everything is held in memory.
        """
        per_rate = [self.sample_indices(rate) for rate in rates]
        unique, inverse = np.unique(np.concatenate(per_rate), return_inverse=True)
        gray = self._gray(unique) if len(unique) else np.zeros((0, self.height, self.width), np.uint8)
        return [gray[part] for part in np.split(inverse, np.cumsum([len(i) for i in per_rate])[:-1])]

    def _gray(self, unique: np.ndarray) -> np.ndarray:
        try:
            rgb = self._reader.get_batch(unique.tolist()).asnumpy()
        except Exception as exc:
            raise VideoError(self.path, f"decoding failed near frame {int(unique[0])} ({_one_line(exc)})") from None
        return np.rint(rgb.astype(np.float32) @ _LUMA).astype(np.uint8)

    def frames_at(self, times: np.ndarray) -> np.ndarray:
        """RGB uint8 frames on screen at the given times (seconds), at the reader's size."""
        idx = np.searchsorted(self._starts, np.asarray(times, dtype=np.float64) + 1e-6, side="right") - 1
        idx = np.clip(idx, 0, self.info.frame_count - 1)
        unique, inverse = np.unique(idx, return_inverse=True)
        try:
            rgb = self._reader.get_batch(unique.tolist()).asnumpy()
        except Exception as exc:
            raise VideoError(self.path, f"decoding failed ({_one_line(exc)})") from None
        return rgb[inverse]

    def close(self) -> None:
        self._reader = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _frame_start_times(path: str, stamps: np.ndarray, avg_fps: float) -> tuple[np.ndarray, float, float]:
    """Validated per-frame start times (first frame at 0), duration and nominal fps."""
    n = len(stamps)
    starts = stamps[:, 0] - stamps[0, 0] if n else stamps
    ok = n > 0 and np.all(np.isfinite(stamps)) and (n == 1 or np.all(np.diff(starts) > 0))
    if ok and not _MIN_FPS <= avg_fps <= _MAX_FPS:
        raise VideoError(path, f"broken header: implausible frame rate {avg_fps:.4g} fps")
    if ok:
        last_len = stamps[-1, 1] - stamps[-1, 0]
        if not np.isfinite(last_len) or last_len <= 0:
            last_len = (starts[-1] / (n - 1)) if n > 1 else 0.0
        duration = float(starts[-1] + last_len)
        fps = avg_fps if np.isfinite(avg_fps) and avg_fps > 0 else (n / duration if duration > 0 else 0.0)
        if duration > 0:
            return starts, duration, float(fps)
    # Timestamps unusable: fall back to a constant frame rate from the header.
    if not np.isfinite(avg_fps) or not _MIN_FPS <= avg_fps <= _MAX_FPS:
        raise VideoError(path, f"broken header: frame rate is {avg_fps:g} and timestamps are unusable")
    starts = np.arange(n, dtype=np.float64) / avg_fps
    return starts, n / avg_fps, float(avg_fps)


def check_readable(path: str) -> None:
    """Raise :class:`VideoError` unless ``path`` is a non-empty, readable regular file."""
    if not os.path.exists(path):
        raise VideoError(path, "no such file")
    if os.path.isdir(path):
        raise VideoError(path, "is a directory")
    if not os.access(path, os.R_OK):
        raise VideoError(path, "permission denied")
    if os.path.getsize(path) == 0:
        raise VideoError(path, "empty file")


# decord's messages, reworded for users (pattern -> reason).
_KNOWN_DECORD_ERRORS = (
    ("Failed to measure duration/frame-count", "not a video: no frame count or duration"),
    ("av_read_frame failed", "truncated or corrupt file"),
    ("Invalid data found when processing input", "not a video file (invalid data)"),
    ("cannot find video stream", "no video stream (audio only?)"),
    ("might have corrupted frames", "corrupt frames or broken timing"),
)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for pattern, reason in _KNOWN_DECORD_ERRORS:
        if pattern in text:
            return reason
    # decord prefixes "[hh:mm:ss] /src/file.cc:123: " and appends a stack dump.
    first = text.splitlines()[0] if text else type(exc).__name__
    first = re.sub(r"^\[[\d:]+\] \S+:\d+: (Error: )?", "", first)
    return first[:200]


def iter_video_files(paths: list[str | os.PathLike]) -> Iterator[str]:
    """Expand files and folders (recursively, sorted) into video file paths.

    Files named explicitly are always returned, whatever their extension, so that a
    bad file given on purpose gets a clear error instead of being silently skipped.
    """
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if Path(name).suffix.lower() in VIDEO_EXTENSIONS:
                        yield os.path.join(root, name)
        else:
            yield str(path)

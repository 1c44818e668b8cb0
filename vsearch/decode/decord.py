"""decord backend (``--decoder decord``): decord's decoder, read once in order.

decord is read strictly with ``next()``: its random access returns wrong frames on
some files (B-frame AVI), and it can hang near the end of others. Its own timestamps
count from the video stream's start and are missing for files without per-packet
times (AVI, MPEG-PS); the player's timeline and the header's duration are therefore
taken from the container through PyAV, which opens it without decoding more than
one frame. decord applies the display rotation itself. decord converts to RGB; grey is the BT.601
luma of that. decord cannot resume after a decoding error: the video ends there.

Known limits (see the README): decord keeps what it reads ahead of the decoder, so
its memory grows with the file's compressed size, and it cannot read some files at
all (VP9 with alternate reference frames).
"""

from __future__ import annotations

import logging
import os
from typing import Iterator

import numpy as np

from ..errors import VideoError
from .base import DEFAULT_MAX_PIXELS, Backend, DecodedFrame
from .pyav import PyAVBackend

# ITU-R BT.601 luma weights, as video codecs use.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _reason(exc: BaseException) -> str:
    """decord's message in one line, without its source path prefix or stack dump."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    if "] " in first and ".cc:" in first:
        first = first.split(": ", 1)[-1]
    return first.replace("Error: ", "")[:160]


class DecordBackend(Backend):
    name = "decord"

    def __init__(self, path: str, *, width: int, height: int, pixel_format: str, threads: int,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
        super().__init__(path, width=width, height=height, pixel_format=pixel_format, threads=threads,
                         max_pixels=max_pixels)
        import decord  # noqa: PLC0415 - optional backend (the parent checked it is installed)

        # PyAV reads the headers first (and refuses frames too large) before decord decodes anything.
        timing = PyAVBackend(path, width=width, height=height, pixel_format=pixel_format, threads=1,
                             max_pixels=max_pixels)
        try:
            first = next(timing.frames(), None)
            #: Seconds from the container's start to the video stream's first timestamp.
            self._offset = first.time if first is not None and first.time is not None else 0.0
            self.stream = timing.stream
            self._expected_end = timing.expected_end()
        finally:
            timing.close()
        decord.bridge.set_bridge("native")
        verbose = logging.getLogger("vsearch").isEnabledFor(logging.DEBUG)
        decord.logging.set_level(decord.logging.WARNING if verbose else decord.logging.QUIET)
        out_w, out_h = self.output_size(0)  # decord turns pictures as displayed itself
        self._fd: int | None = None
        source = path
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:  # decord takes UTF-8 names only: reach the file through its descriptor
            self._fd = os.open(os.fsencode(path), os.O_RDONLY)
            source = f"/proc/self/fd/{self._fd}"
        try:
            self._reader = decord.VideoReader(source, ctx=decord.cpu(0), width=out_w, height=out_h,
                                              num_threads=threads)
            count = len(self._reader)
            stamps = np.asarray(self._reader.get_frame_timestamp(np.arange(count)), np.float64) if count else None
        except Exception as exc:  # decord raises DECORDError and plain RuntimeErrors
            self.close()
            raise VideoError(path, f"decord cannot read it ({_reason(exc)})") from None
        self._times = self._timeline(stamps, count)

    def _timeline(self, stamps: np.ndarray | None, count: int) -> np.ndarray:
        """Per-frame times on the player's timeline; a constant rate where decord has none."""
        if stamps is not None and count:
            starts = stamps[:, 0]
            if np.all(np.isfinite(starts)) and np.all(np.abs(starts) < 1e7) and np.all(np.diff(starts) > 0):
                return starts - starts[0] + self._offset
        return self._offset + np.arange(count) / self.stream.fps

    def expected_end(self) -> float | None:
        return self._expected_end

    def frames(self) -> Iterator[DecodedFrame]:
        for time in self._times:
            try:
                rgb = self._reader.next().asnumpy()
            except StopIteration:
                return
            except Exception:  # decord cannot go on after an error: the video ends here
                self.failures += 1
                return
            yield DecodedFrame(time=float(time), duration=None, image=lambda rgb=rgb: self._convert(rgb))

    def _convert(self, rgb: np.ndarray) -> np.ndarray:
        if self.pixel_format == "rgb24":
            return rgb
        return np.rint(rgb.astype(np.float32) @ _LUMA).astype(np.uint8)

    def close(self) -> None:
        self._reader = None
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None

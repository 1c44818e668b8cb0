"""The decoder interface, and the player's timeline every backend reports frames on.

A backend reads a file once, in order, and yields its frames in presentation order,
each with its time on the **player's timeline**: seconds from the container's start,
the time a user types into ``ffmpeg -i FILE -ss T``, mpv, VLC or a browser's
``currentTime``. So a video track that starts after the audio (0.84 s, say) has its
first frame at 0.84 s, and an MPEG-TS file whose clock starts at 11.4 s has its
first frame at 0 s. Rotation metadata is applied: frames come out as displayed.
:class:`~vsearch.decode.sampler.FrameSampler` turns that stream into the frames an
analysis needs.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar, Iterator

import numpy as np

from ..errors import VideoError

#: Pixel formats a backend can deliver: one grey plane, or packed RGB.
PIXEL_FORMATS = ("gray", "rgb24")

#: Largest frame read by default (8K UHD, 7680x4320): a decoder holds several frames
#: in memory at once, so a small file of huge frames could otherwise take gigabytes.
DEFAULT_MAX_PIXELS = 7680 * 4320


@dataclass(frozen=True)
class StreamInfo:
    """What the container says of the video stream, before it is decoded.

    ``width``/``height`` are the displayed size (rotation applied); ``fps`` the
    nominal frame rate; ``duration`` the end of the video on the player's timeline
    according to the headers, or None when they do not say.
    """

    width: int
    height: int
    fps: float
    duration: float | None
    rotation: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class VideoInfo:
    """A video as decoded: its end on the player's timeline, and what was missing.

    ``duration`` is the end of the last decoded frame (player's timeline);
    ``expected_duration`` what the headers announced (None if they did not);
    ``damaged`` lists ``(start, end)`` spans, in seconds, inside the video where
    frames could not be decoded; ``truncated`` says the file stops before
    ``expected_duration``. A video with either is *partial*.
    """

    path: str
    duration: float
    fps: float
    width: int
    height: int
    frame_count: int
    expected_duration: float | None = None
    damaged: tuple[tuple[float, float], ...] = ()
    truncated: bool = False

    @property
    def partial(self) -> bool:
        return bool(self.damaged) or self.truncated

    @property
    def lost(self) -> tuple[tuple[float, float], ...]:
        """Every span without pictures: the damaged ones, then a missing tail."""
        tail = ((self.duration, self.expected_duration),) if self.truncated and self.expected_duration else ()
        return self.damaged + tail

    def partial_reason(self) -> str:
        """What was lost, in a user's words ('' for a whole video)."""
        parts = []
        if self.truncated and self.expected_duration is not None:
            parts.append(f"truncated: the file ends at {self.duration:.1f} s of {self.expected_duration:.1f} s")
        if self.damaged:
            lost = sum(b - a for a, b in self.damaged)
            count = len(self.damaged)
            parts.append(f"damaged: {count} span{'s' if count > 1 else ''} skipped ({lost:.1f} s in all)")
        return "; ".join(parts)


@dataclass(frozen=True)
class DecodedFrame:
    """One decoded frame: its time on the player's timeline and its picture, made on demand.

    ``time`` is None when the file gives none; ``duration`` likewise. ``image()``
    scales and converts the picture (only frames the analysis keeps pay for it).
    """

    time: float | None
    duration: float | None
    image: Callable[[], np.ndarray]


class Backend(ABC):
    """A decoder reading one file, once, in order.

    Subclasses open the file in ``__init__`` (raising :class:`~vsearch.errors.VideoError`
    with a one-line reason when they cannot), set :attr:`stream`, and yield frames
    from :meth:`frames`. Damage they recover from is counted in :attr:`failures`.
    """

    name: ClassVar[str]

    def __init__(self, path: str, *, width: int, height: int, pixel_format: str, threads: int,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
        if pixel_format not in PIXEL_FORMATS:
            raise ValueError(f"pixel format must be one of {PIXEL_FORMATS}, got {pixel_format!r}")
        self.path, self.width, self.height = path, width, height
        self.pixel_format, self.threads = pixel_format, threads
        #: Frames larger than this (pixels) are refused (None: any size).
        self.max_pixels = max_pixels
        #: Set when every frame's picture will be asked for (a temporal average):
        #: a backend may then convert pictures ahead, in parallel with decoding.
        self.convert_every_frame = False
        #: Decode or demux errors the file went on after.
        self.failures = 0
        self.stream: StreamInfo

    def check_frame_size(self, width: int, height: int) -> None:
        """Refuse frames of ``width`` x ``height`` (as stored) past :attr:`max_pixels`:
        called with what the headers say, before a frame is decoded."""
        if self.max_pixels is not None and width * height > self.max_pixels:
            raise VideoError(self.path, f"frames too large: {width}x{height}, over the {self.max_pixels:,} pixels "
                                        "allowed")

    @abstractmethod
    def frames(self) -> Iterator[DecodedFrame]:
        """Frames in presentation order, on the player's timeline, until the file ends."""

    def damage_evidence(self) -> int:
        """A number that grows whenever the decoder meets damage (a gap in the frames
        that comes with it is a damaged span, not a held frame)."""
        return self.failures

    def expected_end(self) -> float | None:
        """Where the headers say the video ends (player's timeline), once frames are read."""
        return self.stream.duration

    def seek(self, time: float) -> None:
        """Start reading at a keyframe at or before ``time`` (backends that cannot: from the start)."""

    def output_size(self, rotation: int) -> tuple[int, int]:
        """(width, height) to scale a stored picture to, so that once turned by ``rotation``
        it is the requested size (a requested width of 0 keeps the display aspect)."""
        width = self.width
        if not width:
            info = self.stream
            width = max(2, int(round(self.height * info.width / max(info.height, 1) / 2)) * 2)
        return stored_size(width, self.height, rotation)

    def close(self) -> None:
        """Release the file and the decoder."""


def rotate_image(image: np.ndarray, rotation: int) -> np.ndarray:
    """Turn a stored picture as the display matrix says (``rotation`` counter-clockwise)."""
    turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def stored_size(width: int, height: int, rotation: int) -> tuple[int, int]:
    """The size to scale a stored picture to, so that it is ``width x height`` once rotated."""
    return (height, width) if (rotation // 90) % 2 else (width, height)

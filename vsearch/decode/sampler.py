""":class:`FrameSampler`: a decoded stream -> the frames an analysis needs.

At each instant ``s`` of a grid (``k / rate``, or explicit times) the frame *on
screen*, i.e. the last frame whose time is at or before ``s`` (instants before the
first frame take the first frame, as a player shows it), or, for analysis, the
average of what is shown during the instant's own interval. It also keeps track of
what is missing: spans where frames were lost to damage, and a missing tail when
the file ends before its header says it should.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .base import DecodedFrame

# A frame stamped within this of an instant counts as on screen at that instant
# (timestamps are rationals turned into floats).
_EPSILON = 1e-6

# Lost frames shorter than this are a held frame to a viewer (as in variable frame
# rate files), not a damaged span worth skipping.
_MIN_DAMAGED_SECONDS = 0.2

# A tail this much shorter than the header's duration is reported as missing.
_MIN_MISSING_TAIL = 0.5

# Integrated instants are computed this many at a time, with at most this many
# frames' pictures still being converted.
_BATCH = 16
_IN_FLIGHT = 8

# Decode errors surface a few frames late with frame threading; an error this many
# frames before a gap still explains the gap.
_ERROR_LAG_FRAMES = 24


@dataclass
class Emission:
    """``count`` consecutive instants of grid ``grid`` showing ``image``."""

    grid: int
    image: np.ndarray
    count: int


class _Grid:
    """Instants ``k / rate`` (open-ended) or explicit sorted ``times``, served in order.

    An instant takes the frame on screen, or, with ``integrate`` (rate grids only),
    the average of the pictures shown during its own ``1 / rate`` seconds, each
    weighted by how long it is shown: a temporal box filter.
    """

    def __init__(self, index: int, *, rate: float | None = None, times: np.ndarray | None = None,
                 integrate: bool = False) -> None:
        self.index, self.rate, self.times, self.integrate = index, rate, times, integrate and rate is not None
        self.half = 0.5 / rate if rate else 0.0
        self.next_index = 0
        # Integrating: the frames some pending instant still needs, as (shown from, to, picture).
        self._shown: list[tuple[float, float, Callable[[], np.ndarray]]] = []

    def _instant(self, k: int) -> float | None:
        if self.rate is not None:
            return k / self.rate
        return float(self.times[k]) if k < len(self.times) else None

    @property
    def done(self) -> bool:
        return self.times is not None and self.next_index >= len(self.times)

    def cover(self, start: float, end: float, picture: Callable[[], np.ndarray]) -> list[Emission]:
        """A frame is shown over ``[start, end)``; returns the instants it completes, in order."""
        if not self.integrate:
            first = self.next_index
            while (s := self._instant(self.next_index)) is not None and s < end - _EPSILON:
                self.next_index += 1
            count = self.next_index - first
            return [Emission(self.index, picture(), count)] if count else []
        if end - _EPSILON <= self.next_index / self.rate - self.half:
            return []  # shown before the next instant's interval begins
        # Pictures are collected when a batch is averaged, so a backend converting them
        # ahead is not waited for frame by frame; only so many are left in flight.
        self._shown.append((start, end, picture))
        if len(self._shown) > _IN_FLIGHT:
            self._shown[-_IN_FLIGHT - 1][2]()
        # Instants whose whole interval has been shown are complete; average them in batches.
        complete = math.floor((end + _EPSILON) * self.rate - 0.5) + 1
        return self._average(complete) if complete - self.next_index >= _BATCH else []

    def close(self, end: float, picture: Callable[[], np.ndarray]) -> list[Emission]:
        """The video ends at ``end``: finish what is left (explicit times take the last frame)."""
        if self.integrate:
            return self._average(max(math.ceil((end - _EPSILON) * self.rate), self.next_index))
        if self.times is not None and not self.done:
            count, self.next_index = len(self.times) - self.next_index, len(self.times)
            return [Emission(self.index, picture(), count)]
        return []

    def _average(self, stop: int) -> list[Emission]:
        """Instants ``next_index .. stop-1``: each the average of the pictures shown during
        its interval, weighted by how long each is shown (the video's end may cut the last)."""
        if stop <= self.next_index or not self._shown:
            return []
        instants = np.arange(self.next_index, stop) / self.rate
        starts = np.array([f[0] for f in self._shown])
        ends = np.array([f[1] for f in self._shown])
        shown = np.clip(np.minimum(instants[:, None] + self.half, ends[None, :])
                        - np.maximum(instants[:, None] - self.half, starts[None, :]), 0.0, None)
        weights = (shown / np.maximum(shown.sum(axis=1, keepdims=True), 1e-12)).astype(np.float32)
        total = None
        for j, (_, _, picture) in enumerate(self._shown):
            rows = np.flatnonzero(weights[:, j])
            if len(rows):
                image = picture()
                if total is None:
                    total = np.zeros((len(instants), *image.shape), np.float32)
                weight = weights[rows, j].reshape(-1, *(1,) * image.ndim)  # grey or RGB pictures
                total[rows] += weight * image.astype(np.float32)
        pictures = np.rint(total).astype(np.uint8)
        self.next_index = stop
        keep_after = stop / self.rate - self.half - _EPSILON
        self._shown = [f for f in self._shown if f[1] > keep_after]
        return [Emission(self.index, picture, 1) for picture in pictures]


@dataclass
class FrameSampler:
    """Samples frames, streamed in presentation order, at the instants of one or more grids.

    ``rates`` give open-ended grids ``k / rate``; ``times`` one explicit grid of
    sorted instants (then nothing else is needed once they are all served).
    ``nominal_step`` (seconds per frame) stands in for missing or broken timestamps.

    By default an instant shows the frame on screen. With ``integrate``, a rate
    grid's instant averages what is shown during its own ``1 / rate`` seconds (a
    temporal box filter, the way a camera's exposure integrates light). Taking the
    frame on screen makes a 10 fps reading of 25 fps footage step 2, 3, 2, 3
    frames, and of 30 fps footage 3, 3, 3: two readings of the same footage then
    differ with the phase of that pattern, and a clip matches best at a wrong
    offset whose pattern happens to agree. Integrated, every instant covers the
    same span of time whatever the source's frame rate or phase.
    """

    rates: list[float] = field(default_factory=list)
    times: list[float] | None = None
    nominal_step: float = 1 / 25
    integrate: bool = False
    frames: int = 0
    damaged: list[tuple[float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._grids = [_Grid(i, rate=r, integrate=self.integrate) for i, r in enumerate(self.rates)]
        if self.times is not None:
            self._grids.append(_Grid(len(self._grids), times=np.sort(np.asarray(self.times, dtype=np.float64))))
        self._previous: DecodedFrame | None = None
        self._previous_time = 0.0
        self._shown_from = -math.inf  # the first frame stands in for everything before it
        self._picture: Callable[[], np.ndarray] | None = None
        self._errors_at: deque[int] = deque(maxlen=_ERROR_LAG_FRAMES)
        self._steps: deque[float] = deque(maxlen=16)

    @property
    def done(self) -> bool:
        """True when every instant asked for is served (explicit times only)."""
        return bool(self._grids) and all(g.done for g in self._grids)

    @property
    def position(self) -> float:
        """Time of the latest frame (seconds on the player's timeline)."""
        return self._previous_time

    def add(self, frame: DecodedFrame, errors: int) -> list[Emission]:
        """Take the next frame; returns the instants completed by the previous one."""
        time = frame.time
        if self._previous is None:
            time = 0.0 if time is None else time
            if errors and time > 2.5 * self.nominal_step:
                self._damage(0.0, time)
            self._start(frame, time, errors)
            return []
        if time is None or not math.isfinite(time) or time <= self._previous_time:
            time = self._previous_time + self.nominal_step  # broken timestamps: as a player would
        gap = time - self._previous_time
        if errors > (self._errors_at[0] if self._errors_at else 0) and gap > 2.5 * self.nominal_step:
            self._damage(self._previous_time + self.nominal_step, time)
        self._steps.append(gap)
        out = [e for grid in self._grids for e in grid.cover(self._shown_from, time, self._picture)]
        self._start(frame, time, errors)
        return out

    def finish(self, expected_end: float | None) -> tuple[list[Emission], float, bool]:
        """Close the stream: instants up to the last frame's end; returns (emissions, end, truncated)."""
        if self._previous is None:
            return [], 0.0, False
        step = self._previous.duration
        if step is None or not 0 < step < 10 * self.nominal_step:
            step = float(np.median(self._steps)) if self._steps else self.nominal_step
        end = self._previous_time + step
        out = []
        for grid in self._grids:
            out += grid.cover(self._shown_from, end, self._picture)
            out += grid.close(end, self._picture)
        truncated = expected_end is not None and expected_end - end > max(_MIN_MISSING_TAIL, 2.5 * self.nominal_step)
        return out, end, truncated

    def _start(self, frame: DecodedFrame, time: float, errors: int) -> None:
        if self._previous is not None:
            self._shown_from = time
        self._previous, self._previous_time, self._picture = frame, time, _Once(frame.image)
        self._errors_at.append(errors)
        self.frames += 1

    def _damage(self, start: float, end: float) -> None:
        if end - start >= _MIN_DAMAGED_SECONDS:
            self.damaged.append((round(start, 6), round(end, 6)))


class _Once:
    """A frame's picture, made on the first call and kept (several grids may want it)."""

    __slots__ = ("_make", "_image")

    def __init__(self, make: Callable[[], np.ndarray]) -> None:
        self._make, self._image = make, None

    def __call__(self) -> np.ndarray:
        if self._image is None:
            self._image, self._make = self._make(), None
        return self._image

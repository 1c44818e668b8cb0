"""The time axis of one video's features: where each feature's span starts and ends
on the player's timeline.

The first of these a video's features carry decides (a file's own times win over options):

1. ``timestamps [n, 2]``: start and end seconds (what ``vsearch features`` writes);
2. ``timestamps_ms [n]`` (video_features' sidecar): for its frame-wise models the
   instant of each frame, which holds for ``1 / fps`` (the ``fps`` sidecar: the rate
   the frames were taken at); for I3D's streams (``rgb``, ``flow``) the end of each
   stack, which starts one stack length earlier (the first stamp: the first stack
   starts at frame 0);
3. ``clip_length`` seconds (CLIP ``.npz``): back-to-back clips of ``int(fps *
   clip_length)`` frames of the source at its ``fps``, as that tool cuts them (at
   29.97 fps a "2 s" clip is 59 frames, 1.969 s), else of ``clip_length`` seconds;
4. what the user gives (:class:`FeatureTiming`): stacks of ``--stack`` frames every
   ``--step`` frames at ``--frame-rate`` (else the file's ``fps``); back-to-back clips
   of ``--clip-seconds``; ``--rate`` features a second, or ``uniform`` over the file's
   ``duration``.

Without any of these a file is refused, naming the options: nothing is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import VsearchError

#: video_features' keys of stack-based streams whose ``timestamps_ms`` mark each stack's end.
STACK_END_KEYS = frozenset({"rgb", "flow"})

#: What the refusal of a file without time information asks for.
GIVE_TIMES = ("no time information in the file: give --rate N (features a second), "
              "--clip-seconds S (back-to-back clips) or --stack N [--step M] (frames per stack)")


@dataclass(frozen=True, kw_only=True)
class FeatureTiming:
    """The time axis the user gives for files without one (see the module docstring):
    at most one of ``rate`` (features a second), ``uniform``, ``clip_seconds`` or
    ``stack`` (frames, every ``step`` frames, at ``frame_rate``)."""

    rate: float | None = None
    uniform: bool = False
    clip_seconds: float | None = None
    stack: int | None = None
    step: int | None = None
    frame_rate: float | None = None

    @classmethod
    def parse(cls, *, rate: str | float | None = None, clip_seconds: float | None = None, stack: int | None = None,
              step: int | None = None, frame_rate: float | None = None) -> "FeatureTiming":
        """The command line's ``--rate`` (a number or ``uniform``), ``--clip-seconds``,
        ``--stack``, ``--step`` and ``--frame-rate``, checked."""
        uniform = rate is not None and str(rate).strip().lower() == "uniform"
        if rate is not None and not uniform:
            try:
                rate = float(rate)
            except ValueError:
                raise VsearchError(f"--rate must be features a second or 'uniform', got {rate!r}") from None
        given = [name for name, value in (("--rate", rate), ("--clip-seconds", clip_seconds), ("--stack", stack))
                 if value is not None]
        if len(given) > 1:
            raise VsearchError(f"{' and '.join(given)} say the same thing: give one of them")
        if stack is None and (step is not None or frame_rate is not None):
            raise VsearchError("--step and --frame-rate go with --stack")
        for name, value in (("--rate", None if uniform else rate), ("--clip-seconds", clip_seconds),
                            ("--stack", stack), ("--step", step), ("--frame-rate", frame_rate)):
            if value is not None and not (np.isfinite(value) and value > 0):
                raise VsearchError(f"{name} must be positive, got {value!r}")
        return cls(rate=None if uniform else rate, uniform=uniform, clip_seconds=clip_seconds, stack=stack,
                   step=step, frame_rate=frame_rate)


def scalar(entries: dict[str, Any], key: str) -> float | None:
    """The number ``entries[key]`` holds (None without one); ``ValueError`` unless one number."""
    if key not in entries:
        return None
    value = np.asarray(entries[key])
    if value.size != 1 or value.dtype.kind not in "iuf":
        raise ValueError(f"{key!r} must be one number")
    return float(value.reshape(()))


def _spans(count: int, step: float, length: float) -> tuple[np.ndarray, np.ndarray]:
    starts = np.arange(count) * step
    return starts, starts + length


def time_axis(entries: dict[str, Any], count: int, *, timing: FeatureTiming,
              stack_ends: bool = False) -> tuple[np.ndarray, np.ndarray, float | None]:
    """``(starts, ends, duration)`` of ``count`` features in seconds from the file's
    ``entries`` or ``timing``; ``stack_ends``: its ``timestamps_ms`` end stacks (I3D).
    ``duration`` is the file's own, else None. Raises ``ValueError`` with the reason."""
    fps, duration = scalar(entries, "fps"), scalar(entries, "duration")
    clip_length = scalar(entries, "clip_length")
    if "timestamps" in entries:
        stamps = np.asarray(entries["timestamps"], dtype=np.float64)
        if stamps.shape != (count, 2):
            raise ValueError(f"timestamps must be [{count}, 2] (start, end) like features, got {list(stamps.shape)}")
        starts, ends = stamps[:, 0], stamps[:, 1]
    elif "timestamps_ms" in entries:
        starts, ends = _from_milliseconds(entries["timestamps_ms"], count, fps, stack_ends)
    elif clip_length is not None:
        if clip_length <= 0:
            raise ValueError(f"clip_length must be positive seconds, got {clip_length:g}")
        frames = int(fps * clip_length) if fps else 0
        if fps is not None and (fps <= 0 or frames < 1):
            raise ValueError(f"fps {fps:g} gives no whole frame in a clip of {clip_length:g} s")
        length = frames / fps if fps else clip_length
        starts, ends = _spans(count, length, length)
    elif timing.stack is not None:
        rate = timing.frame_rate or fps
        if not rate or rate <= 0:
            raise ValueError("stacks of frames need their frame rate: give --frame-rate (the file has no fps)")
        starts, ends = _spans(count, (timing.step or timing.stack) / rate, timing.stack / rate)
    elif timing.clip_seconds is not None:
        starts, ends = _spans(count, timing.clip_seconds, timing.clip_seconds)
    elif timing.rate is not None:
        starts, ends = _spans(count, 1 / timing.rate, 1 / timing.rate)
    elif timing.uniform:
        if not duration or duration <= 0:
            raise ValueError("--rate uniform needs the video's duration (a 'duration' entry)")
        starts, ends = _spans(count, duration / count, duration / count)
    else:
        raise ValueError(GIVE_TIMES)
    if not (np.all(np.isfinite(starts)) and np.all(np.isfinite(ends)) and np.all(ends > starts)
            and np.all(np.diff(starts) > 0) and np.all(np.diff(ends) >= 0)):
        raise ValueError("time axis must be increasing spans with end > start")
    return starts, ends, duration


def _from_milliseconds(stamps: Any, count: int, fps: float | None, stack_ends: bool) -> tuple[np.ndarray, np.ndarray]:
    """video_features' ``timestamps_ms``: stack ends (I3D) or frame instants."""
    seconds = np.asarray(stamps, dtype=np.float64) / 1000
    if seconds.shape != (count,):
        raise ValueError(f"timestamps_ms must be [{count}] like features, got {list(seconds.shape)}")
    if stack_ends:  # the first stack starts at frame 0 and ends at the first stamp
        if not seconds[0] > 0:
            raise ValueError("timestamps_ms of stacks must be their ends, after 0")
        return seconds - seconds[0], seconds
    if fps is not None and fps > 0:
        return seconds, seconds + 1 / fps
    if count < 2:
        raise ValueError("one frame's timestamp without its fps: the span is unknown")
    step = float(np.median(np.diff(seconds)))
    return seconds, np.append(seconds[1:], seconds[-1] + step)

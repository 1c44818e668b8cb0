"""What the tests and the tools both use, in one place (never used by the engine itself).

- :mod:`.synth`: seeded synthetic videos (``make_video``), frame-stamped masters, a
  large synthetic library;
- :mod:`.ffmpeg`: the ffmpeg of the ``imageio-ffmpeg`` wheel: cuts, probes, and the
  edits of the evaluation (``TRANSFORMS``);
- :mod:`.engine`: the vsearch a tool drives through its command line, this tree's or
  another checkout's (``Engine``);
- :mod:`.server`: a ``vsearch serve`` child process on a free loopback port (needs
  ``httpx``, of the ``test`` extra: loaded only when asked for).
"""

from __future__ import annotations

from .ffmpeg import (
    HARD,
    MILD,
    SPATIAL,
    TRANSFORMS,
    apply_transform,
    cut_clip,
    display_size,
    encoder_args,
    ffmpeg_exe,
    first_picture_time,
    generated_clip,
    joined_video,
    last_stderr_line,
    picture_in_picture,
    probe_duration,
    run_ffmpeg,
    scale_filter,
    side_by_side,
    transform_args,
)
from .synth import make_library_index, make_stamped_video, make_video, read_stamp, stamp_frame

__all__ = [
    "HARD", "MILD", "TRANSFORMS", "ServerProcess", "apply_transform", "cut_clip", "encoder_args", "ffmpeg_exe",
    "first_picture_time", "free_port", "generated_clip", "joined_video", "last_stderr_line", "make_library_index",
    "make_stamped_video", "make_video", "picture_in_picture", "probe_duration", "read_stamp", "run_ffmpeg",
    "scale_filter", "stamp_frame", "transform_args", "wait_job",
    "SPATIAL", "display_size", "side_by_side",
]


def __getattr__(name: str):
    if name in ("ServerProcess", "wait_job", "free_port"):
        from . import server

        return getattr(server, name)
    raise AttributeError(name)

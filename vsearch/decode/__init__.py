"""Decoding: a video file -> frames on the player's timeline, read once, in order.

- :mod:`.base`: the backend interface and the player's timeline;
- :mod:`.sampler`: the frames an analysis needs, sampled from that timeline;
- :mod:`.pyav` (default) and :mod:`.decord`: the backends;
- :mod:`.worker`: the decoder process a backend runs in;
- :mod:`.source`: :class:`VideoSource`, reading through that process with a watchdog;
- :mod:`.files`: which files to read.
"""

from .base import DEFAULT_MAX_PIXELS, StreamInfo, VideoInfo
from .files import VIDEO_EXTENSIONS, check_readable, iter_video_files
from .source import DECODERS, DEFAULT_DECODER, DEFAULT_TIMEOUT, VideoSource, check_decoder, prestart

__all__ = [
    "DECODERS",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_DECODER",
    "DEFAULT_TIMEOUT",
    "StreamInfo",
    "VIDEO_EXTENSIONS",
    "VideoInfo",
    "VideoSource",
    "check_decoder",
    "check_readable",
    "iter_video_files",
    "prestart",
]

"""PyAV backend (the default): FFmpeg's own libraries, read once in order.

Frames come from libavcodec with frame threading; only the frames an analysis keeps
are scaled and converted, inside FFmpeg (libswscale, area averaging). Times are the
frames' presentation timestamps minus the container's start time, as ffmpeg and
players count them; the display matrix is applied. A packet that fails to demux or
decode is counted and skipped, so a damaged file is read as far as FFmpeg can read
it, as the ffmpeg command line does.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

from ..errors import VideoError
from .base import DEFAULT_MAX_PIXELS, Backend, DecodedFrame, StreamInfo, rotate_image, stored_size

# Rates outside this range mean a broken header; they only stand in for missing
# timestamps, so a plausible default replaces them.
_MIN_FPS, _MAX_FPS, _DEFAULT_FPS = 0.1, 1000.0, 25.0

# Formats FFmpeg renders as pictures that no one would call a video: a text file
# becomes ANSI art ("tty").
_NOT_VIDEO_FORMATS = frozenset({"tty"})

# A container duration this much beyond the last packet of any stream means the
# file was cut short.
_MIN_SHORTFALL = 0.5

# Demux errors in a row after which the rest of the file is taken as unreadable.
_MAX_CONSECUTIVE_ERRORS = 64

# Bytes of pictures frame threading may hold: each thread keeps about two frames of
# 1.5 bytes a pixel in flight (16 threads on 8K frames took 1.6 GB, 4 took 480 MB).
_THREADS_MEMORY = 512 << 20


#: Where FFmpeg's error messages go, set once per process by :func:`log_errors_to`.
_ERROR_LOG_FD: int | None = None
_LOGGING_SET = False


def log_errors_to(fd: int | None) -> None:
    """Let FFmpeg write its error messages to ``fd`` (a file; the decoder process's
    stderr), or nowhere (None).

    The growth of that file is the evidence that frames were lost to damage. FFmpeg's
    own log callback does the writing: a Python callback would need the GIL from
    FFmpeg's decoding threads while the main thread, holding it, waits for them in
    libavcodec, a deadlock.
    """
    global _ERROR_LOG_FD, _LOGGING_SET
    import av.logging  # noqa: PLC0415

    if fd is None:
        av.logging.set_level(None)  # PyAV's default: nothing is logged, no Python callback
    else:
        av.logging.restore_default_callback()
        av.logging.set_libav_level(av.logging.ERROR)
    _ERROR_LOG_FD, _LOGGING_SET = fd, True


def _errors_logged() -> int:
    """Bytes of error messages FFmpeg has written so far (0 when they go nowhere)."""
    if not _LOGGING_SET:
        log_errors_to(None)
    return os.fstat(_ERROR_LOG_FD).st_size if _ERROR_LOG_FD is not None else 0


def _messages_since(offset: int) -> str:
    """FFmpeg's error messages written since ``offset`` bytes (at most the last 4 KiB)."""
    if _ERROR_LOG_FD is None:
        return ""
    end = os.fstat(_ERROR_LOG_FD).st_size
    start = max(offset, end - 4096)
    return os.pread(_ERROR_LOG_FD, end - start, start).decode("utf-8", "replace") if end > start else ""


def open_reason(exc: BaseException, messages: str = "") -> str:
    """A user's words for FFmpeg's refusal to open a file (``messages``: what it logged)."""
    text = f"{exc} {messages}"
    if "moov atom not found" in text:
        return "not a video, or an MP4 cut short before its index was written (no moov atom): nothing plays"
    if "Invalid data found" in text:
        return "not a video file (or its header is damaged beyond reading)"
    if "Permission denied" in text:
        return "permission denied"
    detail = text.split(": '", 1)[0].split("] ", 1)[-1].strip() or type(exc).__name__
    return f"cannot open ({detail[:120]})"


class PyAVBackend(Backend):
    name = "pyav"

    def __init__(self, path: str, *, width: int, height: int, pixel_format: str, threads: int,
                 max_pixels: int | None = DEFAULT_MAX_PIXELS) -> None:
        super().__init__(path, width=width, height=height, pixel_format=pixel_format, threads=threads,
                         max_pixels=max_pixels)
        import av  # noqa: PLC0415 - heavy import, only when decoding

        self._av = av
        # One scaler for the whole file: building one per frame costs more than scaling.
        self._scaler = av.video.reformatter.VideoReformatter()
        self._errors_before = _errors_logged()
        self._handle = None
        try:
            try:
                os.fsdecode(path).encode("utf-8")
                source = path
            except UnicodeEncodeError:  # FFmpeg takes UTF-8 names only: hand it the open file
                source = self._handle = open(os.fsencode(path), "rb")
            # FFmpeg's own frame-size limit: opening probes a frame or two, and must not
            # allocate one larger than allowed to do so.
            limit = {"max_pixels": str(max_pixels)} if max_pixels is not None else {}
            self._container = av.open(source, metadata_errors="replace", options=limit)
        except av.FFmpegError as exc:
            self.close()
            raise VideoError(path, open_reason(exc, _messages_since(self._errors_before))) from None
        if self._container.format.name in _NOT_VIDEO_FORMATS:
            self.close()
            raise VideoError(path, "not a video file")
        streams = [s for s in self._container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        if not streams:
            self.close()
            raise VideoError(path, "no video stream (audio only?)")
        stream = self._stream = streams[0]
        try:
            self.check_frame_size(stream.codec_context.width, stream.codec_context.height)
        except VideoError:
            self.close()
            raise
        # Frames that grow past the limit later in the stream fail to decode (damage), never allocated.
        stream.codec_context.options = limit
        stream.thread_type = "AUTO"
        frame_bytes = 3 * max(1, stream.codec_context.width * stream.codec_context.height)
        stream.codec_context.thread_count = max(1, min(threads, _THREADS_MEMORY // frame_bytes))
        base = stream.time_base
        start = self._container.start_time
        #: Player time 0: the container's start (earliest stream), as ffmpeg and players count.
        self._origin = start / 1e6 if start is not None else (
            float(stream.start_time * base) if stream.start_time is not None else None)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate and _MIN_FPS <= float(rate) <= _MAX_FPS else _DEFAULT_FPS
        self._stream_end = None
        if stream.duration and stream.start_time is not None and self._origin is not None:
            self._stream_end = float((stream.start_time + stream.duration) * base) - self._origin
        self._container_end = self._container.duration / 1e6 if self._container.duration else None
        ctx = stream.codec_context
        sar = float(stream.sample_aspect_ratio) if stream.sample_aspect_ratio else 1.0
        self.stream = StreamInfo(width=int(round(ctx.width * sar)), height=ctx.height, fps=fps,
                                 duration=self._stream_end)
        #: End (player's timeline) of the latest packet read, of any stream.
        self._read_until: float | None = None
        self._time_bases: dict[int, float] = {}
        self._converter: ThreadPoolExecutor | None = None

    def damage_evidence(self) -> int:
        # Failures, and the bytes of error messages FFmpeg wrote while reading this file.
        return self.failures + _errors_logged() - self._errors_before

    def expected_end(self) -> float | None:
        """Where the headers say the video ends. Without a duration for the video
        stream, the container's counts only when no stream at all reached it (an
        audio track may simply run longer than the video; a cut file stops them all)."""
        if self._stream_end is not None:
            return self._stream_end
        end = self._container_end
        if end is not None and self._read_until is not None and end - self._read_until > _MIN_SHORTFALL:
            return end
        return None

    def seek(self, time: float) -> None:
        if self._origin is not None and time > 0:
            target = int((time + self._origin) / self._stream.time_base)
            try:
                self._container.seek(target, stream=self._stream, backward=True)
            except self._av.FFmpegError:  # not seekable: read from the start
                self._container.seek(0)

    def frames(self) -> Iterator[DecodedFrame]:
        # Without a duration of the video stream, every stream is demuxed (only the
        # video decoded): where the others end tells a truncated file from one whose
        # video is just shorter.
        av, stream = self._av, self._stream
        streams = () if self._stream_end is None else (stream,)
        packets = self._container.demux(*streams)
        failures = 0
        rotation_seen = False
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError:
                self.failures += 1
                failures += 1
                if failures > _MAX_CONSECUTIVE_ERRORS:
                    break
                packets = self._container.demux(*streams)  # resume after the damage
                continue
            failures = 0
            self._note_end(packet)
            if packet.stream is not stream:
                continue
            try:
                decoded = stream.decode(packet)
            except av.FFmpegError:
                self.failures += 1
                continue
            for frame in decoded:
                if not rotation_seen:
                    rotation_seen = True
                    self._set_rotation(int(round(frame.rotation or 0)) % 360)
                yield self._wrap(frame)

    def _note_end(self, packet) -> None:
        if packet.pts is None or self._origin is None:
            return
        base = self._time_bases.get(packet.stream_index)
        if base is None:
            base = self._time_bases[packet.stream_index] = float(packet.time_base or 0)
        end = (packet.pts + (packet.duration or 0)) * base - self._origin
        if self._read_until is None or end > self._read_until:
            self._read_until = end

    def _set_rotation(self, rotation: int) -> None:
        info = self.stream
        width, height = stored_size(info.width, info.height, rotation)
        self.stream = StreamInfo(width=width, height=height, fps=info.fps, duration=info.duration, rotation=rotation)

    def _wrap(self, frame) -> DecodedFrame:
        time = frame.time
        if self._origin is None:  # no container start: count from the first frame
            self._origin = time or 0.0
        if time is not None:
            time -= self._origin
        duration = float(frame.duration * frame.time_base) if frame.duration and frame.time_base else None

        def convert():
            rotation = int(round(frame.rotation or 0)) % 360
            width, height = self.output_size(rotation)
            picture = self._scaler.reformat(frame, width=width, height=height, format=self.pixel_format,
                                            interpolation="AREA")
            return rotate_image(picture.to_ndarray(), rotation)

        if not self.convert_every_frame:
            return DecodedFrame(time=time, duration=duration, image=convert)
        # Every picture will be needed: scale it in a thread of its own while the next
        # frames decode (FFmpeg releases the GIL in both), as ffmpeg's filter thread does.
        if self._converter is None:
            self._converter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vsearch-scale")
        return DecodedFrame(time=time, duration=duration, image=self._converter.submit(convert).result)

    def close(self) -> None:
        if getattr(self, "_converter", None) is not None:
            self._converter.shutdown(wait=True, cancel_futures=True)
            self._converter = None
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
            self._container = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None

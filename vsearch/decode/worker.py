"""The decoder process: decodes files on request and streams sampled frames back.

Decoding runs in a child process (``python -m vsearch.decode.worker``) so that a file
which hangs a decoder, crashes it or makes it hoard memory costs that file only: the
parent watches progress and kills the child (see :mod:`vsearch.decode.source`). One
child serves many files in turn, so starting it is paid once per command.

Protocol, over the child's stdin and stdout:

- request: one JSON line, ``{"path": base64 of the file name's bytes, "decoder",
  "width", "height" (width 0: the display aspect at that height), "format" ("gray" or "rgb24"),
  "rates": [...] or "times": [...], "integrate", "chunk", "threads", "seek", "max_pixels"}``;
- replies: messages of an 8-byte header (JSON length, payload length, little-endian
  uint32) followed by the JSON and the payload: ``probe`` (stream information, after the
  first frame), ``frames`` (``count`` pictures of grid ``grid``, raw uint8),
  ``progress`` (heartbeat with the latest frame time), then ``done`` (a
  :class:`~vsearch.decode.base.VideoInfo` as JSON) or ``error`` (a one-line reason).

No pickle: JSON and raw pixels only.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import struct
import sys
import tempfile
import time
from typing import BinaryIO, Callable

import numpy as np

_HEADER = struct.Struct("<II")

#: Seconds between heartbeats while frames are decoded but none is sent.
HEARTBEAT_SECONDS = 0.5


def write_message(out: BinaryIO, header: dict, payload: bytes = b"") -> None:
    data = json.dumps(header).encode("utf-8")
    out.write(_HEADER.pack(len(data), len(payload)) + data)
    if payload:
        out.write(payload)
    out.flush()


def split_header(raw: bytes) -> tuple[int, int]:
    """(JSON length, payload length) of a message header."""
    return _HEADER.unpack(raw)


HEADER_SIZE = _HEADER.size


def _backend(name: str):
    if name == "pyav":
        from .pyav import PyAVBackend  # noqa: PLC0415

        return PyAVBackend
    if name == "decord":
        from .decord import DecordBackend  # noqa: PLC0415

        return DecordBackend
    raise ValueError(f"unknown decoder {name!r}")


class _Batches:
    """Pictures waiting to be sent, per grid, flushed ``chunk`` at a time."""

    def __init__(self, send: Callable[[dict, bytes], None], chunk: int) -> None:
        self.send, self.chunk = send, chunk
        self.pending: dict[int, list[tuple[np.ndarray, int]]] = {}
        self.counts: dict[int, int] = {}

    def add(self, grid: int, image: np.ndarray, count: int, position: float) -> None:
        self.pending.setdefault(grid, []).append((image, count))
        self.counts[grid] = self.counts.get(grid, 0) + count
        while self.counts[grid] >= self.chunk:
            self.flush(grid, self.chunk, position)

    def flush(self, grid: int, limit: int | None, position: float) -> None:
        parts, taken, keep = self.pending.get(grid, []), 0, []
        limit = self.counts.get(grid, 0) if limit is None else limit
        out = []
        for image, count in parts:
            use = min(count, limit - taken)
            if use > 0:
                out.append(np.broadcast_to(image, (use, *image.shape)))
                taken += use
            if count > use:
                keep.append((image, count - use))
        self.pending[grid], self.counts[grid] = keep, self.counts.get(grid, 0) - taken
        if taken:
            pictures = np.ascontiguousarray(np.concatenate(out))
            self.send({"kind": "frames", "grid": grid, "count": taken, "shape": list(pictures.shape[1:]),
                       "time": position}, pictures.tobytes())

    def flush_all(self, position: float) -> None:
        for grid in sorted(self.pending):
            self.flush(grid, None, position)


def serve(request: dict, send: Callable[[dict, bytes], None]) -> None:
    """Decode one file as ``request`` asks and send its frames; raises VideoError."""
    from ..errors import VideoError  # noqa: PLC0415
    from .sampler import FrameSampler  # noqa: PLC0415

    path = os.fsdecode(base64.b64decode(request["path"]))
    width, height = int(request["width"]), int(request["height"])
    backend = _backend(request["decoder"])(path, width=width, height=height, pixel_format=request["format"],
                                           threads=int(request["threads"]), max_pixels=request.get("max_pixels"))
    try:
        sampler = FrameSampler(rates=list(request.get("rates") or []), times=request.get("times"),
                               nominal_step=1.0 / backend.stream.fps, integrate=bool(request.get("integrate")))
        backend.convert_every_frame = sampler.integrate and not request.get("times")
        batches = _Batches(send, max(1, int(request["chunk"])))
        if request.get("seek"):
            backend.seek(float(request["seek"]))
        probed, beat = False, time.monotonic()
        for frame in backend.frames():
            if not probed:
                probed = True
                send({"kind": "probe", **backend.stream.to_dict()}, b"")
            for emission in sampler.add(frame, backend.damage_evidence()):
                batches.add(emission.grid, emission.image, emission.count, sampler.position)
            if sampler.done:
                break
            if time.monotonic() - beat > HEARTBEAT_SECONDS:
                beat = time.monotonic()
                send({"kind": "progress", "time": sampler.position}, b"")
        if not sampler.frames:
            raise VideoError(path, "no decodable video frames" + (" (the file is damaged)" if backend.failures else ""))
        expected = backend.expected_end()
        emissions, end, truncated = sampler.finish(None if sampler.done else expected)
        for emission in emissions:
            batches.add(emission.grid, emission.image, emission.count, end)
        batches.flush_all(end)
        stream = backend.stream
        send({"kind": "done", "info": {
            "duration": end, "fps": stream.fps, "width": stream.width, "height": stream.height,
            "frame_count": sampler.frames, "expected_duration": expected,
            "damaged": [list(span) for span in sampler.damaged], "truncated": bool(truncated),
        }}, b"")
    finally:
        backend.close()


def serve_safely(request: dict, send: Callable[[dict, bytes], None]) -> None:
    """:func:`serve`, with any failure of the file turned into an ``error`` message."""
    from ..errors import VideoError  # noqa: PLC0415

    try:
        serve(request, send)
    except VideoError as exc:
        send({"kind": "error", "reason": exc.reason}, b"")
    except (BrokenPipeError, Cancelled):
        raise
    except Exception as exc:  # noqa: BLE001 - one file's failure must not end the decoder
        send({"kind": "error", "reason": f"decoder failure ({type(exc).__name__}: {str(exc)[:160]})"}, b"")


class Cancelled(Exception):
    """Raised inside a decode whose reader has gone away."""


def main() -> None:
    """Serve requests from stdin until it closes (the parent exited or let go)."""
    _die_with_parent()
    # The parent decides when to stop a decode; Ctrl-C in a terminal reaches it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not corrupt the protocol
    verbose = os.environ.get("VSEARCH_DECODE_VERBOSE") == "1"
    terminal = os.dup(2)
    # FFmpeg's messages go to a private, unlinked file: how much it grows tells damage.
    log_path = os.path.join(tempfile.gettempdir(), f"vsearch-decoder-{os.getpid()}.log")
    log_fd = os.open(log_path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
    os.unlink(log_path)
    os.dup2(log_fd, 2)
    from .pyav import log_errors_to  # noqa: PLC0415

    log_errors_to(2)

    def send(header: dict, payload: bytes) -> None:
        write_message(out, header, payload)

    for line in sys.stdin.buffer:
        os.ftruncate(2, 0)
        try:
            serve_safely(json.loads(line), send)
        except BrokenPipeError:
            return
        finally:
            if verbose:  # the parent asked to see FFmpeg's messages
                os.write(terminal, os.pread(2, os.fstat(2).st_size, 0))


def _die_with_parent() -> None:
    """Ask Linux to kill this process when the thread that started it ends, so a
    decoder stuck inside FFmpeg never outlives an ingest killed with -9."""
    try:
        import ctypes  # noqa: PLC0415

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent is gone already
        os._exit(0)


if __name__ == "__main__":
    main()

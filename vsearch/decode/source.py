"""Reading a video through a decoder process, with a watchdog.

:class:`VideoSource` is what the rest of vsearch uses: frames at analysis instants,
streamed in chunks (ingest) or all at once (query clips), or RGB pictures at given
times (reports). Each call is one pass over the file in a decoder process from a
small pool (:mod:`vsearch.decode.worker`; a server keeps some started ahead of need,
:func:`keep_warm`). While it waits, the parent watches:

- no new frame for ``timeout`` seconds: the decode is stalled;
- after ``timeout`` seconds of waiting, less than ``MIN_SPEED`` seconds of video per
  second waited: it is too slow to ever finish a library;
- the process died (a decoder crash).

Each ends that file's decode with a one-line :class:`~vsearch.errors.VideoError`; the
process is killed and a fresh one serves the next file.
"""

from __future__ import annotations

import atexit
import base64
import fcntl
import importlib.util
import json
import logging
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from typing import Callable, Iterator

import numpy as np

from ..config import DECODERS
from ..errors import ClipTooLongError, VideoError, VsearchError
from .base import DEFAULT_MAX_PIXELS, StreamInfo, VideoInfo
from .files import check_readable
from .worker import HEADER_SIZE, Cancelled, serve_safely, split_header

log = logging.getLogger(__name__)

#: The decoder that reads every file of the frame-accuracy suite as ffmpeg does.
DEFAULT_DECODER = "pyav"

#: Seconds without progress after which a file's decode is abandoned.
DEFAULT_TIMEOUT = 30.0

#: Decoding slower than this (video seconds per second) is abandoned once ``timeout`` has passed.
MIN_SPEED = 0.1

# Idle decoder processes kept for the next file (unless more are kept warm).
_MAX_IDLE = 4

# Seconds between checks that the processes kept warm are alive.
_WARM_CHECK_SECONDS = 0.5

# Longest pause between restarts of warm processes that keep dying while idle.
_MAX_RESTART_PAUSE = 30.0

# Linux's fcntl to size a pipe, and the size asked for (the default system limit).
_F_SETPIPE_SZ = 1031
_PIPE_BYTES = 1 << 20


def check_decoder(name: str) -> str:
    """``name`` if it is a decoder that is installed, else :class:`VsearchError`."""
    if name not in DECODERS:
        raise VsearchError(f"unknown decoder {name!r}; choose one of {', '.join(DECODERS)}")
    if name == "decord" and importlib.util.find_spec("decord") is None:
        raise VsearchError("the decord decoder is not installed: pip install 'vsearch[decord]'")
    return name


def default_threads() -> int:
    return max(1, min(os.cpu_count() or 1, 16))


class _Process:
    """One decoder process and its pipes."""

    def __init__(self) -> None:
        verbose = logging.getLogger("vsearch").isEnabledFor(logging.DEBUG)
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
                   VSEARCH_DECODE_VERBOSE="1" if verbose else "0",
                   # FFmpeg's threads do the work; NumPy's pools would only compete with them.
                   OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vsearch.decode.worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None if verbose else subprocess.DEVNULL,
            env=env, bufsize=0,
        )
        self._buffer = bytearray()
        # A pipe of 64 KiB holds five pictures: the decoder would wait for the caller's
        # work on every chunk. A larger one lets it decode a chunk or two ahead.
        try:
            fcntl.fcntl(self.proc.stdout.fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)
        except OSError:  # not Linux, or above the system's limit: keep the default
            pass

    def send(self, request: dict) -> None:
        self.proc.stdin.write(json.dumps(request).encode("utf-8") + b"\n")

    def read_exactly(self, size: int, wait: "_Watchdog") -> bytes:
        fd = self.proc.stdout.fileno()
        while len(self._buffer) < size:
            ready, _, _ = select.select([fd], [], [], wait.seconds_left())
            if not ready:
                wait.expired()
                continue
            chunk = os.read(fd, max(1 << 16, size - len(self._buffer)))
            if not chunk:
                raise EOFError
            self._buffer += chunk
            wait.waited()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def receive(self, wait: "_Watchdog") -> tuple[dict, bytes]:
        head, size = split_header(self.read_exactly(HEADER_SIZE, wait))
        header = json.loads(self.read_exactly(head, wait))
        return header, self.read_exactly(size, wait) if size else b""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            pipe.close()

    def exit_description(self) -> str:
        code = self.proc.wait()
        if code < 0:
            try:
                return f"the decoder crashed ({signal.Signals(-code).name})"
            except ValueError:
                return f"the decoder crashed (signal {-code})"
        return f"the decoder exited unexpectedly (status {code})"


class _InProcess:
    """The fallback where no process can be started (a sandbox, a frozen program):
    decoding in a thread of this process. Memory and crashes are then not isolated,
    and a stalled decode can only be abandoned, not killed."""

    def __init__(self) -> None:
        self._queue: queue.Queue | None = None
        self._cancelled = threading.Event()

    def send(self, request: dict) -> None:
        self._queue, self._cancelled = queue.Queue(maxsize=8), threading.Event()
        messages, cancelled = self._queue, self._cancelled

        def send(header: dict, payload: bytes) -> None:
            while not cancelled.is_set():
                try:
                    messages.put((header, payload), timeout=0.5)
                    return
                except queue.Full:
                    continue
            raise Cancelled

        def run() -> None:
            try:
                serve_safely(request, send)
            except Cancelled:
                pass

        threading.Thread(target=run, name="vsearch-decode", daemon=True).start()

    def receive(self, wait: "_Watchdog") -> tuple[dict, bytes]:
        while True:
            try:
                message = self._queue.get(timeout=wait.seconds_left())
            except queue.Empty:
                wait.expired()
                continue
            wait.waited()
            return message

    def alive(self) -> bool:
        return True

    def kill(self) -> None:
        self._cancelled.set()

    def exit_description(self) -> str:
        return "the decoder thread stopped"


class _Spawner:
    """Starts decoder processes from one thread that lives as long as this process.

    A decoder asks Linux to kill it when the thread that started it ends (so none
    outlives a killed parent); started from short-lived threads, pooled decoders
    would die with them.
    """

    def __init__(self) -> None:
        self._requests: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> "_Process":
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="vsearch-spawner", daemon=True)
                self._thread.start()
        reply: queue.Queue = queue.Queue(maxsize=1)
        self._requests.put(reply)
        outcome = reply.get()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _serve(self) -> None:
        while True:
            reply = self._requests.get()
            try:
                reply.put(_Process())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                reply.put(exc)

    def forget(self) -> None:
        self._requests, self._thread, self._lock = queue.Queue(), None, threading.Lock()


_SPAWNER = _Spawner()


def _start() -> "_Process | _InProcess":
    try:
        return _SPAWNER.start()
    except OSError as exc:
        log.debug("cannot start a decoder process (%s): decoding in this process", exc)
        return _InProcess()


class _Pool:
    """Decoder processes kept between files; one per concurrent decode.

    Up to ``_MAX_IDLE`` idle ones are kept. A caller expecting bursts of decodes (the
    server, one per query worker) asks :meth:`keep_warm` for processes started ahead
    of need: they are started now, in the background, and kept; one that crashes
    (idle, or on a file) is replaced; and idle ones are then kept up to one more
    than asked for.
    """

    def __init__(self) -> None:
        self._reset()
        atexit.register(self.close)
        # A forked child must not share its parent's processes (their pipes are the parent's).
        os.register_at_fork(after_in_child=self._forget)

    def _reset(self) -> None:
        self._idle: list[_Process] = []
        self._busy = 0  # handed out by acquire (or being started for it), not yet back
        self._warm = 0  # processes asked to be kept started, idle or busy
        self._lock = threading.Lock()
        self._changed = threading.Event()  # wakes the keeper: a process gone, or the count asked changed
        self._keeper: threading.Thread | None = None

    def _forget(self) -> None:
        self._reset()
        _SPAWNER.forget()

    def _idle_limit(self) -> int:
        return self._warm + 1 if self._warm else _MAX_IDLE

    def acquire(self) -> _Process:
        with self._lock:
            self._busy += 1
            while self._idle:
                process = self._idle.pop()
                if process.alive():
                    return process
                process.kill()
        try:
            return _start()
        except BaseException:
            self._returned()
            raise

    def release(self, process: _Process) -> None:
        """Take back a process that finished its file: kept idle if there is room."""
        with self._lock:
            self._busy -= 1
            if process.alive() and len(self._idle) < self._idle_limit():
                self._idle.append(process)
                return
        self.discard(process, acquired=False)

    def discard(self, process: _Process, *, acquired: bool = True) -> None:
        """Kill a process left mid-file or crashed (a warm one is replaced)."""
        if acquired:
            self._returned()
        process.kill()
        self._changed.set()

    def _returned(self) -> None:
        with self._lock:
            self._busy -= 1

    def prestart(self) -> None:
        """Start a process now, so that its start-up overlaps other work."""
        with self._lock:
            if self._idle:
                return
        self.release(self.acquire())

    def keep_warm(self, count: int) -> Callable[[], None]:
        """Keep ``count`` more processes started from now on (see the class); returns
        the function that stops keeping them."""
        with self._lock:
            self._warm += count
            if self._keeper is None:
                self._keeper = threading.Thread(target=self._keep, name="vsearch-decoders-warm", daemon=True)
                self._keeper.start()
        self._changed.set()
        stopped = threading.Event()

        def stop() -> None:
            if stopped.is_set():
                return
            stopped.set()
            with self._lock:
                self._warm = max(0, self._warm - count)  # close() may have let go of them all
                surplus, self._idle = self._idle[self._idle_limit():], self._idle[: self._idle_limit()]
            for process in surplus:
                process.kill()
            self._changed.set()

        return stop

    def _keep(self) -> None:
        """The keeper thread: replaces warm processes that died, starts missing ones."""
        pause = _WARM_CHECK_SECONDS
        while True:
            self._changed.wait(pause)
            self._changed.clear()
            with self._lock:
                if not self._warm:
                    self._keeper = None
                    return
                dead = [p for p in self._idle if not p.alive()]
                self._idle = [p for p in self._idle if p not in dead]
                missing = self._warm - len(self._idle) - self._busy
            for process in dead:
                process.kill()
            # Processes that keep dying while idle (a broken environment) are restarted
            # ever more slowly, not in a loop.
            pause = min(2 * pause, _MAX_RESTART_PAUSE) if dead else _WARM_CHECK_SECONDS
            for _ in range(missing):
                try:
                    process = _SPAWNER.start()
                except OSError as exc:
                    log.debug("cannot keep a decoder process warm (%s)", exc)
                    break
                with self._lock:
                    kept = len(self._idle) + self._busy < self._warm
                    if kept:
                        self._idle.append(process)
                if not kept:
                    process.kill()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
            self._warm = 0
        self._changed.set()
        for process in idle:
            process.kill()


_POOL = _Pool()


def prestart() -> None:
    """Start a decoder process in the background (a query's clip is decoded sooner)."""
    _POOL.prestart()


def keep_warm(count: int) -> Callable[[], None]:
    """Keep ``count`` decoder processes started, idle or decoding, from now on: they
    are started now in the background, and one that dies is replaced, so a burst of
    up to ``count`` concurrent decodes starts no process. Idle ones are kept up to one
    more than asked for. Returns the function that stops keeping them (asks from
    several callers add up)."""
    return _POOL.keep_warm(count)


class _Stalled(Exception):
    pass


class _Watchdog:
    """Decides, while the parent waits for frames, whether a decode is stuck or too slow.

    Only time spent waiting on the decoder counts (not the caller's own work between
    chunks), and speed is judged over the last ``timeout`` seconds of waiting: a file
    that decodes fast and then crawls is caught too.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.waiting = 0.0  # seconds spent blocked on the decoder
        self.position = 0.0  # latest frame time reported
        self._last_progress = time.monotonic()
        self._blocked_since = time.monotonic()
        self._history: deque[tuple[float, float]] = deque([(0.0, 0.0)])  # (waiting, position)
        self.reason = ""

    def seconds_left(self) -> float:
        self._blocked_since = time.monotonic()
        return max(0.05, self.timeout - (self._blocked_since - self._last_progress))

    def waited(self) -> None:
        now = time.monotonic()
        self.waiting += now - self._blocked_since
        self._blocked_since = now

    def expired(self) -> None:
        now = time.monotonic()
        self.waiting += now - self._blocked_since
        if now - self._last_progress >= self.timeout:
            self.reason = f"decoding stalled at {self.position:.1f} s (no progress for {self.timeout:g} s)"
            raise _Stalled

    def progress(self, position: float) -> None:
        self._last_progress = time.monotonic()
        self.position = max(self.position, position)
        history = self._history
        history.append((self.waiting, self.position))
        while len(history) > 2 and history[1][0] <= self.waiting - self.timeout:
            history.popleft()
        since, then = history[0]
        span = self.waiting - since
        if span >= self.timeout and self.position - then < MIN_SPEED * span:
            self.reason = (f"decoding too slow ({(self.position - then) / span:.2f}x real time over the last "
                           f"{span:.0f} s, at {self.position:.1f} s of video)")
            raise _Stalled


class VideoSource:
    """A video file, read on the player's timeline by a decoder process.

    Opening checks only that the file is readable; errors of decoding (not a video,
    stalled, crashed) are raised by the reading methods, as one-line
    :class:`~vsearch.errors.VideoError`. After a complete pass, :attr:`info` holds
    the video's duration, frame count and any damaged spans; :attr:`stream` holds
    what the container said (display size, nominal rate) once a frame was decoded.
    A file whose frames are larger than ``max_pixels`` (None: any size) is refused
    from its headers, before a frame is decoded.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        width: int,
        height: int,
        decoder: str = DEFAULT_DECODER,
        timeout: float = DEFAULT_TIMEOUT,
        threads: int | None = None,
        max_duration: float | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.path = os.fsdecode(os.fspath(path))
        self.max_pixels = max_pixels
        #: A file longer than this (by its headers, or as it decodes) is refused early.
        self.max_duration = max_duration
        check_readable(self.path)
        self.width, self.height = width, height
        self.decoder = check_decoder(decoder)
        self.timeout = float(timeout)
        if not self.timeout > 0:
            raise VsearchError(f"decode timeout must be positive, got {timeout!r}")
        self.threads = threads or default_threads()
        self.stream: StreamInfo | None = None
        self.info: VideoInfo | None = None

    def iter_frames(self, analysis_fps: float, chunk_frames: int = 80, *, integrate: bool = False,
                    pixel_format: str = "gray") -> Iterator[np.ndarray]:
        """Yield uint8 grey frames ``(n, height, width)`` at instants ``k / analysis_fps``
        (``pixel_format="rgb24"``: RGB frames ``(n, height, width, 3)``).

        Every chunk holds ``chunk_frames`` frames but the last: memory does not grow
        with the video's length. By default each is the frame on screen; with
        ``integrate``, the average of what is shown during the instant's own
        ``1 / analysis_fps`` seconds (see :class:`~vsearch.decode.sampler.FrameSampler`).
        """
        for header, pictures in self._decode(rates=[analysis_fps], chunk=chunk_frames, integrate=integrate,
                                             pixel_format=pixel_format):
            yield pictures

    def frames_at_rates(self, rates: list[float], *, integrate: bool = False, pixel_format: str = "gray"
                        ) -> list[np.ndarray]:
        """All grey (or RGB) frames at each rate's instants, the file decoded once (short clips only)."""
        parts: list[list[np.ndarray]] = [[] for _ in rates]
        for header, pictures in self._decode(rates=list(rates), chunk=1024, integrate=integrate,
                                             pixel_format=pixel_format):
            parts[header["grid"]].append(pictures)
        empty = np.zeros((0, self.height, self.width, *((3,) if pixel_format == "rgb24" else ())), np.uint8)
        return [np.concatenate(p) if p else empty for p in parts]

    def frames_at(self, times: np.ndarray, *, rgb: bool = True) -> np.ndarray:
        """Pictures on screen at the given times (seconds), RGB by default.

        A width of 0 keeps the display aspect at the source's height. The decoder
        starts at a keyframe shortly before the earliest time.
        """
        times = np.asarray(times, dtype=np.float64)
        if not len(times):
            return np.zeros((0, self.height, self.width, 3) if rgb else (0, self.height, self.width), np.uint8)
        unique, inverse = np.unique(times, return_inverse=True)
        seek = max(0.0, float(unique[0]) - 5.0) if unique[0] > 30 else None
        parts = [p for _, p in self._decode(times=unique.tolist(), chunk=len(unique),
                                             pixel_format="rgb24" if rgb else "gray", seek=seek)]
        return np.concatenate(parts)[inverse]

    def _check_length(self, header: dict) -> None:
        """Refuse a file past ``max_duration`` as soon as its headers or its pictures say so."""
        if self.max_duration is None:
            return
        stated = header.get("duration") if header["kind"] == "probe" else header.get("time")
        if stated is not None and stated > self.max_duration + 0.5:
            raise ClipTooLongError(self.path, f"longer than the {self.max_duration:g} s allowed "
                                              f"({'its header says' if header['kind'] == 'probe' else 'plays past'} "
                                              f"{stated:.1f} s)")

    def _decode(self, *, chunk: int, rates: list[float] | None = None, times: list[float] | None = None,
                pixel_format: str = "gray", seek: float | None = None,
                integrate: bool = False) -> Iterator[tuple[dict, np.ndarray]]:
        request = {
            "path": base64.b64encode(os.fsencode(self.path)).decode("ascii"), "decoder": self.decoder,
            "width": self.width, "height": self.height, "format": pixel_format, "rates": rates, "times": times,
            "integrate": integrate, "chunk": chunk, "threads": self.threads, "seek": seek,
            "max_pixels": self.max_pixels,
        }
        process = _POOL.acquire()
        healthy = False
        try:
            try:
                process.send(request)
            except BrokenPipeError:  # it died while idle: one retry with another
                _POOL.discard(process)
                process = _POOL.acquire()
                process.send(request)
            watchdog = _Watchdog(self.timeout)
            while True:
                try:
                    header, payload = process.receive(watchdog)
                    watchdog.progress(float(header.get("time", watchdog.position)))
                except _Stalled:
                    raise VideoError(self.path, watchdog.reason) from None
                except (EOFError, BrokenPipeError):
                    raise VideoError(self.path, process.exit_description()) from None
                kind = header["kind"]
                self._check_length(header)
                if kind == "frames":
                    shape = (header["count"], *header["shape"])
                    yield header, np.frombuffer(payload, dtype=np.uint8).reshape(shape)
                elif kind == "probe":
                    self.stream = StreamInfo(**{k: v for k, v in header.items() if k != "kind"})
                elif kind == "done":
                    healthy = True
                    info = header["info"]
                    info["damaged"] = tuple(tuple(span) for span in info["damaged"])
                    self.info = VideoInfo(path=self.path, **info)
                    return
                elif kind == "error":
                    healthy = True
                    raise VideoError(self.path, header["reason"])
        finally:
            # A decode left half-way (stalled, or the caller stopped early) leaves the
            # process mid-file: it is killed rather than drained.
            if healthy:
                _POOL.release(process)
            else:
                _POOL.discard(process)

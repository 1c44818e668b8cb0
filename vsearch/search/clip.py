"""Query clips as the search reads them: windows of a clip in several *readings*.

A :class:`QueryClip` is decoded once, by the index's decoder, and described lazily
in readings (:class:`Reading`): at other speeds, mirrored, turned by quarter turns,
or its picture-in-picture inset alone, each at every sub-block phase; windows mostly
of a frozen picture are left out. A :class:`FeatureClip` is a clip given as features
(plain reading only). Both hand the search :class:`ClipWindows`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np

from ..config import IndexConfig
from ..decode import DEFAULT_MAX_PIXELS, DEFAULT_TIMEOUT, VideoSource
from ..device import Device
from ..errors import ClipTooShortError, FeatureFileError, VideoError, VsearchError
from ..extractors import Extractor, create_extractor
from ..extractors.kernels import mirror_descriptors
from ..featurefiles.read import ImportedFeatures
from ..frames import (
    DETECTION_BLOCKS,
    detect_borders,
    detect_inset,
    detect_static_overlay,
    frozen_blocks,
    remove_borders,
    resize_frames,
    rotate_frames,
)
from ..windows import flagged_per_window, window_vectors

# A picture-in-picture inset is described from the clip decoded this many times larger.
_INSET_DETAIL = 3

#: Playback speeds a query clip is also read at, by default: re-uploads are often
#: sped up or slowed down (to dodge matching, or to fit a slot), and each speed
#: tolerates about +-5 % around it, so these cover roughly 0.75x-1.3x. The reported
#: speed is fitted along the clip (see ``vsearch.search.align.fit_rate``), not rounded to these.
DEFAULT_SPEEDS = (1.0, 0.9, 1.1, 0.8, 1.25)

#: Quarter turns (anticlockwise) a query clip is also read at: copies turned on
#: their side (90 / 270 degrees) or upside down (180).
ROTATIONS = (1, 2, 3)


def check_speeds(speeds: tuple[float, ...] | list[float]) -> tuple[float, ...]:
    """``speeds`` as a tuple of floats, or :class:`VsearchError` if any is unusable."""
    speeds = tuple(float(s) for s in speeds)
    if not speeds or any(not 0.25 <= s <= 4.0 for s in speeds):
        raise VsearchError(f"speeds must be between 0.25 and 4, got {', '.join(f'{s:g}' for s in speeds) or 'none'}")
    return speeds


def parse_speeds(text: str | None) -> tuple[float, ...]:
    """``--speeds``: comma-separated playback speeds (None: :data:`DEFAULT_SPEEDS`), checked."""
    if text is None:
        return check_speeds(DEFAULT_SPEEDS)
    try:
        speeds = [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise VsearchError(f"--speeds must be comma-separated numbers, got {text!r}") from None
    return check_speeds(speeds)


@dataclass(frozen=True)
class ClipWindows:
    """Query windows of a clip, in several *views*.

    A view is one way of reading the clip: a sub-block phase (which analysis frame
    its first block starts at), mirrored or not, and a playback speed. ``vectors[i]``
    covers clip seconds ``[starts[i], starts[i] + window_seconds / speeds[i])`` and
    belongs to view ``views[i]``; view ``v`` has phase ``v % frames_per_block``;
    ``mirrored[i]`` says whether the view is the horizontally flipped clip, and
    ``inset[i]`` whether it is a picture-in-picture inset cut out of the clip, and
    ``rotation[i]`` the quarter turns the clip was turned back by (0: none).
    ``speeds[i]`` is the playback speed the view assumes: a clip played at speed
    ``s`` shows, at clip time ``t``, library time ``offset + s * t``.
    """

    duration: float
    vectors: np.ndarray
    starts: np.ndarray
    views: np.ndarray
    speeds: np.ndarray
    mirrored: np.ndarray
    inset: np.ndarray
    rotation: np.ndarray

    FIELDS = ("vectors", "starts", "views", "speeds", "mirrored", "inset", "rotation")

    def __post_init__(self) -> None:
        n = len(self.vectors)
        if any(len(getattr(self, f)) != n for f in self.FIELDS):
            raise ValueError("starts, views, speeds, mirrored, inset and rotation need one entry per window")

    @classmethod
    def empty(cls, duration: float, dim: int) -> "ClipWindows":
        return cls(duration=duration, vectors=np.zeros((0, dim), np.float32), starts=np.zeros(0),
                   views=np.zeros(0, np.int64), speeds=np.zeros(0), mirrored=np.zeros(0, bool),
                   inset=np.zeros(0, bool), rotation=np.zeros(0, np.int64))

    @classmethod
    def concatenate(cls, parts: list["ClipWindows"], duration: float) -> "ClipWindows":
        return cls(duration=duration, **{f: np.concatenate([getattr(p, f) for p in parts]) for f in cls.FIELDS})

    def select(self, rows: np.ndarray) -> "ClipWindows":
        """The windows ``rows`` only."""
        return ClipWindows(duration=self.duration, **{f: getattr(self, f)[rows] for f in self.FIELDS})

    @property
    def edits(self) -> np.ndarray:
        """Number of edits each window's view assumes (speed change, mirroring, inset, rotation)."""
        return (self.speeds != 1.0).astype(np.int64) + self.mirrored + self.inset + (self.rotation != 0)


@dataclass(frozen=True)
class Reading:
    """One way of reading a clip: at a playback speed, mirrored or not, whole or its
    inset, turned back by ``rotation`` quarter turns or not."""

    speed: float = 1.0
    mirrored: bool = False
    inset: bool = False
    rotation: int = 0

    @property
    def edits(self) -> int:
        return int(self.speed != 1.0) + int(self.mirrored) + int(self.inset) + int(self.rotation != 0)

    @property
    def unmirrored(self) -> "Reading":
        return replace(self, mirrored=False)


class QueryClip:
    """A query clip, decoded once, whose readings are described on demand.

    Every reading is cut into blocks at each sub-block phase: a clip cut at 3.27 s
    does not line up with library blocks at 3.0 and 3.5 s, and one phase is always
    within half an analysis frame of the library's grid. A speed ``s`` reads the
    clip at ``s`` times the analysis rate, so a sped-up copy is described on the
    library's own time base (motion per frame included); a mirrored reading finds
    flipped copies; a rotated one (at speed 1) copies turned by quarter turns; an
    inset reading (v1 only) describes a picture-in-picture inset found in the clip,
    scaled up to the working size. Reading ``r`` (in :attr:`readings` order) owns
    views ``r * frames_per_block + phase``. Rotated and inset readings need an
    extractor of grey frames (the kernels); others get speeds and mirroring only.
    A clip longer than ``max_duration`` seconds is refused
    (:class:`~vsearch.errors.ClipTooLongError`) as soon as its headers or its
    pictures show it, before it is held in memory whole; one of frames larger than
    ``max_pixels`` from its headers, before a frame is decoded.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        config: IndexConfig,
        device: Device,
        *,
        mirrored: bool = False,
        speeds: tuple[float, ...] = (1.0,),
        inset: bool = False,
        rotations: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        extractor: Extractor | None = None,
        max_duration: float | None = None,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ) -> None:
        self.path, self.config, self.device = os.fsdecode(os.fspath(path)), config, device
        self.max_pixels = max_pixels
        self.extractor = extractor = extractor or create_extractor(config, device)
        speeds = check_speeds(speeds)
        source = VideoSource(path, width=config.width, height=config.height, decoder=config.decoder, timeout=timeout,
                             max_duration=max_duration, max_pixels=max_pixels)
        per_speed = source.frames_at_rates([config.analysis_fps * s for s in speeds], integrate=True,
                                           pixel_format=extractor.pixel_format)
        self.duration = source.info.duration
        fpb = config.frames_per_block
        # Bars are looked for in the same span of frames as on the library side.
        head = per_speed[0][: fpb * DETECTION_BLOCKS]
        borders = detect_borders(head) if config.crop_borders else (0, 0, 0, 0)
        self._frames = {Reading(speed=s): remove_borders(f, borders, np) for s, f in zip(speeds, per_speed)}
        plain = self._frames.get(Reading())
        first = next(iter(self._frames.values()))
        #: Per analysis frame of the clip: the picture is exactly the one before (held).
        self.still = (np.concatenate([[False], np.all(first[1:] == first[:-1], axis=tuple(range(1, first.ndim)))])
                      if len(first) else first)
        self._still_rate = config.analysis_fps * speeds[0]
        v1 = config.features == "v1" and plain is not None
        #: Grid cells hidden by a still overlay (a logo box) in the clip, or None.
        self.overlay = detect_static_overlay(plain[: fpb * DETECTION_BLOCKS], config.grid) if v1 else None
        inset = inset and "inset" in extractor.edited_readings
        margins = detect_inset(plain[: fpb * DETECTION_BLOCKS]) if inset and v1 else None
        if margins is not None:
            self._frames[Reading(inset=True)] = (
                remove_borders(plain, margins, np) if any(borders)
                else self._inset_in_detail(margins, len(plain), timeout)
            )
        self.readings: list[Reading] = []
        for reading in self._frames:
            self.readings += [reading, replace(reading, mirrored=True)] if mirrored else [reading]
        if rotations and plain is not None and "rotations" in extractor.edited_readings:
            self.readings += [Reading(rotation=turns) for turns in ROTATIONS]
        self._cache: dict[Reading, ClipWindows] = {}

    def _inset_in_detail(self, margins: tuple[int, int, int, int], count: int, timeout: float) -> np.ndarray:
        """The inset at the working size, cut from the clip decoded ``_INSET_DETAIL`` times larger.

        An inset is a fraction of the frame: cut out of the working-size picture, a
        30 % inset would be 38 x 29 pixels scaled up, too blurred to describe like its
        source. Decoded larger, it is cut out at the library's own sampling.
        """
        config, scale = self.config, _INSET_DETAIL
        top, bottom, left, right = (m * scale for m in margins)
        height, width = config.height * scale, config.width * scale
        source = VideoSource(self.path, width=width, height=height, decoder=config.decoder, timeout=timeout,
                             max_pixels=self.max_pixels)
        parts = []
        for chunk in source.iter_frames(config.analysis_fps, chunk_frames=64, integrate=True):
            inner = chunk[:, top : height - bottom, left : width - right].astype(np.float32)
            # Box-average down by the whole factor first (resampling alone would alias).
            n, h, w = inner.shape
            f = max(1, min(h // config.height, w // config.width))
            inner = inner[:, : h - h % f, : w - w % f].reshape(n, h // f, f, w // f, f).mean(axis=(2, 4))
            parts.append(resize_frames(inner, config.height, config.width, np))
        frames = np.concatenate(parts) if parts else np.zeros((0, config.height, config.width), np.float32)
        return frames[:count]

    def frames(self, reading: Reading) -> np.ndarray:
        """The analysis frames of an unmirrored reading (rotated ones turned on demand)."""
        if reading not in self._frames and reading.rotation:
            self._frames[reading] = rotate_frames(self._frames[replace(reading, rotation=0)], reading.rotation, np)
        return self._frames[reading]

    def frozen_share(self, start: float, end: float) -> float:
        """Share of the clip's seconds ``[start, end)`` whose picture does not change."""
        first, last = int(np.floor(start * self._still_rate)), int(np.ceil(end * self._still_rate))
        span = self.still[max(first, 0) : max(last, 0)]
        return float(span.mean()) if len(span) else 0.0

    def windows(self, readings: list[Reading] | None = None, *, allow_empty: bool = False) -> ClipWindows:
        """Windows of the given readings (all by default), each described once and kept.

        Raises :class:`ClipTooShortError` when there are none, unless ``allow_empty``.
        """
        chosen = self.readings if readings is None else [r for r in self.readings if r in readings]
        parts = [self._describe(r) for r in chosen]
        if allow_empty and not parts:
            parts = [ClipWindows.empty(self.duration, self.config.dim)]
        if not allow_empty and sum(len(p.vectors) for p in parts) == 0:
            if self.duration >= self.config.window_seconds:  # long enough: its windows were all frozen
                raise VideoError(self.path, "the clip shows a frozen picture throughout: nothing moves to match")
            raise ClipTooShortError(
                self.path,
                f"clip is {self.duration:.2f} s long, shorter than one window ({self.config.window_seconds:g} s)",
            )
        return ClipWindows.concatenate(parts, self.duration)

    def _describe(self, reading: Reading) -> ClipWindows:
        config, fpb = self.config, self.config.frames_per_block
        first_view = self.readings.index(reading) * fpb
        if reading.mirrored and config.features == "v1":
            # Mirroring permutes v1 descriptors exactly: no need to describe again.
            base = self._describe(reading.unmirrored)
            blocks = base.vectors.reshape(-1, config.block_dim)
            return replace(
                base,
                vectors=mirror_descriptors(blocks, config).reshape(base.vectors.shape),
                views=base.views % fpb + first_view,
                mirrored=np.ones(len(base.vectors), dtype=bool),
            )
        if reading in self._cache:
            return self._cache[reading]
        frames = self.frames(reading.unmirrored)
        if reading.mirrored:
            frames = frames[:, :, ::-1]  # seed has no layout to permute: describe the flip
        vectors, starts = [], []
        for phase in range(fpb):
            windows = window_vectors(self.device.to_numpy(self.extractor.describe(frames[phase:])), config)
            # Windows mostly of a frozen picture carry no evidence: they are left out,
            # and count as missing when a hit is scored (a clip that is mostly a held
            # frame is ambiguous, not a confident match of whatever else holds still).
            frozen = flagged_per_window(frozen_blocks(frames[phase:], fpb), config)
            moving = 2 * frozen[: len(windows)] <= config.window_blocks
            vectors.append(windows[moving])
            starts.append(((phase / config.analysis_fps + np.arange(len(windows)) * config.block_seconds)
                           / reading.speed)[moving])
        n = [len(v) for v in vectors]
        out = ClipWindows(
            duration=self.duration,
            vectors=np.concatenate(vectors),
            starts=np.concatenate(starts),
            views=np.repeat(first_view + np.arange(fpb), n),
            speeds=np.full(sum(n), reading.speed),
            mirrored=np.full(sum(n), reading.mirrored),
            inset=np.full(sum(n), reading.inset),
            rotation=np.full(sum(n), reading.rotation, dtype=np.int64),
        )
        self._cache[reading] = out
        return out


class FeatureClip:
    """A query clip given as features another tool computed (``--from-features``).

    Only the plain reading exists: the other readings (speeds, mirrored, turned,
    inset) are made from frames, which such a clip does not have. Its windows start
    on the index's block grid (one phase); no window is left out as frozen.
    Offers what :func:`vsearch.search.pipeline.search_clip` reads of a :class:`QueryClip`.
    """

    def __init__(self, imported: ImportedFeatures, config: IndexConfig) -> None:
        self.path, self.config, self.duration = imported.source, config, imported.duration
        if imported.dim != config.block_dim:
            raise FeatureFileError(imported.source, f"features have {imported.dim} dimensions, the index's blocks "
                                                    f"{config.block_dim}")
        vectors = window_vectors(imported.blocks(config), config)
        n = len(vectors)
        self._windows = ClipWindows(
            duration=self.duration, vectors=vectors, starts=np.arange(n) * config.block_seconds,
            views=np.zeros(n, np.int64), speeds=np.ones(n), mirrored=np.zeros(n, bool), inset=np.zeros(n, bool),
            rotation=np.zeros(n, np.int64))
        self.readings: list[Reading] = [Reading()]
        #: No still overlay is looked for (that needs frames).
        self.overlay = None

    def windows(self, readings: list[Reading] | None = None, *, allow_empty: bool = False) -> ClipWindows:
        """The plain reading's windows (whatever ``readings`` asks for: there is no other)."""
        if len(self._windows.vectors) == 0 and not allow_empty:
            raise ClipTooShortError(self.path, f"features span {self.duration:.2f} s, shorter than one window "
                                               f"({self.config.window_seconds:g} s)")
        return self._windows

    def frozen_share(self, start: float, end: float) -> float:
        """Nothing is known to be frozen in a clip given as features."""
        return 0.0


#: A clip as the query path reads it: decoded (every reading) or given as features (plain only).
Clip = QueryClip | FeatureClip

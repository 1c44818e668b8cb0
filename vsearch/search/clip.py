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

from .. import cells
from ..config import IndexConfig
from ..decode import DEFAULT_MAX_PIXELS, DEFAULT_TIMEOUT, VideoSource
from ..device import Device
from ..errors import ClipTooShortError, FeatureFileError, VideoError, VsearchError
from ..extractors import Extractor, create_extractor
from ..featurefiles.read import ImportedFeatures
from ..frames import (
    DETECTION_BLOCKS,
    detect_borders,
    detect_inset,
    detect_split,
    detect_static_overlay,
    frozen_frames,
    held_blocks,
    is_still,
    motion_level,
    remove_borders,
    resize_frames,
    rotate_frames,
)
from ..windows import flagged_per_window, stack_windows, window_vectors
from .tuning import NEAR_STATIC_MOTION


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
    ``mirrored[i]`` says whether the view is the horizontally flipped clip,
    ``inset[i]`` which part of the clip it reads (0: all of it; ``k``: ``parts[k]``, a
    picture-in-picture inset or one side of a split screen cut out of the clip), and
    ``rotation[i]`` the quarter turns the clip was turned back by (0: none).
    ``speeds[i]`` is the playback speed the view assumes: a clip played at speed
    ``s`` shows, at clip time ``t``, library time ``offset + s * t``. ``portrait``
    says the clip's picture is taller than wide (its bars cut off): only then may it
    be a portrait reframe, a vertical slice of the library's frame.
    """

    duration: float
    vectors: np.ndarray
    starts: np.ndarray
    views: np.ndarray
    speeds: np.ndarray
    mirrored: np.ndarray
    inset: np.ndarray
    rotation: np.ndarray
    parts: tuple[str, ...] = ("whole",)
    portrait: bool = False

    FIELDS = ("vectors", "starts", "views", "speeds", "mirrored", "inset", "rotation")

    def __post_init__(self) -> None:
        n = len(self.vectors)
        if any(len(getattr(self, f)) != n for f in self.FIELDS):
            raise ValueError("starts, views, speeds, mirrored, inset and rotation need one entry per window")

    @classmethod
    def empty(cls, duration: float, dim: int, parts: tuple[str, ...] = ("whole",)) -> "ClipWindows":
        return cls(duration=duration, vectors=np.zeros((0, dim), np.float32), starts=np.zeros(0),
                   views=np.zeros(0, np.int64), speeds=np.zeros(0), mirrored=np.zeros(0, bool),
                   inset=np.zeros(0, np.int64), rotation=np.zeros(0, np.int64), parts=parts)

    @classmethod
    def concatenate(cls, parts: list["ClipWindows"], duration: float) -> "ClipWindows":
        return cls(duration=duration, parts=parts[0].parts if parts else ("whole",),
                   portrait=parts[0].portrait if parts else False,
                   **{f: np.concatenate([getattr(p, f) for p in parts]) for f in cls.FIELDS})

    def select(self, rows: np.ndarray) -> "ClipWindows":
        """The windows ``rows`` only."""
        return ClipWindows(duration=self.duration, parts=self.parts, portrait=self.portrait,
                           **{f: getattr(self, f)[rows] for f in self.FIELDS})

    @property
    def edits(self) -> np.ndarray:
        """Number of edits each window's view assumes (speed change, mirroring, inset, rotation)."""
        return (self.speeds != 1.0).astype(np.int64) + self.mirrored + (self.inset > 0) + (self.rotation != 0)


@dataclass(frozen=True)
class Reading:
    """One way of reading a clip: at a playback speed, mirrored or not, whole or one of
    its parts (``inset``: 0 the whole clip, ``k`` its ``k``-th part, see
    :attr:`QueryClip.parts`), turned back by ``rotation`` quarter turns or not."""

    speed: float = 1.0
    mirrored: bool = False
    inset: int = 0
    rotation: int = 0

    @property
    def edits(self) -> int:
        return int(self.speed != 1.0) + int(self.mirrored) + int(self.inset > 0) + int(self.rotation != 0)

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
    inset reading (v2 only) describes a picture-in-picture inset found in the clip,
    scaled up to the working size. Reading ``r`` (in :attr:`readings` order) owns
    views ``r * frames_per_block + phase``. Rotated and inset readings need an
    extractor of grey frames (the kernels); others get speeds and mirroring only.

    ``v2`` readings are described once, as cells on the stored grid (every grid the
    search compares at is pooled from them, :mod:`vsearch.cells`), all phases from
    one pass; mirrored and half-turned readings are permutations of those cells,
    exactly what describing the turned frames gives.
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
        info = source.info
        shown_width = info.width * (1 - (borders[2] + borders[3]) / config.width)
        shown_height = info.height * (1 - (borders[0] + borders[1]) / config.height)
        #: The picture is taller than wide: it may be a portrait reframe of landscape footage.
        self.portrait = shown_height > 1.1 * shown_width
        plain = self._frames.get(Reading())
        first = next(iter(self._frames.values()))
        #: Per analysis frame of the clip: the picture is exactly the one before (held).
        self.still = frozen_frames(first)
        #: The clip is one still picture, whatever its encoding: nothing moves to place it.
        self.still_throughout = is_still(first)
        #: The clip barely moves (a screen recording, a fixed camera on a quiet scene): what
        #: it shows, several videos of one layout or place may show alike.
        self.near_static = motion_level(first) <= NEAR_STATIC_MOTION
        self._still_rate = config.analysis_fps * speeds[0]
        pooled = config.pooled and plain is not None
        #: Cells (of the stored grid) hidden by a still overlay (a logo box) in the clip, or None.
        self.overlay = detect_static_overlay(plain[: fpb * DETECTION_BLOCKS], config.cells) if pooled else None
        #: The parts of the clip read on their own: ``whole``, then what shows other footage
        #: (a picture-in-picture ``inset``; ``left`` and ``right``, or ``top`` and ``bottom``,
        #: of a split screen). Reading ``inset=k`` reads part ``k``.
        self.parts: tuple[str, ...] = ("whole",)
        if inset and plain is not None and "inset" in extractor.edited_readings:
            head = plain[: fpb * DETECTION_BLOCKS]
            found = self._find_parts(head.mean(axis=-1) if head.ndim == 4 else head)  # found on grey pictures
            self.parts += tuple(name for name, _ in found)
            margins = [m for _, m in found]
            if not margins:
                cut = []
            elif any(borders):
                cut = [remove_borders(plain, m, np) for m in margins]
            else:
                cut = self._parts_in_detail(margins, len(plain), timeout)
            for number, frames in enumerate(cut, start=1):
                self._frames[Reading(inset=number)] = frames
        self.readings: list[Reading] = []
        for reading in self._frames:
            self.readings += [reading, replace(reading, mirrored=True)] if mirrored else [reading]
        if rotations and plain is not None and "rotations" in extractor.edited_readings:
            self.readings += [Reading(rotation=turns) for turns in ROTATIONS]
        self._cache: dict[tuple[Reading, tuple[int, int] | None], ClipWindows] = {}
        self._cells: dict[Reading, list[dict]] = {}
        self._frozen: dict[Reading, np.ndarray] = {Reading(speed=speeds[0]): self.still}
        #: ``v2`` readings are described on the stored grid of cells, as the library is;
        #: the search grid and each region's detail grid are pooled from them, as the
        #: library's are (a clip showing a crop is compared cell for cell with it).
        self._grids = (config.cells,) if config.pooled else ()

    @staticmethod
    def _find_parts(head: np.ndarray) -> list[tuple[str, tuple[int, int, int, int]]]:
        """Parts of the clip that show other footage: an inset, and the sides of a split screen."""
        inset = detect_inset(head)
        return ([("inset", inset)] if inset is not None else []) + detect_split(head)

    def _parts_in_detail(self, margins: list[tuple[int, int, int, int]], count: int, timeout: float
                         ) -> list[np.ndarray]:
        """Each part (by its margins) at the working size, cut from the clip decoded
        ``_INSET_DETAIL`` times larger, once for all of them.

        A part is a fraction of the frame: cut out of the working-size picture, a 30 %
        inset would be 38 x 29 pixels scaled up, too blurred to describe like its source.
        Decoded larger, it is cut out at the library's own sampling.
        """
        config, scale = self.config, _INSET_DETAIL
        height, width = config.height * scale, config.width * scale
        source = VideoSource(self.path, width=width, height=height, decoder=config.decoder, timeout=timeout,
                             max_pixels=self.max_pixels)
        cut: list[list[np.ndarray]] = [[] for _ in margins]
        for chunk in source.iter_frames(config.analysis_fps, chunk_frames=64, integrate=True,
                                        pixel_format=self.extractor.pixel_format):
            for number, (top, bottom, left, right) in enumerate(margins):
                inner = chunk[:, top * scale : height - bottom * scale, left * scale : width - right * scale]
                # Box-average down by the whole factor of each axis first (resampling alone would alias).
                n, h, w = inner.shape[:3]
                fy, fx = max(1, h // config.height), max(1, w // config.width)
                inner = inner[:, : h - h % fy, : w - w % fx].astype(np.float32)
                inner = inner.reshape(n, h // fy, fy, w // fx, fx, *inner.shape[3:]).mean(axis=(2, 4))
                cut[number].append(resize_frames(inner, config.height, config.width, np))
        empty = np.zeros((0, config.height, config.width, *((3,) if self.extractor.pixel_format == "rgb24" else ())),
                         np.float32)
        return [(np.concatenate(part) if part else empty)[:count] for part in cut]

    def frames(self, reading: Reading) -> np.ndarray:
        """The analysis frames of an unmirrored reading (turned ones turned on demand)."""
        if reading not in self._frames and reading.rotation:
            self._frames[reading] = rotate_frames(self._frames[replace(reading, rotation=0)], reading.rotation, np)
        return self._frames[reading]

    def frozen_share(self, start: float, end: float) -> float:
        """Share of the clip's seconds ``[start, end)`` whose picture does not change."""
        first, last = int(np.floor(start * self._still_rate)), int(np.ceil(end * self._still_rate))
        span = self.still[max(first, 0) : max(last, 0)]
        return float(span.mean()) if len(span) else 0.0

    def windows(self, readings: list[Reading] | None = None, *, allow_empty: bool = False,
                grid: tuple[int, int] | None = None) -> ClipWindows:
        """Windows of the given readings (all by default), each described once and kept:
        search vectors, or (``v2``) the vectors of the whole clip frame on ``grid``.

        Raises :class:`ClipTooShortError` when there are none, unless ``allow_empty``.
        """
        chosen = self.readings if readings is None else [r for r in self.readings if r in readings]
        grid = (grid or self.config.grid) if self.config.pooled else None
        parts = [self._describe(r, grid) for r in chosen]
        if allow_empty and not parts:
            parts = [replace(ClipWindows.empty(self.duration, self.config.dim, self.parts), portrait=self.portrait)]
        if not allow_empty and self.still_throughout:
            raise VideoError(self.path, "the clip shows one still picture throughout: nothing moves to match")
        if not allow_empty and sum(len(p.vectors) for p in parts) == 0:
            if self.duration >= self.config.window_seconds:  # long enough: its windows were all frozen
                raise VideoError(self.path, "the clip shows a frozen picture throughout: nothing moves to match")
            raise ClipTooShortError(
                self.path,
                f"clip is {self.duration:.2f} s long, shorter than one window ({self.config.window_seconds:g} s)",
            )
        return ClipWindows.concatenate(parts, self.duration)

    def _held(self, reading: Reading) -> np.ndarray:
        """Per analysis frame of an unturned reading: the picture is the one before."""
        if reading not in self._frozen:
            self._frozen[reading] = frozen_frames(self.frames(reading))
        return self._frozen[reading]

    def _cells_of(self, reading: Reading) -> list[dict]:
        """``v2``: per phase, the reading's unfinished cells on every grid (permuted from
        the plain reading's for mirrored and half-turned ones)."""
        if reading not in self._cells:
            if reading.mirrored:
                self._cells[reading] = [{g: cells.mirrored(c) for g, c in phase.items()}
                                        for phase in self._cells_of(reading.unmirrored)]
            elif reading.rotation == 2:
                self._cells[reading] = [{g: cells.half_turned(c) for g, c in phase.items()}
                                        for phase in self._cells_of(replace(reading, rotation=0))]
            else:
                self._cells[reading] = self.extractor.describe_cells(self.frames(reading), self._grids)
        return self._cells[reading]

    def _phase_blocks(self, reading: Reading, grid: tuple[int, int] | None) -> list[np.ndarray]:
        """Per phase, the reading's finished block vectors (search grid unless ``grid``)."""
        config = self.config
        if not config.pooled:
            frames = self.frames(reading.unmirrored)
            if reading.mirrored:
                frames = frames[:, :, ::-1]  # no cell layout to permute: describe the flip
            return [self.device.to_numpy(self.extractor.describe(frames[phase:]))
                    for phase in range(config.frames_per_block)]
        target = grid or config.grid
        return [cells.finish(cells.pool(phase[config.cells], target)) for phase in self._cells_of(reading)]

    def _describe(self, reading: Reading, grid: tuple[int, int] | None = None) -> ClipWindows:
        config, fpb = self.config, self.config.frames_per_block
        first_view = self.readings.index(reading) * fpb
        if (reading, grid) in self._cache:
            return self._cache[reading, grid]
        # Turning or mirroring a picture does not make it move: frozen as the reading it comes from.
        held = self._held(Reading(speed=reading.speed, inset=reading.inset))
        vectors, starts = [], []
        for phase, blocks in enumerate(self._phase_blocks(reading, grid)):
            windows = stack_windows(blocks, config)
            # Windows mostly of a frozen picture carry no evidence: they are left out,
            # and count as missing when a hit is scored (a clip that is mostly a held
            # frame is ambiguous, not a confident match of whatever else holds still).
            frozen = flagged_per_window(held_blocks(held[phase:], fpb), config)
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
            inset=np.full(sum(n), reading.inset, dtype=np.int64),
            rotation=np.full(sum(n), reading.rotation, dtype=np.int64),
            parts=self.parts,
            portrait=self.portrait and reading.rotation == 0 and not reading.inset,
        )
        self._cache[reading, grid] = out
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
            views=np.zeros(n, np.int64), speeds=np.ones(n), mirrored=np.zeros(n, bool), inset=np.zeros(n, np.int64),
            rotation=np.zeros(n, np.int64))
        self.readings: list[Reading] = [Reading()]
        #: No still overlay is looked for, nor how much the clip moves (that needs frames).
        self.overlay = None
        self.near_static = False

    def windows(self, readings: list[Reading] | None = None, *, allow_empty: bool = False,
                grid: tuple[int, int] | None = None) -> ClipWindows:
        """The plain reading's windows (whatever ``readings`` asks for: there is no other;
        features have no grid to pool on)."""
        if len(self._windows.vectors) == 0 and not allow_empty:
            raise ClipTooShortError(self.path, f"features span {self.duration:.2f} s, shorter than one window "
                                               f"({self.config.window_seconds:g} s)")
        return self._windows

    def frozen_share(self, start: float, end: float) -> float:
        """Nothing is known to be frozen in a clip given as features."""
        return 0.0


#: A clip as the query path reads it: decoded (every reading) or given as features (plain only).
Clip = QueryClip | FeatureClip

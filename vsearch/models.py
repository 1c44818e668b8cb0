"""Plain result and record types returned by the public API."""

from __future__ import annotations

import dataclasses
from dataclasses import InitVar, dataclass, field
from typing import Any, Sequence


#: Fields that hold seconds: JSON gives them to the millisecond (a frame lasts 17-42 ms).
_SECONDS = frozenset({"start", "end", "query_start", "query_end", "duration", "duration_s", "damaged"})

#: Fields that hold shares of a frame: JSON gives them to 1e-3.
_SHARES = frozenset({"crop"})


def _rounded(key: str, value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3) if key in _SECONDS | _SHARES else round(value, 4)
    if isinstance(value, (list, tuple)) and key in _SECONDS | _SHARES:
        return type(value)(_rounded(key, v) for v in value)
    return value


def _as_dict(obj: Any) -> dict[str, Any]:
    """The record as JSON-ready values: seconds to the millisecond, other floats to 1e-4."""
    return {k: _rounded(k, v) for k, v in dataclasses.asdict(obj).items()}


def _rounded_repr(obj: Any) -> str:
    """``Type(field=value, ...)`` with values rounded as :func:`_as_dict` does (the
    fields themselves keep full precision)."""
    fields = ", ".join(f"{f.name}={_rounded(f.name, getattr(obj, f.name))!r}" for f in dataclasses.fields(obj))
    return f"{type(obj).__name__}({fields})"


@dataclass(frozen=True, kw_only=True)
class VideoRecord:
    """One indexed video, as stored in the metadata store.

    ``duration_s`` is how far the video decodes, on the player's timeline. A
    *partial* video is one a player plays only in part: ``damaged`` lists the spans
    (start, end seconds) without pictures, a missing tail included, and ``reason``
    says what was lost; no window crosses a damaged span, so ``windows`` counts the
    indexed ones.
    """

    id: int
    path: str
    hash: str
    duration_s: float
    fps: float
    width: int
    height: int
    frames: int
    blocks: int
    windows: int
    added: str
    partial: bool = False
    damaged: tuple[tuple[float, float], ...] = ()
    reason: str = ""

    def __post_init__(self) -> None:
        if self.id < 0 or self.blocks < 0 or self.windows < 0 or self.duration_s < 0:
            raise ValueError(f"invalid video record for {self.path!r}")
        object.__setattr__(self, "damaged", tuple((float(a), float(b)) for a, b in self.damaged))
        if self.partial != bool(self.damaged):
            raise ValueError(f"invalid video record for {self.path!r}: partial without damaged spans, or the reverse")

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True, kw_only=True, repr=False)
class Hit:
    """A library segment matching (part of) a query clip.

    ``start``/``end`` are seconds in the library video, ``query_start``/``query_end``
    seconds in the clip. ``score`` is in [0, 1], higher is more similar: the share of
    the clip explained by this segment weighted by window similarity. ``distance``
    is the smallest L2 distance between a query window and a window of the segment.
    ``speed`` is the clip's playback rate relative to the library (1.1: sped up by
    10 %), fitted along the clip to 0.01 where its footage moves enough to measure
    it, else the nearest speed searched. ``mirrored`` says the clip is flipped,
    ``inset`` that the library's footage fills only part of the clip, and ``part``
    which: a picture-in-picture box (``inset``) or one side of a split screen
    (``left``, ``right``, ``top``, ``bottom``); ``whole`` otherwise. ``rotation`` says
    by how many degrees (0, 90, 180, 270) the clip is turned clockwise. ``crop`` is the
    part of the library video's frame the clip shows, (top, bottom, left, right) as
    shares of its height and width: ``(0, 1, 0, 1)`` all of it, ``(0.25, 1, 0, 0.75)``
    a crop of its bottom-left three quarters, ``(0, 1, 0.3, 0.63)`` a portrait reframe
    of landscape footage (to about 1/16 of the frame). ``ambiguous`` says that the
    video fits but other places in it, a window or more away, fit about as well (still
    or repetitive footage): the start is one of several, and the score is capped at
    0.9; or that the clip barely moves and another video fits it about as well (one
    desktop layout, one studio): the score is capped at 0.84, below the default
    threshold.
    """

    video: str
    video_id: int
    start: float
    end: float
    query_start: float
    query_end: float
    score: float
    distance: float
    speed: float = 1.0
    mirrored: bool = False
    inset: bool = False
    rotation: int = 0
    part: str = "whole"
    crop: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 1.0)
    ambiguous: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract of ``vsearch query --json`` (seconds to the millisecond, scores to 1e-4)."""
        return _as_dict(self)

    def __repr__(self) -> str:
        return _rounded_repr(self)


@dataclass(frozen=True, kw_only=True)
class WindowScores:
    """How one hit's clip windows score (0-1, as hits are scored) against the library
    windows the hit aligns them with, by the clip second each window starts at: the
    curve the visual report plots under the hit."""

    times: tuple[float, ...] = ()
    scores: tuple[float, ...] = ()


@dataclass(frozen=True, kw_only=True, repr=False)
class QueryResult:
    """Hits for one query clip, best first.

    ``window_scores`` holds one :class:`WindowScores` per hit, in the same order
    (none for a result made by hand). They are not part of the JSON contract
    (:meth:`to_dict`, the server's schema), hence an init-only value rather than a
    field; ``dataclasses.replace`` keeps them.
    """

    query: str
    duration: float
    hits: list[Hit] = field(default_factory=list)
    window_scores: InitVar[Sequence[WindowScores]] = ()

    def __post_init__(self, window_scores: Sequence[WindowScores]) -> None:
        object.__setattr__(self, "window_scores", tuple(window_scores))

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "duration": round(self.duration, 3), "hits": [h.to_dict() for h in self.hits]}

    def __repr__(self) -> str:
        return _rounded_repr(self)


@dataclass(frozen=True, kw_only=True)
class IngestResult:
    """What happened to one input file during ``add``.

    ``status`` is ``added``, ``replaced`` (same path, new content), ``partial``
    (added or replaced, but only part of it plays: ``reason`` says what was lost),
    ``moved`` (same content, new path), ``skipped`` (already indexed) or ``failed``
    (see ``reason``).
    """

    path: str
    status: str
    video_id: int | None = None
    duration_s: float = 0.0
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True, kw_only=True)
class IndexStats:
    """Summary of an index, as shown by ``vsearch stats``."""

    path: str
    videos: int
    vectors: int
    duration_s: float
    partial_videos: int
    dim: int
    index_type: str
    bytes: int
    config: dict[str, Any]
    created: str
    updated: str

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True, kw_only=True)
class LibraryStats:
    """A sharded library (``vsearch stats`` with several indexes): each shard's stats and the totals."""

    shards: list[IndexStats]
    videos: int
    vectors: int
    duration_s: float
    partial_videos: int
    bytes: int

    @classmethod
    def of(cls, shards: list[IndexStats]) -> "LibraryStats":
        return cls(shards=shards, videos=sum(s.videos for s in shards), vectors=sum(s.vectors for s in shards),
                   duration_s=round(sum(s.duration_s for s in shards), 3),
                   partial_videos=sum(s.partial_videos for s in shards), bytes=sum(s.bytes for s in shards))

    def to_dict(self) -> dict[str, Any]:
        return {**_as_dict(dataclasses.replace(self, shards=[])), "shards": [s.to_dict() for s in self.shards]}


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    """Outcome of a consistency check between the metadata and vector stores.

    ``problems`` are the vector file's (derived data: the metadata store restores it,
    which any open does), ``damage`` the metadata store's own (beyond automatic
    repair). ``repaired`` lists the problems a ``verify(repair=True)`` mended.
    """

    ok: bool
    videos: int
    vectors: int
    partial_videos: int = 0
    problems: list[str] = field(default_factory=list)
    damage: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``consistent``, ``repairable`` (only the vector file is out of step) or ``damaged``."""
        return "damaged" if self.damage else "repairable" if self.problems else "consistent"

    def to_dict(self) -> dict[str, Any]:
        return {**_as_dict(self), "status": self.status}

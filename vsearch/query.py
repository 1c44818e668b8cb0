"""The query path, top to bottom: readings -> neighbours -> votes -> segments -> alignment -> hits.

:func:`search_clip` is the whole pipeline, one named stage per function:

1. **readings** (:func:`reading_stages`): the clip is read plainly first; only if
   that finds no near-exact hit are the cheap edited readings searched (mirrored,
   re-timed by +-10 %, a picture-in-picture inset), and only if those find nothing
   confident the far ones (turned by quarter turns, re-timed by -20 / +25 %). Each
   reading is described at every sub-block phase (``vsearch.embedding.QueryClip``).
2. **neighbours** (:func:`nearest_windows`): each query window asks the vector store
   for its nearest library windows.
3. **votes** (:func:`vote`): each neighbour votes for "video v, offset = library
   time - speed x clip time". True matches pile up on one offset, chance matches
   scatter. Votes are grouped per video around the strongest offsets (Hough-style,
   tolerant to half a block), each group becomes a candidate segment, scored by
   the best view's ``EVIDENCE_SECONDS`` worth of agreeing windows.
4. **alignment** (:func:`refine`, :func:`fit_rate`): each reported segment is
   aligned against the video's stored windows: offset to a fraction of an analysis
   frame, speed among the readings, then the playback rate fitted along the clip.
5. **duplicates** (:func:`is_duplicate`): a weaker segment of the same video that
   claims the same clip seconds is the best one's echo (self-similar footage), not
   a second answer.
6. **overlay** (:func:`rescore_overlaid`): with nothing confident, the candidates
   are scored again without the grid cells a still overlay found in the clip (a
   logo box) covers, and without the usual places of burnt-in additions (bottom or
   top row: subtitles, tickers; a corner quarter: a logo), at a small cost.
7. **frozen ends** (:func:`cover_frozen_ends`) and the final **threshold**: the
   user's ``min_score`` only filters (segments are found down to ``_FLOOR``, or
   to ``min_score`` if lower); nothing before it depends on it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from .config import IndexConfig
from .search.clip import ClipWindows, FeatureClip, QueryClip, Reading
from .models import Hit, VideoRecord
from .windows import split_ids

#: A clip as the query path reads it: decoded (every reading) or given as features (plain only).
Clip = QueryClip | FeatureClip

#: Seconds of consistent matching that count as full evidence: a longer clip need
#: not match along its whole length (it may contain other footage too).
EVIDENCE_SECONDS = 5.0

#: Default minimum score of a hit (calibrated on real footage, see README).
DEFAULT_MIN_SCORE = 0.85

#: Segments are found and aligned down to this score; the threshold filters after.
_FLOOR = 0.5

#: Neighbours fetched per query window before voting.
NEIGHBOURS_PER_WINDOW = 32

#: A plain-reading hit this good ends the query: the edited readings are not searched.
_NEAR_EXACT_SCORE = 0.95

#: After the cheap edited readings, a hit this good ends the query (the far ones,
#: rotations and large speed changes, are not searched).
_CONFIDENT_SCORE = DEFAULT_MIN_SCORE

#: Speeds within this of 1 are cheap edits (searched before the far ones).
_NEAR_SPEED = 0.15

#: Without a confident hit, this many candidate segments are scored again without
#: the cells an overlay may cover (:func:`rescore_overlaid`).
_OVERLAY_CANDIDATES = 10

#: A guessed overlay place (not one detected as still) must gain this to count.
_GUESSED_MASK_MARGIN = 0.02

#: Searching with a band masked out (:func:`masked_candidates`): candidates kept per
#: mask, and their floor (low: the library side is not masked in that search).
_MASKED_CANDIDATES = 3
_MASKED_FLOOR = 0.2

#: Videos aligned per query at least (more when k is large), by vote mass.
_MIN_CANDIDATES = 50

#: Score a view assuming an edit (speed, mirror, inset, rotation) must gain, per edit, to win.
_EDIT_MARGIN = 0.01

#: Clip seconds, and offset radius (seconds), of the final alignment of a hit.
_REFINE_SECONDS = 6.0
_REFINE_RADIUS = 1.0

#: A mean window similarity this high at the hit's own speed settles its alignment
#: (the neighbouring speeds are not tried; drift still shows in the rate fit).
_ALIGNED = 0.9

#: Hits scoring below this are aligned at their own speed only.
_SPEED_SEARCH_SCORE = 0.7

#: Segments of one video whose library spans overlap more than this are duplicates.
_NMS_IOU = 0.5

#: A segment of the same video as a better one, claiming the same clip seconds
#: (query-span overlap above ``_NMS_IOU``), is reported only if it scores within
#: this of the better one: a real repeat of the footage matches as well.
_DUPLICATE_MARGIN = 0.03

#: Whole-clip alignment (:func:`_settle_globally`): clip seconds compared at every
#: offset of the video; another offset must align this much better to move the hit;
#: an offset more than a window away aligning within ``_AMBIGUITY`` of the hit's
#: makes it ambiguous (``Hit.ambiguous``), and its score is capped at
#: ``_AMBIGUOUS_SCORE``: still shown, but below any distinct hit above it.
_GLOBAL_SECONDS = 30.0
_RELOCATE_MARGIN = 0.01
_AMBIGUITY = 0.005
_AMBIGUOUS_SCORE = 0.9

#: Rate fitting: clip chunks of this many seconds each give a local offset.
_RATE_CHUNK_SECONDS = 2.0
#: ...each needs a peak this much above its neighbourhood to count...
_RATE_MIN_SHARPNESS = 0.02
#: ...and the fitted rate may differ from the reading's speed by at most this (each
#: reading covers +-5 %; beyond, a reading at another speed fits better).
_RATE_MAX_SHIFT = 0.049


def similarity(sq_dist: np.ndarray, sq_norms: np.ndarray) -> np.ndarray:
    """Map squared L2 distances to [0, 1]: 1 - d^2 / (2 |q|^2), clipped.

    For unit-norm vectors this is the cosine similarity clipped at 0.
    """
    return np.clip(1.0 - sq_dist / (2.0 * np.maximum(sq_norms, 1e-12)), 0.0, 1.0)


def _windows_per_phase(duration: float, config: IndexConfig) -> np.ndarray:
    """Number of query windows each phase yields for a clip of ``duration`` seconds."""
    fpb = config.frames_per_block
    frames = int(np.floor(duration * config.analysis_fps + 1e-6))
    return np.array([max((frames - p) // fpb - config.window_blocks + 1, 0) for p in range(fpb)])


@dataclass(frozen=True)
class Library:
    """What the query path reads from an index: its settings, its videos by id, a
    nearest-neighbour search over its windows (``search(vectors, n)`` -> squared
    distances and ids), and one video's window vectors by window number."""

    config: IndexConfig
    videos: dict[int, VideoRecord]
    search: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
    windows: Callable[[int], np.ndarray]


def search_clip(clip: Clip, library: Library, *, k: int, min_score: float) -> list[Hit]:
    """The library segments ``clip`` comes from, best first: at most ``k``, scoring >= ``min_score``."""
    config = library.config
    searched = _Searched.empty(clip.duration, config.dim)
    hits: list[Hit] = []
    for number, (readings, stop_at) in enumerate(reading_stages(clip)):
        if hits and hits[0].score >= stop_at:
            break
        # The first stage must yield windows (or say why not: too short, frozen throughout).
        windows = clip.windows(readings, allow_empty=number > 0)
        if len(windows.vectors) == 0:
            continue
        searched = searched.extend(windows, *nearest_windows(windows, library))
        hits = find_segments(searched, clip, library, k=k, floor=min(_FLOOR, min_score))
    if not (hits and hits[0].score >= _CONFIDENT_SCORE):
        candidates = find_segments(searched, clip, library, k=max(k, _OVERLAY_CANDIDATES), floor=min(_FLOOR, min_score))
        hits = rescore_overlaid(candidates + masked_candidates(clip, library), searched.windows, library, clip.overlay)
    hits = [cover_frozen_ends(h, clip.frozen_share, clip.duration, library.videos[h.video_id]) for h in hits]
    return [h for h in hits if h.score >= min_score][:k]


def reading_stages(clip: Clip) -> list[tuple[list[Reading], float]]:
    """The clip's readings in the order they are searched, each stage with the best
    score before it that makes it unnecessary: plain; cheap edits; far edits."""
    plain = [r for r in clip.readings if r.edits == 0] or clip.readings[:1]
    far = [r for r in clip.readings if r.rotation or abs(r.speed - 1.0) > _NEAR_SPEED + 1e-9]
    near = [r for r in clip.readings if r not in plain and r not in far]
    return [(plain, np.inf), (near, _NEAR_EXACT_SCORE), (far, _CONFIDENT_SCORE)]


@dataclass(frozen=True)
class _Searched:
    """Query windows searched so far, with their neighbours."""

    windows: ClipWindows
    sq_dist: np.ndarray
    ids: np.ndarray

    @classmethod
    def empty(cls, duration: float, dim: int) -> "_Searched":
        return cls(ClipWindows.empty(duration, dim), np.zeros((0, NEIGHBOURS_PER_WINDOW), np.float32),
                   np.zeros((0, NEIGHBOURS_PER_WINDOW), np.int64))

    def extend(self, windows: ClipWindows, sq_dist: np.ndarray, ids: np.ndarray) -> "_Searched":
        if len(self.ids) == 0:  # a small library gives fewer neighbours than asked for
            return _Searched(windows, sq_dist.astype(np.float32, copy=False), ids.astype(np.int64, copy=False))
        return _Searched(ClipWindows.concatenate([self.windows, windows], windows.duration),
                         np.concatenate([self.sq_dist, sq_dist.astype(np.float32, copy=False)]),
                         np.concatenate([self.ids, ids.astype(np.int64, copy=False)]))


def nearest_windows(windows: ClipWindows, library: Library) -> tuple[np.ndarray, np.ndarray]:
    """Squared distances and ids of each query window's nearest library windows."""
    return library.search(windows.vectors, NEIGHBOURS_PER_WINDOW)


def find_segments(
    searched: "_Searched", clip: Clip, library: Library, *, k: int, floor: float, refined: bool = True
) -> list[Hit]:
    """Vote, align the best candidate segments (unless not ``refined``) and drop their
    echoes: up to ``k`` hits >= ``floor``."""
    aligner = Aligner(
        library=library.windows,
        readings=lambda reading: clip.windows([reading], allow_empty=True),
        speeds=tuple(sorted({r.speed for r in clip.readings if not r.inset and not r.rotation})),
    )
    return aggregate(searched.windows, searched.sq_dist, searched.ids, library.videos, library.config, k=k,
                     min_score=floor, aligner=aligner if refined else None)


@dataclass
class _Votes:
    row: np.ndarray
    bin: np.ndarray
    offset: np.ndarray
    sim: np.ndarray
    sq_dist: np.ndarray


def vote(
    clip: ClipWindows, sq_dist: np.ndarray, ids: np.ndarray, videos: dict[int, VideoRecord], config: IndexConfig,
    *, candidates: int,
) -> list["_Segment"]:
    """Candidate segments from per-window neighbours, best first (see the module docstring).

    Only the ``candidates`` videos with the most vote mass are grouped (a big library
    puts a few chance neighbours in hundreds of videos).
    """
    if ids.size == 0:
        return []
    sq_norms = np.einsum("ij,ij->i", clip.vectors, clip.vectors)
    sims = similarity(sq_dist, sq_norms[:, None])
    video_ids, window_idx = split_ids(ids)
    rows = np.broadcast_to(np.arange(len(ids))[:, None], ids.shape)
    # Library time of the clip's first frame, as each vote sees it (speed-aware).
    offsets = window_idx * config.block_seconds - (clip.starts * clip.speeds)[:, None]
    live = (ids >= 0) & (sims > 0) & np.isin(video_ids, list(videos))

    # Full evidence = every window of a view matched, up to EVIDENCE_SECONDS of clip.
    fpb = config.frames_per_block
    counts = np.bincount(clip.views, minlength=fpb)
    horizon = np.resize(_windows_per_phase(EVIDENCE_SECONDS, config), len(counts))  # view v has phase v % fpb
    expected = np.maximum(np.minimum(counts, horizon), 1)
    view_edits = np.zeros(len(counts), dtype=np.int64)
    view_edits[clip.views] = clip.edits
    present, inverse = np.unique(video_ids[live], return_inverse=True)
    mass = np.bincount(inverse, weights=sims[live])
    segments: list[_Segment] = []
    for video_id in present[np.argsort(-mass, kind="stable")[:candidates]]:
        mask = live & (video_ids == video_id)
        votes = _Votes(
            row=rows[mask],
            bin=np.rint(offsets[mask] / config.frame_step).astype(np.int64),
            offset=offsets[mask],
            sim=sims[mask],
            sq_dist=sq_dist[mask],
        )
        segments += _segments_of_video(votes, clip, videos[int(video_id)], config, expected, view_edits)
    segments.sort(key=lambda s: (-s.hit.score, s.hit.distance))
    return segments


def aggregate(
    clip: ClipWindows,
    sq_dist: np.ndarray,
    ids: np.ndarray,
    videos: dict[int, VideoRecord],
    config: IndexConfig,
    *,
    k: int,
    min_score: float,
    aligner: Aligner | None = None,
) -> list[Hit]:
    """Turn per-window neighbours into the top ``k`` segment hits with score >= ``min_score``.

    With an ``aligner``, each hit's start and speed are refined by aligning the clip
    with the video's stored windows (see :func:`refine`). A segment that repeats a
    better one (:func:`is_duplicate`) is dropped.
    """
    kept: list[Hit] = []
    for segment in vote(clip, sq_dist, ids, videos, config, candidates=max(10 * k, _MIN_CANDIDATES)):
        if segment.hit.score < min_score:
            break
        hit = segment.hit
        if any(is_duplicate(hit, better) for better in kept):
            continue  # an echo already, before it is aligned (aligning is the costly part)
        if aligner is not None:
            hit = refine(hit, segment.offset, aligner, config, videos[hit.video_id])
        if any(is_duplicate(hit, better) for better in kept):
            continue
        kept.append(hit)
        if len(kept) == k:
            break
    # Alignment may have capped an ambiguous hit's score below a later one's.
    return sorted(kept, key=lambda h: (-h.score, h.distance))


def is_duplicate(hit: Hit, better: Hit) -> bool:
    """Whether ``hit`` only repeats ``better`` (which scores at least as well).

    The same alignment (library spans overlapping), or another place in the same
    video claiming the same clip seconds without matching about as well: still or
    self-similar footage matches many offsets nearly as well as the true one.
    """
    if hit.video_id != better.video_id:
        return False
    if _iou(hit, better) > _NMS_IOU:
        return True
    same_clip_seconds = _span_iou((hit.query_start, hit.query_end), (better.query_start, better.query_end)) > _NMS_IOU
    return same_clip_seconds and hit.score < better.score - _DUPLICATE_MARGIN


@dataclass(frozen=True)
class Aligner:
    """What refining hits needs: a video's stored windows (``library(video_id)``), the
    clip's windows in one reading (``readings(reading)``, described once and kept),
    and the speeds there are readings for."""

    library: Callable[[int], np.ndarray]
    readings: Callable[[Reading], ClipWindows]
    speeds: tuple[float, ...]


@dataclass
class _Segment:
    hit: Hit
    offset: float


def _segments_of_video(
    votes: _Votes, clip: ClipWindows, record: VideoRecord, config: IndexConfig, expected: np.ndarray,
    view_edits: np.ndarray,
) -> list[_Segment]:
    # Votes of one true match spread over +-half a block (phases that straddle the
    # library's block grid), so offsets within that tolerance are one alignment.
    tolerance = int(np.ceil(config.frames_per_block / 2))
    remaining = np.ones(len(votes.row), dtype=bool)
    segments = []
    for _ in range(8):  # at most a few distinct alignments per video are worth reporting
        if not remaining.any():
            break
        centre = _strongest_centre(votes, remaining, tolerance)
        support = remaining & (np.abs(votes.bin - centre) <= tolerance)
        remaining &= ~support
        best_idx, best_sims = _best_per_row(votes, support)
        view, score = _best_view(clip.views[votes.row[best_idx]], best_sims, expected, view_edits)
        if score <= 0:
            continue
        segments.append(_make_segment(votes, best_idx, clip, record, config, view, score))
    return segments


def _strongest_centre(votes: _Votes, remaining: np.ndarray, tolerance: int) -> int:
    """The offset bin whose votes within ``tolerance`` agree best: the most similar vote
    of each query row, summed (the smallest such bin on a tie).

    Every bin is a candidate; a bin's summed vote similarity bounds its score from
    above, so bins are tried by that bound, strongest first, until no bound can beat
    the best score found (exact, and a few tries instead of one per bin).
    """
    idx = np.flatnonzero(remaining)
    order = np.argsort(votes.bin[idx], kind="stable")
    bins = votes.bin[idx][order]
    total = np.concatenate([[0.0], np.cumsum(votes.sim[idx][order])])
    centres = np.unique(bins)
    bound = total[np.searchsorted(bins, centres + tolerance, "right")] - total[np.searchsorted(bins, centres - tolerance)]
    best, best_score = int(centres[0]), -np.inf
    for i in np.argsort(-bound, kind="stable"):
        if bound[i] < best_score - 1e-9:
            break
        score = float(_best_per_row(votes, remaining & (np.abs(votes.bin - centres[i]) <= tolerance))[1].sum())
        if score > best_score + 1e-12 or (abs(score - best_score) <= 1e-12 and centres[i] < best):
            best, best_score = int(centres[i]), score
    return best


def _best_per_row(votes: _Votes, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the most similar vote of each query row within ``mask``, and its similarity."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return idx, np.zeros(0)
    order = idx[np.lexsort((-votes.sim[idx], votes.row[idx]))]
    first = np.ones(len(order), dtype=bool)
    first[1:] = votes.row[order][1:] != votes.row[order][:-1]
    best = order[first]
    return best, votes.sim[best]


def _best_view(
    views: np.ndarray, sims: np.ndarray, expected: np.ndarray, view_edits: np.ndarray
) -> tuple[int, float]:
    """The view whose windows agree best, and the segment score it gives.

    One phase always lies within half an analysis frame of the library's block
    grid (and one speed near the clip's true speed); that view's windows are the
    ones that should match, so the score is the summed similarity of its windows
    over the number it should have matched (its strongest ``expected`` windows:
    a long clip needs only EVIDENCE_SECONDS). A view that assumes an edit (speed
    change, mirroring, inset) must beat the plain reading by ``_EDIT_MARGIN`` per
    edit: still or slow footage matches at any speed, and would otherwise be
    reported re-timed, at a drifting offset.
    """
    best, best_score, best_rank = 0, 0.0, -np.inf
    for view in np.unique(views):
        mine = np.sort(sims[views == view])[::-1][: expected[view]]
        score = float(mine.sum() / expected[view])
        rank = score - _EDIT_MARGIN * view_edits[view]
        if rank > best_rank:
            best, best_score, best_rank = int(view), score, rank
    return best, min(best_score, 1.0)


def _make_segment(
    votes: _Votes, best: np.ndarray, clip: ClipWindows, record: VideoRecord, config: IndexConfig,
    view: int, score: float,
) -> _Segment:
    rows = votes.row[best]
    # The best view gives the offset, exact to about half an analysis frame; read at
    # the clip's start (first windows), so a clip whose speed is between the views'
    # speeds, and whose offset drifts along it, still gets the right start.
    in_view = np.flatnonzero(clip.views[rows] == view)
    first = in_view[np.argsort(clip.starts[rows[in_view]], kind="stable")[:3]]
    offset = float(np.median(votes.offset[best][first]))
    row = rows[in_view[0]]
    speed = float(clip.speeds[row])
    query_start = float(clip.starts[rows].min())
    query_end = float(min(clip.starts[rows].max() + config.window_seconds / speed, clip.duration))
    start = max(offset + query_start * speed, 0.0)
    end = min(offset + query_end * speed, record.duration_s)
    hit = Hit(
        video=record.path,
        video_id=record.id,
        start=start,
        end=max(end, start),
        query_start=query_start,
        query_end=query_end,
        score=score,
        distance=float(np.sqrt(max(float(votes.sq_dist[best].min()), 0.0))),
        speed=speed,
        mirrored=bool(clip.mirrored[row]),
        inset=bool(clip.inset[row]),
        rotation=int(clip.rotation[row]) * 90,
    )
    return _Segment(hit=hit, offset=offset)


def _reading_of(hit: Hit, speed: float | None = None) -> Reading:
    return Reading(speed=hit.speed if speed is None else speed, mirrored=hit.mirrored, inset=hit.inset,
                   rotation=hit.rotation // 90)


def _rows_of(clip: ClipWindows, reading: Reading, start: float, end: float) -> np.ndarray:
    """Windows of ``reading`` starting within clip seconds ``[start, end]``."""
    return np.flatnonzero(
        (clip.mirrored == reading.mirrored) & (clip.inset == reading.inset) & (clip.speeds == reading.speed)
        & (clip.rotation == reading.rotation) & (clip.starts >= start - 1e-9) & (clip.starts <= end + 1e-9)
    )


def refine(hit: Hit, offset: float, aligner: Aligner, config: IndexConfig, record: VideoRecord) -> Hit:
    """``hit`` at the offset and playback rate near the voted ones where the clip aligns best.

    Voting reads the offset at the clip's first windows, which is ambiguous when they
    show still or repetitive footage (any nearby offset matches), and finds the speed
    only among the views that were searched. Here the windows of the hit's reading,
    over ``_REFINE_SECONDS`` of clip from the hit's start, are compared with the
    library windows they land on, for each offset within ``_REFINE_RADIUS`` s on the
    analysis-frame grid: a cut or a movement anywhere in that span pins the
    alignment. Unless that alignment is good (``_ALIGNED``), the readings at the
    neighbouring speeds are tried too (not for rotated or inset readings, nor weak
    hits), and one must beat the plain speed by ``_EDIT_MARGIN`` to win. Ties keep
    the voted offset. Then the whole clip is placed on the whole video
    (:func:`_settle_globally`: moved, or marked ambiguous with its score capped) and
    :func:`fit_rate` measures the playback rate along it; a rate beyond the
    reading's +-5 % sends the hit to the reading nearest to it.
    """
    library = aligner.library(hit.video_id)
    if len(library) == 0:
        return hit
    best = (-np.inf, offset, hit.speed)
    # Neighbouring speeds only (a rate further off shows as drift, below), and only
    # for hits worth it: a weak hit's speed changes no score.
    other_speeds = [] if hit.inset or hit.rotation or hit.score < _SPEED_SEARCH_SCORE else [
        s for s in aligner.speeds if s != hit.speed and abs(s - hit.speed) <= _NEAR_SPEED + 1e-9]
    for speed in [hit.speed] + other_speeds:
        found = _align_locally(hit, speed, offset, aligner, library, config)
        if found is None:
            continue
        top, candidate = found
        if top - _EDIT_MARGIN * (speed != 1.0) > best[0] + 1e-9:
            best = (top - _EDIT_MARGIN * (speed != 1.0), candidate, float(speed))
        if speed == hit.speed and top >= _ALIGNED:
            break
    _, offset, speed = best
    offset, distinct, fitted = _place(hit, speed, offset, aligner, library, config)
    if fitted is not None and abs(fitted[0] - speed) > _RATE_MAX_SHIFT and not (hit.inset or hit.rotation):
        # The clip drifts off this reading (a still-ish clip matched well at the wrong
        # speed): read it at the searched speed nearest to the drift's rate instead.
        nearest = min(aligner.speeds, key=lambda s: abs(s - fitted[0]))
        found = _align_locally(hit, nearest, offset, aligner, library, config) if nearest != speed else None
        if found is not None:
            moved = _place(hit, nearest, found[1], aligner, library, config)
            if moved[2] is not None and abs(moved[2][0] - nearest) <= _RATE_MAX_SHIFT:
                speed, (offset, distinct, fitted) = nearest, moved
    rate = speed
    if fitted is not None and abs(fitted[0] - speed) <= _RATE_MAX_SHIFT:
        rate, offset = fitted
    start = min(max(offset + hit.query_start * rate, 0.0), record.duration_s)
    end = min(max(offset + hit.query_end * rate, start), record.duration_s)
    if distinct:
        return replace(hit, start=start, end=end, speed=rate)
    return replace(hit, start=start, end=end, speed=rate, score=min(hit.score, _AMBIGUOUS_SCORE), ambiguous=True)


def _align_locally(
    hit: Hit, speed: float, offset: float, aligner: Aligner, library: np.ndarray, config: IndexConfig
) -> tuple[float, float] | None:
    """Best mean similarity of the hit's reading at ``speed`` within ``_REFINE_RADIUS`` of
    ``offset``, over ``_REFINE_SECONDS`` of clip, and the offset giving it (ties: nearest)."""
    steps = np.arange(-_REFINE_RADIUS, _REFINE_RADIUS + 1e-9, config.frame_step)
    reading = _reading_of(hit, speed)
    clip = aligner.readings(reading)
    rows = _rows_of(clip, reading, hit.query_start, hit.query_start + _REFINE_SECONDS)
    if len(rows) == 0:
        return None
    sims = _alignment(clip, rows, offset + steps, library, config)
    if not np.isfinite(sims).any():
        return None
    tied = np.flatnonzero(sims >= sims.max() - 1e-6)
    peak = int(tied[np.argmin(np.abs(steps[tied]))])
    return float(sims.max()), float(offset + steps[peak] + _sub_step(sims, peak) * config.frame_step)


def _place(
    hit: Hit, speed: float, offset: float, aligner: Aligner, library: np.ndarray, config: IndexConfig
) -> tuple[float, bool, tuple[float, float] | None]:
    """The whole clip's reading at ``speed`` placed on the video: (offset, distinct, fitted rate)."""
    reading = _reading_of(hit, speed)
    clip = aligner.readings(reading)
    rows = _rows_of(clip, reading, hit.query_start, hit.query_end)
    offset, distinct = _settle_globally(clip, rows, offset, library, config)
    return offset, distinct, fit_rate(clip, rows, offset, library, config, max_shift=0.5)


def _settle_globally(
    clip: ClipWindows, rows: np.ndarray, offset: float, library: np.ndarray, config: IndexConfig
) -> tuple[float, bool]:
    """The offset where the whole clip aligns best with the video, and whether it is distinct.

    Voting and :func:`refine` look near the voted offset with the clip's first
    seconds; in still or self-similar footage (a fixed camera on a quiet scene) the
    vote can land on the wrong stretch of the right video. Here every window of the
    reading (up to ``_GLOBAL_SECONDS``) is compared at every offset of the video
    (:func:`alignment_curve`): if another offset aligns better by ``_RELOCATE_MARGIN``,
    the hit moves there. The alignment is *distinct* unless an offset more than a
    window away aligns within ``_AMBIGUITY`` of it: then any offset would do, and the
    hit's score is capped (ambiguous, not confidently placed).
    """
    rows = rows[clip.starts[rows] <= clip.starts[rows].min() + _GLOBAL_SECONDS] if len(rows) else rows
    offsets, curve = alignment_curve(clip, rows, library, config)
    if not np.isfinite(curve).any():
        return offset, True
    near = np.isfinite(curve) & (np.abs(offsets - offset) <= config.frame_step / 2 + 1e-9)
    here = float(curve[near].max()) if near.any() else -np.inf
    peak = int(np.argmax(curve))
    if curve[peak] > here + _RELOCATE_MARGIN:
        offset = float(offsets[peak] + _sub_step(curve, peak) * config.frame_step)
        here = float(curve[peak])
    elsewhere = np.isfinite(curve) & (np.abs(offsets - offset) > config.window_seconds)
    distinct = not elsewhere.any() or float(curve[elsewhere].max()) < here - _AMBIGUITY
    return offset, distinct


def alignment_curve(
    clip: ClipWindows, rows: np.ndarray, library: np.ndarray, config: IndexConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Mean similarity of windows ``rows`` to the library windows they land on, at every
    offset of the video on the analysis-frame grid: ``(offsets in seconds, curve)``.

    Offsets where fewer than half of the windows that could land there do land
    (the clip hangs over the video's ends) are ``-inf``. One matrix product per
    call: a few milliseconds for a 10 s clip against an hour of video.
    """
    fpb = config.frames_per_block
    if len(rows) == 0 or len(library) == 0:
        return np.zeros(0), np.zeros(0)
    # Where each window starts, in analysis frames of library time after the clip's start.
    position = np.rint(clip.starts[rows] * clip.speeds[rows] / config.frame_step).astype(np.int64)
    vectors = clip.vectors[rows].astype(np.float32)
    q2 = np.einsum("ij,ij->i", vectors, vectors)
    l2 = np.einsum("ij,ij->i", library, library)
    sq_dist = q2[:, None] + l2[None, :] - 2.0 * (vectors @ library.T)
    sims = similarity(sq_dist, q2[:, None])
    sims[:, l2 == 0] = 0.0  # windows not indexed (damaged spans) match nothing
    # Window i lands on block b at offset b * fpb - position[i] (frames).
    low = -int(position.max())
    size = (len(library) - 1) * fpb - int(position.min()) - low + 1
    total, count = np.zeros(size), np.zeros(size)
    blocks = np.arange(len(library)) * fpb
    for i in range(len(rows)):
        at = blocks - position[i] - low
        total[at] += sims[i]
        count[at] += 1
    offsets = (np.arange(size) + low) * config.frame_step
    # Windows of one phase land together; each offset is judged against its phase's count.
    phase_size = np.bincount(position % fpb, minlength=fpb)
    expected = phase_size[(-(np.arange(size) + low)) % fpb]
    curve = np.where((count >= np.maximum(0.5 * expected, 1)) & (expected > 0), total / np.maximum(count, 1), -np.inf)
    return offsets, curve


def fit_rate(
    clip: ClipWindows, rows: np.ndarray, offset: float, library: np.ndarray, config: IndexConfig,
    *, max_shift: float = 0.5,
) -> tuple[float, float] | None:
    """The playback rate that fits the clip best, and the offset that goes with it.

    A reading at speed ``s`` of a clip really played at rate ``r`` still matches (each
    reading tolerates a few per cent), but where it lands drifts by ``r - s`` seconds
    per clip second. The clip's windows ``rows`` are cut into chunks of
    ``_RATE_CHUNK_SECONDS`` (less in a short clip, down to half); each chunk's best offset near ``offset`` (to a fraction
    of an analysis frame) is one point, weighted by how sharply it peaks, and a line
    through the points gives the drift (none, unless it is clearly more than the
    points' scatter). Returns ``(rate, offset at clip second 0)``
    with the rate to 0.01, or None when fewer than two chunks, a chunk's length
    apart, peak clearly (still footage: the reading's speed stands).
    Chunk offsets are looked for within ``max_shift`` x the clip's length of ``offset``.
    """
    if len(rows) == 0:
        return None
    speed = float(clip.speeds[rows[0]])
    span = float(clip.starts[rows].max() - clip.starts[rows].min()) + config.window_seconds
    radius = max(_REFINE_RADIUS, min(max_shift * span, 10.0))
    steps = np.arange(-radius, radius + 1e-9, config.frame_step)
    # Shorter chunks for a short clip: a few points are better than none.
    length = max(_RATE_CHUNK_SECONDS / 2, min(_RATE_CHUNK_SECONDS, float(np.ptp(clip.starts[rows])) / 3))
    chunk = np.floor((clip.starts[rows] - clip.starts[rows].min()) / length).astype(np.int64)
    times, found, weights = [], [], []
    for number in np.unique(chunk):
        mine = rows[chunk == number]
        sims = _alignment(clip, mine, offset + steps, library, config)
        valid = np.isfinite(sims)
        if valid.sum() < 5:
            continue
        peak = int(np.argmax(np.where(valid, sims, -np.inf)))
        # Sharpness: the peak over what lies half a second or more away from it.
        away = valid & (np.abs(steps - steps[peak]) >= 0.5)
        sharpness = float(sims[peak] - sims[away].max()) if away.any() else 0.0
        if sharpness < _RATE_MIN_SHARPNESS:
            continue
        times.append(float(clip.starts[mine].mean()))
        found.append(float(steps[peak] + _sub_step(sims, peak) * config.frame_step))
        weights.append(sharpness)
    if len(times) < 2 or max(times) - min(times) < length - 1e-9:
        return None
    t, o, w = np.array(times), np.array(found), np.array(weights)
    t_mean = float(np.average(t, weights=w))
    spread = float(np.sum(w * (t - t_mean) ** 2))
    drift = float(np.sum(w * (t - t_mean) * (o - np.average(o, weights=w))) / spread)
    # Noise, and the reading's speed stands, unless the line drifts by more than two
    # analysis frames between its first and last points, and (with three points or
    # more) by more than twice the drift's standard error.
    if abs(drift) * (t.max() - t.min()) < 2 * config.frame_step:
        drift = 0.0
    elif len(t) >= 3:
        residual = o - np.average(o, weights=w) - drift * (t - t_mean)
        error = np.sqrt(np.sum(w * residual**2) / ((len(t) - 2) * spread))
        if abs(drift) <= 2 * error:
            drift = 0.0
    rate = round(speed + drift, 2)
    if rate == speed:
        return rate, offset  # no drift: the whole clip's alignment placed it best
    # The offset is where the fitted line, at the rate kept, meets the clip's start.
    at_mean = offset + float(np.average(o, weights=w)) + speed * t_mean
    return rate, at_mean - rate * t_mean


def _sub_step(sims: np.ndarray, peak: int) -> float:
    """Where between grid offsets the alignment really peaks, in steps from ``peak``.

    Offsets are tried on the analysis-frame grid (0.1 s), coarser than a video frame;
    a parabola through the peak and its two neighbours places the true alignment
    between them (0 when the peak is at the edge or flat).
    """
    if not 0 < peak < len(sims) - 1 or not np.isfinite(sims[peak - 1 : peak + 2]).all():
        return 0.0
    left, centre, right = sims[peak - 1], sims[peak], sims[peak + 1]
    curvature = left - 2 * centre + right
    if curvature >= -1e-9:
        return 0.0
    return float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))


def _alignment(
    clip: ClipWindows, rows: np.ndarray, offsets: np.ndarray, library: np.ndarray, config: IndexConfig,
    *, counts: bool = False,
):
    """Mean similarity of windows ``rows`` to the library windows they land on, per
    offset (-inf where none lands); with ``counts``, also how many land there."""
    position = clip.starts[rows] * clip.speeds[rows]  # seconds after the clip's first frame, library time
    index = (offsets[:, None] + position[None, :]) / config.block_seconds
    nearest = np.rint(index).astype(np.int64)
    # A window counts at an offset only if it lands on the library's block grid there.
    lands = (np.abs(index - nearest) * config.block_seconds < config.frame_step / 2) & (nearest >= 0) & (
        nearest < len(library)
    )
    vectors = clip.vectors[rows]
    sq_norms = np.einsum("ij,ij->i", vectors, vectors)
    out = np.full(len(offsets), -np.inf)
    for i in np.flatnonzero(lands.any(axis=1)):
        which = np.flatnonzero(lands[i])
        diff = vectors[which] - library[nearest[i, which]]
        out[i] = similarity(np.einsum("ij,ij->i", diff, diff), sq_norms[which]).mean()
    return (out, lands.sum(axis=1)) if counts else out


def mask_windows(vectors: np.ndarray, covered: np.ndarray, config: IndexConfig) -> np.ndarray:
    """v1 window vectors with the ``covered`` grid cells left out, re-centred, unit length.

    A window is W blocks x 7 channels x the grid, each channel centred over the grid
    cells and the whole scaled to unit length; centring again over the kept cells
    only, and rescaling, gives what the footage alone would have given, for the clip
    and the library alike.
    """
    gh, gw = config.grid
    cube = vectors.reshape(len(vectors), config.window_blocks, -1, gh * gw).astype(np.float64)
    keep = ~covered.reshape(-1)
    cube = cube - cube[..., keep].mean(axis=-1, keepdims=True)
    cube[..., ~keep] = 0.0
    flat = cube.reshape(len(vectors), -1)
    return (flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-9)).astype(np.float32)


def rescore_masked(
    hit: Hit, clip: ClipWindows, library: np.ndarray, covered: np.ndarray, config: IndexConfig,
    record: VideoRecord,
) -> Hit:
    """``hit`` scored again without the ``covered`` grid cells (an overlay over the clip).

    The clip's windows in the hit's reading (mirrored readings see the overlay
    mirrored), over EVIDENCE_SECONDS from the hit's start, are compared with the
    library windows they land on, at each offset within ``_REFINE_RADIUS`` of the
    hit's, both masked; the score is their summed similarity over the number of
    windows that should have matched, and the hit moves to the best offset. Only
    the library windows that can be reached are masked.
    """
    if hit.inset or hit.rotation:  # the overlay was found on the whole, unturned picture
        return replace(hit, score=0.0)
    speed = _reading_speed(clip, hit.speed)
    rows = _rows_of(clip, Reading(speed=speed, mirrored=hit.mirrored), hit.query_start,
                    hit.query_start + EVIDENCE_SECONDS)
    if len(rows) == 0 or len(library) == 0:
        return replace(hit, score=0.0)
    mask = covered[:, ::-1] if hit.mirrored else covered
    mine = clip.select(rows)
    mine = replace(mine, vectors=mask_windows(mine.vectors, mask, config))
    offset = hit.start - hit.query_start * hit.speed
    steps = np.arange(-_REFINE_RADIUS, _REFINE_RADIUS + 1e-9, config.frame_step)
    reach = float((mine.starts * mine.speeds).max()) + _REFINE_RADIUS
    lo = max(int(np.floor((offset - _REFINE_RADIUS) / config.block_seconds)) - 1, 0)
    hi = min(int(np.ceil((offset + reach) / config.block_seconds)) + 2, len(library))
    if hi <= lo:
        return replace(hit, score=0.0)
    shifted = offset + steps - lo * config.block_seconds  # offsets into library[lo:hi]
    sims, landed = _alignment(mine, np.arange(len(rows)), shifted, mask_windows(library[lo:hi], mask, config), config,
                              counts=True)
    if not np.isfinite(sims).any():
        return replace(hit, score=0.0)
    # Scored like a segment: summed similarity over the windows that should have
    # matched (EVIDENCE_SECONDS of clip, one phase), so a few windows aligning well
    # without the mask (a clip sharing only its first seconds) stay weak.
    expected = max(int(_windows_per_phase(min(EVIDENCE_SECONDS, clip.duration - hit.query_start), config).max()), 1)
    evidence = np.full(len(sims), -np.inf)
    landing = np.isfinite(sims)
    evidence[landing] = sims[landing] * np.minimum(landed[landing] / expected, 1.0)
    best = int(np.argmax(evidence))
    shift = float(steps[best])
    start = min(max(hit.start + shift, 0.0), record.duration_s)
    end = min(max(hit.end + shift, start), record.duration_s)
    return replace(hit, start=start, end=end, score=float(min(max(evidence[best], 0.0), 1.0)))


def masked_candidates(clip: Clip, library: Library) -> list[Hit]:
    """Segments found by searching the plain reading with a band of the picture left out.

    Burnt-in subtitles or a ticker change all the time, so they dominate the
    windows they are in, and the true segment may not even be a candidate. The
    clip's windows with the bottom row, the top row, or a detected still overlay
    masked out are searched too (the library keeps its full windows, so their
    scores are low, but they land on the right place); :func:`rescore_overlaid`
    scores the candidates properly, both sides masked.
    """
    config = library.config
    if config.features != "v1":
        return []
    found: list[Hit] = []
    for reading in (Reading(), Reading(mirrored=True)):
        if reading not in clip.readings:
            continue
        windows = clip.windows([reading], allow_empty=True)
        if len(windows.vectors) == 0:
            continue
        masks = occlusion_masks(config.grid)[:2] + ([clip.overlay] if clip.overlay is not None else [])
        for mask in masks:
            mask = mask[:, ::-1] if reading.mirrored else mask
            masked = replace(windows, vectors=mask_windows(windows.vectors, mask, config))
            searched = _Searched(masked, *nearest_windows(masked, library))
            # Not refined: refining aligns the unmasked windows, which the band spoils;
            # rescoring aligns the masked ones.
            found += find_segments(searched, clip, library, k=_MASKED_CANDIDATES, floor=_MASKED_FLOOR, refined=False)
    return found


def occlusion_masks(grid: tuple[int, int]) -> list[np.ndarray]:
    """Where burnt-in additions usually sit, as grid-cell masks: the bottom and top
    rows (subtitles, tickers, banners) and the four corner quarters (logos, bugs)."""
    gh, gw = grid
    masks = []
    for rows, cols in (((gh - 1,), None), ((0,), None)):
        mask = np.zeros(grid, dtype=bool)
        mask[list(rows), :] = True
        masks.append(mask)
    half_h, half_w = max(gh // 2, 1), max(gw // 2, 1)
    for top in (0, gh - half_h):
        for left in (0, gw - half_w):
            mask = np.zeros(grid, dtype=bool)
            mask[top : top + half_h, left : left + half_w] = True
            masks.append(mask)
    return masks


def _reading_speed(clip: ClipWindows, rate: float) -> float:
    """The searched reading speed a fitted ``rate`` came from (the nearest one)."""
    speeds = np.unique(clip.speeds)
    return float(speeds[np.argmin(np.abs(speeds - rate))]) if len(speeds) else rate


def rescore_overlaid(
    hits: list[Hit], clip: ClipWindows, library: Library, detected: np.ndarray | None
) -> list[Hit]:
    """``hits``, each scored also without the cells an overlay may cover, keeping its
    best score, best first, echoes dropped.

    The cells of a ``detected`` still overlay count as they are; the usual places of
    burnt-in additions (:func:`occlusion_masks`) are guesses, and must gain
    ``_GUESSED_MASK_MARGIN`` over the unmasked score to count.
    """
    config = library.config
    masks = ([(detected, 0.0)] if detected is not None else []) + [
        (mask, _GUESSED_MASK_MARGIN) for mask in occlusion_masks(config.grid)]
    if config.features != "v1":  # only v1 windows are laid out on the picture's grid
        masks = []
    rescored = []
    for hit in hits:
        best = hit
        windows = library.windows(hit.video_id)
        for mask, margin in masks:
            masked = rescore_masked(hit, clip, windows, mask, config, library.videos[hit.video_id])
            if masked.score - margin > best.score:
                best = replace(masked, score=masked.score - margin)
        rescored.append(best)
    rescored.sort(key=lambda h: (-h.score, h.distance))
    kept: list[Hit] = []
    for hit in rescored:
        if not any(is_duplicate(hit, better) for better in kept):
            kept.append(hit)
    return kept


def _iou(a: Hit, b: Hit) -> float:
    return _span_iou((a.start, a.end), (b.start, b.end))


def _span_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0])
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if inter > 0 and union > 0 else 0.0


def cover_frozen_ends(hit: Hit, frozen_share: Callable[[float, float], float], duration: float,
                      record: VideoRecord) -> Hit:
    """``hit`` extended over a frozen start or end of the clip next to it.

    Frozen windows are no evidence, so a clip that opens on a still title card is
    matched from its first moving window on; the card is still part of the cut, and
    the hit's start is where the clip starts, as far as the video allows.
    """
    start, end, query_start, query_end = hit.start, hit.end, hit.query_start, hit.query_end
    if query_start > 0 and frozen_share(0.0, query_start) >= 0.5:
        start = max(hit.start - query_start * hit.speed, 0.0)
        query_start = max(query_start - (hit.start - start) / hit.speed, 0.0)
    if duration - query_end > 0 and frozen_share(query_end, duration) >= 0.5:
        end = min(hit.end + (duration - query_end) * hit.speed, record.duration_s)
        query_end += (end - hit.end) / hit.speed
    return replace(hit, start=start, end=end, query_start=query_start, query_end=query_end)

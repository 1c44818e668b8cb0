"""Query stage: nearest windows -> temporal voting -> ranked segments -> alignment.

Every query window (of every view: phase, mirroring, speed, inset) votes for the
library windows it is near to. A vote says "video v, offset = library time - speed
x clip time". True matches pile up on one offset; chance matches scatter. Votes are
grouped per video around the strongest offsets (Hough-style, tolerant to half a
block of misalignment), each group becomes a segment, and the segment's score is
the similarity of the best view's ``EVIDENCE_SECONDS`` worth of windows that agree
on it. Reported segments are then aligned against the video's stored windows
(:func:`refine`), and a clip with a still overlay can be re-scored without it
(:func:`rescore_overlaid`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from .config import IndexConfig
from .embedding import ClipWindows
from .models import Hit, VideoRecord
from .windows import split_ids

#: Seconds of consistent matching that count as full evidence: a longer clip need
#: not match along its whole length (it may contain other footage too).
EVIDENCE_SECONDS = 5.0

#: Default minimum score of a hit (calibrated on real footage, see README).
DEFAULT_MIN_SCORE = 0.85

#: Videos aligned per query at least (more when k is large), by vote mass.
_MIN_CANDIDATES = 50

#: Score a view assuming an edit (speed, mirror, inset) must gain, per edit, to win.
_EDIT_MARGIN = 0.01

#: Clip seconds, and offset radius (seconds), of the final alignment of a hit.
_REFINE_SECONDS = 6.0
_REFINE_RADIUS = 1.0

#: A mean window similarity this high at the hit's own speed settles its alignment.
_ALIGNED = 0.98

#: Segments of one video whose library spans overlap more than this are duplicates.
_NMS_IOU = 0.5


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


@dataclass
class _Votes:
    row: np.ndarray
    bin: np.ndarray
    offset: np.ndarray
    sim: np.ndarray
    sq_dist: np.ndarray


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

    With an ``aligner``, each reported hit's start and speed are refined by aligning
    the clip with the video's stored windows (see :func:`refine`).
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
    # Only videos with real vote mass are worth aligning (a big library puts a few
    # chance neighbours in hundreds of videos).
    candidates, inverse = np.unique(video_ids[live], return_inverse=True)
    mass = np.bincount(inverse, weights=sims[live])
    keep = candidates[np.argsort(-mass, kind="stable")[: max(10 * k, _MIN_CANDIDATES)]]
    segments: list[_Segment] = []
    for video_id in keep:
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
    kept: list[Hit] = []
    for segment in segments:
        if segment.hit.score < min_score:
            break
        hit = segment.hit
        if aligner is not None:
            hit = refine(hit, segment.offset, aligner, config, videos[hit.video_id])
        if any(_iou(hit, other) > _NMS_IOU for other in kept if other.video_id == hit.video_id):
            continue
        kept.append(hit)
        if len(kept) == k:
            break
    return kept


@dataclass(frozen=True)
class Aligner:
    """What refining hits needs: a video's stored windows (``library(video_id)``), the
    clip's windows at a playback speed over its first seconds (``readings(seconds,
    speed)``, any mirroring or inset), and the speeds there are readings for."""

    library: Callable[[int], np.ndarray]
    readings: Callable[[float, float], ClipWindows]
    speeds: tuple[float, ...]


@dataclass
class _Segment:
    hit: Hit
    view: int
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
        centres = np.unique(votes.bin[remaining])
        scores = [_best_per_row(votes, remaining & (np.abs(votes.bin - c) <= tolerance))[1].sum() for c in centres]
        centre = centres[int(np.argmax(scores))]
        support = remaining & (np.abs(votes.bin - centre) <= tolerance)
        remaining &= ~support
        best_idx, best_sims = _best_per_row(votes, support)
        view, score = _best_view(clip.views[votes.row[best_idx]], best_sims, expected, view_edits)
        if score <= 0:
            continue
        segments.append(_make_segment(votes, best_idx, clip, record, config, view, score))
    return segments


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
    )
    return _Segment(hit=hit, view=view, offset=offset)


def refine(hit: Hit, offset: float, aligner: Aligner, config: IndexConfig, record: VideoRecord) -> Hit:
    """``hit`` at the offset and speed near the voted ones where the clip aligns best.

    Voting reads the offset at the clip's first windows, which is ambiguous when they
    show still or repetitive footage (any nearby offset matches), and finds the speed
    only among the views that were searched. Here the windows of the hit's reading,
    over ``_REFINE_SECONDS`` of clip from the hit's start, are compared with the
    library windows they land on, for each offset within ``_REFINE_RADIUS`` s on the
    analysis-frame grid: a cut or a movement anywhere in that span pins the
    alignment. Unless that alignment is near-perfect (``_ALIGNED``), the readings at
    the other speeds are tried too, and one must beat the plain speed by
    ``_EDIT_MARGIN`` to win. Ties keep the voted offset.
    """
    library = aligner.library(hit.video_id)
    if len(library) == 0:
        return hit
    steps = np.arange(-_REFINE_RADIUS, _REFINE_RADIUS + 1e-9, config.frame_step)
    best = (-np.inf, offset, hit.speed)
    for speed in [hit.speed] + [s for s in aligner.speeds if s != hit.speed]:
        clip = aligner.readings(hit.query_start + _REFINE_SECONDS, speed)
        rows = np.flatnonzero(
            (clip.mirrored == hit.mirrored) & (clip.inset == hit.inset) & (clip.speeds == speed)
            & (clip.starts >= hit.query_start - 1e-9) & (clip.starts <= hit.query_start + _REFINE_SECONDS)
        )
        if len(rows) == 0:
            continue
        sims = _alignment(clip, rows, offset + steps, library, config)
        if not np.isfinite(sims).any():
            continue
        top = float(sims.max()) - _EDIT_MARGIN * (speed != 1.0)
        tied = np.flatnonzero(sims >= sims.max() - 1e-6)
        peak = int(tied[np.argmin(np.abs(steps[tied]))])
        candidate = float(offset + steps[peak] + _sub_step(sims, peak) * config.frame_step)
        if top > best[0] + 1e-9:
            best = (top, candidate, float(speed))
        if speed == hit.speed and sims.max() >= _ALIGNED:
            break
    _, offset, speed = best
    start = min(max(offset + hit.query_start * speed, 0.0), record.duration_s)
    end = min(max(offset + hit.query_end * speed, start), record.duration_s)
    return replace(hit, start=start, end=end, speed=speed)


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
    clip: ClipWindows, rows: np.ndarray, offsets: np.ndarray, library: np.ndarray, config: IndexConfig
) -> np.ndarray:
    """Mean similarity of windows ``rows`` to the library windows they land on, per offset."""
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
    return out


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
    """``hit`` scored again without the grid cells a still overlay covers in the clip.

    The score is the mean masked similarity, over EVIDENCE_SECONDS of clip from the
    hit's start, of the clip's windows in the hit's reading (mirrored readings see
    the overlay mirrored) to the library windows they land on, at the best offset
    within ``_REFINE_RADIUS`` of the hit's; the hit moves to that offset.
    """
    rows = np.flatnonzero(
        (clip.mirrored == hit.mirrored) & ~clip.inset & (clip.speeds == hit.speed)
        & (clip.starts >= hit.query_start - 1e-9) & (clip.starts <= hit.query_start + EVIDENCE_SECONDS)
    )
    if len(rows) == 0 or len(library) == 0:
        return replace(hit, score=0.0)
    mask = covered[:, ::-1] if hit.mirrored else covered
    masked = replace(clip, vectors=mask_windows(clip.vectors, mask, config))
    offset = hit.start - hit.query_start * hit.speed
    steps = np.arange(-_REFINE_RADIUS, _REFINE_RADIUS + 1e-9, config.frame_step)
    sims = _alignment(masked, rows, offset + steps, mask_windows(library, mask, config), config)
    if not np.isfinite(sims).any():
        return replace(hit, score=0.0)
    best = int(np.argmax(sims))
    shift = float(steps[best])
    start = min(max(hit.start + shift, 0.0), record.duration_s)
    end = min(max(hit.end + shift, start), record.duration_s)
    return replace(hit, start=start, end=end, score=float(min(max(sims[best], 0.0), 1.0)))


def rescore_overlaid(
    candidates: list[Hit], clip: ClipWindows, library: Callable[[int], np.ndarray], covered: np.ndarray,
    videos: dict[int, VideoRecord], config: IndexConfig, *, k: int, min_score: float,
) -> list[Hit]:
    """The ``k`` best of ``candidates`` scored without the overlay's cells, >= ``min_score``."""
    rescored = sorted(
        (rescore_masked(h, clip, library(h.video_id), covered, config, videos[h.video_id]) for h in candidates),
        key=lambda h: (-h.score, h.distance),
    )
    kept: list[Hit] = []
    for hit in rescored:
        if hit.score < min_score or len(kept) == k:
            break
        if not any(_iou(hit, other) > _NMS_IOU for other in kept if other.video_id == hit.video_id):
            kept.append(hit)
    return kept


def _iou(a: Hit, b: Hit) -> float:
    inter = min(a.end, b.end) - max(a.start, b.start)
    union = max(a.end, b.end) - min(a.start, b.start)
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

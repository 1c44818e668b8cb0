"""Votes: each query window's neighbours vote for (video, offset); votes that agree become segments.

A neighbour of window ``w`` at library window ``j`` says "video v, offset = library
time - speed x clip time". True matches pile up on one offset, chance matches
scatter. Votes are grouped per video around the strongest offsets (Hough-style,
tolerant to half a block); each group is a candidate segment, scored by the best
view's ``EVIDENCE_SECONDS`` worth of agreeing windows. A weaker segment of the same
video claiming the same clip seconds is an echo (:func:`is_duplicate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cells import REGIONS
from ..config import IndexConfig
from ..models import Hit, VideoRecord
from ..store.matches import Matches
from ..windows import REGION_STRIDE, region_codes, split_ids
from .clip import ClipWindows
from .tuning import EVIDENCE_SECONDS, EDIT_MARGIN, NMS_IOU, DUPLICATE_MARGIN


def similarity(sq_dist: np.ndarray, sq_norms: np.ndarray) -> np.ndarray:
    """Map squared L2 distances to [0, 1]: 1 - d^2 / (2 |q|^2), clipped.

    For unit-norm vectors this is the cosine similarity clipped at 0.
    """
    return np.clip(1.0 - sq_dist / (2.0 * np.maximum(sq_norms, 1e-12)), 0.0, 1.0)


def windows_per_phase(duration: float, config: IndexConfig) -> np.ndarray:
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


def vote(
    clip: ClipWindows, matches: Matches, videos: dict[int, VideoRecord], config: IndexConfig, *, candidates: int,
    floor: float = 0.0,
) -> list["Segment"]:
    """Candidate segments from per-window neighbours, best first (see the module docstring).

    Neighbours vote per video and region (a crop found through the index entries of
    part of the frame is aligned with that part). Only the ``candidates`` (video,
    region) pairs with the most vote mass are grouped (a big library puts a few
    chance neighbours in hundreds of videos). Segments scoring below ``floor`` are
    not made: a group whose votes cannot reach it is skipped whole (most of a clip
    that is in no library).
    """
    sq_dist, ids = matches.distances, matches.ids
    if ids.size == 0:
        return []
    sq_norms = np.einsum("ij,ij->i", clip.vectors, clip.vectors)
    sims = similarity(sq_dist, sq_norms[:, None])
    video_ids, window_idx = split_ids(ids)
    regions = region_codes(ids)
    groups = video_ids * len(REGIONS) + regions
    rows = np.broadcast_to(np.arange(len(ids))[:, None], ids.shape)
    # Library time of the clip's first frame, as each vote sees it (speed-aware).
    offsets = window_idx * config.block_seconds - (clip.starts * clip.speeds)[:, None]
    live = matches.found & (sims > 0) & np.isin(video_ids, list(videos))

    # Full evidence = every window of a view matched, up to EVIDENCE_SECONDS of clip.
    fpb = config.frames_per_block
    counts = np.bincount(clip.views, minlength=fpb)
    horizon = np.resize(windows_per_phase(EVIDENCE_SECONDS, config), len(counts))  # view v has phase v % fpb
    expected = np.maximum(np.minimum(counts, horizon), 1)
    # A region holds an entry for every REGION_STRIDE-th window only.
    sparse = np.maximum(-(-expected // REGION_STRIDE), 1)
    view_edits = np.zeros(len(counts), dtype=np.int64)
    view_edits[clip.views] = clip.edits
    present, inverse = np.unique(groups[live], return_inverse=True)
    mass = np.bincount(inverse, weights=sims[live])
    segments: list[Segment] = []
    if not clip.portrait:  # only a portrait picture can be a vertical slice of the library's frame
        slices = np.isin(present % len(REGIONS), [r.code for r in REGIONS if r.portrait])
        present, mass = present[~slices], mass[~slices]
    for group in present[np.argsort(-mass, kind="stable")[:candidates]]:
        video_id, region = divmod(int(group), len(REGIONS))
        mask = live & (groups == group)
        votes = _Votes(
            row=rows[mask],
            bin=np.rint(offsets[mask] / config.frame_step).astype(np.int64),
            offset=offsets[mask],
            sim=sims[mask],
            sq_dist=sq_dist[mask],
        )
        segments += _segments_of_video(votes, clip, videos[video_id], config, sparse if region else expected,
                                       view_edits, region, floor)
    segments.sort(key=lambda s: (-s.hit.score, s.hit.distance))
    return segments


@dataclass
class Segment:
    """A candidate segment: its hit as voted, and the library time of the clip's first frame."""

    hit: Hit
    offset: float


def _segments_of_video(
    votes: _Votes, clip: ClipWindows, record: VideoRecord, config: IndexConfig, expected: np.ndarray,
    view_edits: np.ndarray, region: int, floor: float = 0.0,
) -> list[Segment]:
    # Votes of one true match spread over +-half a block (phases that straddle the
    # library's block grid), so offsets within that tolerance are one alignment.
    tolerance = int(np.ceil(config.frames_per_block / 2))
    remaining = np.ones(len(votes.row), dtype=bool)
    segments = []
    # Whether the votes left can still make a segment of ``floor``: asked first, and again
    # after each segment below it (the bound costs about what one segment does).
    check = floor > 0
    for _ in range(8):  # at most a few distinct alignments per video are worth reporting
        if not remaining.any() or (check and _score_bound(votes, remaining, clip, expected) < floor):
            break
        centre = _strongest_centre(votes, remaining, tolerance)
        support = remaining & (np.abs(votes.bin - centre) <= tolerance)
        remaining &= ~support
        best_idx, best_sims = _best_per_row(votes, support)
        view, score = _best_view(clip.views[votes.row[best_idx]], best_sims, expected, view_edits)
        check = floor > score
        if score <= 0:
            continue
        segments.append(_make_segment(votes, best_idx, clip, record, config, view, score, region))
    return segments


def _score_bound(votes: _Votes, remaining: np.ndarray, clip: ClipWindows, expected: np.ndarray) -> float:
    """The best score any segment of the ``remaining`` votes can have: a segment keeps
    each row's best vote near its offset, never more than the row's best of all, and
    scores its view by its strongest ``expected`` windows (:func:`_best_view`)."""
    best_idx, best_sims = _best_per_row(votes, remaining)
    if len(best_idx) == 0:
        return 0.0
    _, scores = _view_scores(clip.views[votes.row[best_idx]], best_sims, expected)
    return min(float(scores.max()), 1.0)


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
    change, mirroring, inset) must beat the plain reading by ``EDIT_MARGIN`` per
    edit: still or slow footage matches at any speed, and would otherwise be
    reported re-timed, at a drifting offset.
    """
    if len(views) == 0:
        return 0, 0.0
    present, scores = _view_scores(views, sims, expected)
    ranks = scores - EDIT_MARGIN * view_edits[present]
    best = int(np.argmax(ranks))  # the first of equals: the view with the lowest number
    return int(present[best]), min(float(scores[best]), 1.0)


def _view_scores(views: np.ndarray, sims: np.ndarray, expected: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The views present, and each one's strongest ``expected`` windows summed over
    ``expected`` (all views at once)."""
    order = np.lexsort((-sims, views))
    ordered = views[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.append(starts, len(order))))
    kept = rank < expected[ordered]
    totals = np.bincount(ordered[kept], weights=sims[order][kept], minlength=len(expected))
    present = ordered[starts]
    return present, totals[present] / expected[present]


def _make_segment(
    votes: _Votes, best: np.ndarray, clip: ClipWindows, record: VideoRecord, config: IndexConfig,
    view: int, score: float, region: int,
) -> Segment:
    rows = votes.row[best]
    # The best view gives the offset, exact to about half an analysis frame; read at
    # the clip's start (first windows), so a clip whose speed is between the views'
    # speeds, and whose offset drifts along it, still gets the right start.
    in_view = np.flatnonzero(clip.views[rows] == view)
    first = in_view[np.argsort(clip.starts[rows[in_view]], kind="stable")[:3]]
    # The median of at most 3 values, as np.median gives it (which costs more than the rest of this).
    firsts = sorted(float(value) for value in votes.offset[best][first])
    middle = len(firsts) // 2
    offset = firsts[middle] if len(firsts) % 2 else (firsts[middle - 1] + firsts[middle]) / 2
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
        part=clip.parts[int(clip.inset[row])],
        rotation=int(clip.rotation[row]) * 90,
        crop=REGIONS[region].bounds,
    )
    return Segment(hit=hit, offset=offset)


def is_duplicate(hit: Hit, better: Hit) -> bool:
    """Whether ``hit`` only repeats ``better`` (which scores at least as well).

    The same alignment (library spans overlapping), or another place in the same
    video claiming the same clip seconds without matching about as well: still or
    self-similar footage matches many offsets nearly as well as the true one.
    """
    if hit.video_id != better.video_id:
        return False
    if _iou(hit, better) > NMS_IOU:
        return True
    same_clip_seconds = _span_iou((hit.query_start, hit.query_end), (better.query_start, better.query_end)) > NMS_IOU
    return same_clip_seconds and hit.score < better.score - DUPLICATE_MARGIN


def _iou(a: Hit, b: Hit) -> float:
    return _span_iou((a.start, a.end), (b.start, b.end))


def _span_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0])
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if inter > 0 and union > 0 else 0.0

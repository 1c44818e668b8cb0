"""Alignment: each hit placed where the clip aligns best with the video's stored windows.

:func:`refine` moves a voted segment to the offset (to a fraction of an analysis
frame) and speed where the clip's first seconds align best, then places the whole
clip on the whole video (:func:`alignment_curve`: moved when another stretch fits
better, *ambiguous* when another fits as well), and :func:`fit_rate` measures the
playback rate from how the alignment drifts along the clip. :func:`window_scores`
gives the score of each clip window along a hit's alignment (what the report plots).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from ..cells import FRAME, Region, crop_region
from ..config import IndexConfig
from ..models import Hit, VideoRecord, WindowScores
from ..windows import window_vectors
from .clip import Clip, ClipWindows, Reading
from .tuning import (
    NEAR_SPEED,
    EDIT_MARGIN,
    REFINE_SECONDS,
    REFINE_RADIUS,
    ALIGNED,
    SPEED_SEARCH_SCORE,
    GLOBAL_SECONDS,
    RELOCATE_MARGIN,
    AMBIGUITY,
    EVIDENCE_SECONDS,
    RATE_CHUNK_SECONDS,
    RATE_MIN_SHARPNESS,
    RATE_MAX_SHIFT,
    SPAN_SHARE,
)
from .votes import similarity, windows_per_phase


def region_of(hit: Hit) -> Region:
    """The part of the library frame a hit's clip shows."""
    return crop_region(hit.crop)


@dataclass(frozen=True)
class Aligner:
    """What refining hits needs: a video's windows of a region, at the grid hits are
    aligned at (``library(video_id, region)``), the clip's windows in one reading at
    the same grid (``readings(reading, region)``, described once and kept), both also
    at the search grid (``coarse_library``, ``coarse_readings``), the speeds there are
    readings for, and the names of the clip's parts."""

    library: Callable[[int, Region], np.ndarray]
    readings: Callable[[Reading, Region], ClipWindows]
    speeds: tuple[float, ...]
    parts: tuple[str, ...] = ("whole",)
    coarse_library: Callable[[int, Region], np.ndarray] | None = None
    coarse_readings: Callable[[Reading, Region], ClipWindows] | None = None
    blocks: Callable[[int], np.ndarray] | None = None


def _part_number(hit: Hit, parts: tuple[str, ...]) -> int:
    return parts.index(hit.part) if hit.part in parts else 0


def _reading_of(hit: Hit, speed: float | None = None, parts: tuple[str, ...] = ("whole",)) -> Reading:
    return Reading(speed=hit.speed if speed is None else speed, mirrored=hit.mirrored,
                   inset=_part_number(hit, parts), rotation=hit.rotation // 90)


def rows_of(clip: ClipWindows, reading: Reading, start: float, end: float) -> np.ndarray:
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
    over ``REFINE_SECONDS`` of clip from the hit's start, are compared with the
    library windows they land on, for each offset within ``REFINE_RADIUS`` s on the
    analysis-frame grid: a cut or a movement anywhere in that span pins the
    alignment. Unless that alignment is good (``ALIGNED``), the readings at the
    neighbouring speeds are tried too (not for rotated or inset readings, nor weak
    hits), and one must beat the plain speed by ``EDIT_MARGIN`` to win. Ties keep
    the voted offset. Then the whole clip is placed on the whole video
    (:func:`_settle_globally`: moved, or marked ambiguous with its score capped) and
    :func:`fit_rate` measures the playback rate along it; a rate beyond the
    reading's +-5 % sends the hit to the reading nearest to it. Everything is compared
    at the detail of the hit's region (``v2``: the stored cells), which tells apart
    footage the search grid finds alike. The score is left to :func:`verified_score`.
    """
    if hit.crop != FRAME.bounds and aligner.blocks is not None:
        hit = replace(hit, crop=_best_crop(hit, offset, aligner, config))
    library = aligner.library(hit.video_id, region_of(hit))
    if len(library) == 0:
        return hit
    best = (-np.inf, offset, hit.speed)
    # Neighbouring speeds only (a rate further off shows as drift, below), and only
    # for hits worth it: a weak hit's speed changes no score.
    other_speeds = [] if hit.inset or hit.rotation or hit.score < SPEED_SEARCH_SCORE else [
        s for s in aligner.speeds if s != hit.speed and abs(s - hit.speed) <= NEAR_SPEED + 1e-9]
    for speed in [hit.speed] + other_speeds:
        found = _align_locally(hit, speed, offset, aligner, library, config)
        if found is None:
            continue
        top, candidate = found
        if top - EDIT_MARGIN * (speed != 1.0) > best[0] + 1e-9:
            best = (top - EDIT_MARGIN * (speed != 1.0), candidate, float(speed))
        if speed == hit.speed and top >= ALIGNED:
            break
    _, offset, speed = best
    offset, distinct, fitted = _place(hit, speed, offset, aligner, library, config)
    if fitted is not None and abs(fitted[0] - speed) > RATE_MAX_SHIFT and not (hit.inset or hit.rotation):
        # The clip drifts off this reading (a still-ish clip matched well at the wrong
        # speed): read it at the searched speed nearest to the drift's rate instead.
        nearest = min(aligner.speeds, key=lambda s: abs(s - fitted[0]))
        found = _align_locally(hit, nearest, offset, aligner, library, config) if nearest != speed else None
        if found is not None:
            moved = _place(hit, nearest, found[1], aligner, library, config)
            if moved[2] is not None and abs(moved[2][0] - nearest) <= RATE_MAX_SHIFT:
                speed, (offset, distinct, fitted) = nearest, moved
    rate = speed
    if fitted is not None and abs(fitted[0] - speed) <= RATE_MAX_SHIFT:
        rate, offset = fitted
    start = min(max(offset + hit.query_start * rate, 0.0), record.duration_s)
    end = min(max(offset + hit.query_end * rate, start), record.duration_s)
    placed = replace(hit, start=start, end=end, speed=rate, ambiguous=not distinct)
    return _matched_span(placed, aligner, config, record) if hit.crop != FRAME.bounds else placed


def _matched_span(hit: Hit, aligner: Aligner, config: IndexConfig, record: VideoRecord) -> Hit:
    """``hit`` over all the clip seconds that match at its alignment: a crop is found
    through index entries of every ``REGION_STRIDE``-th window, so its votes span only
    part of what matches. The span grows over the windows, next to it, that align
    about as well as those inside it."""
    region = region_of(hit)
    reading = _reading_of(hit, min(aligner.speeds or (hit.speed,), key=lambda s: abs(s - hit.speed)), aligner.parts)
    views = _view_scores(hit, aligner.readings(reading, region), aligner.library(hit.video_id, region), config)
    if not views:
        return hit
    _, starts, scores = max(views, key=lambda view: view[2].mean())
    order = np.argsort(starts)
    starts, scores = starts[order], scores[order]
    inside = (starts >= hit.query_start - 1e-9) & (starts <= hit.query_end - config.window_seconds / hit.speed + 1e-9)
    if not inside.any():
        return hit
    good = scores >= SPAN_SHARE * float(scores[inside].mean())
    first, last = int(np.flatnonzero(inside)[0]), int(np.flatnonzero(inside)[-1])
    while first > 0 and good[first - 1]:
        first -= 1
    while last + 1 < len(starts) and good[last + 1]:
        last += 1
    offset = hit.start - hit.query_start * hit.speed
    query_start = min(hit.query_start, float(starts[first]))
    query_end = max(hit.query_end, float(starts[last]) + config.window_seconds / hit.speed)
    start = min(max(offset + query_start * hit.speed, 0.0), record.duration_s)
    end = min(max(offset + query_end * hit.speed, start), record.duration_s)
    return replace(hit, query_start=query_start, query_end=query_end, start=start, end=end)


def _best_crop(hit: Hit, offset: float, aligner: Aligner, config: IndexConfig) -> tuple[float, float, float, float]:
    """The part of the library frame the clip shows, refined from the index region it
    was found through: shifted by up to 3/16 of the frame and scaled by up to 30 %, to
    where the clip's first seconds align best near ``offset``.

    Regions are few, so a crop lies up to 1/8 of the frame off the nearest; in a
    panning shot that shift looks like a shift in time, so the place must be right
    before the time is.
    """
    blocks = aligner.blocks(hit.video_id)
    span = REFINE_RADIUS + REFINE_SECONDS * hit.speed + config.window_seconds
    lo = max(int((offset - REFINE_RADIUS) / config.block_seconds) - 1, 0)
    hi = min(int((offset + span) / config.block_seconds) + 2, len(blocks))
    if hi - lo < config.window_blocks:
        return hit.crop
    shifted = offset - lo * config.block_seconds  # offsets into blocks[lo:hi]

    fits: dict[tuple[float, float, float, float], float] = {}

    def fit(bounds: tuple[float, float, float, float]) -> float:
        # Moves are clamped to the frame, so at its edges (most regions) many give
        # bounds already tried.
        if bounds not in fits:
            region = crop_region(bounds, config.cells)
            local = window_vectors(blocks[lo:hi], config, region, region.detail)
            found = _align_locally(hit, hit.speed, shifted, aligner, local, config, region=region)
            fits[bounds] = -np.inf if found is None else found[0]
        return fits[bounds]

    def moved(bounds, dy: float, dx: float, scale: float) -> tuple[float, float, float, float]:
        top, bottom, left, right = bounds
        height, width = min((bottom - top) * scale, 1.0), min((right - left) * scale, 1.0)
        top = min(max((top + bottom - height) / 2 + dy, 0.0), 1.0 - height)
        left = min(max((left + right - width) / 2 + dx, 0.0), 1.0 - width)
        return (round(top, 4), round(top + height, 4), round(left, 4), round(left + width, 4))

    best, best_fit = tuple(hit.crop), fit(tuple(hit.crop))
    for moves in ([(dy, dx, 1.0) for dy in (-1 / 8, 0, 1 / 8) for dx in (-1 / 8, 0, 1 / 8)],
                  [(dy, dx, 1.0) for dy in (-1 / 16, 0, 1 / 16) for dx in (-1 / 16, 0, 1 / 16)],
                  [(0.0, 0.0, scale) for scale in (0.77, 0.87, 0.93, 1.07, 1.15, 1.3)]):
        around = best
        for dy, dx, scale in moves:
            candidate = moved(around, dy, dx, scale)
            if candidate != around and (score := fit(candidate)) > best_fit + 1e-6:
                best, best_fit = candidate, score
    return best


def _align_locally(
    hit: Hit, speed: float, offset: float, aligner: Aligner, library: np.ndarray, config: IndexConfig,
    *, region: Region | None = None,
) -> tuple[float, float] | None:
    """Best mean similarity of the hit's reading at ``speed`` within ``REFINE_RADIUS`` of
    ``offset``, over ``REFINE_SECONDS`` of clip, and the offset giving it (ties: nearest)."""
    steps = np.arange(-REFINE_RADIUS, REFINE_RADIUS + 1e-9, config.frame_step)
    reading = _reading_of(hit, speed, aligner.parts)
    clip = aligner.readings(reading, region or region_of(hit))
    rows = rows_of(clip, reading, hit.query_start, hit.query_start + REFINE_SECONDS)
    if len(rows) == 0:
        return None
    sims = mean_alignment(clip, rows, offset + steps, library, config)
    if not np.isfinite(sims).any():
        return None
    tied = np.flatnonzero(sims >= sims.max() - 1e-6)
    peak = int(tied[np.argmin(np.abs(steps[tied]))])
    return float(sims.max()), float(offset + steps[peak] + _sub_step(sims, peak) * config.frame_step)


def _place(
    hit: Hit, speed: float, offset: float, aligner: Aligner, library: np.ndarray, config: IndexConfig
) -> tuple[float, bool, tuple[float, float] | None]:
    """The whole clip's reading at ``speed`` placed on the video: (offset, distinct, fitted rate)."""
    reading = _reading_of(hit, speed, aligner.parts)
    clip = aligner.readings(reading, region_of(hit))
    rows = rows_of(clip, reading, hit.query_start, hit.query_end)
    offset, distinct = _settle_globally(clip, rows, offset, library, config)
    return offset, distinct, fit_rate(clip, rows, offset, library, config, max_shift=0.5)


def _settle_globally(
    clip: ClipWindows, rows: np.ndarray, offset: float, library: np.ndarray, config: IndexConfig
) -> tuple[float, bool]:
    """The offset where the whole clip aligns best with the video, and whether it is distinct.

    Voting and :func:`refine` look near the voted offset with the clip's first
    seconds; in still or self-similar footage (a fixed camera on a quiet scene) the
    vote can land on the wrong stretch of the right video. Here every window of the
    reading (up to ``GLOBAL_SECONDS``) is compared at every offset of the video
    (:func:`alignment_curve`): if another offset aligns better by ``RELOCATE_MARGIN``,
    the hit moves there. The alignment is *distinct* unless an offset more than a
    window away aligns within ``AMBIGUITY`` of it: then any offset would do, and the
    hit's score is capped (ambiguous, not confidently placed).
    """
    rows = rows[clip.starts[rows] <= clip.starts[rows].min() + GLOBAL_SECONDS] if len(rows) else rows
    offsets, curve = alignment_curve(clip, rows, library, config)
    if not np.isfinite(curve).any():
        return offset, True
    near = np.isfinite(curve) & (np.abs(offsets - offset) <= config.frame_step / 2 + 1e-9)
    here = float(curve[near].max()) if near.any() else -np.inf
    peak = int(np.argmax(curve))
    if curve[peak] > here + RELOCATE_MARGIN:
        offset = float(offsets[peak] + _sub_step(curve, peak) * config.frame_step)
        here = float(curve[peak])
    elsewhere = np.isfinite(curve) & (np.abs(offsets - offset) > config.window_seconds)
    distinct = not elsewhere.any() or float(curve[elsewhere].max()) < here - AMBIGUITY
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
    at = (np.arange(len(library)) * fpb)[None, :] - position[:, None] - low
    total = np.bincount(at.ravel(), weights=sims.ravel(), minlength=size)
    count = np.bincount(at.ravel(), minlength=size)
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
    ``RATE_CHUNK_SECONDS`` (less in a short clip, down to half); each chunk's best offset near ``offset`` (to a fraction
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
    radius = max(REFINE_RADIUS, min(max_shift * span, 10.0))
    steps = np.arange(-radius, radius + 1e-9, config.frame_step)
    # Shorter chunks for a short clip: a few points are better than none.
    length = max(RATE_CHUNK_SECONDS / 2, min(RATE_CHUNK_SECONDS, float(np.ptp(clip.starts[rows])) / 3))
    chunk = np.floor((clip.starts[rows] - clip.starts[rows].min()) / length).astype(np.int64)
    times, found, weights = [], [], []
    for number in np.unique(chunk):
        mine = rows[chunk == number]
        sims = mean_alignment(clip, mine, offset + steps, library, config)
        valid = np.isfinite(sims)
        if valid.sum() < 5:
            continue
        peak = int(np.argmax(np.where(valid, sims, -np.inf)))
        # Sharpness: the peak over what lies half a second or more away from it.
        away = valid & (np.abs(steps - steps[peak]) >= 0.5)
        sharpness = float(sims[peak] - sims[away].max()) if away.any() else 0.0
        if sharpness < RATE_MIN_SHARPNESS:
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


def mean_alignment(
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
    landed = lands.sum(axis=1)
    if landed.any():
        # Every (offset, window) pair that lands, in one product: each library window
        # a clip window can land on is compared once.
        at, which = np.nonzero(lands)
        targets = nearest[at, which]
        pairs = np.unique(np.stack([which, targets], axis=1), axis=0)
        l2 = np.einsum("ij,ij->i", library[pairs[:, 1]], library[pairs[:, 1]])
        dots = np.einsum("ij,ij->i", vectors[pairs[:, 0]], library[pairs[:, 1]])
        pair_sims = similarity(sq_norms[pairs[:, 0]] + l2 - 2.0 * dots, sq_norms[pairs[:, 0]])
        key = which * len(library) + targets
        sims = pair_sims[np.searchsorted(pairs[:, 0] * len(library) + pairs[:, 1], key)]
        total = np.bincount(at, weights=sims, minlength=len(offsets))
        out = np.where(landed > 0, total / np.maximum(landed, 1), -np.inf)
    return (out, landed) if counts else out


def _view_scores(hit: Hit, windows: ClipWindows, library: np.ndarray, config: IndexConfig
                 ) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Per view (sub-block phase) of ``windows``: the clip seconds its windows start at
    and their similarity to the library windows ``hit``'s alignment lands them on."""
    offset = hit.start - hit.query_start * hit.speed
    out = []
    for view in np.unique(windows.views):
        rows = np.flatnonzero(windows.views == view)
        idx = np.rint((windows.starts[rows] * hit.speed + offset) / config.block_seconds).astype(int)
        ok = (idx >= 0) & (idx < len(library))
        if not ok.any():
            continue
        query = windows.vectors[rows[ok]]
        diff = query - library[idx[ok]]
        scores = similarity(np.einsum("ij,ij->i", diff, diff), np.einsum("ij,ij->i", query, query))
        scores[~np.any(library[idx[ok]] != 0, axis=1)] = 0.0  # windows not indexed (damaged spans)
        out.append((int(view), windows.starts[rows[ok]], scores))
    return out


def _hit_windows(hit: Hit, readings: list[Reading], windows: Callable[[Reading], ClipWindows],
                 parts: tuple[str, ...]) -> ClipWindows:
    """The clip's windows in the reading ``hit`` was found in (a fitted rate, 1.07, at the
    searched speed nearest to it, 1.1), of those in ``readings``."""
    part = _part_number(hit, parts)
    same = [r for r in readings
            if r.mirrored == hit.mirrored and r.inset == part and r.rotation == hit.rotation // 90]
    return windows(min(same, key=lambda r: abs(r.speed - hit.speed)) if same else readings[0])


def verified_score(hit: Hit, aligner: Aligner, config: IndexConfig, duration: float) -> float:
    """How well the clip matches at ``hit``'s final alignment: of the sub-block phase
    that aligns best, the summed similarity of its strongest windows over the number
    that should match (``EVIDENCE_SECONDS`` of clip, or all of a shorter one), as votes
    are scored; frozen windows are no evidence and count as missing. The mean of that
    at the detail of the hit's region, which tells look-alike footage apart, and at the
    coarse search grid, which forgives a crop or a shift that moves detail across cells."""
    region = region_of(hit)
    speeds = aligner.speeds if not (hit.inset or hit.rotation) else (1.0,)
    readings = [_reading_of(hit, speed, aligner.parts) for speed in speeds]
    horizon = windows_per_phase(min(EVIDENCE_SECONDS, duration), config)
    grids = [(aligner.readings, aligner.library)]
    if aligner.coarse_readings is not None and aligner.coarse_library is not None:
        grids.append((aligner.coarse_readings, aligner.coarse_library))
    found = []
    for clip_windows, library_windows in grids:
        windows = _hit_windows(hit, readings, lambda reading: clip_windows(reading, region), aligner.parts)
        best = 0.0
        for view, _, scores in _view_scores(hit, windows, library_windows(hit.video_id, region), config):
            expected = max(int(horizon[view % config.frames_per_block]), 1)
            best = max(best, float(np.sort(scores)[::-1][:expected].sum() / expected))
        found.append(min(best, 1.0))
    return sum(found) / len(found)


def window_scores(hit: Hit, clip: Clip, library: np.ndarray, config: IndexConfig) -> WindowScores:
    """Score (0-1, as hits are scored) of each window of the clip's reading that ``hit``
    was found in, against the library window the hit aligns it with (``library``: the
    windows of the hit's region at its detail), by the clip second the window starts
    at: of the sub-block phase that aligns best."""
    region = region_of(hit)
    windows = _hit_windows(hit, clip.readings,
                           lambda reading: clip.windows([reading], allow_empty=True, grid=region.detail),
                           getattr(clip, "parts", ("whole",)))
    views = _view_scores(hit, windows, library, config)
    if not views:
        return WindowScores()
    _, starts, scores = max(views, key=lambda view: view[2].mean())
    return WindowScores(times=tuple(starts.tolist()), scores=tuple(scores.tolist()))

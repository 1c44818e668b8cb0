"""The query path, top to bottom: readings -> neighbours -> votes -> segments -> alignment -> hits.

:func:`query_clip` and :func:`query_feature_file` are the entry points (a clip file,
or a clip given as features); :func:`search_clip` is the whole pipeline, one named
stage per function, each in the module of its stage:

1. **readings** (:func:`reading_stages`): the clip is read plainly first; only if
   that finds no near-exact hit are the cheap edited readings searched (mirrored,
   re-timed by +-10 %, a picture-in-picture inset), and only if those find nothing
   confident the far ones (turned by quarter turns, re-timed by -20 / +25 %). Each
   reading is described at every sub-block phase (:class:`.clip.QueryClip`).
2. **neighbours** (:func:`nearest_windows`): each query window asks the vector store
   for its nearest library windows.
3. **votes** (:func:`.votes.vote`): each neighbour votes for "video v, offset = library
   time - speed x clip time". True matches pile up on one offset, chance matches
   scatter. Votes are grouped per video around the strongest offsets (Hough-style,
   tolerant to half a block), each group becomes a candidate segment, scored by
   the best view's ``EVIDENCE_SECONDS`` worth of agreeing windows.
4. **alignment** (:func:`.align.refine`, :func:`.align.fit_rate`): each reported segment is
   aligned against the video's stored windows: offset to a fraction of an analysis
   frame, speed among the readings, then the playback rate fitted along the clip.
5. **duplicates** (:func:`.votes.is_duplicate`): a weaker segment of the same video that
   claims the same clip seconds is the best one's echo (self-similar footage), not
   a second answer.
6. **overlay** (:func:`.overlay.rescore_overlaid`): with nothing confident, the candidates
   are scored again without the grid cells a still overlay found in the clip (a
   logo box) covers, and without the usual places of burnt-in additions (bottom or
   top row: subtitles, tickers; a corner quarter: a logo), at a small cost.
7. **frozen ends** (:func:`cover_frozen_ends`) and the final **threshold**: the
   user's ``min_score`` only filters (segments are found down to ``FLOOR``, or
   to ``min_score`` if lower); nothing before it depends on it.

The thresholds and margins are in :mod:`.tuning`. With the hits, a query result
carries each hit's window scores (:func:`.align.window_scores`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from ..config import IndexConfig
from ..device import Device
from ..errors import FeatureFileError, VsearchError
from ..extractors import Extractor
from ..featurefiles.read import FeatureReading, read_source
from ..featurefiles.sources import FeatureSource
from ..models import Hit, QueryResult, VideoRecord, WindowScores
from ..store.matches import Matches
from .align import Aligner, refine, region_of, verified_score, window_scores
from .calibration import calibrate, noise_level
from .clip import Clip, ClipWindows, FeatureClip, QueryClip, Reading, check_speeds
from .library import Library
from .overlay import coarse, mask_windows, occlusion_masks, rescore_overlaid
from .tuning import (
    FLOOR,
    NEIGHBOURS_PER_WINDOW,
    NEAR_EXACT_SCORE,
    CONFIDENT_SCORE,
    NEAR_SPEED,
    OVERLAY_CANDIDATES,
    MASKED_CANDIDATES,
    MASKED_FLOOR,
    MIN_CANDIDATES,
    AMBIGUOUS_SCORE,
    REFINE_MARGIN,
    RIVAL_FLOOR,
    RIVAL_HITS,
    RIVAL_MARGIN,
    RIVAL_SCORE,
)
from .votes import is_duplicate, vote


def search_clip(clip: Clip, library: Library, *, k: int, min_score: float) -> list[Hit]:
    """The library segments ``clip`` comes from, best first: at most ``k``, scoring >= ``min_score``."""
    config = library.config
    searched = _Searched.empty(clip.duration, config.dim, getattr(clip, "parts", ("whole",)))
    hits: list[Hit] = []
    # At least RIVAL_HITS found whatever k asks: a near-static clip's rival may be below
    # it (and the best hit does not depend on k).
    asked, k = k, max(k, RIVAL_HITS)
    memo = Memo(videos=max(10 * k, MIN_CANDIDATES))
    for number, (readings, stop_at) in enumerate(reading_stages(clip)):
        if hits and hits[0].score >= stop_at:
            break
        # The first stage must yield windows (or say why not: too short, frozen throughout).
        windows = clip.windows(readings, allow_empty=number > 0)
        if len(windows.vectors) == 0:
            continue
        searched = searched.extend(windows, nearest_windows(windows, library))
        hits = find_segments(searched, clip, library, k=k, floor=min(FLOOR, min_score), memo=memo)
    if not (hits and hits[0].score >= CONFIDENT_SCORE):
        candidates = find_segments(searched, clip, library, k=max(k, OVERLAY_CANDIDATES), floor=min(FLOOR, min_score),
                                   memo=memo)
        hits = rescore_overlaid(candidates + masked_candidates(clip, library), clip, library, clip.overlay)
    hits = [cover_frozen_ends(h, clip.frozen_share, clip.duration, library.videos[h.video_id]) for h in hits]
    if getattr(clip, "near_static", False):
        hits = rivalled(hits)
    return [h for h in hits if h.score >= min_score][:asked]


def rivalled(hits: list[Hit]) -> list[Hit]:
    """The hits of a near-static clip, all ``ambiguous`` and capped at ``RIVAL_SCORE``
    if another video matches about as well as the best (see :mod:`.tuning`): a clip
    that barely moves cannot tell two recordings of one layout apart, and should not
    claim one of them."""
    if not hits:
        return hits
    best = max(hits, key=lambda h: h.score)
    rival = max((h.score for h in hits if h.video_id != best.video_id), default=0.0)
    if rival < RIVAL_FLOOR or best.score - rival >= RIVAL_MARGIN:
        return hits
    return [replace(h, score=min(h.score, RIVAL_SCORE), ambiguous=True) for h in hits]


def reading_stages(clip: Clip) -> list[tuple[list[Reading], float]]:
    """The clip's readings in the order they are searched, each stage with the best
    score before it that makes it unnecessary: plain; cheap edits; far edits."""
    plain = [r for r in clip.readings if r.edits == 0] or clip.readings[:1]
    far = [r for r in clip.readings if r.rotation or abs(r.speed - 1.0) > NEAR_SPEED + 1e-9]
    near = [r for r in clip.readings if r not in plain and r not in far]
    return [(plain, np.inf), (near, NEAR_EXACT_SCORE), (far, CONFIDENT_SCORE)]


@dataclass
class Memo:
    """What one query has worked out, so no stage works it out again: the segments
    voted from its neighbours so far (of the ``videos`` (video, region) pairs with the
    most vote mass), and each segment aligned and scored."""

    videos: int = MIN_CANDIDATES
    voted: dict = field(default_factory=dict)
    verified: dict = field(default_factory=dict)


@dataclass(frozen=True)
class _Searched:
    """Query windows searched so far, with their neighbours."""

    windows: ClipWindows
    matches: Matches

    @classmethod
    def empty(cls, duration: float, dim: int, parts: tuple[str, ...]) -> "_Searched":
        return cls(ClipWindows.empty(duration, dim, parts), Matches(np.zeros((0, NEIGHBOURS_PER_WINDOW), np.float32),
                                                             np.zeros((0, NEIGHBOURS_PER_WINDOW), np.int64)))

    def extend(self, windows: ClipWindows, matches: Matches) -> "_Searched":
        distances = matches.distances.astype(np.float32, copy=False)
        ids = matches.ids.astype(np.int64, copy=False)
        if len(self.matches) == 0:  # a small library gives fewer neighbours than asked for
            return _Searched(windows, Matches(distances, ids))
        return _Searched(ClipWindows.concatenate([self.windows, windows], windows.duration),
                         Matches(np.concatenate([self.matches.distances, distances]),
                                 np.concatenate([self.matches.ids, ids])))


def nearest_windows(windows: ClipWindows, library: Library) -> Matches:
    """Each query window's nearest library windows."""
    return library.search(windows.vectors, NEIGHBOURS_PER_WINDOW)


def find_segments(
    searched: "_Searched", clip: Clip, library: Library, *, k: int, floor: float, refined: bool = True,
    memo: Memo | None = None,
) -> list[Hit]:
    """Vote, align the best candidate segments (unless not ``refined``) and drop their
    echoes: up to ``k`` hits >= ``floor``. ``memo`` keeps what a query worked out so
    far, so a later stage does not do it again."""
    aligner = Aligner(
        library=library.detail,
        readings=lambda reading, region: clip.windows([reading], allow_empty=True, grid=region.detail),
        speeds=tuple(sorted({r.speed for r in clip.readings if not r.inset and not r.rotation})),
        parts=getattr(clip, "parts", ("whole",)),
        coarse_library=library.windows,
        coarse_readings=lambda reading, region: clip.windows([reading], allow_empty=True),
        blocks=library.blocks if library.config.pooled else None,
    )
    return aggregate(searched.windows, searched.matches, library.videos, library.config, k=k, min_score=floor,
                     aligner=aligner if refined else None, memo=memo, noise=library.noise)


def aggregate(
    clip: ClipWindows,
    matches: Matches,
    videos: dict[int, VideoRecord],
    config: IndexConfig,
    *,
    k: int,
    min_score: float,
    aligner: Aligner | None = None,
    memo: Memo | None = None,
    noise: dict | None = None,
) -> list[Hit]:
    """Turn per-window neighbours (``matches``) into the top ``k`` segment hits with score >= ``min_score``.

    With an ``aligner``, each hit's start and speed are refined by aligning the clip
    with the video's stored windows (see :func:`.align.refine`), and the hit is scored
    at that alignment, at the detail of its region (:func:`.align.verified_score`),
    calibrated (:func:`.calibration.calibrate`, with the ``noise`` levels measured on
    the library if any); an ambiguous hit's score is capped at
    ``AMBIGUOUS_SCORE``. A segment that repeats a better one
    (:func:`.votes.is_duplicate`) is dropped.
    """
    memo = memo or Memo(videos=max(10 * k, MIN_CANDIDATES))
    stage = (len(matches), min_score)
    if stage not in memo.voted:  # the stage's neighbours: voted once, whatever k is asked
        memo.voted[stage] = vote(clip, matches, videos, config, candidates=memo.videos, floor=min_score)
    kept: list[tuple[Hit, float]] = []
    for segment in memo.voted[stage]:
        if segment.hit.score < min_score:
            break
        hit, evidence = segment.hit, segment.hit.score
        if any(is_duplicate(hit, better) for better, _ in kept):
            continue  # an echo already, before it is aligned (aligning is the costly part)
        if aligner is not None:
            key = (replace(hit, score=0.0, distance=0.0), round(segment.offset, 3))
            if key not in memo.verified:
                # Aligning is the costly part: a segment whose vote cannot reach its kind's
                # noise level by far is scored where it was voted.
                worth = hit.score >= noise_level(config, region_of(hit), noise) - REFINE_MARGIN
                found = refine(hit, segment.offset, aligner, config, videos[hit.video_id]) if worth else hit
                edits = int(found.speed != 1.0) + found.mirrored + found.inset + (found.rotation != 0)
                raw = verified_score(found, aligner, config, clip.duration)
                if not config.pooled:
                    # Without cells, the detail is the search vector itself: the vote, which
                    # takes each window's best neighbour near the offset, stands unless the
                    # alignment does better (a clip on the block grid only is a block off).
                    raw = max(raw, hit.score)
                score = calibrate(raw, config, region_of(found), edits, noise)
                found = replace(found, score=min(score, AMBIGUOUS_SCORE) if found.ambiguous else score)
                memo.verified[key] = (found, score)
            hit, evidence = memo.verified[key]
            if hit.score < min_score:
                continue
        if any(is_duplicate(hit, better) for better, _ in kept):
            continue
        kept.append((hit, evidence))
        if len(kept) == k:
            break
    # Verification may have put a later segment first; capped ambiguous hits rank by
    # their own evidence, so the stretch that fits best comes first.
    return [hit for hit, _ in sorted(kept, key=lambda pair: (-pair[0].score, -pair[1], pair[0].distance))]


def masked_candidates(clip: Clip, library: Library) -> list[Hit]:
    """Segments found by searching the plain reading with a band of the picture left out.

    Burnt-in subtitles or a ticker change all the time, so they dominate the
    windows they are in, and the true segment may not even be a candidate. The
    clip's windows with the bottom row, the top row, or a detected still overlay
    masked out are searched too (the library keeps its full windows, so their
    scores are low, but they land on the right place); :func:`.overlay.rescore_overlaid`
    scores the candidates properly, both sides masked.
    """
    config = library.config
    if not config.pooled:
        return []
    found: list[Hit] = []
    for reading in (Reading(), Reading(mirrored=True)):
        if reading not in clip.readings:
            continue
        windows = clip.windows([reading], allow_empty=True)
        if len(windows.vectors) == 0:
            continue
        masks = occlusion_masks(config.grid, bands=2) + (
            [coarse(clip.overlay, config.grid)] if clip.overlay is not None else [])
        for mask in masks:
            mask = mask[:, ::-1] if reading.mirrored else mask
            masked = replace(windows, vectors=mask_windows(windows.vectors, mask, config.grid, config))
            searched = _Searched(masked, nearest_windows(masked, library))
            # Not refined: refining aligns the unmasked windows, which the band spoils;
            # rescoring aligns the masked ones.
            found += find_segments(searched, clip, library, k=MASKED_CANDIDATES, floor=MASKED_FLOOR, refined=False)
    return found


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


def query_clip(
    clip: str | os.PathLike, library: Library, *, device: Device, extractor: Extractor, k: int, min_score: float,
    mirrored: bool, speeds: tuple[float, ...], inset: bool, rotations: bool, timeout: float,
    max_duration: float | None, max_pixels: int | None,
) -> QueryResult:
    """Decode and describe ``clip`` once and search ``library`` (one index, or several
    shards merged: see ``vsearch.library.sharded``); the options are those of ``VideoIndex.query``."""
    if k < 1:
        raise VsearchError("k must be at least 1")
    reader = QueryClip(clip, library.config, device, mirrored=mirrored, speeds=check_speeds(speeds), inset=inset,
                       rotations=rotations, timeout=timeout, extractor=extractor, max_duration=max_duration,
                       max_pixels=max_pixels)
    hits = search_clip(reader, library, k=k, min_score=min_score)
    return QueryResult(query=os.fsdecode(os.fspath(clip)), duration=reader.duration, hits=hits,
                       window_scores=scored_windows(reader, library, hits))


def query_feature_file(
    features: FeatureSource | str | os.PathLike, library: Library, *, reading: FeatureReading, k: int, min_score: float,
) -> QueryResult:
    """Search ``library`` with a clip given as features (see ``VideoIndex.query_features``)."""
    if k < 1:
        raise VsearchError("k must be at least 1")
    videos = read_source(features, replace(reading, videos=None))  # a clip is named by its file, not a video
    if len(videos) != 1:
        label = features.label if isinstance(features, FeatureSource) else os.fsdecode(os.fspath(features))
        raise FeatureFileError(label, f"holds {len(videos)} videos; a query clip is one: name it, e.g. "
                                      f"{videos[0].source}")
    reader = FeatureClip(videos[0], library.config)
    hits = search_clip(reader, library, k=k, min_score=min_score)
    return QueryResult(query=videos[0].source, duration=reader.duration, hits=hits,
                       window_scores=scored_windows(reader, library, hits))


def scored_windows(clip: Clip, library: Library, hits: list[Hit]) -> list[WindowScores]:
    """Each hit's window scores along its alignment (see :func:`.align.window_scores`)."""
    return [window_scores(hit, clip, library.detail(hit.video_id, region_of(hit)), library.config) for hit in hits]

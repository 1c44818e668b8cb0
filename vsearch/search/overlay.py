"""Overlays: candidates scored again without the grid cells burnt-in additions may cover.

With nothing confident found, a still overlay detected in the clip (a logo box), or
the usual places of burnt-in additions (bottom or top row: subtitles, tickers; a
corner quarter: a logo), are left out of both the clip's and the library's windows
(:func:`mask_windows`) and each candidate is aligned and scored again
(:func:`rescore_masked`); a guessed place must gain ``GUESSED_MASK_MARGIN`` to count.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..cells import FRAME
from ..config import IndexConfig
from ..models import Hit, VideoRecord
from .align import mean_alignment, rows_of
from .calibration import calibrate
from .clip import Clip, ClipWindows, Reading
from .library import Library
from .tuning import AMBIGUOUS_SCORE, EVIDENCE_SECONDS, GUESSED_MASK_MARGIN, REFINE_RADIUS
from .votes import is_duplicate, windows_per_phase


def mask_windows(vectors: np.ndarray, covered: np.ndarray, grid: tuple[int, int], config: IndexConfig) -> np.ndarray:
    """Window vectors laid out on ``grid`` with the ``covered`` cells left out, re-centred, unit length.

    A window is W blocks x 7 channels x the grid, each channel centred over the grid
    cells and the whole scaled to unit length; centring again over the kept cells
    only, and rescaling, gives what the footage alone would have given, for the clip
    and the library alike.
    """
    cube = vectors.reshape(len(vectors), config.window_blocks, -1, grid[0] * grid[1]).astype(np.float64)
    keep = ~covered.reshape(-1)
    cube = cube - cube[..., keep].mean(axis=-1, keepdims=True)
    cube[..., ~keep] = 0.0
    flat = cube.reshape(len(vectors), -1)
    return (flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-9)).astype(np.float32)


def coarse(covered: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """A cell mask on a finer grid as one on ``grid`` (a multiple): a cell is covered if any part is."""
    rows, cols = covered.shape[0] // grid[0], covered.shape[1] // grid[1]
    return covered.reshape(grid[0], rows, grid[1], cols).any(axis=(1, 3))


def rescore_masked(
    hit: Hit, clip: ClipWindows, library: np.ndarray, covered: np.ndarray, config: IndexConfig,
    record: VideoRecord,
) -> tuple[Hit, float]:
    """``hit`` aligned again without the ``covered`` cells (an overlay over the clip), and
    the raw score there.

    ``clip`` and ``library`` are windows on ``covered``'s grid. The clip's windows in
    the hit's reading (mirrored readings see the overlay mirrored), over
    EVIDENCE_SECONDS from the hit's start, are compared with the library windows they
    land on, at each offset within ``REFINE_RADIUS`` of the hit's, both masked; the
    score is their summed similarity over the number of windows that should have
    matched, and the hit moves to the best offset. Only the library windows that can
    be reached are masked.
    """
    if hit.inset or hit.rotation:  # the overlay was found on the whole, unturned picture
        return hit, 0.0
    grid = covered.shape
    speed = _reading_speed(clip, hit.speed)
    rows = rows_of(clip, Reading(speed=speed, mirrored=hit.mirrored), hit.query_start,
                   hit.query_start + EVIDENCE_SECONDS)
    if len(rows) == 0 or len(library) == 0:
        return hit, 0.0
    mask = covered[:, ::-1] if hit.mirrored else covered
    mine = clip.select(rows)
    mine = replace(mine, vectors=mask_windows(mine.vectors, mask, grid, config))
    offset = hit.start - hit.query_start * hit.speed
    steps = np.arange(-REFINE_RADIUS, REFINE_RADIUS + 1e-9, config.frame_step)
    reach = float((mine.starts * mine.speeds).max()) + REFINE_RADIUS
    lo = max(int(np.floor((offset - REFINE_RADIUS) / config.block_seconds)) - 1, 0)
    hi = min(int(np.ceil((offset + reach) / config.block_seconds)) + 2, len(library))
    if hi <= lo:
        return hit, 0.0
    shifted = offset + steps - lo * config.block_seconds  # offsets into library[lo:hi]
    sims, landed = mean_alignment(mine, np.arange(len(rows)), shifted, mask_windows(library[lo:hi], mask, grid, config),
                                  config, counts=True)
    if not np.isfinite(sims).any():
        return hit, 0.0
    # Scored like a segment: summed similarity over the windows that should have
    # matched (EVIDENCE_SECONDS of clip, one phase), so a few windows aligning well
    # without the mask (a clip sharing only its first seconds) stay weak.
    expected = max(int(windows_per_phase(min(EVIDENCE_SECONDS, clip.duration - hit.query_start), config).max()), 1)
    evidence = np.full(len(sims), -np.inf)
    landing = np.isfinite(sims)
    evidence[landing] = sims[landing] * np.minimum(landed[landing] / expected, 1.0)
    best = int(np.argmax(evidence))
    shift = float(steps[best])
    start = min(max(hit.start + shift, 0.0), record.duration_s)
    end = min(max(hit.end + shift, start), record.duration_s)
    return replace(hit, start=start, end=end), float(min(max(evidence[best], 0.0), 1.0))


#: Where burnt-in additions usually sit, as shares of the frame's height (bands across
#: it) or corners: bottom and top bands (subtitles, tickers, banners), caption bands
#: across the lower middle, and the four corner quarters (logos, bugs).
_BANDS = ((0.75, 1.0), (0.0, 0.25), (0.5, 0.75), (0.625, 0.875))


def occlusion_masks(grid: tuple[int, int], *, bands: int | None = None) -> list[np.ndarray]:
    """Where burnt-in additions usually sit, as cell masks on ``grid``: the first
    ``bands`` bands of :data:`_BANDS` (all by default), then the four corner quarters."""
    gh, gw = grid
    masks = []
    for top, bottom in _BANDS[:bands]:
        mask = np.zeros(grid, dtype=bool)
        mask[int(round(top * gh)) : max(int(round(bottom * gh)), int(round(top * gh)) + 1), :] = True
        if not any((mask == other).all() for other in masks):
            masks.append(mask)
    if bands is not None:
        return masks
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


def rescore_overlaid(hits: list[Hit], clip: Clip, library: Library, detected: np.ndarray | None) -> list[Hit]:
    """``hits``, each scored also without the cells an overlay may cover, keeping its
    best score, best first, echoes dropped.

    Only hits of the whole frame are rescored (``v2``: on the stored cells). The cells
    of a ``detected`` still overlay count as they are; the usual places of burnt-in
    additions (:func:`occlusion_masks`) are guesses, and must gain
    ``GUESSED_MASK_MARGIN`` over the unmasked score to count.
    """
    config = library.config
    grid = FRAME.detail
    masks = ([(detected, 0.0)] if detected is not None else []) + [
        (mask, GUESSED_MASK_MARGIN) for mask in occlusion_masks(grid)]
    windows = clip.windows(allow_empty=True, grid=grid) if config.pooled else None
    rescored = []
    for hit in hits:
        best = hit
        if config.pooled and hit.crop == FRAME.bounds:
            video = library.detail(hit.video_id)
            for mask, margin in masks:
                masked, raw = rescore_masked(hit, windows, video, mask, config, library.videos[hit.video_id])
                score = calibrate(raw, config, FRAME, int(hit.speed != 1.0) + hit.mirrored, library.noise) - margin
                if score > best.score:
                    best = replace(masked, score=min(score, AMBIGUOUS_SCORE) if hit.ambiguous else score)
        rescored.append(best)
    rescored.sort(key=lambda h: (-h.score, h.distance))
    kept: list[Hit] = []
    for hit in rescored:
        if not any(is_duplicate(hit, better) for better in kept):
            kept.append(hit)
    return kept

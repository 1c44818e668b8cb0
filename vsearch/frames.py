"""Picture helpers: what is done to analysis frames before they are described.

Letterbox/pillarbox bars found and cut off (:func:`detect_borders`,
:func:`remove_borders`), a picture-in-picture inset found (:func:`detect_inset`), the
grid cells a still overlay hides (:func:`detect_static_overlay`), frozen blocks
(:func:`frozen_blocks`), and frames resized or turned by quarter turns
(:func:`resize_frames`, :func:`rotate_frames`). Functions taking ``xp`` work on NumPy
or CuPy arrays alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Bars, still overlays and insets are looked for in this many first blocks (8 s),
#: on a library video and on a query clip alike.
DETECTION_BLOCKS = 16

# Letterbox/pillarbox detection: a bar row/column is near-black and flat in every frame.
_BAR_MAX_LEVEL = 28.0
_BAR_MAX_STD = 3.0
_BAR_MIN_CONTENT = 0.4  # bars never leave less than this share of the frame
_BAR_ASYMMETRY = 0.04  # top/bottom (left/right) bars differ by at most this share


def _bar_extent(level: np.ndarray, spread: np.ndarray) -> tuple[int, int]:
    """Lengths of the bar runs at both ends of a 1-D profile."""
    is_bar = (level <= _BAR_MAX_LEVEL) & (spread <= _BAR_MAX_STD)
    n = len(is_bar)
    head = n if is_bar.all() else int(np.argmin(is_bar))
    tail = n if is_bar.all() else int(np.argmin(is_bar[::-1]))
    return head, tail


def detect_borders(frames: np.ndarray) -> tuple[int, int, int, int]:
    """Black bars (top, bottom, left, right) in pixels, the same in every frame.

    Bars added by letterboxing or pillarboxing carry no picture; they are cut off
    before description, at ingest and at query time alike, so a letterboxed copy
    describes like its source. Only symmetric, near-black, flat bars count; anything
    else (a dark scene, a black title card) is left alone.
    """
    if len(frames) == 0:
        return (0, 0, 0, 0)
    f = np.asarray(frames, dtype=np.float32)
    h, w = f.shape[1:]
    peak = f.max(axis=0)
    top, bottom = _bar_extent(peak.max(axis=1), f.std(axis=(0, 2)))
    left, right = _bar_extent(peak.max(axis=0), f.std(axis=(0, 1)))
    if (h - top - bottom) < _BAR_MIN_CONTENT * h or (w - left - right) < _BAR_MIN_CONTENT * w:
        return (0, 0, 0, 0)  # mostly black: a title card or a dark shot, not bars
    # One more pixel: scaling blends the bar's edge into the first picture row.
    top, bottom = (0, 0) if abs(top - bottom) > _BAR_ASYMMETRY * h or min(top, bottom) < 2 else (top + 1, bottom + 1)
    left, right = (0, 0) if abs(left - right) > _BAR_ASYMMETRY * w or min(left, right) < 2 else (left + 1, right + 1)
    return (top, bottom, left, right)


_INSET_SIDE = (0.2, 0.8)  # an inset's width and height, as shares of the frame's
_INSET_ASPECT = 0.3  # an inset keeps the frame's aspect ratio within +-30 %
_INSET_TIGHT_ASPECT = 0.08  # ...within +-8 % when only three of its sides show
_INSET_MIN_EDGE = 10.0  # grey levels: each side's persistent edge is at least this...
_INSET_EDGE_RATIO = 3.0  # ...and this many times the frame's typical persistent edge
_INSET_MIN_TEXTURE = 2.0  # mean gradient inside, so a flat box (a logo plate) is no inset
_INSET_COVERAGE = 0.9  # share of each side's length that must show the edge
_INSET_CANDIDATES = 10  # strongest edge rows and columns tried as sides


def _profile_peaks(profile: np.ndarray, count: int) -> np.ndarray:
    """Positions of the ``count`` strongest local maxima, away from the frame's edge."""
    p = profile.astype(np.float64).copy()
    p[:2] = p[-2:] = -1.0
    local = np.flatnonzero((p >= np.roll(p, 1)) & (p >= np.roll(p, -1)) & (p > 0))
    return np.sort(local[np.argsort(-p[local], kind="stable")[:count]])


def detect_inset(frames: np.ndarray) -> tuple[int, int, int, int] | None:
    """Margins (top, bottom, left, right) of a picture-in-picture inset, or None.

    A clip shown small over other footage keeps a rectangular border that stays put
    while both pictures change: straight edges, present in most frames, around a
    textured region of about the frame's aspect ratio. The candidates are the strongest
    persistent edge rows and columns, and the frame's own borders. A rectangle counts
    when each side is clearly a persistent edge or lies on the frame's border (an
    inset against the frame's edge; three real edges at least), or when three sides are and its
    aspect is the frame's within ``_INSET_TIGHT_ASPECT`` (the fourth side runs along
    footage as plain as the background: a talking head on a plain wall). The one
    whose real edges are strongest on average, weighted by its size, wins (a
    three-sided one at a discount). Only used on query
    clips, as an extra view: a false detection costs search time, a missed one loses
    only the PiP.
    """
    f = np.asarray(frames, dtype=np.float32)
    if len(f) < 3:
        return None
    h, w = f.shape[1:]
    # Median over time: an edge counts only if it is there in most frames. Padded with
    # the frame's borders: column x of ``ex`` is the edge just left of pixel column x.
    ex = np.pad(np.median(np.abs(np.diff(f, axis=2)), axis=0), ((0, 0), (1, 1)))  # (h, w+1)
    ey = np.pad(np.median(np.abs(np.diff(f, axis=1)), axis=0), ((1, 1), (0, 0)))  # (h+1, w)
    floor = max(_INSET_MIN_EDGE, _INSET_EDGE_RATIO * float(np.median(np.concatenate([ex[:, 1:-1].ravel(),
                                                                                      ey[1:-1].ravel()]))))
    cols = np.union1d(_profile_peaks(ex.mean(axis=0), _INSET_CANDIDATES), [0, w])
    rows = np.union1d(_profile_peaks(ey.mean(axis=1), _INSET_CANDIDATES), [0, h])
    x0, x1, y0, y1 = (a.ravel() for a in np.meshgrid(cols, cols, rows, rows, indexing="ij"))
    iw, ih = x1 - x0, y1 - y0
    aspect = np.abs((iw / w) / np.maximum(ih / h, 1e-9) - 1)
    ok = (
        (iw >= _INSET_SIDE[0] * w) & (iw <= _INSET_SIDE[1] * w)
        & (ih >= _INSET_SIDE[0] * h) & (ih <= _INSET_SIDE[1] * h)
        & (aspect <= _INSET_ASPECT)
    )
    if not ok.any():
        return None
    x0, x1, y0, y1, iw, ih, aspect = (a[ok] for a in (x0, x1, y0, y1, iw, ih, aspect))

    def along_sides(vertical: np.ndarray, horizontal: np.ndarray) -> np.ndarray:
        """Mean of a map along each side (left, right, top, bottom), from cumulative sums."""
        cx = np.vstack([np.zeros((1, w + 1)), np.cumsum(vertical, axis=0, dtype=np.float64)])
        cy = np.hstack([np.zeros((h + 1, 1)), np.cumsum(horizontal, axis=1, dtype=np.float64)])
        return np.stack([
            (cx[y1, x0] - cx[y0, x0]) / ih,
            (cx[y1, x1] - cx[y0, x1]) / ih,
            (cy[y0, x1] - cy[y0, x0]) / iw,
            (cy[y1, x1] - cy[y1, x0]) / iw,
        ])

    sides = along_sides(ex, ey)
    # A side is an edge all along it, not a few strong stretches.
    covered = along_sides(ex >= floor / 2, ey >= floor / 2)
    edge = (sides >= floor) & (covered >= _INSET_COVERAGE)
    border = np.stack([x0 == 0, x1 == w, y0 == 0, y1 == h])
    real = edge.sum(axis=0)
    cornered = np.all(edge | border, axis=0) & (real >= 3)
    three_sided = (real == 3) & ~border.any(axis=0) & (aspect <= _INSET_TIGHT_ASPECT)
    found = cornered | three_sided
    if not found.any():
        return None
    # The strongest real edges on average (a frame border is no evidence either way), larger first.
    strength = np.where(edge, sides, 0.0).sum(axis=0) / np.maximum(real, 1)
    score = np.where(found, strength * (ih + iw) * np.where(three_sided, 0.75, 1.0), -1.0)
    best = int(np.argmax(score))
    top, bottom, left, right = int(y0[best]), int(y1[best]), int(x0[best]), int(x1[best])
    if float(np.abs(np.diff(f[:, top:bottom, left:right], axis=2)).mean()) < _INSET_MIN_TEXTURE:
        return None
    return (top, h - bottom, left, w - right)


_SPLIT_RANGE = (0.35, 0.65)  # where a split screen's seam may lie, as shares of the width or height


def detect_split(frames: np.ndarray) -> list[tuple[str, tuple[int, int, int, int]]]:
    """The parts of a split screen, as (name, margins (top, bottom, left, right)), or none.

    Two pictures side by side (or one above the other) meet at a straight seam that
    runs across the whole frame and stays put while both change: a column (or row)
    of persistent edge, all along it, near the middle of the frame; a row must be the
    only one across (a caption band has two). Each side is then a picture of its
    own (``left`` and ``right``, or ``top`` and ``bottom``). A straight edge in the
    scene itself (a door frame in a fixed shot) looks the same; it only costs the
    search two readings that find nothing.
    """
    f = np.asarray(frames, dtype=np.float32)
    if len(f) < 3:
        return []
    h, w = f.shape[1:]
    ex = np.median(np.abs(np.diff(f, axis=2)), axis=0)  # (h, w-1): edge between columns x and x+1
    ey = np.median(np.abs(np.diff(f, axis=1)), axis=0)  # (h-1, w)
    floor = max(_INSET_MIN_EDGE, _INSET_EDGE_RATIO * float(np.median(np.concatenate([ex.ravel(), ey.ravel()]))))
    found = []
    for edges, length, names in ((ex, w, ("left", "right")), (ey.T, h, ("top", "bottom"))):
        # A seam between two pixels of the working size may blur over the two edges around it.
        strongest = np.maximum(edges[:, :-1], edges[:, 1:])  # (across, along - 2)
        strength = strongest.mean(axis=0)
        coverage = (strongest >= floor / 2).mean(axis=0)
        lines = np.flatnonzero((strength >= floor) & (coverage >= _INSET_COVERAGE))
        lines = lines[(lines >= 2) & (lines < len(strength) - 2)]  # not the frame's own border
        if names[0] == "top" and len(lines) and lines.max() - lines.min() > 2:
            continue  # more than one line across: a caption band, a ticker, not two pictures
        if len(lines) == 0:
            continue
        seam = lines[(lines + 1 >= _SPLIT_RANGE[0] * length) & (lines + 1 <= _SPLIT_RANGE[1] * length)]
        if len(seam) == 0:
            continue
        cut = int(seam[np.argmax(strength[seam])]) + 1  # first position of the second picture
        first, second = ((0, 0, 0, w - cut), (0, 0, cut + 1, 0)) if names[0] == "left" else \
            ((0, h - cut, 0, 0), (cut + 1, 0, 0, 0))
        found += [(names[0], first), (names[1], second)]
    return found


_STILL_STD = 1.0  # grey levels: a pixel this steady over the clip's first chunk is still
_OVERLAY_CELL_SHARE = 0.2  # a grid cell more than this still is covered (edges spill over)
_OVERLAY_MAX_CELLS = 0.35  # an overlay covers at most this share of the cells...
_OVERLAY_MOVING_STD = 3.0  # ...while the rest of the picture moves at least this much


def detect_static_overlay(frames: np.ndarray, grid: tuple[int, int]) -> np.ndarray | None:
    """Grid cells (``grid``-shaped bool) hidden by a still overlay, or None.

    A logo, a caption plate or a box burnt into a copy stays put while the footage
    under it moves; its cells describe the overlay, not the footage. Found on a query
    clip, they can be left out of a second, masked comparison (see
    :func:`vsearch.search.overlay.rescore_masked`). A still background in a static shot looks
    the same, so this only ever adds a comparison; it never changes the first one.
    """
    f = np.asarray(frames, dtype=np.float32)
    if len(f) < 10:
        return None
    std = f.std(axis=0)
    still = std < _STILL_STD
    if not still.any() or still.all() or float(np.median(std[~still])) < _OVERLAY_MOVING_STD:
        return None
    gh, gw = grid
    h, w = still.shape
    ch, cw = h // gh, w // gw
    y0, x0 = (h - ch * gh) // 2, (w - cw * gw) // 2
    share = still[y0 : y0 + ch * gh, x0 : x0 + cw * gw].reshape(gh, ch, gw, cw).mean(axis=(1, 3))
    covered = share > _OVERLAY_CELL_SHARE
    if not covered.any() or covered.mean() > _OVERLAY_MAX_CELLS:
        return None
    return covered


#: Grey levels: a clip whose pictures stay this close to their median picture (on
#: average over the pixels, in nine frames of ten) is one still picture. Re-encoded
#: with any usual group of pictures a still stays within 0.4; a fixed camera on a
#: quiet scene has sensor noise and drifting light, and a screen recording's text
#: grows, both by a grey level and more over a few seconds.
STILL_LEVEL = 0.6


def is_still(frames: np.ndarray) -> bool:
    """Whether ``frames`` show one still picture throughout, whatever its encoding:
    nothing moves to place it in time, and it would match any still stretch anywhere."""
    if len(frames) < 2:
        return False
    frames = np.asarray(frames, dtype=np.float32)
    axes = tuple(range(1, frames.ndim))  # grey or RGB
    deviation = np.abs(frames - np.median(frames, axis=0)).mean(axis=axes)
    return float(np.percentile(deviation, 90)) <= STILL_LEVEL


def motion_level(frames: np.ndarray) -> float:
    """Grey levels: how much the pictures change from one to the next, on average over
    the pixels and the frames (0 for a still; a screen recording with text being typed
    stays under 1, filmed footage is mostly well above)."""
    if len(frames) < 2:
        return 0.0
    frames = np.asarray(frames, dtype=np.float32)
    return float(np.abs(np.diff(frames, axis=0)).mean())


def frozen_frames(frames: np.ndarray) -> np.ndarray:
    """Per frame: its picture is exactly the one before (the first frame: False)."""
    if len(frames) < 2:
        return np.zeros(len(frames), dtype=bool)
    axes = tuple(range(1, np.ndim(frames)))  # grey or RGB
    return np.concatenate([[False], np.all(frames[1:] == frames[:-1], axis=axes)])


def frozen_blocks(frames: np.ndarray, frames_per_block: int) -> np.ndarray:
    """Blocks whose pictures do not change at all (one boolean per complete block).

    A frozen picture is a held frame (a variable frame rate hold, frames lost to
    damage and filled in by a re-encode): no camera, however still, gives exactly
    identical pictures, and the motion it would be matched on is absent.
    """
    return held_blocks(frozen_frames(frames), frames_per_block)


def held_blocks(held: np.ndarray, frames_per_block: int) -> np.ndarray:
    """:func:`frozen_blocks` from per-frame flags (:func:`frozen_frames`) already worked
    out: blocks each of whose frames but the first repeats the one before."""
    blocks = len(held) // frames_per_block
    if blocks == 0:
        return np.zeros(0, dtype=bool)
    return held[: blocks * frames_per_block].reshape(blocks, frames_per_block)[:, 1:].all(axis=1)


def _resize_axis(out_len: int, in_len: int, xp: Any) -> tuple[Any, Any, Any]:
    """Bilinear sampling positions along one axis: low and high source index, weight of high."""
    pos = (np.arange(out_len) + 0.5) * in_len / out_len - 0.5
    lo = np.clip(np.floor(pos).astype(np.int64), 0, in_len - 1)
    hi = np.clip(lo + 1, 0, in_len - 1)
    frac = np.clip(pos - lo, 0.0, 1.0).astype(np.float32)
    return xp.asarray(lo), xp.asarray(hi), xp.asarray(frac)


def resize_frames(frames: Any, height: int, width: int, xp: Any) -> Any:
    """Frames ``(n, h, w)`` (or ``(n, h, w, channels)``) scaled to ``(n, height, width[,
    channels])`` (bilinear, float32)."""
    frames = xp.asarray(frames, dtype=xp.float32)
    if frames.shape[1:3] == (height, width):
        return frames
    y0, y1, fy = _resize_axis(height, frames.shape[1], xp)
    x0, x1, fx = _resize_axis(width, frames.shape[2], xp)
    extra = (None,) * (frames.ndim - 3)  # a channel axis stays as it is
    fy, fx = fy[(None, slice(None), None, *extra)], fx[(None, None, slice(None), *extra)]
    rows = frames[:, y0] * (1 - fy) + frames[:, y1] * fy
    return rows[:, :, x0] * (1 - fx) + rows[:, :, x1] * fx


def remove_borders(frames: Any, borders: tuple[int, int, int, int], xp: Any) -> Any:
    """Crop ``borders`` off and scale back to the frame size (bilinear)."""
    top, bottom, left, right = borders
    if not any(borders):
        return frames
    h, w = frames.shape[1:3]
    return resize_frames(xp.asarray(frames, dtype=xp.float32)[:, top : h - bottom, left : w - right], h, w, xp)


def rotate_frames(frames: Any, quarter_turns: int, xp: Any) -> Any:
    """Frames turned ``quarter_turns`` x 90 degrees anticlockwise, scaled back to their size.

    A copy turned on its side was scaled to the working size as a portrait picture;
    turning it back and scaling to the working size again samples the footage on
    the same axes as the library's (less sharply across, which pooling hides).
    """
    h, w = frames.shape[1:3]
    turned = xp.rot90(xp.asarray(frames, dtype=xp.float32), quarter_turns % 4, axes=(1, 2))
    return resize_frames(xp.ascontiguousarray(turned), h, w, xp)

"""Block descriptors from a family of hand-made 3-D convolution kernels.

A block is ``frames_per_block`` consecutive analysis frames (0.5 s by default). Seven
kernels are applied inside each block:

=========  ===============================================================
motion_r   -1 at (t-1, y, x), +1 at (t+1, y, x+1)
motion_l   -1 at (t-1, y, x), +1 at (t+1, y, x-1)
motion_u   -1 at (t-1, y, x), +1 at (t+1, y-1, x)
motion_d   -1 at (t-1, y, x), +1 at (t+1, y+1, x)
laplacian  4-neighbour Laplacian, stacked over frames t-1, t, t+1
inversion  2-frame difference: +1 at (t, y, x), -1 at (t-1, y, x)
sobel      Sobel, stacked over frames t-1, t, t+1
=========  ===============================================================

``seed`` is the original experiment: the raw linear responses summed over the valid
region, 7 numbers per block. Zero-sum kernels make that sum collapse to boundary
terms and global brightness change, so it barely discriminates; it is kept for
comparison.

``v2`` keeps the kernels but makes the descriptor discriminative and robust:
each block is normalised for brightness and contrast, responses are rectified
(absolute value; the Sobel channel is the gradient magnitude ``|Sx| + |Sy|``),
averaged over time and pooled over a fine grid of cells (8 x 8) of the
(aspect-free) working frame. Those cells are what an index stores; the vectors it
searches (4 x 4, and parts of the frame) and the detail it verifies with (8 x 8) are
pooled and finished from them (:mod:`vsearch.cells`).

Every response is computed once per run of three frames (:func:`frame_responses`), so
the blocks of any phase, as a query clip needs all five, cost one pass
(:func:`block_cells`).

Before description, ``v2`` frames have their letterbox/pillarbox bars cut off
(:func:`vsearch.frames.detect_borders`, on a video's first chunk or on the query
clip), so a boxed copy describes like its source.

All functions take and return arrays of the namespace ``xp`` (NumPy or CuPy) and
avoid Python loops over frames or pixels.

:class:`KernelExtractor` puts them behind the extractor interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import IndexConfig
from .base import Extractor


@dataclass(frozen=True)
class FrameResponses:
    """Rectified kernel responses of a run of frames, pooled on grids.

    ``runs[grid]``: ``(frames - 2, 6, *grid)``, the six 3-frame kernels (motion right,
    left, up, down; Laplacian; Sobel magnitude) centred on each frame but the first and
    last; ``pairs[grid]``: ``(frames - 1, *grid)``, the 2-frame inversion of each pair;
    ``energy``: ``(frames, 2)`` float64, each frame's pixel sum and sum of squares.
    """

    runs: dict
    pairs: dict
    energy: Any
    pixels: int

KERNEL_NAMES = ("motion_r", "motion_l", "motion_u", "motion_d", "laplacian", "inversion", "sobel")

# Brightness/contrast normalisation divides by the block's standard deviation plus
# this floor (in grey levels), so flat or black blocks are not blown up into noise.
_CONTRAST_FLOOR = 4.0


def reference_kernels() -> dict[str, np.ndarray]:
    """The seven kernels as explicit (t, y, x) correlation arrays.

    The fast implementations below use array shifts instead; tests check both agree.
    ``inversion`` has 2 taps in time, the others 3. Sobel is the x-derivative; ``v2``
    also uses its transpose for the gradient magnitude.
    """
    k = {name: np.zeros((3, 3, 3), np.float32) for name in KERNEL_NAMES if name != "inversion"}
    for name, (dy, dx) in {"motion_r": (0, 1), "motion_l": (0, -1), "motion_u": (-1, 0), "motion_d": (1, 0)}.items():
        k[name][0, 1, 1] = -1.0
        k[name][2, 1 + dy, 1 + dx] = 1.0
    lap = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float32)
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
    k["laplacian"][:] = lap
    k["sobel"][:] = sobel
    inversion = np.zeros((2, 3, 3), np.float32)
    inversion[0, 1, 1], inversion[1, 1, 1] = -1.0, 1.0
    k["inversion"] = inversion
    return {name: k[name] for name in KERNEL_NAMES}


def _lap(x: Any) -> Any:
    c = x[..., 1:-1, 1:-1]
    return x[..., :-2, 1:-1] + x[..., 2:, 1:-1] + x[..., 1:-1, :-2] + x[..., 1:-1, 2:] - 4.0 * c


def _sobel_x(x: Any) -> Any:
    d = x[..., :, 2:] - x[..., :, :-2]
    return d[..., :-2, :] + 2.0 * d[..., 1:-1, :] + d[..., 2:, :]


def _sobel_y(x: Any) -> Any:
    d = x[..., 2:, :] - x[..., :-2, :]
    return d[..., :, :-2] + 2.0 * d[..., :, 1:-1] + d[..., :, 2:]


def linear_responses(blocks: Any) -> dict[str, Any]:
    """Valid-region correlation of every kernel with each block.

    ``blocks`` is ``(n_blocks, frames, H, W)``; each output is
    ``(n_blocks, T, H-2, W-2)`` with ``T = frames-2`` (``frames-1`` for inversion).
    ``sobel_y`` is returned as well for the gradient magnitude.
    """
    prev, cur, nxt = blocks[:, :-2], blocks[:, 1:-1], blocks[:, 2:]
    center = prev[..., 1:-1, 1:-1]
    stacked = prev + cur + nxt  # stacking a 2-D kernel over 3 frames = applying it to their sum
    return {
        "motion_r": nxt[..., 1:-1, 2:] - center,
        "motion_l": nxt[..., 1:-1, :-2] - center,
        "motion_u": nxt[..., :-2, 1:-1] - center,
        "motion_d": nxt[..., 2:, 1:-1] - center,
        "laplacian": _lap(stacked),
        "inversion": blocks[:, 1:, 1:-1, 1:-1] - blocks[:, :-1, 1:-1, 1:-1],
        "sobel": _sobel_x(stacked),
        "sobel_y": _sobel_y(stacked),
    }


def _as_blocks(frames: Any, frames_per_block: int) -> Any:
    n_blocks = frames.shape[0] // frames_per_block
    used = frames[: n_blocks * frames_per_block]
    return used.reshape(n_blocks, frames_per_block, frames.shape[1], frames.shape[2])


def seed_descriptors(blocks: Any, xp: Any) -> Any:
    """Original descriptor: each raw linear response summed over its valid region."""
    resp = linear_responses(blocks)
    cols = [resp[name].sum(axis=(1, 2, 3)) for name in KERNEL_NAMES]
    return xp.stack(cols, axis=1).astype(xp.float32)


def _grid_pool(maps: Any, grid: tuple[int, int]) -> Any:
    """Mean over a ``grid`` of cells; maps is (n, C, H, W) -> (n, C, gh, gw)."""
    gh, gw = grid
    n, c, h, w = maps.shape
    ch, cw = h // gh, w // gw
    # The few leftover rows/cols are split evenly between both borders.
    y0, x0 = (h - ch * gh) // 2, (w - cw * gw) // 2
    cropped = maps[:, :, y0 : y0 + ch * gh, x0 : x0 + cw * gw]
    return cropped.reshape(n, c, gh, ch, gw, cw).mean(axis=(3, 5))


def frame_responses(frames: Any, grids: tuple[tuple[int, int], ...], xp: Any) -> FrameResponses:
    """Rectified kernel responses of every run of frames in ``frames`` ((n, H, W) grey),
    each pooled on each of ``grids``: computed once, whatever phase blocks start at.

    The kernels are zero-sum, so the brightness and contrast normalisation of a block
    (subtract its mean, divide by its standard deviation plus a floor) divides each
    response by a number that depends on the block only: responses are pooled raw,
    and :func:`block_cells` applies it per block from the frames' pixel sums.
    """
    frames = xp.asarray(frames, dtype=xp.float32)
    n = frames.shape[0]
    flat = frames.reshape(n, -1).astype(xp.float64)
    energy = xp.stack([flat.sum(axis=1), (flat * flat).sum(axis=1)], axis=1)
    runs: dict[tuple[int, int], Any] = {}
    pairs: dict[tuple[int, int], Any] = {}
    if n >= 3:
        prev, cur, nxt = frames[:-2], frames[1:-1], frames[2:]
        centre = prev[:, 1:-1, 1:-1]
        stacked = prev + cur + nxt  # a 2-D kernel stacked over 3 frames = applied to their sum
        maps = (
            lambda: xp.abs(nxt[:, 1:-1, 2:] - centre),
            lambda: xp.abs(nxt[:, 1:-1, :-2] - centre),
            lambda: xp.abs(nxt[:, :-2, 1:-1] - centre),
            lambda: xp.abs(nxt[:, 2:, 1:-1] - centre),
            lambda: xp.abs(_lap(stacked)),
            lambda: xp.abs(_sobel_x(stacked)) + xp.abs(_sobel_y(stacked)),
        )
        pooled = {grid: [] for grid in grids}
        for make in maps:  # one full-size map at a time: memory stays a few frames' worth
            response = make()
            for grid in grids:
                pooled[grid].append(_grid_pool(response[:, None], grid)[:, 0])
        runs = {grid: xp.stack(channels, axis=1) for grid, channels in pooled.items()}
    if n >= 2:
        change = xp.abs(frames[1:, 1:-1, 1:-1] - frames[:-1, 1:-1, 1:-1])
        pairs = {grid: _grid_pool(change[:, None], grid)[:, 0] for grid in grids}
    return FrameResponses(runs=runs, pairs=pairs, energy=energy, pixels=frames.shape[1] * frames.shape[2])


def block_cells(responses: FrameResponses, grid: tuple[int, int], frames_per_block: int, xp: Any, *,
                phase: int = 0) -> Any:
    """The normalised, rectified, time-averaged responses of each complete block whose
    first frame is ``phase + k * frames_per_block``, pooled on ``grid``:
    ``(blocks, channels, *grid)`` float32, before finishing (see :mod:`vsearch.cells`)."""
    fpb = frames_per_block
    count = max((len(responses.energy) - phase) // fpb, 0)
    if count == 0 or not responses.runs:
        return xp.zeros((0, len(KERNEL_NAMES), *grid), dtype=xp.float32)
    first = phase + xp.arange(count) * fpb
    runs = responses.runs[grid][first[:, None] + xp.arange(fpb - 2)[None, :]].mean(axis=1)
    change = responses.pairs[grid][first[:, None] + xp.arange(fpb - 1)[None, :]].mean(axis=1)
    sums = responses.energy[first[:, None] + xp.arange(fpb)[None, :]].sum(axis=1)
    size = fpb * responses.pixels
    mean = sums[:, 0] / size
    std = xp.sqrt(xp.maximum(sums[:, 1] / size - mean * mean, 0.0))
    cells = xp.concatenate([runs[:, :5], change[:, None], runs[:, 5:]], axis=1)
    return (cells / (std + _CONTRAST_FLOOR)[:, None, None, None]).astype(xp.float32)


def block_descriptors(frames: Any, config: IndexConfig, xp: Any) -> Any:
    """Descriptors of every complete block in ``frames`` ((n, H, W) float32 grey).

    Returns ``(n // frames_per_block, config.block_dim)`` float32 (``v2``: the cells,
    unfinished; ``seed``: seven sums); trailing frames that do not fill a block are ignored.
    """
    if config.features == "seed":
        blocks = _as_blocks(xp.asarray(frames, dtype=xp.float32), config.frames_per_block)
        if blocks.shape[0] == 0:
            return xp.zeros((0, config.block_dim), dtype=xp.float32)
        return seed_descriptors(blocks, xp)
    responses = frame_responses(frames, (config.cells,), xp)
    cells = block_cells(responses, config.cells, config.frames_per_block, xp)
    return cells.reshape(cells.shape[0], config.block_dim)


class KernelExtractor(Extractor):
    """Seven kernels per 0.5 s block on grey frames; computed with NumPy or CuPy."""

    edited_readings = frozenset({"rotations", "inset"})

    def describe(self, frames: Any) -> Any:
        return block_descriptors(frames, self.config, self.device.xp)

    def describe_cells(self, frames: Any, grids: tuple[tuple[int, int], ...]) -> list[dict]:
        """``v2`` only: for each sub-block phase (blocks starting at frame 0, 1, ...
        ``frames_per_block - 1``), the unfinished cells of its blocks on each of
        ``grids`` (``{grid: (blocks, channels, *grid)}``, NumPy), from one pass over
        the frames."""
        xp, fpb = self.device.xp, self.config.frames_per_block
        responses = frame_responses(frames, grids, xp)
        return [{grid: self.device.to_numpy(block_cells(responses, grid, fpb, xp, phase=phase)) for grid in grids}
                for phase in range(fpb)]

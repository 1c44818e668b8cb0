"""Kernel block codes as channel x cell maps, and the vectors made from them.

A ``v2`` block is stored as its seven kernel channels pooled over a fine grid of
cells (8 x 8 by default, :attr:`IndexConfig.cells`): the mean rectified response
of each cell, before any finishing. Everything the index searches and the query
path compares is derived from those cells, so nothing needs decoding again:

- the **search vector** of a block: the cells pooled over a region onto the coarse
  search grid (4 x 4, :attr:`IndexConfig.grid`) and finished;
- the **detail vector**: the cells of a region at the region's own grid, finished:
  8 x 8 for the whole frame, what tells two talking heads in one studio apart.

*Finishing* takes the square root of each cell's mean and centres each channel over
the cells, so a block is described by where each kind of motion and structure is,
not by how much there is. Pooling, mirroring and half turns commute with finishing
as long as the same cells are pooled, so they can be applied before or after it.

*Regions* (:data:`REGIONS`) are parts of the library frame that a copy may show alone:
a crop of 70-90 % of each side at any place (the centre and the four corners at
75 %), and a portrait reframe of landscape footage (four vertical slices of a third
of the width). The index holds search vectors of regions for a share of the windows
(``windows.REGION_STRIDE``), next to those of the whole frame.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

#: Channels in stored order (see :mod:`vsearch.extractors.kernels`).
CHANNELS = ("motion_r", "motion_l", "motion_u", "motion_d", "laplacian", "inversion", "sobel")

#: Channel order of the mirrored picture (right and left motion swap) and of the
#: picture turned by half a turn (right/left and up/down swap); the other channels
#: are symmetric under both.
_MIRRORED = (1, 0, 2, 3, 4, 5, 6)
_HALF_TURNED = (1, 0, 3, 2, 4, 5, 6)


@dataclass(frozen=True)
class Region:
    """A part of the frame: ``bounds`` (top, bottom, left, right) as shares of the
    frame, and ``detail``, the grid (rows, cols) its detail vectors are compared at:
    as many cells as it covers of the stored grid, so no cell is split."""

    code: int
    name: str
    bounds: tuple[float, float, float, float]
    detail: tuple[int, int]

    @property
    def portrait(self) -> bool:
        """A vertical slice of the frame: what a portrait reframe of landscape footage shows."""
        return self.detail[1] < self.detail[0]


FRAME = Region(0, "frame", (0.0, 1.0, 0.0, 1.0), (8, 8))

#: Every region, by code (the code goes into a window's id). A crop keeping 70 % or
#: more of each side lies within about 1/8 of the frame of one of the 75 % regions;
#: a 9:16 reframe (31.6 % of a 16:9 frame's width) within 1/8 of one of four slices.
REGIONS = (
    FRAME,
    Region(1, "centre", (0.125, 0.875, 0.125, 0.875), (6, 6)),
    Region(2, "top-left", (0.0, 0.75, 0.0, 0.75), (6, 6)),
    Region(3, "top-right", (0.0, 0.75, 0.25, 1.0), (6, 6)),
    Region(4, "bottom-left", (0.25, 1.0, 0.0, 0.75), (6, 6)),
    Region(5, "bottom-right", (0.25, 1.0, 0.25, 1.0), (6, 6)),
    Region(6, "left", (0.0, 1.0, 0.0, 1 / 3), (8, 3)),
    Region(7, "left-middle", (0.0, 1.0, 2 / 9, 5 / 9), (8, 3)),
    Region(8, "right-middle", (0.0, 1.0, 4 / 9, 7 / 9), (8, 3)),
    Region(9, "right", (0.0, 1.0, 2 / 3, 1.0), (8, 3)),
)


def crop_region(bounds: tuple[float, float, float, float], cells: tuple[int, int] = (8, 8)) -> Region:
    """The region of any ``bounds`` (a crop found by refining one of :data:`REGIONS`),
    compared at as many cells as it covers of a ``cells`` grid (two at least)."""
    bounds = tuple(float(b) for b in bounds)
    if bounds == FRAME.bounds:
        return FRAME
    top, bottom, left, right = bounds
    detail = (max(2, round((bottom - top) * cells[0])), max(2, round((right - left) * cells[1])))
    return Region(-1, "crop", bounds, detail)


@functools.lru_cache(maxsize=256)
def _axis_weights(cells: int, low: float, high: float, parts: int) -> np.ndarray:
    """``(parts, cells)`` weights averaging the cells ``[low, high)`` (in cell units,
    fractional) into ``parts`` equal parts."""
    edges = low + (high - low) * np.arange(parts + 1) / parts
    starts, ends = edges[:-1, None], edges[1:, None]
    cell = np.arange(cells)[None, :]
    overlap = np.clip(np.minimum(ends, cell + 1) - np.maximum(starts, cell), 0.0, None)
    weights = overlap / overlap.sum(axis=1, keepdims=True)
    weights.setflags(write=False)
    return weights.astype(np.float32)


def pool(cells: np.ndarray, grid: tuple[int, int], bounds: tuple[float, float, float, float] = FRAME.bounds
         ) -> np.ndarray:
    """Cells ``(n, channels, rows, cols)`` averaged over ``bounds`` onto ``grid``:
    ``(n, channels, *grid)``. Whole cells stay whole (a 2 x 2 block of an 8 x 8 grid
    is exactly one cell of 4 x 4); a part of a cell counts with the share it covers."""
    top, bottom, left, right = bounds
    n_rows, n_cols = cells.shape[-2:]
    if grid == (n_rows, n_cols) and bounds == FRAME.bounds:
        return cells
    rows = _axis_weights(n_rows, top * n_rows, bottom * n_rows, grid[0])
    cols = _axis_weights(n_cols, left * n_cols, right * n_cols, grid[1])
    return np.einsum("yi,ncij,xj->ncyx", rows, cells, cols, optimize=True).astype(np.float32, copy=False)


def finish(pooled: np.ndarray) -> np.ndarray:
    """Square root of each cell, each channel centred over the cells, flattened:
    ``(n, channels * rows * cols)`` float32."""
    rooted = np.sqrt(np.maximum(pooled, 0.0))
    centred = rooted - rooted.mean(axis=(-2, -1), keepdims=True)
    return np.ascontiguousarray(centred.reshape(len(centred), int(np.prod(centred.shape[1:]))), dtype=np.float32)


def as_cells(blocks: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Flat block vectors ``(n, channels * rows * cols)`` as ``(n, channels, rows, cols)``."""
    return blocks.reshape(len(blocks), len(CHANNELS), *grid)


def mirrored(cells: np.ndarray) -> np.ndarray:
    """Cells of the horizontally mirrored picture (finished or not)."""
    return np.ascontiguousarray(cells[:, list(_MIRRORED), :, ::-1])


def half_turned(cells: np.ndarray) -> np.ndarray:
    """Cells of the picture turned by 180 degrees (finished or not)."""
    return np.ascontiguousarray(cells[:, list(_HALF_TURNED), ::-1, ::-1])


def region_vectors(blocks: np.ndarray, cells: tuple[int, int], region: Region, grid: tuple[int, int]
                   ) -> np.ndarray:
    """Finished block vectors of ``region`` on ``grid`` from stored blocks ``(n, channels*cells)``."""
    return finish(pool(as_cells(blocks, cells), grid, region.bounds))

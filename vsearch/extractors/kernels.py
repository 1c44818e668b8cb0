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

``v1`` keeps the kernels but makes the descriptor discriminative and robust:
each block is normalised for brightness and contrast, responses are rectified
(absolute value; the Sobel channel is the gradient magnitude ``|Sx| + |Sy|``),
averaged over time, pooled over a coarse spatial grid of the (aspect-free) working
frame, square-rooted and centred per channel across the grid cells, so that a block
is described by *where* each kind of motion and structure is, not by how much
there is overall. Resolution changes matter little because the working frame is
small and pooled.

Before description, ``v1`` frames have their letterbox/pillarbox bars cut off
(:func:`vsearch.frames.detect_borders`, on a video's first chunk or on the query
clip), so a boxed copy describes like its source.

All functions take and return arrays of the namespace ``xp`` (NumPy or CuPy) and
avoid Python loops over frames or pixels.

:class:`KernelExtractor` puts them behind the extractor interface.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import IndexConfig
from .base import Extractor

KERNEL_NAMES = ("motion_r", "motion_l", "motion_u", "motion_d", "laplacian", "inversion", "sobel")

# Brightness/contrast normalisation divides by the block's standard deviation plus
# this floor (in grey levels), so flat or black blocks are not blown up into noise.
_CONTRAST_FLOOR = 4.0


def reference_kernels() -> dict[str, np.ndarray]:
    """The seven kernels as explicit (t, y, x) correlation arrays.

    The fast implementations below use array shifts instead; tests check both agree.
    ``inversion`` has 2 taps in time, the others 3. Sobel is the x-derivative; ``v1``
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
    ``sobel_y`` is returned as well for the ``v1`` gradient magnitude.
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


def v1_descriptors(blocks: Any, grid: tuple[int, int], xp: Any) -> Any:
    """Rectified, grid-pooled, brightness/contrast-normalised kernel responses."""
    mean = blocks.mean(axis=(1, 2, 3), keepdims=True)
    std = blocks.std(axis=(1, 2, 3), keepdims=True)
    norm = (blocks - mean) / (std + _CONTRAST_FLOOR)
    resp = linear_responses(norm)
    channels = [xp.abs(resp[name]).mean(axis=1) for name in KERNEL_NAMES[:-1]]
    channels.append((xp.abs(resp["sobel"]) + xp.abs(resp["sobel_y"])).mean(axis=1))
    pooled = _grid_pool(xp.stack(channels, axis=1), grid)
    pooled = xp.sqrt(pooled)
    centred = pooled - pooled.mean(axis=(2, 3), keepdims=True)
    return centred.reshape(centred.shape[0], -1).astype(xp.float32)


def mirror_descriptors(blocks: np.ndarray, config: IndexConfig) -> np.ndarray:
    """Descriptors of the horizontally mirrored video, from the original's.

    Mirroring swaps motion_r and motion_l and reverses the grid's columns; the other
    kernels are mirror-symmetric and the valid region and grid crop are centred, so
    for ``v1`` this equals describing flipped frames (tests check it) at no cost.
    """
    if config.features != "v1":
        raise ValueError("mirroring by permutation needs v1 descriptors")
    gh, gw = config.grid
    order = [KERNEL_NAMES.index(n) for n in ("motion_l", "motion_r", "motion_u", "motion_d",
                                             "laplacian", "inversion", "sobel")]
    cube = blocks.reshape(len(blocks), len(KERNEL_NAMES), gh, gw)
    return np.ascontiguousarray(cube[:, order, :, ::-1].reshape(blocks.shape))


def block_descriptors(frames: Any, config: IndexConfig, xp: Any) -> Any:
    """Descriptors of every complete block in ``frames`` ((n, H, W) float32 grey).

    Returns ``(n // frames_per_block, config.block_dim)`` float32; trailing frames
    that do not fill a block are ignored.
    """
    blocks = _as_blocks(xp.asarray(frames, dtype=xp.float32), config.frames_per_block)
    if blocks.shape[0] == 0:
        return xp.zeros((0, config.block_dim), dtype=xp.float32)
    if config.features == "seed":
        return seed_descriptors(blocks, xp)
    return v1_descriptors(blocks, config.grid, xp)


class KernelExtractor(Extractor):
    """Seven kernels per 0.5 s block on grey frames; computed with NumPy or CuPy."""

    edited_readings = frozenset({"rotations", "inset"})

    def describe(self, frames: Any) -> Any:
        return block_descriptors(frames, self.config, self.device.xp)

"""Kernels and descriptors against direct reference computations."""

from __future__ import annotations

import numpy as np
import pytest

from vsearch.config import IndexConfig
from vsearch.device import gpu_available, resolve_device, GPU_TOLERANCE
from vsearch.extractors.kernels import (
    KERNEL_NAMES,
    block_descriptors,
    linear_responses,
    reference_kernels,
    seed_descriptors,
)


def correlate_valid(volume: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Plain nested-loop 3-D correlation over the valid region (the slow reference)."""
    t, h, w = volume.shape
    kt, kh, kw = kernel.shape
    out = np.zeros((t - kt + 1, h - kh + 1, w - kw + 1), np.float64)
    for z in range(out.shape[0]):
        for y in range(out.shape[1]):
            for x in range(out.shape[2]):
                out[z, y, x] = np.sum(volume[z : z + kt, y : y + kh, x : x + kw] * kernel)
    return out


@pytest.fixture()
def tiny_block() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(1, 5, 7, 9)).astype(np.float32)


def test_fast_kernels_equal_direct_correlation(tiny_block):
    fast = linear_responses(tiny_block)
    for name, kernel in reference_kernels().items():
        expected = correlate_valid(tiny_block[0].astype(np.float64), kernel)
        np.testing.assert_allclose(fast[name][0], expected, rtol=0, atol=1e-3, err_msg=name)


def test_kernels_are_the_documented_family():
    k = reference_kernels()
    assert tuple(k) == KERNEL_NAMES
    # Motion kernels: one -1 tap in frame t-1 and one +1 tap in frame t+1, one pixel apart.
    for name in ("motion_r", "motion_l", "motion_u", "motion_d"):
        neg, pos = np.argwhere(k[name] == -1), np.argwhere(k[name] == 1)
        assert len(neg) == len(pos) == 1 and neg[0][0] == 0 and pos[0][0] == 2
        assert np.abs(neg[0][1:] - pos[0][1:]).sum() == 1
    assert k["inversion"].shape[0] == 2 and k["inversion"].sum() == 0
    for name in ("laplacian", "sobel"):
        assert np.allclose(k[name][0], k[name][1]) and np.allclose(k[name][1], k[name][2])


def test_seed_descriptor_is_sum_of_raw_responses(tiny_block):
    seed = seed_descriptors(tiny_block, np)
    expected = [correlate_valid(tiny_block[0].astype(np.float64), k).sum() for k in reference_kernels().values()]
    np.testing.assert_allclose(seed[0], expected, rtol=1e-5, atol=1e-2)


def _random_frames(seed: int, n: int = 20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(120, 40, size=(n, 96, 128)).cumsum(axis=2) / 8
    return np.clip(base - base.min() + 20, 0, 235).astype(np.float32)


def test_v1_ignores_brightness_offset():
    config = IndexConfig()
    frames = _random_frames(1)
    a = block_descriptors(frames, config, np)
    b = block_descriptors(frames + 17.0, config, np)
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_v1_nearly_ignores_contrast_but_sees_where_structure_is():
    config = IndexConfig()
    frames = _random_frames(1)
    flattened = frames.copy()
    flattened[:, :40, :50] = 128 + (flattened[:, :40, :50] - 128) * 0.2  # one corner loses texture
    a = block_descriptors(frames, config, np)
    assert a.shape == (4, config.block_dim)

    def change(other: np.ndarray) -> float:
        return float(np.linalg.norm(a - block_descriptors(other, config, np)) / np.linalg.norm(a))

    assert change(frames * 0.8) < 0.03
    assert change(flattened) > 0.3
    assert change(frames[:, :, ::-1]) > 0.3


def test_descriptors_are_deterministic():
    config = IndexConfig()
    frames = _random_frames(3)
    assert np.array_equal(block_descriptors(frames, config, np), block_descriptors(frames.copy(), config, np))


def test_incomplete_trailing_block_is_ignored():
    config = IndexConfig()
    frames = _random_frames(4, n=config.frames_per_block * 2 + 3)
    assert block_descriptors(frames, config, np).shape[0] == 2


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="no CUDA GPU with CuPy")
@pytest.mark.parametrize("features", ["v1", "seed"])
def test_gpu_matches_cpu(features):
    config = IndexConfig(features=features)
    frames = _random_frames(5, n=40)
    gpu = resolve_device("gpu")
    cpu_out = block_descriptors(frames, config, np)
    gpu_out = gpu.to_numpy(block_descriptors(gpu.asarray(frames), config, gpu.xp))
    scale = max(1.0, float(np.abs(cpu_out).max()))
    assert np.abs(cpu_out - gpu_out).max() <= GPU_TOLERANCE * scale


def test_explicit_gpu_without_gpu_is_an_error():
    from vsearch.errors import DeviceError

    if gpu_available():
        pytest.skip("a GPU is present")
    with pytest.raises(DeviceError):
        resolve_device("gpu")


def test_letterbox_and_pillarbox_bars_are_detected_and_removed():
    from vsearch.frames import detect_borders, remove_borders

    frames = _random_frames(6)
    boxed = frames.copy()
    boxed[:, :12], boxed[:, -12:] = 0.0, 0.0  # letterbox
    assert detect_borders(boxed) == (13, 13, 0, 0)  # one pixel of edge blend more
    pillar = frames.copy()
    pillar[:, :, :16], pillar[:, :, -16:] = 16.0, 16.0
    assert detect_borders(pillar) == (0, 0, 17, 17)
    restored = remove_borders(boxed, (12, 12, 0, 0), np)
    assert restored.shape == frames.shape
    # Content that is merely dark, or bars on one side only, is left alone.
    dark = frames * 0.05
    assert detect_borders(dark) == (0, 0, 0, 0)
    one_sided = frames.copy()
    one_sided[:, :20] = 0.0
    assert detect_borders(one_sided) == (0, 0, 0, 0)
    assert detect_borders(np.zeros_like(frames)) == (0, 0, 0, 0)  # a black title card


def test_mirrored_descriptors_equal_describing_flipped_frames():
    from vsearch.extractors.kernels import mirror_descriptors

    config = IndexConfig()
    frames = _random_frames(7)
    direct = block_descriptors(frames[:, :, ::-1].copy(), config, np)
    permuted = mirror_descriptors(block_descriptors(frames, config, np), config)
    np.testing.assert_allclose(permuted, direct, atol=1e-4)


def _smooth_moving_frames(n: int, seed: int, h: int = 96, w: int = 128) -> np.ndarray:
    """Textured grey footage panning diagonally, 3 pixels per frame (like real video)."""
    rng = np.random.default_rng(seed)
    big = rng.uniform(0, 255, size=(h // 4 + 3 * n, w // 4 + 3 * n)).astype(np.float32)
    big = np.kron(big, np.ones((4, 4), np.float32))  # 4-pixel texture
    big = (big + np.roll(big, 1, 0) + np.roll(big, 1, 1) + np.roll(big, (1, 1), (0, 1))) / 4
    return np.stack([big[3 * t : 3 * t + h, 3 * t : 3 * t + w] for t in range(n)])


def test_picture_in_picture_inset_is_found_and_ordinary_footage_is_not():
    from vsearch.frames import detect_inset

    background = _smooth_moving_frames(30, seed=1)
    inset = _smooth_moving_frames(30, seed=2)[:, ::2, ::2]  # the clip at half size
    pip = background.copy()
    pip[:, 10:58, 13:77] = inset  # rows 10-57, columns 13-76 (like overlay x=W*0.1)
    top, bottom, left, right = detect_inset(pip)
    assert abs(top - 10) <= 1 and abs(bottom - (96 - 58)) <= 1
    assert abs(left - 13) <= 1 and abs(right - (128 - 77)) <= 1
    assert detect_inset(background) is None
    assert detect_inset(_random_frames(6)) is None
    # A flat plate (a logo or caption box) has a border too, but is no picture.
    plate = background.copy()
    plate[:, 10:58, 13:77] = 255.0
    assert detect_inset(plate) is None


def test_still_overlay_cells_are_found_on_moving_footage_only():
    from vsearch.frames import detect_static_overlay

    footage = _smooth_moving_frames(30, seed=3)
    boxed = footage.copy()
    boxed[:, 5:30, 77:120] = 255.0  # a logo plate in the top-right corner
    covered = detect_static_overlay(boxed, (4, 4))
    assert covered is not None and covered[0, 3] and covered[0, 2] and not covered[2:].any()
    assert detect_static_overlay(footage, (4, 4)) is None
    # a still shot is not an overlay, however still
    still = np.repeat(footage[:1], 30, axis=0)
    assert detect_static_overlay(still, (4, 4)) is None


def test_masked_windows_ignore_what_the_overlay_covers():
    from vsearch.search.overlay import mask_windows

    config = IndexConfig()
    rng = np.random.default_rng(5)
    windows = rng.normal(size=(4, config.dim)).astype(np.float32)
    covered = np.zeros(config.grid, bool)
    covered[0, 3] = True
    changed = windows.reshape(4, config.window_blocks, 7, -1).copy()
    changed[..., 3] += rng.normal(size=changed[..., 3].shape).astype(np.float32) * 5  # cell (0, 3) only
    a = mask_windows(windows, covered, config)
    b = mask_windows(changed.reshape(4, -1), covered, config)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(mask_windows(windows, np.zeros(config.grid, bool), config),
                           mask_windows(changed.reshape(4, -1), np.zeros(config.grid, bool), config))


def test_only_pictures_that_do_not_change_at_all_are_frozen():
    from vsearch.frames import frozen_blocks

    rng = np.random.default_rng(4)
    moving = rng.integers(0, 255, (10, 12, 16), dtype=np.uint8)
    held = np.repeat(moving[:1], 10, axis=0)
    still_camera = np.clip(held.astype(int) + rng.integers(-1, 2, held.shape), 0, 255).astype(np.uint8)
    frames = np.concatenate([moving, held, still_camera])  # 6 blocks of 5 frames
    assert frozen_blocks(frames, 5).tolist() == [False, False, True, True, False, False]
    assert frozen_blocks(frames[:4], 5).tolist() == []


def test_turning_frames_back_by_quarter_turns():
    from vsearch.frames import rotate_frames

    rng = np.random.default_rng(0)
    frames = rng.uniform(0, 255, size=(3, 96, 128)).astype(np.float32)
    # Half a turn keeps the shape: both axes reversed, exactly.
    assert np.array_equal(rotate_frames(frames, 2, np), frames[:, ::-1, ::-1])
    # A quarter turn of a landscape frame is portrait: scaled back to the frame's size.
    turned = rotate_frames(frames, 1, np)
    assert turned.shape == frames.shape
    # A picture turned clockwise (as ffmpeg's transpose=1 does) comes back upright.
    ramp = np.tile(np.arange(128, dtype=np.float32), (1, 96, 1))  # bright to the right
    clockwise = np.rot90(ramp, -1, axes=(1, 2))  # bright at the bottom
    back = rotate_frames(resize(clockwise), 1, np)
    assert back[0, 48, 120] > back[0, 48, 8] + 50 and abs(back[0, 10, 64] - back[0, 90, 64]) < 5


def resize(frames):
    from vsearch.frames import resize_frames

    return resize_frames(frames, 96, 128, np)


def test_mirroring_no_descriptors_gives_none():
    from vsearch.extractors.kernels import mirror_descriptors

    config = IndexConfig()
    assert mirror_descriptors(np.zeros((0, config.block_dim), np.float32), config).shape == (0, config.block_dim)


def test_inset_against_the_frame_edge_or_with_a_plain_side_is_found():
    from vsearch.frames import detect_inset

    background = _smooth_moving_frames(30, seed=1)
    inset = _smooth_moving_frames(30, seed=2)[:, ::2, ::2]  # 48 x 64, the frame's aspect
    edge = background.copy()
    edge[:, 20:68, 0:64] = inset  # against the left edge: three sides show
    top, bottom, left, right = detect_inset(edge)
    assert abs(top - 20) <= 1 and abs(bottom - (96 - 68)) <= 1 and left == 0 and abs(right - 64) <= 1
    plain_side = background.copy()
    plain_side[:, 10:58, 30:94] = inset
    plain_side[:, 10:58, 30:36] = background[:, 10:58, 24:30]  # its left side blends into the background
    found = detect_inset(plain_side)
    assert found is not None and abs(found[0] - 10) <= 1 and abs(found[1] - 38) <= 1

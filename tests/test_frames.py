"""Picture helpers on hand-made frames: bars, insets, still overlays, frozen blocks, turns."""

from __future__ import annotations

import numpy as np

from tests.conftest import random_frames


def test_letterbox_and_pillarbox_bars_are_detected_and_removed():
    from vsearch.frames import detect_borders, remove_borders

    frames = random_frames(6)
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
    assert detect_inset(random_frames(6)) is None
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

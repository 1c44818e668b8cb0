"""The player's timeline: which frame is on screen at each analysis instant, and what is lost."""

from __future__ import annotations

import numpy as np
import pytest

from vsearch.decode.base import DecodedFrame, VideoInfo, rotate_image, stored_size
from vsearch.decode.sampler import FrameSampler


def _frame(time, number, duration=None):
    return DecodedFrame(time=time, duration=duration, image=lambda: np.full((2, 2), number, np.uint8))


def _run(times, *, rates=(10.0,), errors=None, expected_end=None, step=0.04, explicit=None):
    """Feed frames numbered 0.. at ``times``; returns (numbers per grid, end, truncated, sampler)."""
    sampler = FrameSampler(rates=list(rates), times=explicit, nominal_step=step)
    grids = [[] for _ in range(len(rates) + (explicit is not None))]
    errors = errors or [0] * len(times)
    for number, (time, err) in enumerate(zip(times, errors)):
        for e in sampler.add(_frame(time, number), err):
            grids[e.grid] += [int(e.image[0, 0])] * e.count
    emissions, end, truncated = sampler.finish(expected_end)
    for e in emissions:
        grids[e.grid] += [int(e.image[0, 0])] * e.count
    return grids, end, truncated, sampler


def test_the_frame_on_screen_is_the_last_one_at_or_before_each_instant():
    # 25 fps: frame n at n * 0.04. At 10 fps instant k/10 shows frame floor(k * 2.5).
    (numbers,), end, truncated, _ = _run([n * 0.04 for n in range(25)])
    assert numbers == [int(np.floor(k * 2.5 + 1e-9)) for k in range(10)]
    assert end == pytest.approx(1.0) and not truncated


def test_instants_before_the_first_frame_show_the_first_frame():
    # Audio starts 0.84 s before the video: a player shows the first picture there.
    (numbers,), end, _, _ = _run([0.84 + n * 0.04 for n in range(10)])
    assert numbers[:9] == [0] * 9 and numbers[9] == 1  # instant 0.9 s: the frame at 0.88 s
    assert end == pytest.approx(1.24)


def test_several_rates_and_explicit_times_share_one_pass():
    times = [n / 30 for n in range(60)]  # 2 s at 30 fps
    (at10, at9, chosen), _, _, _ = _run(times, rates=(10.0, 9.0), explicit=[1.5, 0.0, 1.999])
    assert len(at10) == 20 and len(at9) == 18
    assert at10[5] == 15 and at9[9] == 30  # 0.5 s and 1.0 s
    assert chosen == [0, 45, 59]  # sorted times: 0.0, 1.5, 1.999


def test_missing_or_backward_timestamps_fall_back_to_the_nominal_step():
    (numbers,), end, _, _ = _run([0.0, None, 0.08, 0.05, 0.16], step=0.04, rates=(25.0,))
    assert numbers == [0, 1, 2, 3, 4]
    assert end == pytest.approx(0.2)


def test_a_gap_with_decoder_errors_is_damaged_but_a_plain_gap_is_a_held_frame():
    times = [n * 0.04 for n in range(25)] + [2.0 + n * 0.04 for n in range(25)]
    clean = _run(times)[3]
    assert clean.damaged == []  # variable frame rate: the picture is held
    errors = [0] * 25 + [3] * 25
    damaged = _run(times, errors=errors)[3]
    assert damaged.damaged == [(pytest.approx(1.0), pytest.approx(2.0))]


def test_a_short_loss_is_not_a_damaged_span():
    times = [n * 0.04 for n in range(25)] + [1.08 + n * 0.04 for n in range(25)]  # one frame lost
    assert _run(times, errors=[0] * 25 + [1] * 25)[3].damaged == []


def test_a_file_ending_before_its_header_says_is_truncated():
    _, end, truncated, _ = _run([n * 0.04 for n in range(50)], expected_end=10.0)
    assert truncated and end == pytest.approx(2.0)
    _, _, truncated, _ = _run([n * 0.04 for n in range(50)], expected_end=2.1)
    assert not truncated  # headers round durations


def test_partial_reason_is_in_a_users_words():
    info = VideoInfo(path="x.mp4", duration=12.4, fps=25, width=4, height=4, frame_count=310,
                     expected_duration=30.0, damaged=((3.0, 3.5), (7.0, 7.3)), truncated=True)
    assert info.partial
    assert info.partial_reason() == "truncated: the file ends at 12.4 s of 30.0 s; damaged: 2 spans skipped (0.8 s in all)"
    assert info.lost[-1] == (12.4, 30.0)
    whole = VideoInfo(path="y.mp4", duration=5.0, fps=25, width=4, height=4, frame_count=125)
    assert not whole.partial and whole.partial_reason() == ""


@pytest.mark.parametrize("rotation, turns", [(0, 0), (90, 1), (180, 2), (270, 3)])
def test_rotation_turns_stored_pictures_counter_clockwise(rotation, turns):
    stored = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(rotate_image(stored, rotation), np.rot90(stored, turns))
    assert stored_size(128, 96, rotation) == ((96, 128) if turns % 2 else (128, 96))

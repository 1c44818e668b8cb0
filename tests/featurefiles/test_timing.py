"""Time axes: the file's own times first, then what the user gives, else a refusal."""

from __future__ import annotations

import numpy as np
import pytest

from vsearch import IndexConfig
from vsearch.errors import VsearchError
from vsearch.featurefiles.read import ImportedFeatures
from vsearch.featurefiles.timing import GIVE_TIMES, FeatureTiming, time_axis

NONE = FeatureTiming()


def test_the_files_own_times_win_over_options():
    stack = FeatureTiming.parse(stack=16, frame_rate=30)
    starts, ends, _ = time_axis(dict(clip_length=np.int64(2), fps=np.float64(29.97)), 3, timing=stack)
    np.testing.assert_allclose(starts, [0, 59 / 29.97, 118 / 29.97])  # int(29.97 * 2) frames a clip
    starts, ends, duration = time_axis(dict(clip_length=2), 3, timing=NONE)  # no fps: seconds as they are
    np.testing.assert_allclose(ends, [2, 4, 6])
    assert duration is None
    starts, ends, _ = time_axis(dict(timestamps_ms=np.array([0.0, 200, 400]), fps=np.array(5.0)), 3, timing=stack)
    np.testing.assert_allclose(ends, [0.2, 0.4, 0.6])
    starts, ends, _ = time_axis(dict(timestamps_ms=np.array([2560.0, 3840, 5120])), 3, timing=NONE, stack_ends=True)
    np.testing.assert_allclose(starts, [0, 1.28, 2.56])
    np.testing.assert_allclose(ends, [2.56, 3.84, 5.12])


def test_options_for_files_without_times_and_a_refusal_without_them():
    np.testing.assert_allclose(time_axis({}, 2, timing=FeatureTiming.parse(rate="2"))[1], [0.5, 1.0])
    np.testing.assert_allclose(time_axis({}, 2, timing=FeatureTiming.parse(clip_seconds=0.96))[0], [0, 0.96])
    starts, ends, _ = time_axis(dict(fps=25.0), 2, timing=FeatureTiming.parse(stack=64, step=32))
    np.testing.assert_allclose(starts, [0, 1.28])
    np.testing.assert_allclose(ends, [2.56, 3.84])
    np.testing.assert_allclose(time_axis(dict(duration=9.0), 3, timing=FeatureTiming.parse(rate="uniform"))[0],
                               [0, 3, 6])
    with pytest.raises(ValueError) as refused:
        time_axis(dict(fps=25.0), 3, timing=NONE)  # a frame rate alone says nothing of the features' spans
    assert str(refused.value) == GIVE_TIMES
    with pytest.raises(ValueError, match="give --frame-rate"):
        time_axis({}, 3, timing=FeatureTiming.parse(stack=16))
    with pytest.raises(ValueError, match=r"timestamps_ms must be \[3\]"):
        time_axis(dict(timestamps_ms=np.arange(4.0)), 3, timing=NONE)
    with pytest.raises(ValueError, match="increasing"):
        time_axis(dict(timestamps_ms=np.array([0.0, 0, 40])), 3, timing=NONE)


@pytest.mark.parametrize("given, message", [
    (dict(rate="fast"), "--rate must be"), (dict(rate="0"), "--rate must be positive"),
    (dict(rate="1", stack=16), "--rate and --stack say the same thing"),
    (dict(frame_rate=30.0), "go with --stack"), (dict(stack=16, step=0), "--step must be positive"),
    (dict(clip_seconds=float("nan")), "--clip-seconds must be positive"),
])
def test_options_are_checked(given, message):
    with pytest.raises(VsearchError, match=message):
        FeatureTiming.parse(**given)


def test_a_block_takes_the_feature_centred_nearest_it():
    """Back to back: the span holding the block's middle; overlapping stacks (2.56 s
    every 1.28 s): the one centred nearest, not the last one started."""
    config = IndexConfig(features="imported", embedding_dim=1)
    features = np.arange(6, dtype=np.float32)[:, None]

    def blocks(starts, length):
        return ImportedFeatures(source="s", video="v", features=features, starts=np.asarray(starts, float),
                                ends=np.asarray(starts, float) + length, duration=6.0, fps=0.0).blocks(config)[:, 0]

    np.testing.assert_array_equal(blocks(np.arange(6.0), 1.0), np.repeat(np.arange(6), 2))
    overlapping = blocks(np.arange(6) * 1.28, 2.56)  # centres 1.28, 2.56, 3.84, ...
    np.testing.assert_array_equal(overlapping, [0, 0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3])

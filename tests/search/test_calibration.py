"""Calibrated scores: a kind of comparison's noise level becomes the default threshold;
a library of learned features measures its own."""

from __future__ import annotations

import numpy as np
import pytest

from vsearch import VideoIndex
from vsearch.cells import FRAME, REGIONS
from vsearch.config import IndexConfig
from vsearch.search.calibration import RAW, calibrate, noise_level
from vsearch.search.tuning import DEFAULT_MIN_SCORE


def test_the_noise_level_becomes_the_default_threshold_and_order_is_kept():
    config = IndexConfig()
    for region in (FRAME, REGIONS[1], REGIONS[6]):
        noise = noise_level(config, region)
        assert calibrate(noise, config, region) == pytest.approx(DEFAULT_MIN_SCORE)
        assert calibrate(1.0, config, region) == pytest.approx(1.0) and calibrate(0.0, config, region) == 0.0
        raw = np.linspace(0, 1, 101)
        assert np.all(np.diff([calibrate(r, config, region) for r in raw]) > 0)
    # A crop tells less apart than the whole frame: the same raw score means less.
    assert calibrate(0.8, config, REGIONS[1]) < calibrate(0.8, config, FRAME)
    # Measured levels win; raw levels leave scores as they are.
    assert calibrate(0.6, config, FRAME, measured={"frame": 0.6}) == pytest.approx(DEFAULT_MIN_SCORE)
    assert calibrate(0.7, config, FRAME, measured=RAW) == pytest.approx(0.7)


def test_a_library_of_a_model_measures_its_noise_as_it_grows(tmp_path):
    from tools.support import cut_clip, make_video

    from tests.extractors.tiny_model import make_tiny_model
    from vsearch.extractors import feature_settings

    videos = [make_video(tmp_path / f"v{i}.mp4", seconds=8, seed=300 + i, size=(160, 120)) for i in range(9)]
    model = make_tiny_model(tmp_path / "tiny.onnx")
    with VideoIndex.open(tmp_path / "ix", settings=feature_settings(f"onnx:{model}"), create=True,
                         device="cpu") as index:
        index.add(videos[:4])
        assert index.noise_levels() is None  # too few videos to say
        index.add(videos[4:])
        measured = index.noise_levels()
        assert measured["videos"] == 9 and 0.0 < measured["levels"]["frame"] < 1.0
        assert index.library().noise == measured["levels"]
        clip = cut_clip(videos[2], tmp_path / "clip.mp4", start=2.2, duration=5.0, crf=23)
        hits = index.query(clip, min_score=0.0).hits
    top = hits[0]
    assert top.video == str(videos[2]) and top.score > DEFAULT_MIN_SCORE
    # Whatever the model's scale, never-indexed footage scores near the threshold at most.
    others = [h.score for h in hits[1:] if h.video != str(videos[2])]
    assert not others or max(others) < top.score

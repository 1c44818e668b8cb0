"""The evaluation harness's own arithmetic and edits (the numbers in our reports rest on them)."""

from __future__ import annotations

import numpy as np
import pytest

from tools.eval import score_positive, summarise
from tools.ffmpeg_tools import apply_transform, probe_duration
from vsearch.decode import VideoSource


def _job(hits, true_start=10.0, span=5.0, clip=5.0):
    return dict(source="/v.mp4", true_start=true_start, true_end=true_start + span, clip_duration=clip, hits=hits)


def _hit(start, end, q0=0.0, q1=5.0, video="/v.mp4"):
    return dict(video=video, start=start, end=end, query_start=q0, query_end=q1, score=0.9)


def test_perfect_hit_scores_one_everywhere():
    job = _job([_hit(10.0, 15.0)])
    score_positive(job, 0.5)
    assert job["top1"] and job["top5"] and job["start_error"] == 0.0
    assert job["iou"] == 1.0 and job["r_p"] == job["r_r"] == job["q_p"] == job["q_r"] == 1.0


def test_partial_and_wrong_hits():
    job = _job([_hit(12.0, 15.0, q0=2.0, q1=5.0)])
    score_positive(job, 0.5)
    assert not job["top1"] and job["iou"] == pytest.approx(0.6)
    assert job["r_p"] == 1.0 and job["r_r"] == pytest.approx(0.6) and job["q_r"] == pytest.approx(0.6)
    wrong = _job([_hit(10.0, 15.0, video="/other.mp4"), _hit(10.2, 15.2)])
    score_positive(wrong, 0.5)
    assert not wrong["top1"] and wrong["top5"] and wrong["iou"] == 0.0
    summary = summarise([job, wrong])
    assert summary["recall@1"] == 0.0 and summary["recall@5"] == 0.5
    assert summary["reference_axis"]["f1"] == pytest.approx(2 * 0.5 * 0.3 / 0.8)


def test_speed_transform_keeps_clip_length_and_covers_more_source(media, tmp_path):
    out = apply_transform("speed110", media["lib11"], tmp_path / "fast.mp4", start=2.3, duration=4.0)
    assert probe_duration(out) == pytest.approx(4.0, abs=0.1)


def _closest_source_time(source, frame, times):
    candidates = source.frames_at(times).astype(np.float32)
    return float(times[np.argmin(((candidates - frame.astype(np.float32)) ** 2).mean(axis=(1, 2, 3)))])


@pytest.mark.parametrize("name, speed", [("speed110", 1.1), ("speed090", 0.9)])
def test_speed_clip_starts_at_start_and_runs_at_its_speed(media, tmp_path, name, speed):
    # Output seeking after setpts would start the clip at start * speed: the ground truth
    # of every speed query rests on this.
    start = 6.3
    out = apply_transform(name, media["lib11"], tmp_path / "retimed.mp4", start=start, duration=4.0)
    source = VideoSource(media["lib11"], width=64, height=48)
    clip = VideoSource(out, width=64, height=48)
    times = np.arange(0, 16, 0.04)  # lib11 is 25 fps: every frame
    for clip_time in (0.0, 3.0):
        frame = clip.frames_at(np.array([clip_time]))[0]
        assert _closest_source_time(source, frame, times) == pytest.approx(start + clip_time * speed, abs=0.05)

"""Stress footage generator (tools/stress_footage): every kind renders, lasts as asked, is seeded."""

from __future__ import annotations

import av
import numpy as np
import pytest

import tools.stress_footage as stress
from tools.support import make_video, probe_duration

SIZE = (160, 90)
SECONDS = 3.0


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("stress_sources")
    return [str(make_video(root / f"src{seed}.mp4", seconds=4, seed=seed, size=(320, 240))) for seed in (31, 32)]


def _frames(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _check_video(path, seconds: float) -> np.ndarray:
    assert path.is_file()
    assert probe_duration(path) == pytest.approx(seconds, abs=0.5)
    frames = _frames(path)
    assert frames.shape[0] == round(seconds * stress.FPS)
    assert frames.shape[1:] == (SIZE[1], SIZE[0], 3)
    return frames


@pytest.mark.parametrize("kind", stress.KINDS)
def test_every_kind_renders_at_the_asked_length(sources, tmp_path, kind):
    out = stress.make_stress_video(kind, sources, tmp_path / f"{kind}.mp4", seed=5, seconds=SECONDS, size=SIZE)
    frames = _check_video(out, SECONDS)
    assert frames.std() > 3  # a picture, not a blank frame
    assert not list(tmp_path.glob(".*part"))  # no temporary left behind
    if kind == "fade_dark":
        assert frames[0].mean() < 10 and frames[len(frames) // 2].mean() > frames[0].mean()
    if kind in ("still_shake", "texture_scroll", "slow_zoom"):
        assert np.abs(frames[-1].astype(int) - frames[0]).mean() > 0.5  # not frozen


def test_same_seed_same_file_other_seed_other_footage(sources, tmp_path):
    a = stress.make_stress_video("slideshow", sources, tmp_path / "a.mp4", seed=11, seconds=SECONDS, size=SIZE)
    b = stress.make_stress_video("slideshow", sources, tmp_path / "b.mp4", seed=11, seconds=SECONDS, size=SIZE)
    c = stress.make_stress_video("slideshow", sources, tmp_path / "c.mp4", seed=12, seconds=SECONDS, size=SIZE)
    assert a.read_bytes() == b.read_bytes()
    frames_a, frames_c = _frames(a), _frames(c)
    assert np.abs(frames_a.astype(int) - frames_c).mean() > 2


def test_library_names_seeds_and_skips_existing(sources, tmp_path):
    kinds = ("still_shake", "screen_recording")
    paths = stress.make_stress_library(sources, tmp_path, seed=3, per_kind=2, seconds=2.0, kinds=kinds,
                                       prefix="t", size=SIZE)
    assert [p.name for p in paths] == [f"t_{k}_{i}.mp4" for k in kinds for i in range(2)]
    assert paths[0].read_bytes() != paths[1].read_bytes()  # each file its own seed
    stamps = [p.stat().st_mtime_ns for p in paths]
    paths[1].unlink()
    again = stress.make_stress_library(sources, tmp_path, seed=3, per_kind=2, seconds=2.0, kinds=kinds,
                                       prefix="t", size=SIZE)
    assert again == paths
    assert [p.stat().st_mtime_ns for p in again][2:] == stamps[2:] and again[0].stat().st_mtime_ns == stamps[0]
    assert again[1].is_file()


def test_short_sources_are_looped_and_text_falls_back_to_boxes(sources, tmp_path, monkeypatch):
    # 5 s stretches of 4 s sources loop them.
    _check_video(stress.make_stress_video("cartoon", sources, tmp_path / "loop.mp4", seed=1, seconds=5.0,
                                          size=SIZE), 5.0)
    monkeypatch.setattr(stress, "_find_font", lambda: None)
    _check_video(stress.make_stress_video("screen_recording", [], tmp_path / "boxes.mp4", seed=1,
                                          seconds=SECONDS, size=SIZE), SECONDS)


def test_bad_arguments_and_missing_videos_folder(sources, tmp_path, capsys):
    with pytest.raises(ValueError):
        stress.make_stress_video("nonsense", sources, tmp_path / "x.mp4", seed=1)
    with pytest.raises(ValueError):
        stress.make_stress_video("still_shake", sources, tmp_path / "x.mp4", seed=1, size=(161, 90))
    with pytest.raises(SystemExit) as exit_info:
        stress.main([str(tmp_path / "out"), "--videos", str(tmp_path / "missing")])
    assert "no videos folder" in str(exit_info.value) and "\n" not in str(exit_info.value)
    assert not (tmp_path / "out").exists()


def test_same_layout_screens_differ_only_in_text_and_pointer(tmp_path):
    one, two = stress.same_layout_screens(tmp_path, [0, 1], seed=3, seconds=SECONDS, size=(320, 180))
    (other_layout,) = stress.same_layout_screens(tmp_path / "other", [0], seed=4, seconds=SECONDS, size=(320, 180))
    a, b, c = (_frames(p)[-1].astype(int) for p in (one, two, other_layout))
    same = lambda x, y: float((np.abs(x - y).max(axis=2) <= 6).mean())  # noqa: E731
    changed = float((np.abs(a - b).max(axis=2) > 40).mean())
    assert same(a, b) > 0.9 and changed > 0.001  # one desktop, other words typed
    assert same(a, c) < 0.6  # another layout
    assert (tmp_path / "lookalike_screen_1.mp4").is_file()
    with pytest.raises(ValueError, match="layout"):
        stress.make_stress_video("slideshow", [str(one)], tmp_path / "x.mp4", seed=1, layout_seed=2)

"""The spatial ladder's edits, the look-alike benchmark's scoring and ``--engine`` (tools/eval)."""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

from tools.eval import (
    _expand_transforms,
    fold_of,
    lookalike_table,
    score_all,
    screen_numbers,
)
from tools.support import SPATIAL, apply_transform, display_size, make_video, transform_args
from tools.support.engines import ROOT, Engine

START, SECONDS = 1.3, 1.2


def _first_frame(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="gray").astype(np.float32)


def _source_frame(path, at: float = START) -> np.ndarray:
    """The first frame of ``path`` shown at or after ``at`` (where a clip cut there starts)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.time >= at - 1e-6:
                return frame.to_ndarray(format="gray").astype(np.float32)
    raise AssertionError(f"{path} ends before {at} s")


def _where(patch: np.ndarray, picture: np.ndarray) -> tuple[int, int]:
    """(x, y) of the top-left corner where ``patch`` fits ``picture`` best (least squares)."""
    windows = np.lib.stride_tricks.sliding_window_view(picture, patch.shape)
    errors = ((windows - patch) ** 2).mean(axis=(2, 3))
    y, x = np.unravel_index(np.argmin(errors), errors.shape)
    return int(x), int(y)


def _crop_origin(clip, source) -> tuple[int, int]:
    """Where in the source frame the clip's picture was cut from (found by its middle patch)."""
    frame, original = _first_frame(clip), _source_frame(source)
    h, w = frame.shape
    x, y = _where(frame[h // 2 - 12:h // 2 + 12, w // 2 - 12:w // 2 + 12], original)
    return x - (w // 2 - 12), y - (h // 2 - 12)


@pytest.fixture(scope="module")
def tall_video(tmp_path_factory) -> Path:
    """A portrait video narrower than 9:16."""
    return make_video(tmp_path_factory.mktemp("tall") / "tall.mp4", seconds=4, seed=41, size=(120, 320))


def test_the_spatial_group_is_the_crops_reframes_insets_stacks_and_bands():
    assert _expand_transforms(["spatial"]) == SPATIAL
    assert set(SPATIAL) == {"crop20", "crop_off_centre", "crop_heavy", "reframe_916", "side_by_side", "caption_band",
                            "pip", "pip_video", "pip_flat", "pip_gradient"}
    assert "camcorder" in _expand_transforms(["hard"]) and "camcorder" not in SPATIAL
    assert all(transform_args(n, 3) == transform_args(n, 3) for n in SPATIAL)


def test_heavy_crop_keeps_70_to_75_percent_of_each_side_away_from_the_centre(media, tmp_path):
    width, height = display_size(media["lib11"])
    for seed in (1, 2, 3):
        out = apply_transform("crop_heavy", media["lib11"], tmp_path / f"crop{seed}.mp4", start=START,
                              duration=SECONDS, seed=seed)
        w, h = display_size(out)
        assert 0.70 * width - 2 <= w <= 0.75 * width and 0.70 * height - 2 <= h <= 0.75 * height
        x, y = _crop_origin(out, media["lib11"])
        shares = [x / (width - w), y / (height - h)]  # 0: at the left / top edge, 1: at the right / bottom
        assert all(-0.05 <= s <= 1.05 for s in shares)
        assert max(abs(s - 0.5) for s in shares) >= 0.2, (seed, shares)  # off-centre


def test_reframe_is_a_9_16_portrait_of_the_full_height_at_a_drawn_place(media, tall_video, tmp_path):
    width, height = display_size(media["lib11"])
    places = set()
    for seed in (1, 2):
        out = apply_transform("reframe_916", media["lib11"], tmp_path / f"reframe{seed}.mp4", start=START,
                              duration=SECONDS, seed=seed)
        w, h = display_size(out)
        assert h == height and w / h == pytest.approx(9 / 16, abs=0.01)
        x, y = _crop_origin(out, media["lib11"])
        assert y == 0 and 0 <= x <= width - w
        places.add(x)
    assert len(places) == 2
    # Too tall already: the full width, cut to 9:16 in the middle.
    out = apply_transform("reframe_916", tall_video, tmp_path / "tall.mp4", start=START, duration=SECONDS, seed=1)
    w, h = display_size(out)
    assert w == 120 and w / h == pytest.approx(9 / 16, abs=0.01)
    assert _crop_origin(out, tall_video) == (0, pytest.approx((320 - h) / 2, abs=1))


def test_side_by_side_is_twice_as_wide_with_the_clip_on_the_drawn_side(media, tmp_path):
    width, height = display_size(media["lib11"])
    left = next(s for s in range(100) if random.Random(s).random() < 0.5)
    right = next(s for s in range(100) if random.Random(s).random() >= 0.5)
    original = _source_frame(media["lib11"])
    for seed, clip_left in ((left, True), (right, False)):
        out = apply_transform("side_by_side", media["lib11"], tmp_path / f"sbs{seed}.mp4", start=START,
                              duration=SECONDS, seed=seed, background=media["negative"])
        assert display_size(out) == (2 * width, height)
        frame = _first_frame(out)
        clip_half, other_half = (frame[:, :width], frame[:, width:]) if clip_left else (frame[:, width:],
                                                                                         frame[:, :width])
        assert np.abs(clip_half - original).mean() < 6
        assert np.abs(other_half - original).mean() > 20


def test_caption_band_darkens_a_fifth_of_the_height_across_the_lower_middle(media, tmp_path):
    plain = _first_frame(apply_transform("crf23", media["lib11"], tmp_path / "plain.mp4", start=START,
                                         duration=SECONDS))
    for seed in (1, 2):
        banded = _first_frame(apply_transform("caption_band", media["lib11"], tmp_path / f"band{seed}.mp4",
                                              start=START, duration=SECONDS, seed=seed))
        # The median of a row is the band's, not the text's (text covers less than half the width).
        ratio = np.median(banded, axis=1) / np.maximum(np.median(plain, axis=1), 1)
        rows = np.flatnonzero(ratio < 0.75)
        height = plain.shape[0]
        assert rows.size == pytest.approx(height / 5, abs=3) and rows[-1] - rows[0] == rows.size - 1
        assert 0.55 * height - 2 <= rows[0] <= 0.70 * height + 2


def test_camcorder_look_darkens_the_corners_and_adds_grain(media, tmp_path):
    plain = _first_frame(apply_transform("crf23", media["lib11"], tmp_path / "plain.mp4", start=START,
                                         duration=SECONDS))
    look = _first_frame(apply_transform("camcorder", media["lib11"], tmp_path / "cam.mp4", start=START,
                                        duration=SECONDS, seed=4))
    assert look.shape == plain.shape

    def corners_to_centre(frame):
        h, w = frame.shape
        corners = np.concatenate([frame[:h // 8, :w // 8], frame[:h // 8, -w // 8:], frame[-h // 8:, :w // 8],
                                  frame[-h // 8:, -w // 8:]]).mean()
        return corners / frame[3 * h // 8:5 * h // 8, 3 * w // 8:5 * w // 8].mean()

    assert corners_to_centre(look) < 0.85 * corners_to_centre(plain)
    assert 2 < np.abs(look - plain).mean() < 40  # another look, the same picture


# --------------------------------------------------------------------------- look-alike benchmark


def _lookalike(source: str, *videos_scores) -> dict:
    hits = [dict(video=v, start=10.0, end=15.0, query_start=0.0, query_end=5.0, score=s) for v, s in videos_scores]
    return dict(kind="lookalike", source=source, true_start=10.0, true_end=15.0, clip_duration=5.0, all_hits=hits)


def test_lookalike_rows_count_own_other_lookalike_elsewhere_and_no_hit():
    families = {"talking heads": ["/d6.mp4", "/d19.mp4"], "same-layout screens": ["/s0.mp4", "/s1.mp4"]}
    rows = [
        _lookalike("/d6.mp4", ("/d6.mp4", 0.95), ("/d19.mp4", 0.9)),  # own first
        _lookalike("/d6.mp4", ("/d19.mp4", 0.86), ("/d6.mp4", 0.85)),  # another talking head first
        _lookalike("/d19.mp4", ("/d6.mp4", 0.84), ("/d19.mp4", 0.83)),  # both under the threshold: no hit
        _lookalike("/s0.mp4", ("/s1.mp4", 0.97)),  # another screen first
        _lookalike("/s1.mp4", ("/d6.mp4", 0.9)),  # another family's video: elsewhere
        _lookalike("/s1.mp4", ("/cat.mp4", 0.99), ("/s1.mp4", 0.98)),  # elsewhere
    ]
    score_all(rows, 0.85, 0.5)
    table = lookalike_table(rows, families)
    counts = lambda name: [table[name][k] for k in ("queries", "own_first", "other_lookalike_first",  # noqa: E731
                                                    "elsewhere_first", "no_hit")]
    assert counts("talking heads") == [3, 1, 1, 0, 1]
    assert counts("same-layout screens") == [3, 0, 1, 2, 0]
    assert counts("all look-alikes") == [6, 1, 2, 2, 1]
    score_all(rows, 0.8, 0.5)  # a lower threshold: the third clip now finds another talking head first
    assert lookalike_table(rows, families)["talking heads"]["other_lookalike_first"] == 2


def test_lookalike_screens_are_shared_out_evenly_among_the_folds():
    name = lambda n: f"lookalike7_screen_{n}.mp4"  # noqa: E731
    for count, folds in ((4, 2), (5, 2), (3, 3)):
        indexed, unseen = screen_numbers(name, count, folds)
        assert len(indexed) == count and not set(indexed) & set(unseen)
        per_fold = [sum(fold_of(name(n), folds) == f for n in indexed) for f in range(folds)]
        assert max(per_fold) - min(per_fold) <= 1
        assert sorted(fold_of(name(n), folds) for n in unseen) == list(range(folds))  # one never indexed each


# --------------------------------------------------------------------------- --engine


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def test_engine_imports_its_own_checkout_and_names_its_commit(tmp_path):
    from vsearch.search.tuning import DEFAULT_MIN_SCORE

    here = Engine.at()
    assert here.imported_from() == ROOT / "vsearch"
    assert here.default_min_score() == DEFAULT_MIN_SCORE
    other = tmp_path / "older checkout"
    shutil.copytree(ROOT / "vsearch", other / "vsearch", ignore=shutil.ignore_patterns("__pycache__"))
    _git(other, "init", "-q")
    _git(other, "add", "vsearch")
    _git(other, "commit", "-qm", "a copy")
    engine = Engine.at(other)
    assert engine.imported_from() == other / "vsearch"  # not this interpreter's installed package
    assert engine.commit() == _git(other, "rev-parse", "--short", "HEAD") == engine.fingerprint()
    assert engine.run("query", "--help").returncode == 0
    assert f"commit {engine.commit()}" in engine.describe()
    (other / "vsearch" / "cli.py").write_text((other / "vsearch" / "cli.py").read_text() + "\n# changed\n")
    changed = engine.fingerprint()
    assert changed.startswith(engine.commit() + "+")
    (other / "vsearch" / "cli.py").write_text((other / "vsearch" / "cli.py").read_text() + "# again\n")
    assert engine.fingerprint() not in (changed, engine.commit())  # another index name for other code
    with pytest.raises(ValueError, match="no vsearch package"):
        Engine.at(tmp_path)

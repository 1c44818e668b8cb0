"""Voting and alignment on hand-made descriptors (no video needed)."""

from __future__ import annotations

import numpy as np
import pytest

from vsearch.config import IndexConfig
from vsearch.search.clip import ClipWindows
from vsearch.models import Hit, VideoRecord
from vsearch.search.align import Aligner, refine
from vsearch.search.pipeline import cover_frozen_ends
from vsearch.windows import window_vectors

#: Descriptors that are vectors as they are (no cells to pool): alignment alone is tested.
CONFIG = IndexConfig(features="imported", embedding_dim=112)


def _clip_windows(blocks: np.ndarray, speed: float = 1.0) -> ClipWindows:
    windows = window_vectors(blocks, CONFIG)
    n = len(windows)
    return ClipWindows(duration=len(blocks) * CONFIG.block_seconds, vectors=windows,
                       starts=np.arange(n) * CONFIG.block_seconds / speed, views=np.zeros(n, np.int64),
                       speeds=np.full(n, speed), mirrored=np.zeros(n, bool), inset=np.zeros(n, bool),
                       rotation=np.zeros(n, np.int64))


def _library_with_a_still_shot(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    blocks = rng.normal(size=(40, CONFIG.block_dim)).astype(np.float32)
    blocks[:20] = blocks[0]  # 10 s of still footage, then a cut to moving footage
    return blocks


def _record(blocks: np.ndarray) -> VideoRecord:
    return VideoRecord(id=1, path="/lib.mp4", hash="h", duration_s=len(blocks) * CONFIG.block_seconds, fps=25.0,
                       width=320, height=240, frames=500, blocks=len(blocks), windows=len(blocks) - 2, added="now")


def _aligner(library: np.ndarray, clip: ClipWindows) -> Aligner:
    return Aligner(library=lambda video_id, region: library, readings=lambda reading, region: clip, speeds=(1.0,))


def test_refine_pins_a_clip_that_opens_on_a_still_shot():
    library_blocks = _library_with_a_still_shot()
    library = window_vectors(library_blocks, CONFIG)
    clip = _clip_windows(library_blocks[12:32])  # true offset: 6.0 s, cut at clip second 4
    voted = 5.2  # any offset inside the still shot matches its first windows equally well
    hit = Hit(video="/lib.mp4", video_id=1, start=voted, end=voted + 10, query_start=0.0, query_end=10.0,
              score=0.9, distance=0.1)
    refined = refine(hit, voted, _aligner(library, clip), CONFIG, _record(library_blocks))
    assert refined.start == pytest.approx(6.0) and refined.end == pytest.approx(16.0) and refined.speed == 1.0


def test_refine_keeps_the_voted_offset_when_nothing_pins_it():
    library_blocks = _library_with_a_still_shot()
    library = window_vectors(library_blocks, CONFIG)
    clip = _clip_windows(library_blocks[2:10])  # entirely inside the still shot
    hit = Hit(video="/lib.mp4", video_id=1, start=3.5, end=7.5, query_start=0.0, query_end=4.0,
              score=0.9, distance=0.1)
    assert refine(hit, 3.5, _aligner(library, clip), CONFIG, _record(library_blocks)).start == 3.5


def test_a_frozen_start_or_end_of_the_clip_joins_the_hit_next_to_it():
    record = VideoRecord(id=1, path="/v.mp4", hash="h", duration_s=30.0, fps=25, width=4, height=4, frames=750,
                         blocks=60, windows=58, added="now")
    hit = Hit(video="/v.mp4", video_id=1, start=12.0, end=20.0, query_start=2.0, query_end=10.0, score=0.99,
              distance=0.1)
    # A title card (frozen) before the match and after it: the hit covers the whole clip.
    frozen = lambda a, b: 1.0 if b <= 2.0 or a >= 10.0 else 0.0  # noqa: E731
    whole = cover_frozen_ends(hit, frozen, 11.0, record)
    assert (whole.start, whole.end, whole.query_start, whole.query_end) == (10.0, 21.0, 0.0, 11.0)
    # Moving footage the match does not explain stays out.
    assert cover_frozen_ends(hit, lambda a, b: 0.0, 11.0, record) == hit
    # The video's own ends bound it; at speed 1.1 clip seconds are 1.1 video seconds.
    early = Hit(video="/v.mp4", video_id=1, start=1.0, end=29.5, query_start=2.0, query_end=10.0, score=0.99,
                distance=0.1, speed=1.1)
    bounded = cover_frozen_ends(early, frozen, 11.0, record)
    assert bounded.start == 0.0 and abs(bounded.query_start - (2.0 - 1.0 / 1.1)) < 1e-9
    assert bounded.end == 30.0 and abs(bounded.query_end - (10.0 + 0.5 / 1.1)) < 1e-9


def test_whole_clip_alignment_moves_a_hit_voted_onto_the_wrong_stretch():
    from vsearch.search.align import _settle_globally, alignment_curve

    rng = np.random.default_rng(3)
    library_blocks = rng.normal(size=(60, CONFIG.block_dim)).astype(np.float32)
    library = window_vectors(library_blocks, CONFIG)
    clip = _clip_windows(library_blocks[20:36])  # true offset 10.0 s
    rows = np.arange(len(clip.vectors))
    offsets, curve = alignment_curve(clip, rows, library, CONFIG)
    assert offsets[int(np.argmax(curve))] == pytest.approx(10.0) and curve.max() == pytest.approx(1.0)
    offset, distinct = _settle_globally(clip, rows, 3.0, library, CONFIG)
    assert offset == pytest.approx(10.0, abs=1e-6) and distinct


def test_footage_that_repeats_itself_is_ambiguous_not_confidently_placed():
    from vsearch.search.align import _settle_globally

    rng = np.random.default_rng(4)
    period = rng.normal(size=(8, CONFIG.block_dim)).astype(np.float32)
    library_blocks = np.tile(period, (6, 1))  # the same 4 s over and over
    library = window_vectors(library_blocks, CONFIG)
    clip = _clip_windows(library_blocks[9:19])
    offset, distinct = _settle_globally(clip, np.arange(len(clip.vectors)), 4.5, library, CONFIG)
    assert not distinct and (offset - 4.5) % 4.0 == pytest.approx(0.0, abs=1e-6)

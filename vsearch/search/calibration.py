"""Calibrated scores: the same threshold means the same false-alarm rate, whatever matched.

A hit's raw score is a mean window similarity (:func:`.align.verified_score`), and
how high it runs on footage that is in no library depends on what is compared: 8 x 8
cells of the whole frame tell more apart than 6 x 6 cells of a crop, which tell more
than a slice of 8 x 3, and a learned model's embeddings are another scale again.
Each kind of comparison has a *noise level*, the raw score that never-indexed
footage reaches in 1 % of clips, and the raw scores are mapped piecewise-linearly so
that the noise level lands on :data:`.tuning.DEFAULT_MIN_SCORE` (0.85), a perfect
match stays 1 and 0 stays 0. An edited reading (mirrored, re-timed, turned, an
inset) had more chances to match by accident, so each edit it assumes costs
``EDIT_PENALTY`` after the mapping.

The noise levels of the kernels were measured with ``python -m tools.eval`` on
the tuning fold's never-indexed clips (see README, *Evaluation*). A learned model's
(``onnx``) or another tool's features (``imported``) cannot be known in advance:
:func:`measure_noise` measures them on the library itself, its videos' stretches
searched as clips against the other videos (footage never indexed *for them*), and
the index keeps the result (``VideoIndex.calibrate``, run as such a library grows).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..cells import FRAME, Region
from ..config import IndexConfig
from ..windows import window_vectors
from .clip import ClipWindows, Reading
from .tuning import DEFAULT_MIN_SCORE, EVIDENCE_SECONDS

#: Raw score that 1 % of never-indexed clips reach, per feature kind and part of the
#: frame compared (``v2``: the whole frame, a 75 % crop, a vertical slice).
NOISE_LEVELS = {
    ("v2", "frame"): 0.75,
    ("v2", "crop"): 0.85,
    ("v2", "slice"): 0.85,
}

#: Score each edit a reading assumes costs, after calibration.
EDIT_PENALTY = 0.0

#: Noise levels that leave raw scores as they are (what :func:`measure_noise` measures with).
RAW = {"frame": DEFAULT_MIN_SCORE, "crop": DEFAULT_MIN_SCORE, "slice": DEFAULT_MIN_SCORE}


#: A library measures its own noise once it has this many videos...
MEASURE_FROM_VIDEOS = 8
#: ...from this many stretches of them at most...
MEASURED_CLIPS = 48
#: ...at the 1 % false-alarm point of their best hits in other videos, as for the kernels...
MEASURED_QUANTILE = 0.99
#: ...leaving out hits this good: a library may hold copies of its own footage, which
#: are matches, not noise (unless they are most hits: an extractor that scores most
#: other videos this high tells them apart no better, and that is its noise).
COPY_SCORE = 0.97


def shape_of(region: Region) -> str:
    """The kind of comparison a region makes: ``frame``, ``crop`` or ``slice``."""
    return "frame" if region.bounds == FRAME.bounds else ("slice" if region.portrait else "crop")


def noise_level(config: IndexConfig, region: Region = FRAME, measured: dict | None = None) -> float:
    """The raw score of never-indexed footage at the 1 % false-alarm point (the default
    threshold's) for this kind of comparison: ``measured`` on the library if it was,
    else the kernels' own; an unmeasured model keeps raw scores."""
    shape = shape_of(region)
    if measured and shape in measured:
        return float(measured[shape])
    return NOISE_LEVELS.get((config.features, shape), DEFAULT_MIN_SCORE)


def calibrate(raw: float, config: IndexConfig, region: Region = FRAME, edits: int = 0,
              measured: dict | None = None) -> float:
    """``raw`` mapped so that this comparison's noise level becomes the default threshold."""
    noise = noise_level(config, region, measured)
    if raw <= noise:
        score = raw * DEFAULT_MIN_SCORE / noise
    else:
        score = DEFAULT_MIN_SCORE + (raw - noise) * (1.0 - DEFAULT_MIN_SCORE) / (1.0 - noise)
    return min(max(score - EDIT_PENALTY * edits, 0.0), 1.0)


class StoredClip:
    """A stretch of an indexed video's stored blocks read back as a query clip (plain
    reading only, on the block grid): what :func:`measure_noise` searches with."""

    readings = (Reading(),)
    overlay = None
    parts = ("whole",)

    def __init__(self, path: str, blocks: np.ndarray, config: IndexConfig) -> None:
        self.path, self._blocks, self._config = path, blocks, config
        self.duration = (len(blocks) + 1) * config.block_seconds  # its last block ends within it

    def windows(self, readings=None, *, allow_empty: bool = False, grid=None) -> ClipWindows:
        vectors = window_vectors(self._blocks, self._config, FRAME, grid)
        n = len(vectors)
        return ClipWindows(duration=self.duration, vectors=vectors, starts=np.arange(n) * self._config.block_seconds,
                           views=np.zeros(n, np.int64), speeds=np.ones(n), mirrored=np.zeros(n, bool),
                           inset=np.zeros(n, np.int64), rotation=np.zeros(n, np.int64))

    def frozen_share(self, start: float, end: float) -> float:
        return 0.0


def measure_noise(library, search, *, clips: int = MEASURED_CLIPS, seconds: float = EVIDENCE_SECONDS) -> dict:
    """Noise levels of ``library``'s own comparisons, raw: up to ``clips`` stretches of
    ``seconds`` from the middle of its videos, each searched as a clip (``search``:
    clip, library -> hits with raw scores) against the *other* videos, its best hit
    kept; per kind of comparison, :data:`MEASURED_QUANTILE` of those below
    :data:`COPY_SCORE` (of all, where most are above). Kinds too few stretches reached
    are left out (the defaults stand)."""
    config = library.config
    blocks_per_clip = int(round(seconds / config.block_seconds)) + config.window_blocks - 1
    videos = [v for v in library.videos.values() if v.blocks >= blocks_per_clip]
    rng = np.random.default_rng(0)
    chosen = sorted(rng.choice(len(videos), size=min(clips, len(videos)), replace=False)) if videos else []
    best: dict[str, list[float]] = {}
    for number in chosen:
        record = videos[number]
        first = (record.blocks - blocks_per_clip) // 2
        clip = StoredClip(record.path, library.blocks(record.id)[first:first + blocks_per_clip], config)
        found: dict[str, float] = {}
        others = replace(library, videos={vid: video for vid, video in library.videos.items() if vid != record.id})
        for hit in search(clip, others):
            if hit.video_id != record.id:
                shape = "frame" if tuple(hit.crop) == FRAME.bounds else ("slice" if hit.crop[3] - hit.crop[2] < 0.5
                                                                          else "crop")
                found[shape] = max(found.get(shape, 0.0), hit.score)
        for shape, score in found.items():
            best.setdefault(shape, []).append(score)
    levels = {}
    for shape, scores in best.items():
        noise = [score for score in scores if score < COPY_SCORE]
        if 2 * len(noise) < len(scores):
            noise = scores
        if len(noise) >= MEASURE_FROM_VIDEOS // 2:
            levels[shape] = round(float(np.quantile(noise, MEASURED_QUANTILE)), 4)
    return levels

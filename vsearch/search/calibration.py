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
the tuning fold's never-indexed clips (see README, *Evaluation*).
"""

from __future__ import annotations

from ..cells import FRAME, Region
from ..config import IndexConfig
from .tuning import DEFAULT_MIN_SCORE

#: Raw score that 1 % of never-indexed clips reach, per feature kind and part of the
#: frame compared (``v2``: the whole frame, a 75 % crop, a vertical slice).
NOISE_LEVELS = {
    ("v2", "frame"): 0.75,
    ("v2", "crop"): 0.85,
    ("v2", "slice"): 0.85,
}

#: Score each edit a reading assumes costs, after calibration.
EDIT_PENALTY = 0.0


def noise_level(config: IndexConfig, region: Region = FRAME) -> float:
    """The raw score of never-indexed footage at the 1 % false-alarm point (the default
    threshold's) for this kind of comparison; unmeasured kinds keep raw scores."""
    shape = "frame" if region.code == FRAME.code else ("slice" if region.detail[1] < region.detail[0] else "crop")
    return NOISE_LEVELS.get((config.features, shape), DEFAULT_MIN_SCORE)


def calibrate(raw: float, config: IndexConfig, region: Region = FRAME, edits: int = 0) -> float:
    """``raw`` mapped so that this comparison's noise level becomes the default threshold."""
    noise = noise_level(config, region)
    if raw <= noise:
        score = raw * DEFAULT_MIN_SCORE / noise
    else:
        score = DEFAULT_MIN_SCORE + (raw - noise) * (1.0 - DEFAULT_MIN_SCORE) / (1.0 - noise)
    return min(max(score - EDIT_PENALTY * edits, 0.0), 1.0)

"""The search's tuning: every score threshold, margin and span of the query path, in one place.

Each stage module (votes, alignment, overlay, pipeline) imports the ones it uses.
"""

#: Seconds of consistent matching that count as full evidence: a longer clip need
#: not match along its whole length (it may contain other footage too).
EVIDENCE_SECONDS = 5.0

#: Default minimum score of a hit (calibrated on real footage, see README).
DEFAULT_MIN_SCORE = 0.85

#: Segments are found and aligned down to this score; the threshold filters after.
FLOOR = 0.5

#: Neighbours fetched per query window before voting.
NEIGHBOURS_PER_WINDOW = 32

#: A plain-reading hit this good ends the query: the edited readings are not searched.
NEAR_EXACT_SCORE = 0.95

#: After the cheap edited readings, a hit this good ends the query (the far ones,
#: rotations and large speed changes, are not searched).
CONFIDENT_SCORE = DEFAULT_MIN_SCORE

#: Speeds within this of 1 are cheap edits (searched before the far ones).
NEAR_SPEED = 0.15

#: Without a confident hit, this many candidate segments are scored again without
#: the cells an overlay may cover (:func:`.overlay.rescore_overlaid`).
OVERLAY_CANDIDATES = 10

#: A guessed overlay place (not one detected as still) must gain this to count.
GUESSED_MASK_MARGIN = 0.02

#: Searching with a band masked out (:func:`.pipeline.masked_candidates`): candidates kept per
#: mask, and their floor (low: the library side is not masked in that search).
MASKED_CANDIDATES = 3
MASKED_FLOOR = 0.2

#: Videos aligned per query at least (more when k is large), by vote mass.
MIN_CANDIDATES = 50

#: Score a view assuming an edit (speed, mirror, inset, rotation) must gain, per edit, to win.
EDIT_MARGIN = 0.01

#: A voted segment is aligned (offset, rate, crop; the costly part) only if its vote
#: scores at least its kind's noise level (:mod:`.calibration`) less this; weaker ones
#: are scored where they were voted, and stay below the threshold anyway.
REFINE_MARGIN = 0.15

#: A crop's hit spans the clip windows, next to those it was voted on, that align at
#: least this share of those windows' mean (:func:`.align._matched_span`).
SPAN_SHARE = 0.85

#: Clip seconds, and offset radius (seconds), of the final alignment of a hit.
REFINE_SECONDS = 6.0
REFINE_RADIUS = 1.0

#: A mean window similarity this high at the hit's own speed settles its alignment
#: (the neighbouring speeds are not tried; drift still shows in the rate fit).
ALIGNED = 0.9

#: Hits scoring below this are aligned at their own speed only.
SPEED_SEARCH_SCORE = 0.7

#: Segments of one video whose library spans overlap more than this are duplicates.
NMS_IOU = 0.5

#: A segment of the same video as a better one, claiming the same clip seconds
#: (query-span overlap above ``NMS_IOU``), is reported only if it scores within
#: this of the better one: a real repeat of the footage matches as well.
DUPLICATE_MARGIN = 0.03

#: Whole-clip alignment (``align._settle_globally``): clip seconds compared at every
#: offset of the video; another offset must align this much better to move the hit;
#: an offset more than a window away aligning within ``AMBIGUITY`` of the hit's
#: makes it ambiguous (``Hit.ambiguous``), and its score is capped at
#: ``AMBIGUOUS_SCORE``: still shown, but below any distinct hit above it.
GLOBAL_SECONDS = 30.0
RELOCATE_MARGIN = 0.01
AMBIGUITY = 0.005
AMBIGUOUS_SCORE = 0.9

#: Rate fitting: clip chunks of this many seconds each give a local offset.
RATE_CHUNK_SECONDS = 2.0
#: ...each needs a peak this much above its neighbourhood to count...
RATE_MIN_SHARPNESS = 0.02
#: ...and the fitted rate may differ from the reading's speed by at most this (each
#: reading covers +-5 %; beyond, a reading at another speed fits better).
RATE_MAX_SHIFT = 0.049

#: Grey levels: a clip whose pictures change less than this from one to the next, on
#: average (:func:`vsearch.frames.motion_level`), is near static: a screen recording, a
#: fixed camera on a quiet scene...
NEAR_STATIC_MOTION = 1.0
#: ...and if another video matches it within this of the best hit (and at least
#: ``RIVAL_FLOOR``), it shows what several videos show alike (one desktop layout, one
#: studio): every hit is ``ambiguous`` and capped at ``RIVAL_SCORE``, just below the
#: default threshold. Moving footage found in two videos is answered with both.
RIVAL_MARGIN = 0.01
RIVAL_FLOOR = 0.8
RIVAL_SCORE = 0.84
#: Hits a query finds at least, whatever k it asks for, so that a rival is among them.
RIVAL_HITS = 5

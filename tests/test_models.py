"""The public result types: what they keep and how they show it."""

from __future__ import annotations

from vsearch.models import Hit, QueryResult


def test_a_hit_shows_milliseconds_and_keeps_full_precision():
    hit = Hit(video="/a.mp4", video_id=1, start=2.3950034320689784, end=7.394999, query_start=0.0,
              query_end=5.0000001, score=0.99812345, distance=0.04431234, speed=1.1034)
    assert hit.start == 2.3950034320689784  # kept whole inside
    assert repr(hit) == ("Hit(video='/a.mp4', video_id=1, start=2.395, end=7.395, query_start=0.0, query_end=5.0, "
                         "score=0.9981, distance=0.0443, speed=1.1034, mirrored=False, inset=False, rotation=0, "
                         "part='whole', crop=(0.0, 1.0, 0.0, 1.0), ambiguous=False)")
    result = QueryResult(query="clip.mp4", duration=5.0000004, hits=[hit])
    assert repr(result) == f"QueryResult(query='clip.mp4', duration=5.0, hits=[{hit!r}])"
    assert hit.to_dict()["start"] == 2.395 and result.hits[0] is hit

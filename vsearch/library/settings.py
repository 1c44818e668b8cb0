"""What an ingest or a query asks for, made into index settings and lists of files.

``vsearch ingest`` gives settings for a new index (``--features``, ``--size``,
``--block``...), video files or folders, or feature files (``--from-features``).
:func:`plan_ingest` checks them against the library named (its settings are fixed
once it exists) and returns the files to add and the settings to create it with.
:func:`plan_query` does the same for the clips of ``vsearch query``. Both read the
largest frame allowed (``--max-pixels``, as ``vsearch serve`` does: :func:`parse_max_pixels`).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..decode import DEFAULT_MAX_PIXELS, iter_video_files
from ..errors import VsearchError
from ..extractors import feature_settings
from ..featurefiles.read import FeatureReading, imported_settings
from ..featurefiles.sources import FeatureSource, VideoFolder, feature_sources
from ..featurefiles.timing import FeatureTiming
from .sharded import library_exists


@dataclass(frozen=True)
class IngestPlan:
    """The files an ingest adds (videos, or feature sources read as ``reading`` says)
    and the settings a library it creates gets (an existing one keeps its own)."""

    files: list[str | FeatureSource]
    settings: dict[str, Any] = field(default_factory=dict)
    reading: FeatureReading | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS


def _numbers(value: str) -> list[int]:
    """``WxH`` or ``N`` as integers ([] if it is neither)."""
    try:
        return [int(v) for v in value.lower().split("x")]
    except ValueError:
        return []


def parse_max_pixels(value: str | None) -> int:
    """``--max-pixels``: ``WxH`` or a number of pixels (None: 8K UHD, 7680x4320)."""
    if value is None:
        return DEFAULT_MAX_PIXELS
    parts = _numbers(value)
    if len(parts) not in (1, 2) or min(parts) < 1:
        raise VsearchError(f"--max-pixels must look like 7680x4320 or 33177600, got {value!r}")
    return parts[0] * (parts[1] if len(parts) == 2 else 1)


def requested_settings(*, block_seconds: float | None = None, window_blocks: int | None = None,
                       size: str | None = None, analysis_fps: float | None = None,
                       decoder: str | None = None) -> dict[str, Any]:
    """The index settings given (only those given), ``size`` as ``WxH``."""
    given = {
        k: v
        for k, v in dict(block_seconds=block_seconds, window_blocks=window_blocks,
                         analysis_fps=analysis_fps, decoder=decoder).items()
        if v is not None
    }
    if size is not None:
        parts = _numbers(size)
        if len(parts) != 2:
            raise VsearchError(f"--size must look like 128x96, got {size!r}")
        given.update(width=parts[0], height=parts[1])
    return given


def feature_reading(from_features: Sequence[str | os.PathLike], *, layout: str | None = None,
                    timing: dict[str, Any] | None = None, videos: str | os.PathLike | None = None) -> FeatureReading:
    """How ``--from-features`` files are read: ``--layout``, ``timing`` (``--rate``,
    ``--clip-seconds``, ``--stack``, ``--step``, ``--frame-rate``) and ``--videos``,
    checked (refused without ``--from-features``)."""
    timing = timing or {}
    given = [name for name, value in (("--layout", layout), ("--videos", videos),
                                      *((f"--{k.replace('_', '-')}", v) for k, v in timing.items()))
             if value is not None]
    if given and not from_features:
        raise VsearchError(f"{', '.join(given)}: only with --from-features")
    return FeatureReading(layout=layout, timing=FeatureTiming.parse(**timing),
                          videos=VideoFolder(videos) if videos is not None else None)


def plan_ingest(
    indexes: Sequence[str | os.PathLike], *, paths: Sequence[str | os.PathLike] = (),
    from_features: Sequence[str | os.PathLike] = (), layout: str | None = None, timing: dict[str, Any] | None = None,
    videos: str | os.PathLike | None = None, features: str | None = None, size: str | None = None,
    block_seconds: float | None = None, window_blocks: int | None = None, analysis_fps: float | None = None,
    decoder: str | None = None, ray: bool = False, max_pixels: str | None = None,
) -> IngestPlan:
    """Files and settings for adding ``paths`` (or the feature files ``from_features``,
    read as :func:`feature_reading` says; ``paths`` given with them are feature files
    too, as a shell glob after ``--from-features`` gives them) to the library
    ``indexes`` (folders or manifests), decoded by Ray tasks with ``ray``, and the
    largest frame read (``--max-pixels``). Nothing to add into a library that does not
    exist is refused: an empty index would only hide the mistake."""
    if not paths and not from_features:
        raise VsearchError("give video files or folders, or --from-features PATH (one of them)")
    from_features, paths = ([*from_features, *paths], ()) if from_features else ((), paths)
    reading = feature_reading(from_features, layout=layout, timing=timing, videos=videos)
    if ray and from_features:
        raise VsearchError("--ray decodes videos; --from-features reads no video")
    settings = requested_settings(block_seconds=block_seconds, window_blocks=window_blocks, size=size,
                                  analysis_fps=analysis_fps, decoder=decoder)
    pixels = parse_max_pixels(max_pixels)
    exists = functools.cache(lambda: library_exists(indexes))
    if features is not None:
        kind = feature_settings(features)
        if size is not None or exists():  # the model's input size is only a default
            kind = {k: v for k, v in kind.items() if k not in ("width", "height")}
        settings.update(kind)
    if from_features:
        files: list[str | FeatureSource] = list(feature_sources(from_features))
        if not exists():
            settings.update(imported_settings(files, reading))
    else:
        files = list(iter_video_files(list(paths)))
    if not files and not exists():
        raise VsearchError(f"no video files in {', '.join(map(str, paths))}; no index created")
    return IngestPlan(files=files, settings=settings, reading=reading if from_features else None, max_pixels=pixels)


@dataclass(frozen=True)
class QueryPlan:
    """The clips a query answers: video files (their frames at most ``max_pixels``), or
    feature sources (read as ``reading`` says)."""

    clips: list[str | FeatureSource]
    reading: FeatureReading
    max_pixels: int = DEFAULT_MAX_PIXELS


def plan_query(clips: Sequence[str | os.PathLike] = (), *, from_features: Sequence[str | os.PathLike] = (),
               layout: str | None = None, timing: dict[str, Any] | None = None, report: bool = False,
               max_pixels: str | None = None) -> QueryPlan:
    """The clips to answer: ``clips`` (folders searched) or the feature files
    ``from_features`` (``clips`` given with them are feature files too; a visual
    ``report`` needs video clips), and the largest frame read (``--max-pixels``)."""
    if not clips and not from_features:
        raise VsearchError("give query clips, or --from-features PATH (one of them)")
    from_features, clips = ([*from_features, *clips], ()) if from_features else ((), clips)
    reading = feature_reading(from_features, layout=layout, timing=timing)
    if from_features and report:
        raise VsearchError("--report shows the clip's frames: it needs a video clip, not --from-features")
    pixels = parse_max_pixels(max_pixels)
    inputs = list(feature_sources(from_features)) if from_features else list(iter_video_files(list(clips)))
    if not inputs:
        raise VsearchError(f"no video files in {', '.join(map(str, clips))}")
    return QueryPlan(clips=inputs, reading=reading, max_pixels=pixels)

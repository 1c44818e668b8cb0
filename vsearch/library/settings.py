"""What an ingest or a query asks for, made into index settings and lists of files.

``vsearch ingest`` gives settings for a new index (``--features``, ``--size``,
``--block``...), video files or folders, or feature files (``--from-features``).
:func:`plan_ingest` checks them against the library named (its settings are fixed
once it exists) and returns the files to add and the settings to create it with.
:func:`plan_query` does the same for the clips of ``vsearch query``.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..decode import iter_video_files
from ..errors import VsearchError
from ..extractors import feature_settings
from ..featurefiles.read import FeatureRate, feature_files, imported_settings
from .sharded import library_exists


@dataclass(frozen=True)
class IngestPlan:
    """The files an ingest adds (videos, or feature files with their ``rate``) and the
    settings a library it creates gets (an existing one keeps its own)."""

    files: list[str | Path]
    settings: dict[str, Any] = field(default_factory=dict)
    rate: FeatureRate | None = None


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
        try:
            width, height = (int(v) for v in size.lower().split("x"))
        except ValueError:
            raise VsearchError(f"--size must look like 128x96, got {size!r}") from None
        given.update(width=width, height=height)
    return given


def plan_ingest(
    indexes: Sequence[str | os.PathLike], *, paths: Sequence[str | os.PathLike] = (),
    from_features: str | os.PathLike | None = None, layout: str | None = None, rate: str | None = None,
    features: str | None = None, size: str | None = None, block_seconds: float | None = None,
    window_blocks: int | None = None, analysis_fps: float | None = None, decoder: str | None = None,
) -> IngestPlan:
    """Files and settings for adding ``paths`` (or the feature files ``from_features``)
    to the library ``indexes`` (folders or manifests). Nothing to add into a library
    that does not exist is refused: an empty index would only hide the mistake."""
    if bool(paths) == (from_features is not None):
        raise VsearchError("give video files or folders, or --from-features DIR (one of them)")
    if from_features is None and (layout is not None or rate is not None):
        raise VsearchError("--layout and --rate go with --from-features")
    settings = requested_settings(block_seconds=block_seconds, window_blocks=window_blocks, size=size,
                                  analysis_fps=analysis_fps, decoder=decoder)
    exists = functools.cache(lambda: library_exists(indexes))
    if features is not None:
        kind = feature_settings(features)
        if size is not None or exists():  # the model's input size is only a default
            kind = {k: v for k, v in kind.items() if k not in ("width", "height")}
        settings.update(kind)
    feature_rate = None
    if from_features is not None:
        feature_rate = FeatureRate.parse(rate)
        files: list[str | Path] = list(feature_files([from_features]))
        if not exists():
            settings.update(imported_settings(files, layout=layout, rate=feature_rate))
    else:
        files = list(iter_video_files(list(paths)))
    if not files and not exists():
        raise VsearchError(f"no video files in {', '.join(map(str, paths or [from_features]))}; "
                           "no index created")
    return IngestPlan(files=files, settings=settings, rate=feature_rate)


@dataclass(frozen=True)
class QueryPlan:
    """The clips a query answers: video files, or feature files (read at ``rate``)."""

    clips: list[str | Path]
    rate: FeatureRate


def plan_query(clips: Sequence[str | os.PathLike] = (), *, from_features: Sequence[str | os.PathLike] = (),
               layout: str | None = None, rate: str | None = None, report: bool = False) -> QueryPlan:
    """The clips to answer: ``clips`` (folders searched) or the feature files
    ``from_features`` (one of them; a visual ``report`` needs video clips)."""
    if bool(clips) == bool(from_features):
        raise VsearchError("give query clips, or --from-features FILE (one of them)")
    if not from_features and (layout is not None or rate is not None):
        raise VsearchError("--layout and --rate go with --from-features")
    if from_features and report:
        raise VsearchError("--report shows the clip's frames: it needs a video clip, not --from-features")
    feature_rate = FeatureRate.parse(rate)
    inputs = list(from_features) if from_features else list(iter_video_files(list(clips)))
    if not inputs:
        raise VsearchError(f"no video files in {', '.join(map(str, clips))}")
    return QueryPlan(clips=inputs, rate=feature_rate)

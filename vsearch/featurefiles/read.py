"""Features computed by another tool, read from their files and put on the index's block grid.

Layouts (``--layout``, else the file's suffix):

- ``npz``: one video per file: ``features [n, D]``; optional ``path`` (the video),
  ``duration``, and time entries (:mod:`.timing`: ``timestamps``, ``clip_length`` with
  ``fps``);
- ``npy``: one video per file, ``[n, D]``; video_features' sidecars beside it
  (``<stem>_timestamps_ms.npy``, ``<stem>_fps.npy``) are read with it (:mod:`.sources`);
- ``h5``: several videos per file: a group per video holding ``features`` (and the
  same optional entries, as datasets or attributes), or a bare ``[n, D]`` dataset per
  video (ResNet features merged into one file).

A file's own times win; a file without any is read only with the time axis the
user gives (:class:`~.timing.FeatureTiming`), else refused naming the options. A
video is named by the ``path`` its file gives, else by where it was read (absolute);
with ``--videos DIR`` by the video file of its stem in that folder. Files are read
with ``allow_pickle=False``; pickles are refused.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np

from ..config import IndexConfig
from ..errors import FeatureFileError, VsearchError
from .sources import PICKLES, STREAMS, SUFFIXES, FeatureSource, VideoFolder, feature_sources, video_stems
from .timing import STACK_END_KEYS, FeatureTiming, scalar, time_axis

LAYOUTS = ("npz", "npy", "h5")


@dataclass(frozen=True, kw_only=True)
class FeatureReading:
    """How feature files are read: their ``layout`` (None: by suffix), the ``timing``
    of files without times, the ``videos`` they describe (None: named by the files)."""

    layout: str | None = None
    timing: FeatureTiming = field(default_factory=FeatureTiming)
    videos: VideoFolder | None = None

    def __post_init__(self) -> None:
        if self.layout is not None and self.layout not in LAYOUTS:
            raise VsearchError(f"--layout must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")


@dataclass(frozen=True, kw_only=True)
class ImportedFeatures:
    """One video's features as another tool wrote them, with their time axis.

    ``source`` names where they were read (a file, ``file.h5::name``), ``video`` the
    path the index records (see the module docstring).
    """

    source: str
    video: str
    features: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    duration: float
    fps: float

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    @property
    def digest(self) -> str:
        """BLAKE2b-128 of the features and their times: the same import is skipped."""
        digest = hashlib.blake2b(digest_size=16)
        for part in (self.features, self.starts, self.ends):
            digest.update(np.ascontiguousarray(part).tobytes())
        return digest.hexdigest()

    def blocks(self, config: IndexConfig) -> np.ndarray:
        """The features on the index's block grid, ``(blocks, D)`` float32: block ``j``
        (``[j b, (j+1) b)``) takes the feature whose span's centre is nearest its middle
        (for back-to-back spans, the span holding it; for overlapping stacks, the one
        most about it)."""
        count = int(np.floor(self.duration / config.block_seconds + 1e-6))
        middles = (np.arange(count) + 0.5) * config.block_seconds
        centres = (self.starts + self.ends) / 2
        after = np.clip(np.searchsorted(centres, middles), 0, len(centres) - 1)
        before = np.maximum(after - 1, 0)
        index = np.where(np.abs(centres[before] - middles) < np.abs(centres[after] - middles), before, after)
        return np.ascontiguousarray(self.features[index], dtype=np.float32)


def read_source(source: FeatureSource | str | os.PathLike,
                reading: FeatureReading = FeatureReading()) -> list[ImportedFeatures]:
    """The videos' features of one source (one, or several for an HDF5 file); raises
    the first :class:`FeatureFileError` (naming the source and what is wrong)."""
    videos = []
    for video in iter_source(source, reading):
        if isinstance(video, FeatureFileError):
            raise video
        videos.append(video)
    return videos


def iter_source(source: FeatureSource | str | os.PathLike,
                reading: FeatureReading = FeatureReading()) -> Iterator[ImportedFeatures | FeatureFileError]:
    """Each video of one source in turn (an HDF5 file's one at a time), or the
    :class:`FeatureFileError` saying why it cannot be read: a bad video of an HDF5 file
    alone, or the whole source once."""
    if not isinstance(source, FeatureSource):
        found = feature_sources([source])
        if len(found) != 1:
            raise VsearchError(f"{os.fsdecode(source)}: holds {len(found)} videos' features; name one")
        source = found[0]
    label, suffix = source.label, source.path.suffix.lower()
    layout = SUFFIXES.get(suffix)
    if suffix in PICKLES:
        yield FeatureFileError(label, "pickle files are not read (loading one can run code); "
                                      "video_features writes NumPy files with on_extraction=save_numpy")
    elif layout is None:
        yield FeatureFileError(label, f"not a feature file (expected {', '.join(SUFFIXES)})")
    elif reading.layout is not None and reading.layout != layout:
        yield FeatureFileError(label, f"a {suffix} file is not in the {reading.layout} layout")
    else:
        try:
            yield from _read(source, layout, reading)
        except FeatureFileError as exc:
            yield exc
        except ValueError as exc:
            pickled = "pickle" in str(exc).lower()
            yield FeatureFileError(label, "holds pickled objects, which are not read; store plain arrays" if pickled
                                   else f"not readable ({exc})")
        except OSError as exc:
            yield FeatureFileError(label, f"not readable ({exc.strerror or exc})")


def _read(source: FeatureSource, layout: str,
          reading: FeatureReading) -> Iterator[ImportedFeatures | FeatureFileError]:
    if layout == "npy":
        entries = {name: np.load(file, allow_pickle=False) for name, file in source.sidecars.items()}
        entries["features"] = _side_by_side(source, [np.load(file, allow_pickle=False) for file in source.files])
        yield _one(source, entries, reading)
    elif layout == "npz":
        with np.load(source.path, allow_pickle=False) as data:
            entries = {k: data[k] for k in data.files}
        yield _one(source, entries, reading)
    else:
        yield from _read_h5(source, reading)


def _side_by_side(source: FeatureSource, arrays: list[np.ndarray]) -> np.ndarray:
    """One stream's features, or I3D's streams of one video side by side."""
    if len(arrays) == 1:
        return arrays[0]
    if any(a.ndim != 2 for a in arrays) or len({len(a) for a in arrays}) != 1:
        shapes = ", ".join(f"{k} {list(a.shape)}" for k, a in zip(source.keys, arrays))
        raise FeatureFileError(source.label, f"streams {' and '.join(STREAMS)} must be [count, dim] of one count, "
                                             f"got {shapes}")
    return np.concatenate(arrays, axis=1)


def _read_h5(source: FeatureSource, reading: FeatureReading) -> Iterator[ImportedFeatures | FeatureFileError]:
    try:
        import h5py  # noqa: PLC0415 - optional extra
    except ImportError:
        raise VsearchError("HDF5 features need h5py: pip install 'vsearch[h5]'") from None
    with h5py.File(source.path, "r") as handle:
        if source.entry is not None and source.entry not in handle:
            raise FeatureFileError(source.label, f"no such video in the file (it holds {', '.join(sorted(handle))})")
        names = [source.entry] if source.entry is not None else sorted(handle)
        if not names:
            raise FeatureFileError(source.label, "holds no videos (no groups or datasets)")
        for name in names:
            item = handle[name]
            entries: dict[str, Any] = dict(item.attrs)
            if isinstance(item, h5py.Dataset):
                entries["features"] = item[()]
            else:
                entries.update({key: item[key][()] for key in item if isinstance(item[key], h5py.Dataset)})
            try:
                yield _one(FeatureSource(files=source.files, stem=name, entry=name), entries, reading)
            except FeatureFileError as exc:
                yield exc


def _one(source: FeatureSource, entries: dict[str, Any], reading: FeatureReading) -> ImportedFeatures:
    """Validate one video's entries, put them on their time axis and name the video."""
    label = source.label
    if "features" not in entries:
        raise FeatureFileError(label, f"no 'features' array (holds {', '.join(sorted(entries)) or 'nothing'})")
    features = np.asarray(entries["features"])
    if features.dtype.kind not in "iuf":
        raise FeatureFileError(label, f"features must be numbers, got {features.dtype}")
    if features.ndim != 2 or features.shape[0] == 0 or features.shape[1] == 0:
        raise FeatureFileError(label, f"features must be a [count, dim] array, got shape {list(features.shape)}")
    features = features.astype(np.float32)
    if not np.all(np.isfinite(features)):
        raise FeatureFileError(label, "features hold NaN or infinite values")
    try:
        stack_ends = bool(source.keys) and set(source.keys) <= STACK_END_KEYS
        starts, ends, duration = time_axis(entries, len(features), timing=reading.timing, stack_ends=stack_ends)
        fps = scalar(entries, "fps") or 0.0
        named = _text(entries["path"]) if "path" in entries else None
        if reading.videos is not None:
            video = reading.videos.find((video_stems(os.path.basename(named)) if named else [])
                                        + video_stems(source.stem))
        else:
            video = named or label
    except ValueError as exc:
        raise FeatureFileError(label, str(exc)) from None
    return ImportedFeatures(source=label, video=video, features=features, starts=starts, ends=ends,
                            duration=float(duration if duration else ends[-1]), fps=fps)


def _text(value: Any) -> str:
    value = np.asarray(value).reshape(()).item()
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


def imported_settings(sources: Iterable[FeatureSource], reading: FeatureReading) -> dict[str, Any]:
    """Settings of a new index for these sources: their dimension, from the first
    readable video (the first error when none is)."""
    first: FeatureFileError | None = None
    for source in sources:
        for video in iter_source(source, reading):
            if isinstance(video, ImportedFeatures):
                return dict(features="imported", embedding_dim=video.dim)
            first = first or video
    assert first is not None
    raise VsearchError(str(first))

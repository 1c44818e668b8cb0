"""Features computed by another tool, read from files and put on the index's block grid.

Layouts (``--layout``, else the file's suffix):

- ``npz``: one video per file: ``features [n, D]``; its time axis is ``timestamps
  [n, 2]`` (start, end seconds, as ``vsearch features`` writes), else clips of
  ``clip_len`` frames at ``fps`` (every ``stride`` frames, by default back to back),
  else the rate; optional ``duration``, ``path`` (the video the features describe).
- ``npy``: one video per file, ``[n, D]``, at the rate.
- ``h5``: several videos per file: a group per video holding ``features`` (and the
  same optional entries, as datasets or attributes), or a bare ``[n, D]`` dataset per
  video at the rate (ResNet features merged into one file).

The rate (``--rate``) is features per second (default 1), or ``uniform``: ``n``
samples spread evenly over the video's ``duration`` (which the file must give).
Each index block takes the feature whose time span holds the block's middle
(the nearest one across a gap). Files are read with ``allow_pickle=False``;
``.pkl`` files are refused.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..config import IndexConfig
from ..errors import FeatureFileError, VsearchError

LAYOUTS = ("npz", "npy", "h5")
_SUFFIXES = {".npz": "npz", ".npy": "npy", ".h5": "h5", ".hdf5": "h5"}
_PICKLES = (".pkl", ".pickle")


@dataclass(frozen=True, kw_only=True)
class FeatureRate:
    """A time axis for features without timestamps: ``per_second`` features a second
    from 0, or (``uniform``) as many as there are, spread evenly over the duration."""

    per_second: float = 1.0
    uniform: bool = False

    @classmethod
    def parse(cls, text: str | float | None) -> "FeatureRate":
        """``None`` (1 a second), a number of features per second, or ``uniform``."""
        if text is None:
            return cls()
        if str(text).strip().lower() == "uniform":
            return cls(uniform=True)
        try:
            rate = float(text)
        except ValueError:
            raise VsearchError(f"--rate must be features per second or 'uniform', got {text!r}") from None
        if not rate > 0 or not np.isfinite(rate):
            raise VsearchError(f"--rate must be positive, got {text!r}")
        return cls(per_second=rate)


@dataclass(frozen=True, kw_only=True)
class ImportedFeatures:
    """One video's features as another tool wrote them, with their time axis.

    ``source`` names where they were read (a file, or ``file::group``), ``video`` the
    path the index records (the video the file names, else ``source``).
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
        (``[j b, (j+1) b)``) takes the feature whose span holds its middle."""
        count = int(np.floor(self.duration / config.block_seconds + 1e-6))
        middles = (np.arange(count) + 0.5) * config.block_seconds
        last = len(self.starts) - 1
        index = np.clip(np.searchsorted(self.starts, middles, side="right") - 1, 0, last)
        after = np.minimum(index + 1, last)
        centre = (self.starts + self.ends) / 2
        gap = middles >= self.ends[index]  # between two spans: the nearer one
        nearer = np.abs(centre[after] - middles) < np.abs(centre[index] - middles)
        index = np.where(gap & nearer, after, index)
        return np.ascontiguousarray(self.features[index], dtype=np.float32)


def feature_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Feature files among ``paths`` (folders searched recursively), sorted; pickles
    are kept so that they are refused by name."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file()
                            and p.suffix.lower() in (*_SUFFIXES, *_PICKLES))
        elif path.exists():
            found.append(path)
        else:
            raise VsearchError(f"{path}: no such file or folder")
    if not found:
        raise VsearchError(f"no feature files (.npz, .npy, .h5) in {', '.join(str(p) for p in paths)}")
    return found


def read_features(path: str | os.PathLike, *, layout: str | None = None, rate: FeatureRate = FeatureRate(),
                  errors: list[FeatureFileError] | None = None) -> list[ImportedFeatures]:
    """The videos' features in one file (one, or several for ``h5``).

    Raises :class:`FeatureFileError` naming the file and what is wrong with it; with
    ``errors``, a bad video of an ``h5`` file is added there and the others are read.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in _PICKLES:
        raise FeatureFileError(path, "pickle files are not read (loading one can run code); "
                                     "save the features as .npy, .npz or .h5")
    found = _SUFFIXES.get(suffix)
    if found is None:
        raise FeatureFileError(path, f"not a feature file (expected {', '.join(_SUFFIXES)})")
    if layout is not None and layout not in LAYOUTS:
        raise VsearchError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if layout is not None and layout != found:
        raise FeatureFileError(path, f"a .{suffix[1:]} file is not in the {layout} layout")
    try:
        if found == "npy":
            return [_one(path, str(path), {"features": np.load(path, allow_pickle=False)}, rate)]
        if found == "npz":
            with np.load(path, allow_pickle=False) as data:
                return [_one(path, str(path), {k: data[k] for k in data.files}, rate)]
        return _read_h5(path, rate, errors)
    except FeatureFileError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise FeatureFileError(path, "holds pickled objects, which are not read; store plain arrays") from None
        raise FeatureFileError(path, f"not readable ({exc})") from None
    except OSError as exc:
        raise FeatureFileError(path, f"not readable ({exc.strerror or exc})") from None


def _read_h5(path: Path, rate: FeatureRate, errors: list[FeatureFileError] | None) -> list[ImportedFeatures]:
    try:
        import h5py  # noqa: PLC0415 - optional extra
    except ImportError:
        raise VsearchError("HDF5 features need h5py: pip install 'vsearch[h5]'") from None
    out = []
    with h5py.File(path, "r") as handle:
        for key in sorted(handle):
            item = handle[key]
            entries: dict[str, Any] = dict(item.attrs)
            if isinstance(item, h5py.Dataset):
                entries["features"] = item[()]
            else:
                entries.update({name: item[name][()] for name in item if isinstance(item[name], h5py.Dataset)})
            try:
                out.append(_one(path, f"{path}::{key}", entries, rate))
            except FeatureFileError as exc:
                if errors is None:
                    raise
                errors.append(exc)
    if not out and not errors:
        raise FeatureFileError(path, "holds no videos (no groups or datasets)")
    return out


def _scalar(entries: dict[str, Any], key: str) -> float | None:
    if key not in entries:
        return None
    value = np.asarray(entries[key])
    if value.size != 1 or value.dtype.kind not in "iuf":
        raise ValueError(f"{key!r} must be one number")
    return float(value.reshape(()))


def _one(path: Path, source: str, entries: dict[str, Any], rate: FeatureRate) -> ImportedFeatures:
    """Validate one video's entries and build its time axis."""
    def fail(reason: str) -> FeatureFileError:
        return FeatureFileError(source, reason)

    if "features" not in entries:
        return_keys = ", ".join(sorted(entries)) or "nothing"
        raise fail(f"no 'features' array (holds {return_keys})")
    features = np.asarray(entries["features"])
    if features.dtype.kind not in "iuf":
        raise fail(f"features must be numbers, got {features.dtype}")
    if features.ndim != 2 or features.shape[0] == 0 or features.shape[1] == 0:
        raise fail(f"features must be a [count, dim] array, got shape {list(features.shape)}")
    features = features.astype(np.float32)
    if not np.all(np.isfinite(features)):
        raise fail("features hold NaN or infinite values")
    n = len(features)
    try:
        duration, fps = _scalar(entries, "duration"), _scalar(entries, "fps")
        clip_len, stride = _scalar(entries, "clip_len"), _scalar(entries, "stride")
    except ValueError as exc:
        raise fail(str(exc)) from None
    if "timestamps" in entries:
        stamps = np.asarray(entries["timestamps"], dtype=np.float64)
        if stamps.shape != (n, 2):
            raise fail(f"timestamps must be [{n}, 2] (start, end) like features, got {list(stamps.shape)}")
        starts, ends = stamps[:, 0], stamps[:, 1]
    elif clip_len is not None:
        if not fps or fps <= 0 or clip_len <= 0:
            raise fail("clips of clip_len frames need a positive fps")
        step = (stride or clip_len) / fps
        starts = np.arange(n) * step
        ends = starts + clip_len / fps
    elif rate.uniform:
        if not duration or duration <= 0:
            raise fail("--rate uniform needs the video's duration (a 'duration' entry)")
        starts = np.arange(n) * duration / n
        ends = starts + duration / n
    else:
        starts = np.arange(n) / rate.per_second
        ends = starts + 1 / rate.per_second
    if not (np.all(np.isfinite(starts)) and np.all(ends > starts) and np.all(np.diff(starts) > 0)):
        raise fail("time axis must be increasing spans with end > start")
    video = entries.get("path")
    video = np.asarray(video).reshape(()).item() if video is not None else source
    video = video.decode("utf-8", "surrogateescape") if isinstance(video, bytes) else str(video)
    return ImportedFeatures(source=source, video=video, features=features, starts=starts, ends=ends,
                            duration=float(duration if duration else ends[-1]), fps=float(fps or 0.0))


def imported_settings(files: list[Path], *, layout: str | None, rate: FeatureRate) -> dict[str, Any]:
    """Settings of a new index for these files: their dimension, from the first
    readable one (the first one's error when none is)."""
    first: FeatureFileError | None = None
    for file in files:
        try:
            return dict(features="imported", embedding_dim=read_features(file, layout=layout, rate=rate)[0].dim)
        except FeatureFileError as exc:
            first = first or exc
    assert first is not None
    raise VsearchError(str(first))

"""Feature files on disk → sources (one video's features each), and the video each names.

A source is what one video's features were written as:

- an ``.npz`` file;
- an ``.npy`` file. video_features (``on_extraction=save_numpy``) writes
  ``<stem>_<key>.npy`` per video, and for frame-wise models and I3D
  ``<stem>_timestamps_ms.npy`` and ``<stem>_fps.npy`` beside it: those sidecars belong
  to the source (read, never indexed), and in a folder I3D's two streams
  (``<stem>_rgb.npy``, ``<stem>_flow.npy``) are one source, side by side;
- an HDF5 file (every video in it), or one of its videos: ``file.h5::name``;
- a pickle (``.pkl``), kept so that it is refused by name.

Folders are searched recursively (video_features nests its output in
``<output>/<feature_type>[/<model_name>]/``). A source's video is named by its stem:
the file's name up to its key (``<stem>_<key>``), or the whole name; the HDF5 entry's
name. :class:`VideoFolder` (``--videos DIR``) finds the video file of that stem.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from ..decode import iter_video_files
from ..errors import VsearchError

SUFFIXES = {".npz": "npz", ".npy": "npy", ".h5": "h5", ".hdf5": "h5"}
PICKLES = (".pkl", ".pickle")
#: video_features' per-video sidecars: ``<stem>_<name>.npy``.
SIDECARS = ("timestamps_ms", "fps")
#: Keys of ``<stem>_<key>.npy``: video_features' feature types and I3D's streams (files
#: without sidecars are split by these), and the common ``features``.
TOOL_KEYS = ("resnet", "clip", "timm", "r21d", "s3d", "i3d", "vggish", "rgb", "flow", "features")
#: I3D's streams, read side by side in this order when a folder holds both.
STREAMS = ("rgb", "flow")
#: Between an HDF5 file and one of its videos.
ENTRY_SEP = "::"


@dataclass(frozen=True, kw_only=True)
class FeatureSource:
    """One video's features: ``files`` (several: streams of one video, side by side),
    ``entry`` (one video of an HDF5 file; None: all), ``sidecars`` by name, ``keys``
    (video_features' keys of ``files``) and ``stem`` (the video's name)."""

    files: tuple[Path, ...]
    stem: str
    entry: str | None = None
    keys: tuple[str, ...] = ()
    sidecars: dict[str, Path] = field(default_factory=dict, compare=False)

    @property
    def path(self) -> Path:
        return self.files[0]

    @property
    def label(self) -> str:
        """Where it was read, absolute: ``/abs/file``, ``/abs/file.h5::name``, and for
        streams side by side ``/abs/<stem>_rgb+flow.npy``."""
        path = Path(os.path.abspath(self.path))
        if len(self.files) > 1:
            path = path.with_name(f"{self.stem}_{'+'.join(self.keys)}{path.suffix}")
        return f"{path}{ENTRY_SEP}{self.entry}" if self.entry is not None else str(path)

    def __str__(self) -> str:
        return self.label


def video_stems(name: str) -> list[str]:
    """The stems a video named ``name`` may have (an HDF5 entry, or a file's stem
    without its key): the name itself, without a trailing dot or suffix (ResNet's
    ``convert.py`` names entries ``<file>.``), without a ``_<key>``."""
    stems = [name, name.rstrip("."), Path(name).stem]
    stems += [stem[: -len(key) - 1] for stem in list(stems) for key in TOOL_KEYS if stem.endswith(f"_{key}")]
    return list(dict.fromkeys(s for s in stems if s))


def _sidecar_stems(names: Iterable[str]) -> set[str]:
    """The video stems that ``.npy`` sidecars among ``names`` belong to."""
    return {n[: -len(f"_{s}.npy")] for n in names for s in SIDECARS if n.endswith(f"_{s}.npy")}


def _split(base: str, stems: set[str]) -> tuple[str, str]:
    """``(stem, key)`` of ``<stem>_<key>``: the longest stem with sidecars, else a
    known key; ``(base, "")`` if neither."""
    stem = max((s for s in stems if base.startswith(f"{s}_")), key=len, default=None)
    if stem is not None:
        return stem, base[len(stem) + 1:]
    key = next((k for k in TOOL_KEYS if base.endswith(f"_{k}")), "")
    return (base[: -len(key) - 1] if key else base), key


def _npy_source(folder: Path, stem: str, members: dict[str, Path], names: Sequence[str]) -> FeatureSource:
    sidecars = {s: folder / f"{stem}_{s}.npy" for s in SIDECARS if f"{stem}_{s}.npy" in names}
    return FeatureSource(files=tuple(members.values()), stem=stem, keys=tuple(k for k in members if k),
                         sidecars=sidecars)


def _npy_sources(folder: Path, names: Sequence[str]) -> list[FeatureSource]:
    """A folder's ``.npy`` files as sources: by video stem, with their sidecars; I3D's
    two streams of one video as one source."""
    stems = _sidecar_stems(names)
    sidecars = {f"{stem}_{s}.npy" for stem in stems for s in SIDECARS}
    groups: dict[str, dict[str, Path]] = defaultdict(dict)
    for name in names:
        if name not in sidecars:
            stem, key = _split(name[:-4], stems)
            groups[stem][key] = folder / name
    out = []
    for stem, members in sorted(groups.items()):
        if set(members) == set(STREAMS):
            out.append(_npy_source(folder, stem, {k: members[k] for k in STREAMS}, names))
        else:
            out += [_npy_source(folder, stem, {k: members[k]}, names) for k in sorted(members)]
    return out


def _folder_sources(root: Path) -> list[FeatureSource]:
    out = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        names = sorted(files)
        npy = [n for n in names if n.lower().endswith(".npy")]
        out += _npy_sources(Path(folder), npy)
        out += [FeatureSource(files=(Path(folder) / n,), stem=Path(n).stem) for n in names
                if n not in npy and Path(n).suffix.lower() in (*SUFFIXES, *PICKLES)]
    return sorted(out, key=lambda s: (str(s.path.parent), s.stem, s.keys))


def _file_source(path: Path) -> FeatureSource:
    """A file named on purpose, whatever its suffix (refused later if not features);
    an ``.npy`` file with its sidecars, by itself (not joined with another stream)."""
    if path.suffix.lower() != ".npy":
        return FeatureSource(files=(path,), stem=path.stem)
    names = sorted(p.name for p in path.parent.glob("*.npy"))
    stems = _sidecar_stems(names)
    for stem in stems:
        for sidecar in SIDECARS:
            if path.stem == f"{stem}_{sidecar}":
                raise VsearchError(f"{path}: the {sidecar} sidecar of video {stem!r}, not features: "
                                   f"name its {stem}_<key>.npy")
    stem, key = _split(path.stem, stems)
    return _npy_source(path.parent, stem, {key: path}, names)


def feature_sources(paths: Iterable[str | os.PathLike | FeatureSource]) -> list[FeatureSource]:
    """The sources among ``paths``: files, ``file.h5::name``, folders (searched
    recursively); sources pass as they are. A missing path, or nothing found, raises."""
    found: list[FeatureSource] = []
    for raw in paths:
        if isinstance(raw, FeatureSource):
            found.append(raw)
            continue
        text = os.fsdecode(os.fspath(raw))
        file, sep, entry = text.rpartition(ENTRY_SEP)
        if sep and Path(file).suffix.lower() in (".h5", ".hdf5") and Path(file).is_file():
            found.append(FeatureSource(files=(Path(file),), stem=entry, entry=entry))
        elif Path(text).is_dir():
            found += _folder_sources(Path(text))
        elif Path(text).exists():
            found.append(_file_source(Path(text)))
        else:
            raise VsearchError(f"{text}: no such file or folder")
    if not found:
        raise VsearchError(f"no feature files (.npz, .npy, .h5) in {', '.join(map(os.fsdecode, paths))}")
    return found


class VideoFolder:
    """The video files under a folder (``--videos DIR``), found by stem."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise VsearchError(f"--videos {self.root}: no such folder")
        self._by_stem: dict[str, list[str]] = defaultdict(list)
        for path in iter_video_files([self.root]):
            self._by_stem[Path(path).stem].append(os.path.abspath(path))

    def find(self, stems: Sequence[str]) -> str:
        """The one video whose stem is the first of ``stems`` any video has; raises
        ``ValueError`` (the reason) when none has one, or two share it."""
        for stem in stems:
            matches = self._by_stem.get(stem, [])
            if len(matches) > 1:
                raise ValueError(f"{len(matches)} videos named {stem!r} in {self.root}: "
                                 f"{', '.join(os.path.relpath(m, self.root) for m in matches)}")
            if matches:
                return matches[0]
        raise ValueError(f"no video named {stems[0]!r} in {self.root} (--videos)")

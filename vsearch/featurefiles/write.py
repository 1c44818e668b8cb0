"""Feature export: per-block descriptors of videos, with their timestamps.

Formats, chosen by the output's suffix:

- ``.npy``: the ``(blocks, dim)`` float32 array of one video;
- ``.npz``: ``features``, ``timestamps`` (block start/end seconds), ``fps``, ``block``,
  ``duration``, ``path`` (the video), ``kind``;
- ``.h5``: one group per video holding the same (needs the optional ``h5py``);
- a folder (no suffix, or an existing directory): one ``.npz`` per video.

``v2`` features are written as they are searched: each block's cells pooled on the
coarse search grid and finished (:func:`vsearch.windows.block_vectors`), 112 numbers.
Each imports back giving the windows an index of the videos searches
(:mod:`vsearch.featurefiles.read`, ``vsearch ingest --from-features``); a bare ``.npy``
at ``--rate`` ``1 / block`` (2 per second).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from ..config import IndexConfig
from ..decode import iter_video_files
from ..describe import VideoDescriptors, describe_video
from ..device import Device, resolve_device
from ..errors import VsearchError
from ..extractors import feature_settings
from ..windows import block_vectors


def _timestamps(count: int, config: IndexConfig) -> np.ndarray:
    starts = np.arange(count, dtype=np.float64) * config.block_seconds
    return np.stack([starts, starts + config.block_seconds], axis=1)


def _searched(described: VideoDescriptors, config: IndexConfig) -> VideoDescriptors:
    """The blocks as the index searches them (``v2``: pooled on the search grid, finished)."""
    return dataclasses.replace(described, blocks=block_vectors(described.blocks, config))


def _write_npz(path: Path, described: VideoDescriptors, config: IndexConfig) -> None:
    np.savez(
        path,
        features=described.blocks,
        timestamps=_timestamps(len(described.blocks), config),
        fps=np.float64(described.info.fps),
        block=np.float64(config.block_seconds),
        duration=np.float64(described.info.duration),
        path=np.array(os.path.abspath(described.info.path)),
        kind=np.array(config.features),
    )


def export_features(
    videos: Iterable[str | os.PathLike], out: str | os.PathLike, config: IndexConfig, device: Device
) -> list[Path]:
    """Describe ``videos`` and write their block descriptors to ``out``; returns files written."""
    videos = [Path(v) for v in videos]
    out = Path(out)
    suffix = out.suffix.lower()
    as_folder = out.is_dir() or suffix == ""
    if not as_folder and suffix not in (".npy", ".npz", ".h5", ".hdf5"):
        raise VsearchError(f"{out}: unknown export format {suffix!r} (use .npy, .npz, .h5 or a folder)")
    if suffix in (".npy", ".npz") and len(videos) > 1:
        raise VsearchError(f"{out}: one {suffix} file holds one video; give a folder or an .h5 file for several")
    if suffix in (".h5", ".hdf5"):
        try:
            import h5py  # noqa: PLC0415 - optional extra
        except ImportError:
            raise VsearchError("HDF5 export needs h5py: pip install 'vsearch[h5]'") from None
    described = [_searched(describe_video(v, config, device), config) for v in videos]
    if as_folder:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for video, desc in zip(videos, described):
            target = out / f"{video.stem}.npz"
            _write_npz(target, desc, config)
            written.append(target)
        return written
    if suffix == ".npy":
        np.save(out, described[0].blocks)
    elif suffix == ".npz":
        _write_npz(out, described[0], config)
    else:
        with h5py.File(out, "w") as handle:
            handle.attrs.update(features=config.features, block=config.block_seconds, analysis_fps=config.analysis_fps)
            for video, desc in zip(videos, described):
                group = handle.create_group(video.name)
                group.create_dataset("features", data=desc.blocks)
                group.create_dataset("timestamps", data=_timestamps(len(desc.blocks), config))
                group.attrs.update(path=str(video.resolve()), fps=desc.info.fps, duration=desc.info.duration)
    return [out]


def export_videos(paths: Iterable[str | os.PathLike], out: str | os.PathLike, *, features: str = "v2",
                  block_seconds: float = 0.5, device: str = "auto") -> list[Path]:
    """``vsearch features``: the videos in ``paths`` (folders searched) described with
    ``features`` (``v2``, ``seed``, ``onnx:MODEL``) in blocks of ``block_seconds``, written to ``out``."""
    config = IndexConfig(**feature_settings(features), block_seconds=block_seconds)
    return export_features(list(iter_video_files(list(paths))), out, config, resolve_device(device))

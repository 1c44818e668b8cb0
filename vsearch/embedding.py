"""Reader -> mapper stages: a video file becomes block descriptors or query windows."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .config import IndexConfig
from .decode import VideoInfo, VideoSource
from .device import Device
from .errors import ClipTooShortError, VideoError, VsearchError
from .features import block_descriptors, detect_borders, detect_inset, mirror_descriptors, remove_borders
from .windows import window_vectors

# Frames per decode chunk, in blocks: memory stays flat whatever the video length.
_BLOCKS_PER_CHUNK = 16


@dataclass(frozen=True)
class VideoDescriptors:
    """Block descriptors of a whole video (block ``i`` starts at ``i * block_seconds``)."""

    info: VideoInfo
    blocks: np.ndarray

    def __post_init__(self) -> None:
        if self.blocks.ndim != 2 or self.blocks.dtype != np.float32:
            raise ValueError("blocks must be a 2-D float32 array")
        if not np.all(np.isfinite(self.blocks)):
            raise VideoError(self.info.path, "descriptors are not finite")


def describe_video(path: str | os.PathLike, config: IndexConfig, device: Device) -> VideoDescriptors:
    """Decode ``path`` chunk by chunk and describe every complete block."""
    source = VideoSource(path, width=config.width, height=config.height)
    chunk = config.frames_per_block * _BLOCKS_PER_CHUNK
    parts, borders = [], None
    for frames in source.iter_frames(config.analysis_fps, chunk_frames=chunk):
        if borders is None:  # bars are found on the first chunk and kept for the video
            borders = detect_borders(frames) if config.crop_borders else (0, 0, 0, 0)
        frames = remove_borders(frames, borders, device.xp)
        parts.append(device.to_numpy(block_descriptors(frames, config, device.xp)))
    source.close()
    blocks = np.concatenate(parts) if parts else np.zeros((0, config.block_dim), np.float32)
    return VideoDescriptors(info=source.info, blocks=blocks.astype(np.float32, copy=False))


#: Playback speeds a query clip is also read at, by default: re-uploads are often
#: sped up or slowed down a little (to dodge matching, or to fit a slot), and each
#: speed tolerates about +-5 % around it, so these cover roughly 0.85x-1.15x.
DEFAULT_SPEEDS = (1.0, 0.9, 1.1)


def check_speeds(speeds: tuple[float, ...] | list[float]) -> tuple[float, ...]:
    """``speeds`` as a tuple of floats, or :class:`VsearchError` if any is unusable."""
    speeds = tuple(float(s) for s in speeds)
    if not speeds or any(not 0.25 <= s <= 4.0 for s in speeds):
        raise VsearchError(f"speeds must be between 0.25 and 4, got {', '.join(f'{s:g}' for s in speeds) or 'none'}")
    return speeds


@dataclass(frozen=True)
class ClipWindows:
    """Query windows of a clip, in several *views*.

    A view is one way of reading the clip: a sub-block phase (which analysis frame
    its first block starts at), mirrored or not, and a playback speed. ``vectors[i]``
    covers clip seconds ``[starts[i], starts[i] + window_seconds / speeds[i])`` and
    belongs to view ``views[i]``; view ``v`` has phase ``v % frames_per_block``;
    ``mirrored[i]`` says whether the view is the horizontally flipped clip.
    ``speeds[i]`` is the playback speed the view assumes: a clip played at speed
    ``s`` shows, at clip time ``t``, library time ``offset + s * t``.
    """

    duration: float
    vectors: np.ndarray
    starts: np.ndarray
    views: np.ndarray
    speeds: np.ndarray
    mirrored: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.vectors)
        if not (len(self.starts) == len(self.views) == len(self.speeds) == len(self.mirrored) == n):
            raise ValueError("vectors, starts, views, speeds and mirrored must have one entry per window")

    @property
    def view_count(self) -> int:
        return int(self.views.max()) + 1 if len(self.views) else 0


def describe_clip(
    path: str | os.PathLike,
    config: IndexConfig,
    device: Device,
    *,
    mirrored: bool = False,
    speeds: tuple[float, ...] = (1.0,),
    inset: bool = False,
) -> ClipWindows:
    """Windows of a query clip in every view (phase x mirrored x speed).

    A clip cut at 3.27 s does not line up with library blocks at 3.0 and 3.5 s; cutting
    the clip's blocks at every frame offset within a block guarantees one phase is
    within half an analysis frame of the library's grid. With ``mirrored`` the
    horizontally flipped clip is described too, to find flipped re-uploads. Each
    speed ``s`` reads the clip at ``s`` times the analysis rate, so a sped-up copy
    is described on the library's own time base (motion per frame included). With
    ``inset`` (v1 only), a picture-in-picture inset found in the clip is described
    on its own too (at speed 1), scaled up to the working size.
    """
    speeds = check_speeds(speeds)
    source = VideoSource(path, width=config.width, height=config.height)
    per_speed = source.frames_at_rates([config.analysis_fps * s for s in speeds])
    source.close()
    fpb = config.frames_per_block
    # Bars are looked for in the same span of frames as on the library side.
    head = per_speed[0][: fpb * _BLOCKS_PER_CHUNK]
    borders = detect_borders(head) if config.crop_borders else (0, 0, 0, 0)
    readings = [(speed, remove_borders(frames, borders, np)) for speed, frames in zip(speeds, per_speed)]
    if inset and config.crop_borders and 1.0 in speeds:
        plain = readings[speeds.index(1.0)][1]
        margins = detect_inset(plain[: fpb * _BLOCKS_PER_CHUNK])
        if margins is not None:
            readings.append((1.0, remove_borders(plain, margins, np)))
    vectors, starts, views, view_speeds, flips = [], [], [], [], []
    group = 0
    for speed, frames in readings:
        described: list[list[np.ndarray]] = [[], []]
        for phase in range(fpb):
            blocks = device.to_numpy(block_descriptors(frames[phase:], config, device.xp))
            described[0].append(blocks)
            if mirrored:
                # v1 mirrors by permuting descriptors; seed has no layout, so describe the flip.
                described[1].append(mirror_descriptors(blocks, config) if config.features == "v1" else
                                    device.to_numpy(block_descriptors(frames[phase:, :, ::-1], config, device.xp)))
        for flipped, flavour in enumerate(described):
            if not flavour:
                continue
            for phase, blocks in enumerate(flavour):
                windows = window_vectors(blocks, config)
                vectors.append(windows)
                source_starts = phase / config.analysis_fps + np.arange(len(windows)) * config.block_seconds
                starts.append(source_starts / speed)
                views.append(np.full(len(windows), group * fpb + phase))
                view_speeds.append(np.full(len(windows), speed))
                flips.append(np.full(len(windows), bool(flipped)))
            group += 1
    all_vectors = np.concatenate(vectors)
    if len(all_vectors) == 0:
        raise ClipTooShortError(
            str(path),
            f"clip is {source.info.duration:.2f} s long, shorter than one window "
            f"({config.window_seconds:g} s)",
        )
    return ClipWindows(
        duration=source.info.duration,
        vectors=all_vectors,
        starts=np.concatenate(starts),
        views=np.concatenate(views),
        speeds=np.concatenate(view_speeds),
        mirrored=np.concatenate(flips),
    )

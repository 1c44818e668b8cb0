"""Reader -> mapper stages: a video file becomes block descriptors or query windows."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .config import IndexConfig
from .decode import VideoInfo, VideoSource
from .device import Device
from .errors import ClipTooShortError, VideoError
from .features import block_descriptors, detect_borders, mirror_descriptors, remove_borders
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


@dataclass(frozen=True)
class ClipWindows:
    """Query windows of a clip at every sub-block phase.

    ``vectors[i]`` covers clip seconds ``[starts[i], starts[i] + window_seconds)``;
    ``phases[i]`` is the phase (in analysis frames) it was cut at; phases
    ``frames_per_block .. 2*frames_per_block-1`` are the same phases of the
    horizontally mirrored clip, when mirroring was asked for.
    """

    duration: float
    vectors: np.ndarray
    starts: np.ndarray
    phases: np.ndarray


def describe_clip(
    path: str | os.PathLike, config: IndexConfig, device: Device, *, mirrored: bool = False
) -> ClipWindows:
    """Windows of a query clip, at each phase offset of one analysis frame.

    A clip cut at 3.27 s does not line up with library blocks at 3.0 and 3.5 s; cutting
    the clip's blocks at every frame offset within a block guarantees one phase is
    within half an analysis frame of the library's grid. With ``mirrored`` the
    horizontally flipped clip is described too, to find flipped re-uploads.
    """
    source = VideoSource(path, width=config.width, height=config.height)
    # Clips are short; their uint8 frames take about 120 kB per second of clip.
    chunks = list(source.iter_frames(config.analysis_fps))
    frames = np.concatenate(chunks) if chunks else np.zeros((0, config.height, config.width), np.uint8)
    source.close()
    fpb = config.frames_per_block
    vectors, starts, phases = [], [], []
    # Bars are looked for in the same span of frames as on the library side.
    head = frames[: config.frames_per_block * _BLOCKS_PER_CHUNK]
    frames = remove_borders(frames, detect_borders(head) if config.crop_borders else (0, 0, 0, 0), np)
    for phase in range(fpb):
        blocks = device.to_numpy(block_descriptors(frames[phase:], config, device.xp))
        views = [blocks]
        if mirrored:
            # v1 mirrors by permuting descriptors; seed has no layout, so describe the flip.
            views.append(mirror_descriptors(blocks, config) if config.features == "v1" else
                         device.to_numpy(block_descriptors(frames[phase:, :, ::-1], config, device.xp)))
        for view_number, view in enumerate(views):
            windows = window_vectors(view, config)
            vectors.append(windows)
            starts.append(phase / config.analysis_fps + np.arange(len(windows)) * config.block_seconds)
            phases.append(np.full(len(windows), phase + view_number * fpb))
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
        phases=np.concatenate(phases),
    )

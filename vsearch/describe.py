"""Describing a video: one file -> its block descriptors, decoded once, in order.

:func:`describe_video` streams the file's analysis frames chunk by chunk (memory
stays flat whatever its length), cuts off letterbox bars found on its first
seconds, and hands the frames to the index's extractor. Blocks over damaged spans
are zero. Ingest and feature export describe videos this way; query clips are
described by :mod:`vsearch.search.clip`, the same way, in several readings.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np

from .config import IndexConfig
from .decode import DEFAULT_MAX_PIXELS, DEFAULT_TIMEOUT, VideoInfo, VideoSource
from .device import Device
from .errors import VideoError
from .extractors import Extractor, create_extractor
from .frames import DETECTION_BLOCKS, detect_borders, remove_borders
from .windows import damaged_blocks

# Frames per decode chunk, in blocks: memory stays flat whatever the video length,
# and two chunks fit in the decoder's pipe (it decodes ahead while blocks are described).
_STREAM_BLOCKS = 8


@dataclass(frozen=True)
class VideoDescriptors:
    """Block descriptors of a whole video (block ``i`` starts at ``i * block_seconds``
    on the player's timeline). Blocks over damaged spans (``info.damaged``) are zero."""

    info: VideoInfo
    blocks: np.ndarray

    def __post_init__(self) -> None:
        if self.blocks.ndim != 2 or self.blocks.dtype != np.float32:
            raise ValueError("blocks must be a 2-D float32 array")
        if not np.all(np.isfinite(self.blocks)):
            raise VideoError(self.info.path, "descriptors are not finite")


def describe_video(
    path: str | os.PathLike, config: IndexConfig, device: Device, *, timeout: float = DEFAULT_TIMEOUT,
    stop: threading.Event | None = None, extractor: Extractor | None = None, threads: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> VideoDescriptors:
    """Decode ``path`` once, chunk by chunk, and describe every complete block.

    ``timeout``: seconds without progress (or of decoding below a tenth of real
    time) after which the file is abandoned with a :class:`VideoError`. ``stop``,
    once set, abandons the file at the next chunk (the ingest was interrupted).
    ``extractor`` computes the descriptors (by default the one ``config`` names).
    ``threads``: FFmpeg's decoding threads (default: one per core). A file of frames
    larger than ``max_pixels`` is refused from its headers.
    """
    extractor = extractor or create_extractor(config, device)
    source = VideoSource(path, width=config.width, height=config.height, decoder=config.decoder, timeout=timeout,
                         threads=threads, max_pixels=max_pixels)
    fpb = config.frames_per_block
    parts, head, borders = [], [], None

    def describe(frames: np.ndarray) -> None:
        parts.append(device.to_numpy(extractor.describe(remove_borders(frames, borders, device.xp))))

    for frames in source.iter_frames(config.analysis_fps, chunk_frames=fpb * _STREAM_BLOCKS, integrate=True,
                                     pixel_format=extractor.pixel_format):
        if stop is not None and stop.is_set():
            raise VideoError(path, "interrupted")
        if borders is not None:
            describe(frames)
            continue
        head.append(frames)  # bars are found on the first seconds and kept for the video
        if sum(len(f) for f in head) >= fpb * DETECTION_BLOCKS:
            frames, head = np.concatenate(head), []
            borders = detect_borders(frames[: fpb * DETECTION_BLOCKS]) if config.crop_borders else (0, 0, 0, 0)
            describe(frames)
    if head:  # shorter than the detection span
        frames = np.concatenate(head)
        borders = detect_borders(frames) if config.crop_borders else (0, 0, 0, 0)
        describe(frames)
    blocks = np.concatenate(parts) if parts else np.zeros((0, config.block_dim), np.float32)
    blocks = blocks.astype(np.float32, copy=False)
    if source.info.damaged:
        # A block over lost frames describes a frozen or concealed picture, not the video.
        blocks[damaged_blocks(len(blocks), source.info.damaged, config)] = 0.0
    return VideoDescriptors(info=source.info, blocks=blocks)

"""The extractor interface: analysis frames of a video become per-block descriptors.

An extractor is chosen by the index's configuration (``IndexConfig.features``) and
sits between decoding and windows: whatever computes the descriptors, windows,
the vector index, incremental add and remove, queries and reports stay the same.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from ..config import IndexConfig
from ..device import Device


class Extractor(ABC):
    """Computes block descriptors from decoded analysis frames.

    Attributes:
        config: the index settings (block length, working size, dimension).
        pixel_format: what it reads from the decoder: ``"gray"`` frames ``(n, H, W)``
            or ``"rgb24"`` frames ``(n, H, W, 3)``, both uint8.
        edited_readings: the query readings beyond speed and mirroring it supports
            (``rotations``: quarter turns; ``inset``: parts of the clip read alone, a
            picture-in-picture box or a side of a split screen).
    """

    pixel_format = "gray"
    edited_readings: frozenset[str] = frozenset()

    def __init__(self, config: IndexConfig, device: Device) -> None:
        self.config, self.device = config, device

    @abstractmethod
    def describe(self, frames: Any) -> Any:
        """Descriptors ``(n // frames_per_block, config.block_dim)`` float32 of every
        complete block of ``frames``, in the device's array namespace or NumPy;
        trailing frames that do not fill a block are ignored."""

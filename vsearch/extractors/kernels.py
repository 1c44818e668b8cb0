"""The hand-made 3-D kernels (``v1``, ``seed``) behind the extractor interface.

The numbers are :func:`vsearch.features.block_descriptors`' own, unchanged; the
picture helpers in that module (bars, insets, overlays, rotation) serve every
reading of a query clip and stay there.
"""

from __future__ import annotations

from typing import Any

from ..features import block_descriptors
from .base import Extractor


class KernelExtractor(Extractor):
    """Seven kernels per 0.5 s block on grey frames; computed with NumPy or CuPy."""

    edited_readings = frozenset({"rotations", "inset"})

    def describe(self, frames: Any) -> Any:
        return block_descriptors(frames, self.config, self.device.xp)

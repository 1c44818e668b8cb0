"""Extractors: what turns analysis frames into per-block descriptors, one module each.

- ``kernels`` (:mod:`.kernels`): the hand-made 3-D kernels, ``--features v2|seed`` (default);
- ``onnx`` (:mod:`.onnx`): an image model per frame, ``--features onnx:PATH.onnx``
  (``pip install "vsearch[onnx]"``);
- ``imported``: features computed by another tool, read from ``.npz`` / ``.npy`` /
  ``.h5`` files (``--from-features``, :mod:`vsearch.featurefiles`); no frames are
  decoded, so there is no extractor.

:func:`create_extractor` is the factory; :func:`feature_settings` turns a
``--features`` value into index settings.
"""

from __future__ import annotations

import os
from typing import Any

from ..config import KERNEL_FEATURES, IndexConfig
from ..device import Device
from ..errors import VsearchError
from .base import Extractor

__all__ = ["Extractor", "create_extractor", "feature_settings"]

ONNX_PREFIX = "onnx:"


def feature_settings(spec: str) -> dict[str, Any]:
    """Index settings for a ``--features`` value: ``v2``, ``seed`` or ``onnx:PATH``
    (the model's hash and embedding size, and its input size as the working size)."""
    if spec.startswith(ONNX_PREFIX):
        from .onnx import onnx_settings  # noqa: PLC0415 - needs the optional onnx extra

        return onnx_settings(os.path.expanduser(spec[len(ONNX_PREFIX):]))
    if spec not in KERNEL_FEATURES:
        raise VsearchError(f"--features must be v2, seed or onnx:PATH.onnx, got {spec!r}")
    return {"features": spec}


def create_extractor(config: IndexConfig, device: Device, *, model: str | os.PathLike | None = None) -> Extractor:
    """The extractor of an index's features (``model``: the ONNX model file, if not the recorded one)."""
    if config.extractor == "kernels":
        from .kernels import KernelExtractor  # noqa: PLC0415

        return KernelExtractor(config, device)
    if config.extractor == "onnx":
        from .onnx import OnnxExtractor  # noqa: PLC0415 - needs the optional onnx extra

        return OnnxExtractor(config, device, model=model)
    raise VsearchError("this index holds features computed by another tool: ingest and query with "
                       "--from-features FILE --layout npz|npy|h5")

"""The kernels behind the extractor interface: the same numbers, the same stored config."""

from __future__ import annotations

import numpy as np
import pytest

from vsearch.config import IndexConfig
from vsearch.device import resolve_device
from vsearch.errors import ConfigMismatchError, VsearchError
from vsearch.extractors import create_extractor, feature_settings
from vsearch.extractors.kernels import KernelExtractor, block_descriptors


@pytest.mark.parametrize("kind", ["v1", "seed"])
def test_kernel_extractor_gives_the_kernels_numbers(kind):
    config = IndexConfig(features=kind)
    frames = np.random.default_rng(1).integers(0, 256, size=(23, 96, 128)).astype(np.float32)
    extractor = create_extractor(config, resolve_device("cpu"))
    assert isinstance(extractor, KernelExtractor) and extractor.pixel_format == "gray"
    np.testing.assert_array_equal(extractor.describe(frames), block_descriptors(frames, config, np))


def test_kernel_index_config_is_stored_as_before():
    stored = IndexConfig().to_dict()
    assert set(stored) == {"features", "block_seconds", "window_blocks", "width", "height", "analysis_fps", "grid",
                           "decoder", "format_version", "feature_version", "dim", "normalization"}
    assert IndexConfig.from_dict(stored) == IndexConfig()


def test_learned_configs_round_trip_and_validate():
    onnx = IndexConfig(features="onnx", embedding_dim=24, model_hash="ab" * 16, model_path="/m.onnx")
    assert onnx.extractor == "onnx" and onnx.block_dim == 24 and onnx.dim == 72 and not onnx.crop_borders
    assert IndexConfig.from_dict(onnx.to_dict()) == onnx
    # The path is not compared (a moved model is the same model); the hash is.
    assert IndexConfig(features="onnx", embedding_dim=24, model_hash="ab" * 16, model_path="/moved.onnx") == onnx
    other = IndexConfig(features="onnx", embedding_dim=24, model_hash="cd" * 16)
    assert any("hash" in line for line in other.differences(onnx))
    imported = IndexConfig(features="imported", embedding_dim=512)
    assert imported.extractor == "imported" and imported.dim == 1536 and imported.normalization == "l2"
    for bad in (dict(features="onnx", embedding_dim=24), dict(features="imported"),
                dict(features="v1", embedding_dim=8), dict(features="imported", embedding_dim=8, model_hash="x")):
        with pytest.raises(ConfigMismatchError):
            IndexConfig(**bad)
    with pytest.raises(VsearchError, match="--from-features"):
        create_extractor(imported, resolve_device("cpu"))
    with pytest.raises(VsearchError, match="onnx:PATH"):
        feature_settings("clip")

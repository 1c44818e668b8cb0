"""The hand-made kernels against direct reference computations, and behind the extractor interface."""

from __future__ import annotations

import numpy as np
import pytest

from vsearch.config import IndexConfig
from vsearch.device import GPU_TOLERANCE, gpu_available, resolve_device
from vsearch.errors import ConfigMismatchError, VsearchError
from vsearch.extractors import create_extractor, feature_settings
from vsearch.extractors.kernels import (
    KERNEL_NAMES,
    KernelExtractor,
    block_descriptors,
    linear_responses,
    reference_kernels,
    seed_descriptors,
)

from tests.conftest import random_frames


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


def correlate_valid(volume: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Plain nested-loop 3-D correlation over the valid region (the slow reference)."""
    t, h, w = volume.shape
    kt, kh, kw = kernel.shape
    out = np.zeros((t - kt + 1, h - kh + 1, w - kw + 1), np.float64)
    for z in range(out.shape[0]):
        for y in range(out.shape[1]):
            for x in range(out.shape[2]):
                out[z, y, x] = np.sum(volume[z : z + kt, y : y + kh, x : x + kw] * kernel)
    return out


@pytest.fixture()
def tiny_block() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(1, 5, 7, 9)).astype(np.float32)


def test_fast_kernels_equal_direct_correlation(tiny_block):
    fast = linear_responses(tiny_block)
    for name, kernel in reference_kernels().items():
        expected = correlate_valid(tiny_block[0].astype(np.float64), kernel)
        np.testing.assert_allclose(fast[name][0], expected, rtol=0, atol=1e-3, err_msg=name)


def test_kernels_are_the_documented_family():
    k = reference_kernels()
    assert tuple(k) == KERNEL_NAMES
    # Motion kernels: one -1 tap in frame t-1 and one +1 tap in frame t+1, one pixel apart.
    for name in ("motion_r", "motion_l", "motion_u", "motion_d"):
        neg, pos = np.argwhere(k[name] == -1), np.argwhere(k[name] == 1)
        assert len(neg) == len(pos) == 1 and neg[0][0] == 0 and pos[0][0] == 2
        assert np.abs(neg[0][1:] - pos[0][1:]).sum() == 1
    assert k["inversion"].shape[0] == 2 and k["inversion"].sum() == 0
    for name in ("laplacian", "sobel"):
        assert np.allclose(k[name][0], k[name][1]) and np.allclose(k[name][1], k[name][2])


def test_seed_descriptor_is_sum_of_raw_responses(tiny_block):
    seed = seed_descriptors(tiny_block, np)
    expected = [correlate_valid(tiny_block[0].astype(np.float64), k).sum() for k in reference_kernels().values()]
    np.testing.assert_allclose(seed[0], expected, rtol=1e-5, atol=1e-2)


def test_v1_ignores_brightness_offset():
    config = IndexConfig()
    frames = random_frames(1)
    a = block_descriptors(frames, config, np)
    b = block_descriptors(frames + 17.0, config, np)
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_v1_nearly_ignores_contrast_but_sees_where_structure_is():
    config = IndexConfig()
    frames = random_frames(1)
    flattened = frames.copy()
    flattened[:, :40, :50] = 128 + (flattened[:, :40, :50] - 128) * 0.2  # one corner loses texture
    a = block_descriptors(frames, config, np)
    assert a.shape == (4, config.block_dim)

    def change(other: np.ndarray) -> float:
        return float(np.linalg.norm(a - block_descriptors(other, config, np)) / np.linalg.norm(a))

    assert change(frames * 0.8) < 0.03
    assert change(flattened) > 0.3
    assert change(frames[:, :, ::-1]) > 0.3


def test_descriptors_are_deterministic():
    config = IndexConfig()
    frames = random_frames(3)
    assert np.array_equal(block_descriptors(frames, config, np), block_descriptors(frames.copy(), config, np))


def test_incomplete_trailing_block_is_ignored():
    config = IndexConfig()
    frames = random_frames(4, n=config.frames_per_block * 2 + 3)
    assert block_descriptors(frames, config, np).shape[0] == 2


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="no CUDA GPU with CuPy")
@pytest.mark.parametrize("features", ["v1", "seed"])
def test_gpu_matches_cpu(features):
    config = IndexConfig(features=features)
    frames = random_frames(5, n=40)
    gpu = resolve_device("gpu")
    cpu_out = block_descriptors(frames, config, np)
    gpu_out = gpu.to_numpy(block_descriptors(gpu.asarray(frames), config, gpu.xp))
    scale = max(1.0, float(np.abs(cpu_out).max()))
    assert np.abs(cpu_out - gpu_out).max() <= GPU_TOLERANCE * scale


def test_mirrored_descriptors_equal_describing_flipped_frames():
    from vsearch.extractors.kernels import mirror_descriptors

    config = IndexConfig()
    frames = random_frames(7)
    direct = block_descriptors(frames[:, :, ::-1].copy(), config, np)
    permuted = mirror_descriptors(block_descriptors(frames, config, np), config)
    np.testing.assert_allclose(permuted, direct, atol=1e-4)


def test_mirroring_no_descriptors_gives_none():
    from vsearch.extractors.kernels import mirror_descriptors

    config = IndexConfig()
    assert mirror_descriptors(np.zeros((0, config.block_dim), np.float32), config).shape == (0, config.block_dim)

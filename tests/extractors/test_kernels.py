"""The hand-made kernels against direct reference computations, and behind the extractor interface."""

from __future__ import annotations

import numpy as np
import pytest

from vsearch import cells
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

from vsearch.windows import block_vectors

from tests.conftest import random_frames


@pytest.mark.parametrize("kind", ["v2", "seed"])
def test_kernel_extractor_gives_the_kernels_numbers(kind):
    config = IndexConfig(features=kind)
    frames = np.random.default_rng(1).integers(0, 256, size=(23, 96, 128)).astype(np.float32)
    extractor = create_extractor(config, resolve_device("cpu"))
    assert isinstance(extractor, KernelExtractor) and extractor.pixel_format == "gray"
    np.testing.assert_array_equal(extractor.describe(frames), block_descriptors(frames, config, np))


def test_kernel_index_config_is_stored_as_before():
    stored = IndexConfig().to_dict()
    assert set(stored) == {"features", "block_seconds", "window_blocks", "width", "height", "analysis_fps", "grid",
                           "cells", "decoder", "format_version", "feature_version", "dim", "normalization"}
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
                dict(features="v2", embedding_dim=8), dict(features="v1"), dict(cells=(6, 6)), dict(features="imported", embedding_dim=8, model_hash="x")):
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


def _finished(frames: np.ndarray, config: IndexConfig) -> np.ndarray:
    """Search vectors per block (the cells pooled on the coarse grid and finished)."""
    return block_vectors(block_descriptors(frames, config, np), config)


def test_v2_ignores_brightness_offset():
    config = IndexConfig()
    frames = random_frames(1)
    a = block_descriptors(frames, config, np)
    b = block_descriptors(frames + 17.0, config, np)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_v2_nearly_ignores_contrast_but_sees_where_structure_is():
    config = IndexConfig()
    frames = random_frames(1)
    flattened = frames.copy()
    flattened[:, :40, :50] = 128 + (flattened[:, :40, :50] - 128) * 0.2  # one corner loses texture
    a = _finished(frames, config)
    assert block_descriptors(frames, config, np).shape == (4, config.block_dim)
    assert a.shape == (4, config.search_block_dim)

    def change(other: np.ndarray) -> float:
        return float(np.linalg.norm(a - _finished(other, config)) / np.linalg.norm(a))

    assert change(frames * 0.8) < 0.03
    assert change(flattened) > 0.3
    assert change(frames[:, :, ::-1]) > 0.3


def test_blocks_of_every_phase_come_from_one_pass():
    config = IndexConfig()
    frames = random_frames(2, n=43)
    extractor = create_extractor(config, resolve_device("cpu"))
    phases = extractor.describe_cells(frames, (config.cells, (6, 6)))
    assert len(phases) == config.frames_per_block
    for phase, described in enumerate(phases):
        direct = block_descriptors(frames[phase:], config, np)
        np.testing.assert_allclose(described[config.cells].reshape(len(direct), -1), direct, rtol=1e-5, atol=1e-6)
        assert described[(6, 6)].shape == (len(direct), len(KERNEL_NAMES), 6, 6)


def test_cells_on_the_search_grid_are_pooled_cells():
    """4 x 4 search cells are exactly the 2 x 2 means of the 8 x 8 stored ones."""
    config = IndexConfig()
    frames = random_frames(6)
    stored = cells.as_cells(block_descriptors(frames, config, np), config.cells)
    coarse = stored.reshape(len(stored), 7, 4, 2, 4, 2).mean(axis=(3, 5))
    np.testing.assert_allclose(cells.pool(stored, config.grid), coarse, rtol=1e-5)


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
@pytest.mark.parametrize("features", ["v2", "seed"])
def test_gpu_matches_cpu(features):
    config = IndexConfig(features=features)
    frames = random_frames(5, n=40)
    gpu = resolve_device("gpu")
    cpu_out = block_descriptors(frames, config, np)
    gpu_out = gpu.to_numpy(block_descriptors(gpu.asarray(frames), config, gpu.xp))
    scale = max(1.0, float(np.abs(cpu_out).max()))
    assert np.abs(cpu_out - gpu_out).max() <= GPU_TOLERANCE * scale


@pytest.mark.parametrize("turn", ["mirrored", "half_turned"])
def test_permuted_cells_equal_describing_turned_frames(turn):
    config = IndexConfig()
    frames = random_frames(7)
    turned = frames[:, :, ::-1] if turn == "mirrored" else frames[:, ::-1, ::-1]
    direct = cells.as_cells(block_descriptors(np.ascontiguousarray(turned), config, np), config.cells)
    permuted = getattr(cells, turn)(cells.as_cells(block_descriptors(frames, config, np), config.cells))
    np.testing.assert_allclose(permuted, direct, rtol=1e-4, atol=1e-5)
    # Permutations commute with finishing and pooling onto any grid.
    for grid in ((4, 4), (6, 6)):
        np.testing.assert_allclose(cells.finish(cells.pool(permuted, grid)), cells.finish(cells.pool(direct, grid)),
                                   rtol=1e-4, atol=1e-5)


def test_turning_no_cells_gives_none():
    assert cells.mirrored(np.zeros((0, 7, 8, 8), np.float32)).shape == (0, 7, 8, 8)
    assert cells.half_turned(np.zeros((0, 7, 8, 8), np.float32)).shape == (0, 7, 8, 8)

"""`vsearch features`: descriptors written with their time axis, in every format."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import LIBRARY_SEEDS, run_cli


def test_feature_export_npz_and_npy(media, tmp_path):
    video = media[f"lib{LIBRARY_SEEDS[0]}"]
    run_cli("features", str(video), "-o", str(tmp_path / "f.npz"), check=True)
    with np.load(tmp_path / "f.npz") as data:
        assert data["features"].shape == (32, 112) and data["features"].dtype == np.float32
        np.testing.assert_allclose(data["timestamps"][:2], [[0.0, 0.5], [0.5, 1.0]])
        assert float(data["fps"]) == pytest.approx(25.0) and float(data["block"]) == 0.5
    run_cli("features", str(video), "-o", str(tmp_path / "seed.npy"), "--features", "seed", check=True)
    seed = np.load(tmp_path / "seed.npy")
    assert seed.shape == (32, 7)  # the original 7-D per-block output


def test_feature_export_folder_and_hdf5(media, tmp_path):
    videos = [str(media[f"lib{s}"]) for s in LIBRARY_SEEDS]
    out = run_cli("features", *videos, "-o", str(tmp_path / "feats"), check=True).stdout
    assert out.count("wrote") == 3 and len(list((tmp_path / "feats").glob("*.npz"))) == 3
    proc = run_cli("features", *videos, "-o", str(tmp_path / "x.npy"))
    assert proc.returncode != 0 and "one .npy file holds one video" in proc.stderr
    h5py = pytest.importorskip("h5py")
    run_cli("features", *videos, "-o", str(tmp_path / "all.h5"), check=True)
    with h5py.File(tmp_path / "all.h5") as handle:
        assert len(handle) == 3
        group = handle[next(iter(handle))]
        assert group["features"].shape == (32, 112) and group["timestamps"].shape == (32, 2)

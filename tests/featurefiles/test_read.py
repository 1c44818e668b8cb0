"""Features computed elsewhere: each layout written here, indexed, queried; exports read back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vsearch import IndexConfig, VideoIndex
from vsearch.errors import ConfigMismatchError, FeatureFileError, VsearchError
from vsearch.featurefiles.read import FeatureReading, read_source
from vsearch.featurefiles.timing import FeatureTiming

from tests.conftest import LIBRARY_SEEDS, run_cli

DIM = 32
PER_SECOND = FeatureReading(timing=FeatureTiming(rate=1.0))


def _walk(seed: int, count: int) -> np.ndarray:
    """Features that change smoothly along a video, as learned ones do."""
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.normal(size=(count, DIM)), axis=0).astype(np.float32)


def _imported_index(path, dim: int = DIM, **settings) -> VideoIndex:
    return VideoIndex.open(path, config=IndexConfig(features="imported", embedding_dim=dim, **settings),
                           create=True, device="cpu")


def _clip(features: np.ndarray, first: int, count: int, seed: int = 5) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(scale=0.2, size=(count, features.shape[1]))
    return (features[first : first + count] + noise).astype(np.float32)


def test_npy_at_one_per_second(tmp_path):
    for seed in range(3):
        np.save(tmp_path / f"video{seed}.npy", _walk(seed, 60))
    np.save(tmp_path / "query.npy.clip", np.zeros(1))  # not a feature file: ignored in the folder
    clip = tmp_path / "clip.npy"
    np.save(clip, _clip(_walk(1, 60), 20, 8))
    with _imported_index(tmp_path / "ix") as ix:
        reading = FeatureReading(layout="npy", timing=FeatureTiming(rate=1.0))
        results = ix.add_features([tmp_path / f"video{s}.npy" for s in range(3)], reading=reading)
        assert [r.status for r in results] == ["added"] * 3
        assert ix.stats().duration_s == 180.0
        hits = ix.query_features(clip, reading=reading, k=1).hits
    assert hits[0].video == str(tmp_path / "video1.npy")
    assert abs(hits[0].start - 20.0) < 0.3 and abs(hits[0].end - 28.0) < 0.6


def test_h5_groups_and_merged_datasets_and_uniform_samples(tmp_path):
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "resnet.h5", "w") as handle:  # ResNet at 1 fps, merged: a dataset per video
        handle["alpha"] = _walk(1, 30)
        handle["beta"] = _walk(2, 30)
        group = handle.create_group("gamma")  # video_features style: 50 uniform samples over 25 s
        group["features"] = _walk(3, 50)
        group.attrs.update(duration=25.0, path="/footage/gamma.mp4")
    clip = tmp_path / "clip.h5"
    with h5py.File(clip, "w") as handle:
        handle["clip"] = _clip(_walk(3, 50), 20, 12)  # 12 samples at 2 per second
    with _imported_index(tmp_path / "ix") as ix:
        h5_at_one_per_second = FeatureReading(layout="h5", timing=FeatureTiming(rate=1))
        results = ix.add_features([tmp_path / "resnet.h5"], reading=h5_at_one_per_second)
        assert [r.status for r in results] == ["added"] * 3
        # Uniform samples need a duration: the bare datasets fail, the group has one and is
        # re-indexed on its new time axis; the failures leave their videos as they were.
        results = ix.add_features([tmp_path / "resnet.h5"], reading=FeatureReading(timing=FeatureTiming(uniform=True)))
        assert [r.status for r in results] == ["failed", "failed", "replaced"]
        assert "duration" in results[0].reason and results[0].path.endswith("resnet.h5::alpha")
        assert ix.stats().videos == 3 and ix.stats().duration_s == 30 + 30 + 25
        assert sorted(r.path for r in ix.videos()) == ["/footage/gamma.mp4", f"{tmp_path}/resnet.h5::alpha",
                                                        f"{tmp_path}/resnet.h5::beta"]
        hit = ix.query_features(clip, reading=FeatureReading(timing=FeatureTiming(rate=2)), k=1).hits[0]
    assert hit.video == "/footage/gamma.mp4" and abs(hit.start - 10.0) < 0.3


def test_bad_files_fail_alone_with_one_line(tmp_path):
    good = tmp_path / "good.npy"
    np.save(good, _walk(0, 20))
    bad = {
        "model.pkl": b"\x80\x04K\x01.",
        "wrong_dim.npy": _walk(1, 20)[:, :16],
        "flat.npy": np.zeros(20, np.float32),
        "nan.npy": np.full((20, DIM), np.nan, np.float32),
        "stamps.npz": dict(features=_walk(2, 20), timestamps=np.zeros((19, 2))),
        "objects.npz": dict(features=np.array([object()] * 3, dtype=object)),
        "short.npy": _walk(3, 1),
    }
    for name, content in bad.items():
        if isinstance(content, bytes):
            (tmp_path / name).write_bytes(content)
        elif isinstance(content, dict):
            np.savez(tmp_path / name, **content)
        else:
            np.save(tmp_path / name, content)
    with _imported_index(tmp_path / "ix") as ix:
        results = {r.path.rsplit("/", 1)[-1]: r for r in ix.add_features([tmp_path], reading=PER_SECOND)}
        assert ix.stats().videos == 1
    assert results["good.npy"].status == "added"
    reasons = {name: results[name].reason for name in bad}
    assert all(results[name].status == "failed" for name in bad)
    assert "pickle" in reasons["model.pkl"] and "pickle" in reasons["objects.npz"]
    assert "16 dimensions, the index holds 32" in reasons["wrong_dim.npy"]
    assert "[count, dim]" in reasons["flat.npy"] and "NaN" in reasons["nan.npy"]
    assert "[20, 2]" in reasons["stamps.npz"] and "shorter than one window" in reasons["short.npy"]
    assert all("\n" not in r for r in reasons.values())
    with pytest.raises(FeatureFileError, match="not in the npz layout"):
        read_source(good, FeatureReading(layout="npz"))
    with pytest.raises(VsearchError, match="--rate"):
        FeatureTiming.parse(rate="fast")


def test_cli_imports_and_refuses(tmp_path):
    feats = tmp_path / "feats"
    feats.mkdir()
    for seed in range(2):
        np.save(feats / f"v{seed}.npy", _walk(seed, 30))
    (feats / "old.pkl").write_bytes(b"\x80\x04K\x01.")
    index = str(tmp_path / "ix")
    proc = run_cli("ingest", "--from-features", str(feats), "--layout", "npy", "--rate", "1", "--index", index)
    assert proc.returncode == 2  # two indexed, the pickle failed
    assert proc.stderr.strip().splitlines() == [f"FAILED {feats / 'old.pkl'}: pickle files are not read (loading one "
                                                "can run code); video_features writes NumPy files with "
                                                "on_extraction=save_numpy"]
    assert "2 added, 1 failed" in proc.stdout
    np.save(tmp_path / "clip.npy", _clip(_walk(1, 30), 5, 6))
    out = run_cli("query", "--from-features", str(tmp_path / "clip.npy"), "--rate", "1", "--index", index, "--json",
                  check=True)
    hit = json.loads(out.stdout)["hits"][0]
    assert hit["video"] == str(feats / "v1.npy") and abs(hit["start"] - 5.0) < 0.3
    np.save(tmp_path / "narrow.npy", _walk(1, 30)[:, :8])
    proc = run_cli("query", "--from-features", str(tmp_path / "narrow.npy"), "--rate", "1", "--index", index)
    assert proc.returncode == 2 and "8 dimensions" in proc.stderr
    proc = run_cli("query", str(tmp_path / "clip.npy"), "--index", index)  # a feature index cannot read a video
    assert proc.returncode == 2 and "--from-features" in proc.stderr


def test_kernel_index_refuses_imports(built_index, tmp_path):
    np.save(tmp_path / "v.npy", _walk(0, 30))
    with VideoIndex.open(built_index, device="cpu") as ix, pytest.raises(ConfigMismatchError, match="own v2"):
        ix.add_features([tmp_path / "v.npy"])


@pytest.mark.parametrize("suffix", [".npz", ".npy", ".h5", "folder"])
def test_exported_kernel_features_import_back(suffix, media, clips, built_index, tmp_path):
    """What `vsearch features` writes, `--from-features` reads back: the same blocks,
    the same windows as an index built from the videos, and a clip's export finds its source."""
    if suffix == ".h5":
        pytest.importorskip("h5py")
    videos = [media[f"lib{s}"] for s in LIBRARY_SEEDS]
    out = tmp_path / ("feats" if suffix == "folder" else f"lib{suffix}")
    targets = [out] if suffix in (".h5", "folder") else [tmp_path / f"{v.stem}{suffix}" for v in videos]
    for target in targets:
        given = videos if suffix in (".h5", "folder") else [videos[targets.index(target)]]
        run_cli("features", *map(str, given), "-o", str(target), check=True)
    reading = FeatureReading(timing=FeatureTiming(rate=2))  # a bare .npy holds one block (0.5 s) per row
    with _imported_index(tmp_path / "ix", dim=112) as ix, VideoIndex.open(built_index, device="cpu") as native:
        results = ix.add_features(targets, reading=reading)
        assert [r.status for r in results] == ["added"] * 3, results
        by_stem = {Path(r.path).stem: r for r in native.videos()}
        for record in ix.videos():  # the video's path, or for a bare .npy the file named after it
            twin = by_stem[Path(record.path).stem]
            np.testing.assert_array_equal(ix.window_vectors(record.id), native.window_vectors(twin.id))
        clip, source, start = clips["exact"]
        run_cli("features", str(clip), "-o", str(tmp_path / "clip.npz"), check=True)
        # A clip given as features lies on the block grid, up to half a block off: it scores lower.
        hit = ix.query_features(tmp_path / "clip.npz", k=1, min_score=0.5).hits[0]
    if suffix != ".npy":  # a bare .npy names no video: the file stands for it
        assert hit.video == str(source)
    assert abs(hit.start - start) < 0.5

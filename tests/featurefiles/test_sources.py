"""Feature files → sources: video_features' names and sidecars grouped by video stem,
I3D's streams side by side, HDF5 entries, and the videos they are named by."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vsearch.errors import VsearchError
from vsearch.featurefiles.sources import VideoFolder, feature_sources, video_stems


def _touch(folder: Path, *names: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        np.save(folder / name, np.zeros((2, 4))) if name.endswith(".npy") else (folder / name).write_bytes(b"\0")


def test_a_video_features_tree_is_grouped_by_video_stem(tmp_path):
    _touch(tmp_path / "out" / "i3d", "v_a_b_rgb.npy", "v_a_b_flow.npy", "v_a_b_fps.npy", "v_a_b_timestamps_ms.npy",
           "c_rgb.npy", "c_fps.npy", "c_timestamps_ms.npy", "orphan_fps.npy")
    _touch(tmp_path / "out" / "clip" / "ViT-B_32", "x_1_clip.npy", "x_1_fps.npy", "x_1_timestamps_ms.npy",
           "x_1_resnet.npy")
    _touch(tmp_path / "out" / "r21d" / "r2plus1d_18_16_kinetics", "my_video_r21d.npy", "plain.npy", "old.pkl")
    found = {(s.path.parent.name, s.stem, s.keys, tuple(sorted(s.sidecars))) for s in feature_sources([tmp_path])}
    stamps = ("fps", "timestamps_ms")
    assert found == {
        ("i3d", "v_a_b", ("rgb", "flow"), stamps),  # one video's two streams, side by side
        ("i3d", "c", ("rgb",), stamps),  # only rgb extracted (streams=rgb); the orphan sidecar is no video
        ("ViT-B_32", "x_1", ("clip",), stamps),  # two models into one folder: a source each, the same sidecars
        ("ViT-B_32", "x_1", ("resnet",), stamps),
        ("r2plus1d_18_16_kinetics", "my_video", ("r21d",), ()),  # no sidecar: split at the tool's key
        ("r2plus1d_18_16_kinetics", "plain", (), ()),
        ("r2plus1d_18_16_kinetics", "old", (), ()),  # a pickle, kept to be refused by name
    }
    (pair,) = [s for s in feature_sources([tmp_path / "out" / "i3d"]) if len(s.files) == 2]
    assert pair.label == str(tmp_path / "out" / "i3d" / "v_a_b_rgb+flow.npy")
    (named,) = feature_sources([tmp_path / "out" / "i3d" / "v_a_b_flow.npy"])  # one stream named: that one
    assert named.keys == ("flow",) and named.stem == "v_a_b" and set(named.sidecars) == set(stamps)


def test_hdf5_entries_and_missing_paths(tmp_path):
    (tmp_path / "m.h5").write_bytes(b"\0")
    (entry,) = feature_sources([f"{tmp_path}/m.h5::clip."])
    assert entry.entry == "clip." and entry.label == f"{tmp_path}/m.h5::clip." and str(entry) == entry.label
    with pytest.raises(VsearchError, match="no such file or folder"):
        feature_sources([tmp_path / "gone.h5::x"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(VsearchError, match="no feature files"):
        feature_sources([tmp_path / "empty"])


def test_stems_and_videos_found_by_them(tmp_path):
    assert video_stems("SampleVideo.") == ["SampleVideo.", "SampleVideo"]  # ResNet convert.py's entry names
    assert video_stems("walk_features") == ["walk_features", "walk"]
    assert video_stems("a.b.npy") == ["a.b.npy", "a.b"]
    _touch(tmp_path / "v" / "sub", "walk.mkv", "notes.txt")
    _touch(tmp_path / "v", "run.mp4", "run.webm")
    folder = VideoFolder(tmp_path / "v")
    assert folder.find(["walk_features", "walk"]) == str(tmp_path / "v" / "sub" / "walk.mkv")
    with pytest.raises(ValueError, match="2 videos named 'run' in .*: run.mp4, run.webm"):
        folder.find(["run"])
    with pytest.raises(ValueError, match="no video named 'notes'"):
        folder.find(["notes"])

"""Golden files of each tool's layout: every feature's span read exactly, every video
named as its source file, and a slice found at its true start. Refusals: one line,
the README's exit code, the index as it was."""

from __future__ import annotations

import functools
import json
import os

import numpy as np
import pytest

from vsearch import IndexConfig, VideoIndex
from vsearch.featurefiles.read import FeatureReading, read_source
from vsearch.featurefiles.sources import VideoFolder, feature_sources
from vsearch.featurefiles.timing import FeatureTiming

from tests.conftest import run_cli
from tests.featurefiles import golden

CASES = {
    "slowfast": golden.slowfast,
    "slowfast at 29.97 fps (--stack 59)": functools.partial(golden.slowfast, fps=29.97),
    "clip npz at 29.97 fps": golden.clip_npz,
    "clip npz at 25 fps": functools.partial(golden.clip_npz, fps=25.0),
    "resnet npy": golden.resnet_npy,
    "resnet h5": golden.resnet_h5,
    "video_features clip at 5 fps": golden.vf_framewise,
    "video_features resnet at the video's 29.97 fps": functools.partial(
        golden.vf_framewise, feature_type="resnet", model_name="resnet50", fps=29.97),
    "video_features clip, timestamps without fps": functools.partial(golden.vf_framewise, sidecars=("timestamps_ms",)),
    "video_features i3d": golden.vf_i3d,
    "video_features i3d, overlapping stacks": functools.partial(golden.vf_i3d, stack=64, step=32),
    "video_features r21d": golden.vf_r21d,
}


def _reading(truth: golden.Truth, root) -> FeatureReading:
    return FeatureReading(timing=FeatureTiming.parse(**truth.timing), videos=VideoFolder(root / truth.videos))


def _assert_spans(imported, truth: golden.Truth) -> None:
    count = len(imported.features)
    np.testing.assert_allclose(imported.starts, np.arange(count) * truth.step, rtol=0, atol=1e-9)
    np.testing.assert_allclose(imported.ends, np.arange(count) * truth.step + truth.span, rtol=0, atol=1e-9)


@pytest.mark.parametrize("case", list(CASES))
def test_golden_files_on_their_true_timeline(case, tmp_path):
    if "h5" in case:
        pytest.importorskip("h5py")
    truth = CASES[case](tmp_path)
    reading = _reading(truth, tmp_path)
    library = [v for source in feature_sources([tmp_path / truth.library]) for v in read_source(source, reading)]
    assert sorted(v.video for v in library) == sorted(str(tmp_path / truth.videos / f"{s}.mp4") for s in golden.STEMS)
    for imported in library:
        _assert_spans(imported, truth)
    (query,) = read_source(str(tmp_path / truth.query), FeatureReading(timing=reading.timing))
    _assert_spans(query, truth)
    config = IndexConfig(features="imported", embedding_dim=library[0].dim)
    with VideoIndex.open(tmp_path / "ix", config=config, create=True, device="cpu") as ix:
        results = ix.add_features([tmp_path / truth.library], reading=reading)
        assert [r.status for r in results] == ["added", "added"], results
        hit = ix.query_features(str(tmp_path / truth.query), reading=reading, k=1).hits[0]
    assert hit.video == str(tmp_path / truth.videos / f"{truth.video}.mp4")
    assert abs(hit.start - truth.start) <= truth.tolerance, (hit, truth)


def test_every_layout_is_named_alike_and_several_paths_import_at_once(tmp_path):
    """Relative paths in, absolute names out, for every layout (an HDF5 entry as
    ``/abs/file.h5::name``); a file's own times win over the options given."""
    h5py = pytest.importorskip("h5py")
    golden.clip_npz(tmp_path / "a")
    golden.vf_framewise(tmp_path / "b")
    golden.vf_r21d(tmp_path / "c")
    with h5py.File(tmp_path / "d.h5", "w") as handle:
        handle["solo."] = golden.walk(7, 30, 512)
    index = str(tmp_path / "ix")
    proc = run_cli("ingest", "--from-features", "a/features", "--from-features", "b/output/clip", "c/output/r21d",
                   "--stack", "16", "--frame-rate", "30", "-i", index, cwd=tmp_path)  # repeated, or a glob after it
    assert proc.returncode == 0 and "6 added" in proc.stdout, proc.stderr
    run_cli("ingest", "--from-features", "d.h5::solo.", "--rate", "1", "-i", index, cwd=tmp_path, check=True)
    with VideoIndex.open(index, device="cpu") as ix:
        durations = {record.path: record.duration_s for record in ix.videos()}
    root = os.path.realpath(tmp_path)
    assert sorted(durations) == sorted(
        [f"{root}/a/features/{s}.npz" for s in golden.STEMS]
        + [f"{root}/b/output/clip/ViT-B_32/{s}_clip.npy" for s in golden.STEMS]
        + [f"{root}/c/output/r21d/r2plus1d_18_16_kinetics/{s}_r21d.npy" for s in golden.STEMS]
        + [f"{root}/d.h5::solo."])
    assert durations[f"{root}/a/features/{golden.STEMS[0]}.npz"] == pytest.approx(60 * 59 / 29.97)  # clip_length
    assert durations[f"{root}/b/output/clip/ViT-B_32/{golden.STEMS[0]}_clip.npy"] == pytest.approx(60.0)  # stamps
    assert durations[f"{root}/c/output/r21d/r2plus1d_18_16_kinetics/{golden.STEMS[0]}_r21d.npy"] == pytest.approx(
        200 * 16 / 30)  # --stack
    assert durations[f"{root}/d.h5::solo."] == 30.0  # --rate 1

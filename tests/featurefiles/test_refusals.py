"""Feature files vsearch will not read as they are: refused in one line naming what to
give, with the README's exit code (1: nothing done; 2: some inputs failed), and the
index exactly as it was (a new one not created)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from vsearch import IndexConfig, VideoIndex
from vsearch.featurefiles.read import FeatureReading
from vsearch.featurefiles.timing import FeatureTiming

from tests.conftest import run_cli
from tests.featurefiles import golden

GIVE = ("no time information in the file: give --rate N (features a second), --clip-seconds S (back-to-back "
        "clips) or --stack N [--step M] (frames per stack)")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """Golden files of several tools, and an index of R(2+1)D features (512-D) built from one."""
    root = Path(os.path.realpath(tmp_path_factory.mktemp("refusals")))
    golden.vf_r21d(root / "r21d")
    golden.slowfast(root / "slowfast")
    golden.vf_pickle(root / "pickle")
    golden.vf_framewise(root / "vf")
    (root / "twice" / "a").mkdir(parents=True)
    (root / "twice" / "b").mkdir()
    (root / "twice" / "a" / f"{golden.STEMS[1]}.mp4").write_bytes(b"\0")
    (root / "twice" / "b" / f"{golden.STEMS[1]}.mkv").write_bytes(b"\0")
    h5py = pytest.importorskip("h5py")
    with h5py.File(root / "clips.h5", "w") as handle:
        handle["clip."] = golden.walk(50, 30, 512)
        handle["other."] = golden.walk(51, 30, 512)
    reading = FeatureReading(timing=FeatureTiming(stack=16, frame_rate=30.0))
    with VideoIndex.open(root / "ix", config=IndexConfig(features="imported", embedding_dim=512), create=True,
                         device="cpu") as ix:
        ix.add_features([root / "r21d" / "output" / "r21d" / "r2plus1d_18_16_kinetics" / f"{golden.STEMS[0]}_r21d.npy"],
                        reading=reading)
    return root


def _state(index: Path) -> dict[str, str]:
    """The index's committed bytes: its metadata store and vector file."""
    files = [index / "meta.lmdb" / "data.mdb", index / "vectors.faiss"]
    return {file.name: hashlib.sha256(file.read_bytes()).hexdigest() for file in files}


R21D = f"r21d/output/r21d/r2plus1d_18_16_kinetics/{golden.STEMS[1]}_r21d.npy"
PICKLES = [f"pickle/output/clip/ViT-B_32/{golden.STEMS[0]}_{key}.pkl" for key in ("clip", "fps", "timestamps_ms")]
SIDECAR = f"vf/output/clip/ViT-B_32/{golden.STEMS[0]}_fps.npy"
SAVE_NUMPY = ("pickle files are not read (loading one can run code); video_features writes NumPy files with "
              "on_extraction=save_numpy")

#: (command after `vsearch`, exit code, stderr lines); {root} is the golden folder, {ix} the index.
REFUSALS = {
    "no time information": (["ingest", "--from-features", "slowfast/features", "-i", "{ix}"], 2,
                            [f"FAILED {{root}}/slowfast/features/{s}.npz: {GIVE}" for s in golden.STEMS]),
    "stacks without a frame rate": (["ingest", "--from-features", R21D, "--stack", "16", "-i", "{ix}"], 2,
                                    [f"FAILED {{root}}/{R21D}: stacks of frames need their frame rate: give "
                                     "--frame-rate (the file has no fps)"]),
    "pickles": (["ingest", "--from-features", "pickle/output", "-i", "{ix}"], 2,
                [f"FAILED {{root}}/{p}: {SAVE_NUMPY}" for p in PICKLES]),
    "no video of its name": (["ingest", "--from-features", R21D, "--stack", "16", "--frame-rate", "30",
                              "--videos", "slowfast/raw_videos/../features", "-i", "{ix}"], 2,
                             [f"FAILED {{root}}/{R21D}: no video named '{golden.STEMS[1]}' in "
                              "slowfast/raw_videos/../features (--videos)"]),
    "two videos of its name": (["ingest", "--from-features", R21D, "--stack", "16", "--frame-rate", "30",
                                "--videos", "twice", "-i", "{ix}"], 2,
                               [f"FAILED {{root}}/{R21D}: 2 videos named '{golden.STEMS[1]}' in twice: "
                                f"a/{golden.STEMS[1]}.mp4, b/{golden.STEMS[1]}.mkv"]),
    "a query of several videos": (["query", "--from-features", "clips.h5", "--rate", "1", "-i", "{ix}"], 2,
                                  ["vsearch: error: {root}/clips.h5: holds 2 videos; a query clip is one: name it, "
                                   "e.g. {root}/clips.h5::clip."]),
    "a query of a missing entry": (["query", "--from-features", "clips.h5::nope", "--rate", "1", "-i", "{ix}"], 2,
                                   ["vsearch: error: {root}/clips.h5::nope: no such video in the file (it holds "
                                    "clip., other.)"]),
    "new index, no time information": (["ingest", "--from-features", "slowfast/features", "-i", "{new}"], 1,
                                       [f"vsearch: error: {{root}}/slowfast/features/{golden.STEMS[0]}.npz: {GIVE}"]),
    "new index, pickles": (["ingest", "--from-features", "pickle/output", "-i", "{new}"], 1,
                           [f"vsearch: error: {{root}}/{PICKLES[0]}: {SAVE_NUMPY}"]),
    "a sidecar named": (["ingest", "--from-features", SIDECAR, "-i", "{ix}"], 1,
                        [f"vsearch: error: {SIDECAR}: the fps sidecar of video '{golden.STEMS[0]}', not features: "
                         f"name its {golden.STEMS[0]}_<key>.npy"]),
    "two time axes": (["ingest", "--from-features", R21D, "--rate", "1", "--clip-seconds", "2", "-i", "{ix}"], 1,
                      ["vsearch: error: --rate and --clip-seconds say the same thing: give one of them"]),
    "a step without a stack": (["ingest", "--from-features", R21D, "--step", "8", "-i", "{ix}"], 1,
                               ["vsearch: error: --step and --frame-rate go with --stack"]),
    "options without features": (["ingest", "r21d/videos", "--clip-seconds", "2", "-i", "{ix}"], 1,
                                 ["vsearch: error: --clip-seconds: only with --from-features"]),
    "no --videos folder": (["ingest", "--from-features", R21D, "--videos", "nowhere", "-i", "{ix}"], 1,
                           ["vsearch: error: --videos nowhere: no such folder"]),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_refused_in_one_line_with_its_exit_code_and_the_index_unchanged(case, root):
    args, code, lines = REFUSALS[case]
    index, new = root / "ix", root / "new"
    before = _state(index)
    proc = run_cli(*(a.format(ix=index, new=new) for a in args), cwd=root)
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.splitlines() == [line.format(root=root) for line in lines]
    assert _state(index) == before and not new.exists()

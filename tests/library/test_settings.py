"""What an ingest or a query asks for, turned into settings and files before anything is opened."""

from __future__ import annotations

import numpy as np
import pytest

from vsearch.errors import VsearchError
from vsearch.library.settings import plan_ingest, plan_query, requested_settings


def test_requested_settings_are_only_those_given():
    assert requested_settings() == {}
    assert requested_settings(size="160x120", window_blocks=4) == {"window_blocks": 4, "width": 160, "height": 120}
    with pytest.raises(VsearchError, match="--size must look like 128x96"):
        requested_settings(size="big")


def test_an_ingest_names_videos_or_features_and_creates_nothing_empty(media, tmp_path):
    index = [tmp_path / "ix"]
    plan = plan_ingest(index, paths=[media["extra"].parent], features="seed", block_seconds=1.0)
    assert str(media["extra"]) in map(str, plan.files) and plan.settings == {"block_seconds": 1.0, "features": "seed"}
    with pytest.raises(VsearchError, match="one of them"):
        plan_ingest(index)
    with pytest.raises(VsearchError, match="--rate: only with --from-features"):
        plan_ingest(index, paths=[media["extra"]], timing=dict(rate="1"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(VsearchError, match="no index created"):
        plan_ingest(index, paths=[tmp_path / "empty"])
    assert not index[0].exists()


def test_imported_features_set_a_new_index_dimension_but_not_an_existing_one(built_index, tmp_path):
    features = tmp_path / "a.npy"
    np.save(features, np.ones((12, 24), np.float32))
    plan = plan_ingest([tmp_path / "new"], from_features=[features], timing=dict(rate="2"))
    assert plan.settings == {"features": "imported", "embedding_dim": 24} and plan.reading.timing.rate == 2.0
    assert plan_ingest([built_index], from_features=[features]).settings == {}  # its settings are fixed


def test_a_query_names_clips_or_features(clips, tmp_path):
    assert plan_query([clips["exact"][0].parent]).clips
    with pytest.raises(VsearchError, match="one of them"):
        plan_query([], from_features=[])
    with pytest.raises(VsearchError, match="needs a video clip"):
        plan_query(from_features=[tmp_path / "a.npy"], report=True)
    with pytest.raises(VsearchError, match="--layout: only with --from-features"):
        plan_query([clips["exact"][0]], layout="npz")


def test_paths_after_from_features_are_feature_files_too(tmp_path):
    """`--from-features *.npy`: the shell hands the option one file and the command the rest."""
    for name in ("a.npy", "b.npy"):
        np.save(tmp_path / name, np.ones((12, 24), np.float32))
    plan = plan_ingest([tmp_path / "new"], paths=[tmp_path / "b.npy"], from_features=[tmp_path / "a.npy"],
                       timing=dict(rate="1"))
    assert [source.path.name for source in plan.files] == ["a.npy", "b.npy"]
    query = plan_query([tmp_path / "b.npy"], from_features=[tmp_path / "a.npy"], timing=dict(clip_seconds=2.0))
    assert [source.path.name for source in query.clips] == ["a.npy", "b.npy"]
    assert query.reading.timing.clip_seconds == 2.0
    with pytest.raises(VsearchError, match="--ray decodes videos"):
        plan_ingest([tmp_path / "new"], from_features=[tmp_path / "a.npy"], ray=True)
    assert not (tmp_path / "new").exists()


def test_plans_read_the_largest_frame(clips, tmp_path):
    clip = [clips["exact"][0]]
    assert plan_query(clip).max_pixels == 7680 * 4320
    assert plan_query(clip, max_pixels="640x480").max_pixels == 640 * 480
    assert plan_query(clip, max_pixels="1000").max_pixels == 1000
    for bad in ("big", "0x10", "1x2x3", ""):
        with pytest.raises(VsearchError, match="--max-pixels must look like 7680x4320"):
            plan_query(clip, max_pixels=bad)
    assert plan_ingest([tmp_path / "ix"], paths=clip, max_pixels="320x240").max_pixels == 320 * 240

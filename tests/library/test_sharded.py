"""A library in several indexes: the same hits as one index, ingest routed by content, manifests."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from vsearch import IndexConfig, VideoIndex
from vsearch.errors import ConfigMismatchError, IndexNotFoundError, VsearchError
from vsearch.ingest.readers import file_digest
from vsearch.library.sharded import ShardedIndex, read_manifest, shard_for, write_manifest

from tests.conftest import assert_same_hits, run_cli


@pytest.mark.parametrize("name, options", [
    ("exact", {}),
    ("reencoded_small", {}),
    ("negative", {"min_score": 0.0, "k": 8}),  # every reading searched, weak hits kept
    ("joined", {"min_score": 0.3, "k": 8}),
])
def test_sharded_query_equals_single_index(built_index, shards, clips, joined_clip, name, options):
    clip = joined_clip if name == "joined" else clips[name][0]
    with VideoIndex.open(built_index, device="cpu") as single, ShardedIndex.open(shards, device="cpu") as sharded:
        expected = single.query(clip, **options)
        got = sharded.query(clip, **options)
        assert got.hits or name == "negative"
        assert_same_hits(expected.hits, got.hits)
        if name == "joined":  # the merge is really exercised: both shards contribute
            assert {sharded.locate(hit.video_id)[0].path for hit in got.hits} == {str(s) for s in shards}
            for hit in got.hits:  # library-wide ids name the right video
                assert sharded.videos()[[r.id for r in sharded.videos()].index(hit.video_id)].path == hit.video


def test_merged_neighbours_are_the_single_index_neighbours(built_index, shards, media):
    with VideoIndex.open(built_index, device="cpu") as single, ShardedIndex.open(shards, device="cpu") as sharded:
        queries = single.window_vectors(single.videos()[1].id)[::3] + np.float32(0.01)
        found, merged = single.nearest(queries, 32), sharded.nearest(queries, 32)
        dist, ids, merged_dist, merged_ids = found.distances, found.ids, merged.distances, merged.ids
        assert merged_ids.shape == ids.shape == (len(queries), 32)
        np.testing.assert_allclose(merged_dist, dist, rtol=1e-5, atol=1e-6)
        path_of = {r.id: r.path for r in single.videos()}
        sharded_path_of = {r.id: r.path for r in sharded.videos()}
        as_paths = np.vectorize(lambda i: f"{path_of[i >> 32]}#{i & 0xFFFFFFFF}")
        as_sharded_paths = np.vectorize(lambda i: f"{sharded_path_of[i >> 32]}#{i & 0xFFFFFFFF}")
        assert (as_paths(ids) == as_sharded_paths(merged_ids)).all()
        # More neighbours asked than the library holds: as many as one index gives.
        assert sharded.nearest(queries[:2], 500).ids.shape == single.nearest(queries[:2], 500).ids.shape


def test_ingest_routes_by_content_hash_and_resumes(media, tmp_path):
    files = [media["lib11"], media["lib12"], media["lib13"], media["extra"]]
    paths = [tmp_path / "s0", tmp_path / "s1"]
    with ShardedIndex.open(paths, device="cpu", create=True) as library:
        results = library.add(files)
        assert [r.status for r in results] == ["added"] * 4
        stats = library.stats()
    for file in files:
        home = shard_for(file_digest(str(file)), 2)
        for number, path in enumerate(paths):
            with VideoIndex.open(path, device="cpu") as index:
                assert (str(file) in {r.path for r in index.videos()}) == (number == home)
    assert stats.videos == 4 and [s.videos for s in stats.shards] == [
        sum(shard_for(file_digest(str(f)), 2) == n for f in files) for n in (0, 1)]
    assert stats.vectors == sum(s.vectors for s in stats.shards) and stats.duration_s == pytest.approx(58.0, abs=0.1)
    copy = tmp_path / "copy.mp4"
    shutil.copy(media["lib12"], copy)
    with ShardedIndex.open(paths, device="cpu") as library:  # the same ingest again, and a copy
        again = library.add([*files, copy])
    assert [r.status for r in again] == ["skipped"] * 5
    assert again[-1].reason == f"same content as {media['lib12']}"


def test_a_file_whose_new_content_belongs_elsewhere_moves_shard(media, tmp_path):
    paths = [tmp_path / "s0", tmp_path / "s1"]
    video = tmp_path / "changing.mp4"
    shutil.copy(media["lib11"], video)
    first_home = shard_for(file_digest(str(video)), 2)
    other = next(media[n] for n in ("lib12", "lib13", "extra") if shard_for(file_digest(str(media[n])), 2) != first_home)
    with ShardedIndex.open(paths, device="cpu", create=True) as library:
        assert library.add([video])[0].status == "added"
        shutil.copy(other, video)
        assert library.add([video])[0].status == "replaced"
        assert [r.path for r in library.videos()] == [str(video)]
        assert library.locate(library.videos()[0].id)[0].path == str(paths[1 - first_home])
    with VideoIndex.open(paths[first_home], device="cpu") as old_home:
        assert old_home.videos() == [] and old_home.verify().ok


def test_shards_must_share_settings(shards, tmp_path):
    VideoIndex.create(tmp_path / "seed", IndexConfig(features="seed"), device="cpu").close()
    with pytest.raises(ConfigMismatchError, match="shards of one library must match"):
        ShardedIndex.open([shards[0], tmp_path / "seed"], device="cpu")
    with pytest.raises(VsearchError, match="named twice"):
        ShardedIndex.open([shards[0], shards[0]], device="cpu")


def test_manifest_round_trip_and_refusals(shards, tmp_path):
    manifest = shards[0].parent / "library.json"
    write_manifest(manifest, shards)
    assert json.loads(manifest.read_text()) == {"shards": ["a", "b"]}  # relative: the folder can move
    assert read_manifest(manifest) == [str(s) for s in shards]
    for text in ("{", '{"shards": []}', '["a"]', "\x00\x9f video bytes"):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(IndexNotFoundError, match="no vsearch index here: a file, not an index folder or a shard"):
            read_manifest(bad)


def test_cli_query_and_stats_over_shards(built_index, shards, joined_clip):
    manifest = shards[0].parent / "cli.json"
    write_manifest(manifest, shards)
    single = run_cli("query", str(joined_clip), "-i", str(built_index), "--json", "--min-score", "0.3", check=True)
    for index_args in (["-i", str(shards[0]), "-i", str(shards[1])], ["-i", str(manifest)]):
        sharded = run_cli("query", str(joined_clip), *index_args, "--json", "--min-score", "0.3", check=True)
        one, other = json.loads(single.stdout)["hits"], json.loads(sharded.stdout)["hits"]
        assert [{k: v for k, v in h.items() if k != "video_id"} for h in one] == \
               [{k: v for k, v in h.items() if k != "video_id"} for h in other]
    text = run_cli("stats", "-i", str(manifest), check=True).stdout.splitlines()
    assert text[0].startswith(f"shard 0    {shards[0]}: 2 videos, 0:00:32.000, ")
    assert text[1].startswith(f"shard 1    {shards[1]}: 1 videos, 0:00:16.000, ")
    assert text[2].startswith("library    2 shards: 3 videos, 0:00:48.000, ")
    assert text[3].startswith("features   v2")
    totals = json.loads(run_cli("stats", "-i", str(manifest), "--json", check=True).stdout)
    assert totals["videos"] == 3 and [s["videos"] for s in totals["shards"]] == [2, 1]
    broken = run_cli("query", str(joined_clip), "-i", str(shards[0]), "-i", str(shards[0].parent / "missing"))
    assert broken.returncode == 3 and broken.stderr.count("\n") == 1 and "no vsearch index here" in broken.stderr

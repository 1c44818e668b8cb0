"""Sharded search on Ray actors, and the CLI joining a running cluster."""

from __future__ import annotations

import json

from vsearch import VideoIndex
from vsearch.cluster import open_remote_shards

from tests.conftest import run_cli
from tests.conftest import assert_same_hits


def test_actor_shards_answer_as_one_index(ray_cluster, built_index, shards, clips, joined_clip):
    import ray

    with VideoIndex.open(built_index, device="cpu") as single, open_remote_shards(shards, device="cpu") as remote:
        pids = ray.get([shard.actor.pid.remote() for shard in remote.shards])
        assert len(set(pids)) == 2  # one actor (process) per shard
        assert remote.stats().videos == 3 and [s.videos for s in remote.stats().shards] == [2, 1]
        for clip, options in ((joined_clip, {"min_score": 0.3, "k": 8}), (clips["reencoded_small"][0], {})):
            assert_same_hits(single.query(clip, **options).hits, remote.query(clip, **options).hits)
        ray.kill(remote.shards[1].actor, no_restart=False)  # a shard's process dies: it is started again
        assert_same_hits(single.query(joined_clip, min_score=0.3).hits, remote.query(joined_clip, min_score=0.3).hits)
        assert ray.get(remote.shards[1].actor.pid.remote()) != pids[1]


def test_cli_ingests_into_shards_and_queries_them_on_the_cluster(ray_cluster, built_index, media, joined_clip,
                                                                 tmp_path):
    shards = [str(tmp_path / "s0"), str(tmp_path / "s1")]
    files = [str(media[f"lib{s}"]) for s in (11, 12, 13)]
    ingested = run_cli("ingest", *files, "-i", shards[0], "-i", shards[1], "--ray-address", ray_cluster, "--json",
                       check=True)
    assert json.loads(ingested.stdout)["summary"]["added"] == 3
    single = run_cli("query", str(joined_clip), "-i", str(built_index), "--json", "--min-score", "0.3", check=True)
    remote = run_cli("query", str(joined_clip), "-i", shards[0], "-i", shards[1], "--ray-address", ray_cluster,
                     "--json", "--min-score", "0.3", check=True)
    strip = lambda out: [{k: v for k, v in h.items() if k != "video_id"} for h in json.loads(out)["hits"]]  # noqa: E731
    assert strip(remote.stdout) == strip(single.stdout) and strip(single.stdout)
    unreachable = run_cli("ingest", files[0], "-i", str(tmp_path / "other"), "--ray-address", "127.0.0.1:1")
    assert unreachable.returncode == 1 and not (tmp_path / "other").exists()
    assert unreachable.stderr.strip().splitlines()[-1].startswith("vsearch: error: cannot join the Ray cluster at "
                                                                  "127.0.0.1:1")

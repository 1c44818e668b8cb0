"""An index written by an older vsearch: a one-line "rebuild needed", and a rebuild that
decodes its videos again without ever losing the old index to a crash."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import lmdb
import pytest

from vsearch import VideoIndex
from vsearch.errors import RebuildNeededError
from vsearch.library.upgrade import needs_upgrade
from tools.support import cut_clip, make_video

from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]


def _downgrade(index: Path) -> None:
    """Make ``index`` look as vsearch 0.1.0 wrote it: format 1, no decoder, no partial fields."""
    env = lmdb.open(str(index / "meta.lmdb"), max_dbs=5)
    meta, videos = env.open_db(b"meta"), env.open_db(b"videos")
    with env.begin(write=True) as txn:
        config = json.loads(txn.get(b"config", db=meta))
        config["format_version"] = 1
        del config["decoder"]
        txn.put(b"config", json.dumps(config, sort_keys=True).encode(), db=meta)
        for key, raw in list(txn.cursor(db=videos)):
            record = json.loads(raw)
            for field in ("partial", "damaged", "reason"):
                del record[field]
            txn.put(key, json.dumps(record, sort_keys=True).encode(), db=videos)
    env.close()


@pytest.fixture(scope="module")
def old_library(tmp_path_factory):
    root = tmp_path_factory.mktemp("old")
    videos = [make_video(root / f"old{i}.mp4", seconds=6, seed=700 + i, size=(160, 120)) for i in range(3)]
    index = root / "ix"
    assert run_cli("ingest", *map(str, videos), "--index", str(index), "--window", "4").returncode == 0
    _downgrade(index)
    clip = cut_clip(videos[1], root / "clip.mp4", start=1.33, duration=3.0, crf=18)
    return index, videos, clip


def _copy(old_library, tmp_path) -> Path:
    target = tmp_path / "ix"
    shutil.copytree(old_library[0], target)
    return target


def _snapshot(index: Path) -> dict:
    return {p.relative_to(index).as_posix(): p.read_bytes() for p in sorted(index.rglob("*"))
            if p.is_file() and p.name not in ("writer.lock", "lock.mdb")}


def test_an_old_index_gives_one_line_asking_for_a_rebuild(old_library, tmp_path):
    index = _copy(old_library, tmp_path)
    before = _snapshot(index)
    for args in (("query", str(old_library[2])), ("stats",), ("list",), ("ingest", str(old_library[1][0]))):
        proc = run_cli(*args, "--index", str(index))
        assert proc.returncode == 5, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and f"rebuild needed: run `vsearch rebuild --index {index}`" in lines[0], lines
    with pytest.raises(RebuildNeededError):
        VideoIndex.open(index)
    assert _snapshot(index) == before  # nothing was touched


def test_rebuild_decodes_the_videos_again_with_the_old_settings(old_library, tmp_path):
    index = _copy(old_library, tmp_path)
    proc = run_cli("rebuild", "--index", str(index))
    assert proc.returncode == 0, proc.stderr
    assert "rebuilt 3 videos" in proc.stdout
    assert not needs_upgrade(index) and not (index / ".rebuild").exists()
    with VideoIndex.open(index, device="cpu") as ix:
        assert ix.config.window_blocks == 4 and ix.config.decoder == "pyav"
        assert sorted(r.path for r in ix.videos()) == sorted(map(str, old_library[1]))
        assert ix.verify().ok
        hit = ix.query(old_library[2]).hits[0]
    assert hit.video == str(old_library[1][1]) and abs(hit.start - 1.33) < 0.1


def test_rebuild_refuses_to_lose_videos_whose_files_are_gone(old_library, tmp_path):
    index = _copy(old_library, tmp_path)
    gone = tmp_path / "gone.mp4"
    # Point one record at a file that no longer exists.
    env = lmdb.open(str(index / "meta.lmdb"), max_dbs=5)
    videos, paths = env.open_db(b"videos"), env.open_db(b"paths")
    with env.begin(write=True) as txn:
        key, raw = next(iter(txn.cursor(db=videos)))
        record = json.loads(raw)
        txn.delete(record["path"].encode(), db=paths)
        record["path"] = str(gone)
        txn.put(key, json.dumps(record, sort_keys=True).encode(), db=videos)
        txn.put(str(gone).encode(), key, db=paths)
    env.close()
    before = _snapshot(index)
    proc = run_cli("rebuild", "--index", str(index))
    assert proc.returncode != 0 and "missing on disk" in proc.stderr and "--drop-missing" in proc.stderr
    assert _snapshot(index) == before and needs_upgrade(index)
    proc = run_cli("rebuild", "--index", str(index), "--drop-missing")
    assert proc.returncode == 0, proc.stderr
    with VideoIndex.open(index, device="cpu") as ix:
        assert len(ix.videos()) == 2 and ix.verify().ok


def test_kill_minus_nine_during_a_rebuild_never_loses_the_index(old_library, tmp_path):
    rng = random.Random(7)
    timing = tmp_path / "timing"
    shutil.copytree(old_library[0], timing)
    t0 = time.monotonic()
    assert run_cli("rebuild", "--index", str(timing)).returncode == 0
    longest = time.monotonic() - t0
    expected = sorted(map(str, old_library[1]))
    killed = 0
    for trial in range(8):
        path = tmp_path / f"trial{trial}"
        shutil.copytree(old_library[0], path)
        proc = subprocess.Popen([sys.executable, "-m", "vsearch", "rebuild", "--index", str(path)], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + rng.uniform(0.2, longest)
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
        # Either still the old index (a rebuild is asked for), or the whole new one.
        if not needs_upgrade(path):
            with VideoIndex.open(path, device="cpu") as ix:
                assert sorted(r.path for r in ix.videos()) == expected and ix.verify().ok
        assert run_cli("rebuild", "--index", str(path)).returncode == 0
        with VideoIndex.open(path, device="cpu") as ix:
            assert sorted(r.path for r in ix.videos()) == expected and ix.verify().ok
        shutil.rmtree(path)
    assert killed >= 4

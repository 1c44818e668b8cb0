"""A damaged index folder: what each command says, its exit code, and what repairs it.

The metadata store (LMDB) is the source of truth: damage to it is beyond automatic
repair (exit 6). The vector file is derived from it: a missing, unreadable or stale
one is repairable, and ``verify`` says so, names the command, and changes nothing.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.support import make_video
from vsearch.lock import WriterLock
from vsearch.store.metastore import MetaStore

from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]


def _words(text: str) -> str:
    return " ".join(text.split())


def test_a_damaged_metadata_store_exits_6_from_every_command(scratch_index, clips):
    with open(scratch_index / "meta.lmdb" / "data.mdb", "r+b") as handle:
        handle.write(b"\0" * 8192)  # the header and first pages gone, as a disk error leaves them
    for args in (("list",), ("stats",), ("verify",), ("query", str(clips["exact"][0]))):
        proc = run_cli(*args, "--index", str(scratch_index))
        assert proc.returncode == 6, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "the metadata store is damaged (MDB_INVALID" in proc.stderr


def test_lost_block_descriptors_are_damage_verify_reports(scratch_index):
    store = MetaStore(scratch_index / "meta.lmdb")
    with store.env.begin(write=True) as txn:
        key = next(iter(txn.cursor(db=store.dbs["blocks"]).iternext(values=False)))
        txn.delete(key, db=store.dbs["blocks"])
    store.close()
    proc = run_cli("verify", "--index", str(scratch_index), env={"COLUMNS": ""})
    assert proc.returncode == 6 and proc.stdout.startswith("DAMAGED: 3 videos, 360 vectors; the metadata store itself")
    assert "block descriptors of video 1" in proc.stdout and "are missing" in proc.stdout
    report = json.loads(run_cli("verify", "--index", str(scratch_index), "--json").stdout)
    assert report["status"] == "damaged" and report["problems"] == [] and len(report["damage"]) == 1


def test_verify_of_a_garbage_vector_file_says_repairable_and_changes_nothing(scratch_index, clips):
    garbage = bytes(range(256)) * 12
    (scratch_index / "vectors.faiss").write_bytes(garbage)
    proc = run_cli("verify", "--index", str(scratch_index))
    assert proc.returncode == 1 and proc.stderr == ""  # no "rebuilding it" that does not happen
    assert proc.stdout.startswith("repairable: 3 videos, 0 vectors") and "cannot read vector index" in proc.stdout
    assert f"run `vsearch verify --repair --index {scratch_index}`" in _words(proc.stdout)
    assert "0 of its" not in proc.stdout  # one line for the file, not one per video
    assert json.loads(run_cli("verify", "--index", str(scratch_index), "--json").stdout)["status"] == "repairable"
    assert (scratch_index / "vectors.faiss").read_bytes() == garbage
    # Any other command repairs it, and says so once.
    query = run_cli("query", str(clips["exact"][0]), "--index", str(scratch_index), "--json")
    assert query.returncode == 0 and json.loads(query.stdout)["hits"], query.stderr
    assert query.stderr.count("rebuilding it from the metadata store") == 1 and query.stderr.count("\n") == 1
    assert run_cli("verify", "--index", str(scratch_index)).stdout == "consistent: 3 videos, 360 vectors\n"


def test_verify_repair_restores_the_vector_file_under_the_lock(scratch_index):
    (scratch_index / "vectors.faiss").write_bytes(b"not a faiss index" * 50)
    lock = WriterLock(str(scratch_index))
    lock.acquire()
    try:
        proc = run_cli("verify", "--repair", "--index", str(scratch_index))
        assert proc.returncode == 4 and "locked by another writer" in proc.stderr
    finally:
        lock.release()
    proc = run_cli("verify", "--repair", "--index", str(scratch_index))
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.startswith("repaired from the metadata store:\n") and "cannot read vector index" in proc.stdout
    assert proc.stdout.endswith("consistent: 3 videos, 360 vectors\n")
    assert run_cli("verify", "--index", str(scratch_index)).returncode == 0


def _committed(index: Path) -> int:
    store = MetaStore(index / "meta.lmdb", readonly=True)
    try:
        with store.snapshot() as snap:
            return sum(1 for _ in snap.videos())
    finally:
        store.close()


@pytest.fixture(scope="module")
def more_videos(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("more")
    return [str(make_video(root / f"more{i}.mp4", seconds=6, seed=700 + i, size=(160, 120))) for i in range(5)]


def test_verify_right_after_a_kill_of_an_ingest_names_the_repair(built_index, more_videos, tmp_path):
    """kill -9 after a commit, before the vector file is saved: repairable, not lost."""
    for attempt in range(3):
        index = tmp_path / f"ix{attempt}"
        shutil.copytree(built_index, index)
        proc = subprocess.Popen([sys.executable, "-m", "vsearch", "ingest", *more_videos, "--index", str(index)],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while proc.poll() is None and _committed(index) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        committed = _committed(index)
        if 4 <= committed < 3 + len(more_videos):  # killed between its first commit and its last save
            break
    else:
        pytest.skip("the ingest finished before it could be killed mid-way")
    proc = run_cli("verify", "--index", str(index), env={"COLUMNS": ""})
    assert proc.returncode == 1 and proc.stdout.startswith(f"repairable: {committed} videos, 360 vectors; ")
    assert "committed, but 0 of its" in proc.stdout and "are in the vector file" in proc.stdout
    assert f"any command that opens the index repairs it; or run `vsearch verify --repair --index {index}`" in proc.stdout
    proc = run_cli("verify", "--repair", "--index", str(index))
    listed = json.loads(run_cli("list", "--index", str(index), "--json", check=True).stdout)
    assert len(listed) == committed  # nothing committed was lost
    # Every window of the whole frame, and every third one's of each of the 9 regions.
    entries = sum(video["windows"] + 9 * len(range(0, video["windows"], 3)) for video in listed)
    assert proc.returncode == 0 and proc.stdout.splitlines()[-1] == f"consistent: {committed} videos, {entries} vectors"

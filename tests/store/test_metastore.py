"""The metadata store's map grows while snapshots stay open (a server's views), whether
a commit of this process or another process grows it."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from vsearch.errors import VsearchError
from vsearch.store import metastore
from vsearch.store.metastore import MetaStore

ROOT = Path(__file__).resolve().parents[2]
BLOCK_DIM = 16


def _store(path: Path) -> MetaStore:
    store = MetaStore(path)
    store.initialise({})
    return store


def _commit(store: MetaStore, name: str, mebibytes: float) -> None:
    blocks = np.full((int(mebibytes * (1 << 20)) // (4 * BLOCK_DIM), BLOCK_DIM), 0.5, np.float32)
    store.commit_video(dict(path=f"/videos/{name}.mp4", hash=name, duration_s=1.0, fps=25.0, width=320, height=240,
                            frames=25, blocks=len(blocks), windows=1, added="2026-01-01T00:00:00+00:00"), blocks)


@pytest.fixture
def small_map(monkeypatch):
    """Stores opened with a 256 KiB map, so that one commit of a few MiB must grow it."""
    monkeypatch.setattr(metastore, "_INITIAL_MAP_SIZE", 256 << 10)


def test_a_commit_grows_the_map_once_the_pinned_snapshots_are_let_go(small_map, tmp_path):
    store = _store(tmp_path / "meta.lmdb")
    _commit(store, "first", 0.01)
    pinned = store.pinned_snapshot()
    asked = threading.Event()
    store.on_map_change(asked.set)
    failures: list[BaseException] = []

    def grow() -> None:
        try:
            _commit(store, "big", 3)  # 256 KiB doubled four times
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    writer = threading.Thread(target=grow)
    writer.start()
    assert asked.wait(10), "the holder of the pinned snapshot was never asked to let it go"
    # Meanwhile the snapshot reads on, as it was taken, and the commit waits for it.
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        assert [record.hash for record in pinned.videos()] == ["first"]
        assert pinned.window_blocks(np.array([1 << 32]), 1, BLOCK_DIM)[0, 0, 0] == 0.5
    assert writer.is_alive() and store.env.info()["map_size"] == 256 << 10
    pinned.close()
    writer.join(10)
    assert not writer.is_alive() and not failures, failures
    assert store.env.info()["map_size"] >= 4 << 20
    with store.snapshot() as snap:
        assert sorted(record.hash for record in snap.videos()) == ["big", "first"]
    store.close()


def test_a_snapshot_that_stays_open_fails_the_commit_not_the_reader(small_map, tmp_path, monkeypatch):
    monkeypatch.setattr(metastore, "MAP_CHANGE_WAIT_S", 0.5)
    store = _store(tmp_path / "meta.lmdb")
    _commit(store, "first", 0.01)
    pinned = store.pinned_snapshot()  # its holder never lets it go
    with pytest.raises(VsearchError, match="cannot grow the metadata store while 1 snapshot"):
        _commit(store, "big", 3)
    assert [record.hash for record in pinned.videos()] == ["first"]
    with store.snapshot() as snap:  # the failed commit changed nothing, and the store still reads
        assert [record.hash for record in snap.videos()] == ["first"]
    pinned.close()
    _commit(store, "big", 3)
    store.close()


def test_a_map_another_process_grew_is_adopted(small_map, tmp_path):
    store = _store(tmp_path / "meta.lmdb")
    _commit(store, "first", 0.01)
    pinned = store.pinned_snapshot()
    store.on_map_change(pinned.close)
    grower = ("import sys; import numpy as np; from vsearch.store.metastore import MetaStore; "
              "from tests.store.test_metastore import _commit; "
              "store = MetaStore(sys.argv[1]); _commit(store, 'other', 3); store.close()")
    subprocess.run([sys.executable, "-c", grower, str(tmp_path / "meta.lmdb")], cwd=ROOT, check=True)
    # The pinned snapshot still reads what it saw (its pages are within the old map) ...
    assert [record.hash for record in pinned.videos()] == ["first"]
    # ... and the next transaction adopts the larger map (it was let go first).
    with store.snapshot() as snap:
        assert sorted(record.hash for record in snap.videos()) == ["first", "other"]
    assert store.env.info()["map_size"] >= 3 << 20
    store.close()

"""Bad input files: each fails alone with a one-line reason; the index is untouched."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from vsearch import VideoIndex
from tools.support import make_video, run_ffmpeg

from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    return make_video(tmp_path_factory.mktemp("good") / "good.mp4", seconds=4, seed=501, size=(160, 120))


@pytest.fixture(scope="module")
def bad_folder(good, tmp_path_factory) -> dict[str, Path]:
    """A folder mixing every kind of bad file with two good ones."""
    root = tmp_path_factory.mktemp("bad")
    data = good.read_bytes()
    files = {
        "empty": root / "empty.mp4",
        "truncated": root / "truncated.mp4",
        "random": root / "random.mp4",
        "text": root / "text.mp4",
        "audio": root / "audio.mp4",
        "still": root / "still.mkv",
        "short": root / "short.mp4",
        "zero_fps": root / "zero fps.mp4",
    }
    files["empty"].write_bytes(b"")
    run_ffmpeg(["-i", str(good), "-c", "copy", "-movflags", "+faststart", str(root / "fs.tmp.mp4")])
    whole = (root / "fs.tmp.mp4").read_bytes()
    files["truncated"].write_bytes(whole[: len(whole) // 2])  # a half-copied file
    (root / "fs.tmp.mp4").unlink()
    files["random"].write_bytes(np.random.default_rng(3).integers(0, 256, 30000, dtype=np.uint8).tobytes())
    files["text"].write_text("this is not a video\n" * 100)
    run_ffmpeg(["-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-c:a", "aac", str(files["audio"])])
    run_ffmpeg(["-i", str(good), "-frames:v", "1", "-c:v", "png", str(files["still"])])
    run_ffmpeg(["-i", str(good), "-t", "1.2", "-c:v", "libx264", str(files["short"])])
    # Zero the media time scale of the video track: a header claiming ~0 fps.
    patched = bytearray(data)
    at = patched.find(b"mdhd")
    offset = at + 8 + (16 if patched[at + 4] == 1 else 8)
    patched[offset : offset + 4] = (0).to_bytes(4, "big")
    files["zero_fps"].write_bytes(bytes(patched))
    shutil.copy(good, root / "good copy with spaces.mp4")
    non_utf8 = os.path.join(os.fsencode(root), b"caf\xe9 \xff.mp4")
    make_video(os.fsdecode(non_utf8), seconds=3, seed=502, size=(160, 120))
    return files


def test_every_bad_file_fails_alone_with_a_reason(bad_folder, tmp_path):
    folder = next(iter(bad_folder.values())).parent
    index = tmp_path / "ix"
    proc = run_cli("ingest", str(folder), "--index", str(index))
    assert proc.returncode == 2
    failed_lines = [line for line in proc.stderr.splitlines() if "FAILED" in line]
    unplayable = {name: path for name, path in bad_folder.items() if name != "truncated"}
    assert len(failed_lines) == len(unplayable), proc.stderr
    for name, path in unplayable.items():
        line = next((l for l in failed_lines if path.name in l), None)
        assert line is not None, f"no error line for {name}"
        reason = line.split(path.name + ":", 1)[1].strip()
        assert reason and "/" not in reason and "[" not in reason, f"bad reason for {name}: {reason!r}"
    assert "shorter than one window" in next(l for l in failed_lines if "short.mp4" in l)
    # The header claims 0.002 fps: FFmpeg, like a player, shows its first frame only.
    assert "plays only 0.04 s" in next(l for l in failed_lines if "zero fps.mp4" in l)
    # Half of a file still plays its first half: indexed as partial, not refused.
    assert "2 added, 1 partial" in proc.stdout and f"{len(unplayable)} failed" in proc.stdout
    assert "PARTIAL" in proc.stderr and "truncated: the file ends at" in proc.stderr
    listed = json.loads(run_cli("list", "--index", str(index), "--json", check=True).stdout)
    names = sorted(os.path.basename(v["path"]) for v in listed)
    assert names == sorted(["good copy with spaces.mp4", "truncated.mp4", os.fsdecode(b"caf\xe9 \xff.mp4")])
    assert [v["partial"] for v in listed if v["path"].endswith("truncated.mp4")] == [True]


def test_non_utf8_name_round_trips_through_query_and_remove(bad_folder, tmp_path):
    folder = next(iter(bad_folder.values())).parent
    video = os.fsdecode(os.path.join(os.fsencode(folder), b"caf\xe9 \xff.mp4"))
    clip = tmp_path / "clip.mp4"
    run_ffmpeg(["-i", video, "-ss", "0.33", "-t", "2.5", "-c:v", "libx264", "-crf", "12", str(clip)])
    with VideoIndex.create(tmp_path / "ix", device="cpu") as index:
        assert index.add([video])[0].status == "added"
        assert index.query(clip).hits[0].video == video
        assert index.remove([video])[0].path == video
    proc = run_cli("ingest", video, "--index", str(tmp_path / "ix2"))
    assert proc.returncode == 0 and "\\udce9" not in proc.stdout  # printable, not a crash


def _as_nobody(work) -> int:
    """Run ``work()`` in a forked child with an unprivileged uid; return its exit code."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            import faiss

            faiss.omp_set_num_threads(1)  # the parent's OpenMP pool does not survive fork
            # This Python lives where the unprivileged user cannot read, so modules are
            # loaded now and the decoder cannot start a process of it: vsearch then
            # decodes in a thread of this process (the fallback this also covers).
            import fractions  # noqa: F401  (PyAV needs it at decode time)

            import av  # noqa: F401
            os.setgid(65534)
            os.setuid(65534)
            code = 0 if work() else 3
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


@pytest.fixture()
def open_dir():
    """A folder any user may use (pytest's own tmp dir is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="vsearch-perm-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_unreadable_file_fails_alone(good, open_dir):
    unreadable = open_dir / "secret.mp4"
    shutil.copy(good, unreadable)
    unreadable.chmod(0o000)
    shutil.copy(good.with_name("good.mp4"), open_dir / "ok.mp4")
    (open_dir / "ok.mp4").chmod(0o644)
    index = open_dir / "ix"
    VideoIndex.create(index, device="cpu").close()
    subprocess.run(["chmod", "-R", "a+rwX", str(index)], check=True)

    def work() -> bool:
        with VideoIndex.open(index, device="cpu") as ix:
            results = ix.add([unreadable, open_dir / "ok.mp4"])
        return [r.status for r in results] == ["failed", "added"] and "permission denied" in results[0].reason

    if os.geteuid() == 0:
        assert _as_nobody(work) == 0
    else:
        assert work()


def test_read_only_index_can_be_queried_but_not_written(good, open_dir, tmp_path):
    index = open_dir / "ix"
    with VideoIndex.create(index, device="cpu") as ix:
        ix.add([good])
    clip = open_dir / "clip.mp4"
    run_ffmpeg(["-i", str(good), "-ss", "0.4", "-t", "3", "-c:v", "libx264", str(clip)])
    subprocess.run(["chmod", "-R", "a+rX,a-w", str(index)], check=True)
    clip.chmod(0o644)
    before = sorted((p.name, p.stat().st_size) for p in index.rglob("*"))

    def work() -> bool:
        from vsearch.errors import VsearchError

        with VideoIndex.open(index, device="cpu") as ix:
            found = ix.query(clip).hits[0].video == str(good)
            try:
                ix.add([clip])
                refused = False
            except VsearchError as exc:
                refused = "read-only" in str(exc)
        return found and refused

    try:
        code = _as_nobody(work) if os.geteuid() == 0 else (0 if work() else 3)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(index)], check=True)
    assert code == 0
    assert sorted((p.name, p.stat().st_size) for p in index.rglob("*")) == before


def test_disk_full_gives_a_clear_error_and_keeps_the_last_commit(good, tmp_path):
    others = [make_video(tmp_path / f"more{i}.mp4", seconds=4, seed=510 + i, size=(160, 120)) for i in range(3)]
    index = tmp_path / "ix"
    with VideoIndex.create(index, device="cpu") as ix:
        ix.add([good])
    used = sum(p.stat().st_size for p in index.rglob("*") if p.is_file())

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (used // 2, used // 2))

    proc = subprocess.run([sys.executable, "-m", "vsearch", "ingest", *map(str, others), "--index", str(index)],
                          cwd=ROOT, capture_output=True, text=True, preexec_fn=limit_file_size)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "vsearch: error:" in proc.stderr, proc.stderr
    with VideoIndex.open(index, device="cpu") as ix:
        assert str(good) in {r.path for r in ix.videos()}
        assert ix.verify().ok
        assert all(r.status == "added" for r in ix.add(others))
        assert len(ix.videos()) == 4


def test_4k_video_ingest_keeps_memory_bounded(tmp_path):
    video = tmp_path / "uhd.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=size=3840x2160:rate=30:duration=3", "-c:v", "libx264",
                "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(video)])
    script = (
        "import resource, sys; from vsearch import VideoIndex\n"
        f"ix = VideoIndex.create({str(tmp_path / 'ix')!r}, device='cpu'); r = ix.add([{str(video)!r}]); ix.close()\n"
        "assert r[0].status == 'added', r\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    peak_mib = int(proc.stdout.split()[-1]) / 1024
    assert peak_mib < 1024, f"peak RSS {peak_mib:.0f} MiB"

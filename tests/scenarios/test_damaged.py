"""Damaged and truncated files: indexed as far as a player plays them, marked partial,
never a source of confident wrong answers (tools/damage_matrix.py makes the copies)."""

from __future__ import annotations

import json
import shutil

import pytest
import numpy as np

from vsearch import IndexConfig, VideoIndex
from vsearch.errors import ClipTooShortError, VideoError
from tools.damage_matrix import CONTAINERS, build, evaluate, whole_copy
from tools.decoder_matrix import ffmpeg_frames
from tools.support import cut_clip, run_ffmpeg

from tests.conftest import run_cli

#: Copies whose headers state the video's duration, so a cut is known as truncated.
TRUNCATION_KNOWN = {"mp4_front", "mkv", "webm"}


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    root = tmp_path_factory.mktemp("damaged")
    source, files = build(root / "files", seed=1)
    rows = {row.case: row for row in evaluate(files, root / "ix")}
    return source, files, rows, root / "ix"


def _records(index_path):
    with VideoIndex.open(index_path, device="cpu") as index:
        return {r.path: r for r in index.videos()}, index.config


def test_what_ffmpeg_decodes_vsearch_indexes(damaged):
    _, files, rows, _ = damaged
    assert len(rows) == 4 * len(CONTAINERS)
    for case, row in rows.items():
        assert "\n" not in row.reason and "[" not in row.reason and ".cc:" not in row.reason, row
        if row.ffmpeg_seconds < 1.5:  # nothing a window could hold: refused, in a user's words
            assert row.status == "failed" and row.reason, row
            continue
        assert row.status in ("added", "partial"), row
        assert row.indexed_seconds >= 0.9 * row.ffmpeg_seconds, row
    # A cut file whose header states its duration says so.
    for container in TRUNCATION_KNOWN:
        for kind in ("cut50", "cut90"):
            row = rows[f"{container}/{kind}"]
            assert row.status == "partial" and row.reason.startswith("truncated: the file ends at"), row
    # Byte runs overwritten that lose frames: spans skipped, said so.
    assert rows["mkv/runs"].status == "partial" and "damaged:" in rows["mkv/runs"].reason
    # A damaged AVI header still plays whole (its index is at the end).
    assert rows["avi/header"].status == "added" and rows["avi/header"].indexed_seconds >= 19.5


def _intact_start(path, length: float) -> float | None:
    """A start at or after 0.5 s from which ``length`` + 0.5 s of the damaged copy shows,
    frame for frame, what the whole copy shows (as ffmpeg decodes both); None if none."""
    whole_times, whole = ffmpeg_frames(whole_copy(path), 64, 48)
    times, frames = ffmpeg_frames(path, 64, 48)
    same = np.zeros(len(whole_times), dtype=bool)
    for i, t in enumerate(whole_times):
        j = int(np.searchsorted(times, t - 1e-3))
        same[i] = j < len(times) and abs(times[j] - t) < 1e-3 and np.abs(frames[j] - whole[i].astype(int)).mean() < 2
    step = float(np.median(np.diff(whole_times)))
    run = int(np.ceil((length + 0.5) / step))
    for i in range(int(np.ceil(0.5 / step)), len(same) - run):
        if same[i : i + run].all():
            return float(whole_times[i]) + 0.27  # a little way in, and off the block grid
    return None


def test_an_exact_cut_from_an_intact_part_is_found_at_its_time(damaged, tmp_path):
    source, files, rows, index_path = damaged
    records, _ = _records(index_path)
    found = 0
    with VideoIndex.open(index_path, device="cpu") as index:
        for case, path in files.items():
            start = _intact_start(path, 3.0) if str(path) in records else None
            if start is None:  # refused, or no intact 3.5 s (byte runs every few seconds)
                continue
            clip = cut_clip(source, tmp_path / "intact.mp4", start=start, duration=3.0, crf=18)
            hits = [h for h in index.query(clip, k=40).hits if h.video == str(path)]
            assert hits, f"{case}: no hit"
            assert abs(hits[0].start - start) <= 0.1, (case, hits[0], start)
            found += 1
    assert found >= 16  # of 22 copies indexed


def test_a_clip_from_a_damaged_span_gives_no_confident_wrong_hit(damaged, tmp_path):
    _, files, rows, index_path = damaged
    records, _ = _records(index_path)
    tried = 0
    with VideoIndex.open(index_path, device="cpu") as index:
        for case, path in files.items():
            record = records.get(str(path))
            inner = [(a, b) for a, b in (record.damaged if record else ()) if b <= record.duration_s]
            for a, b in inner:
                start = max(a - 0.5, 0.0)
                # ffmpeg's cut begins with the first frame it can show at or after start.
                first = b if a <= start < b else start
                clip = tmp_path / f"damaged{tried}.mp4"
                # Cut from the damaged file itself: what it shows there, frozen or broken.
                run_ffmpeg(["-threads", "1", "-i", str(path), "-ss", f"{start:.3f}", "-t", f"{max(b + 0.5, a + 2.5) - start:.3f}",
                            "-an", "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", str(clip)])
                try:
                    hits = index.query(clip, k=40).hits
                except ClipTooShortError:  # the file ends within the span: nothing to ask
                    continue
                except VideoError as exc:  # a clip that is one held picture: refused, not matched
                    assert "frozen picture" in exc.reason
                    hits = []
                tried += 1
                for hit in hits:  # every copy holds this footage, at this time
                    at_clip_start = hit.start - hit.query_start * hit.speed
                    assert abs(at_clip_start - first) <= 0.5, (case, (a, b), hit)
    assert tried >= 3


def test_partial_videos_are_shown_and_the_index_verifies_clean(damaged):
    _, files, rows, index_path = damaged
    listed = json.loads(run_cli("list", "--index", str(index_path), "--json", check=True).stdout)
    partial = {row["path"]: row for row in listed if row["partial"]}
    expected = {str(files[case]) for case, row in rows.items() if row.status == "partial"}
    assert set(partial) == expected
    for row in partial.values():
        assert row["damaged"] and row["reason"] and all(a < b for a, b in row["damaged"])
    text = run_cli("list", "--index", str(index_path), check=True).stdout
    assert text.count("PARTIAL (") == len(expected)
    stats = json.loads(run_cli("stats", "--index", str(index_path), "--json", check=True).stdout)
    assert stats["partial_videos"] == len(expected)
    proc = run_cli("verify", "--index", str(index_path), "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["ok"]
    assert json.loads(proc.stdout)["partial_videos"] == len(expected)
    assert f"({len(expected)} partial)" in run_cli("verify", "--index", str(index_path), check=True).stdout


def test_ingest_reports_partial_files_and_exits_zero(damaged, tmp_path):
    _, files, _, _ = damaged
    proc = run_cli("ingest", str(files["mkv/cut50"]), str(files["mp4_front/cut90"]), "--index", str(tmp_path / "ix"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("PARTIAL ") == 2 and "truncated: the file ends at" in proc.stderr
    assert "2 partial" in proc.stdout


def test_a_repaired_file_replaces_its_partial_record(damaged, tmp_path):
    _, files, _, _ = damaged
    video = tmp_path / "download.mkv"
    shutil.copy(files["mkv/cut50"], video)
    with VideoIndex.create(tmp_path / "ix", device="cpu") as index:
        first = index.add([video])[0]
        assert first.status == "partial" and "truncated" in first.reason
        shutil.copy(files["mkv/cut50"].with_name("mkv.mkv"), video)  # the download finished
        second = index.add([video])[0]
        assert second.status == "replaced" and second.reason == ""
        (record,) = index.videos()
        assert not record.partial and record.damaged == () and record.duration_s == pytest.approx(20.0, abs=0.05)
        assert index.verify().ok


@pytest.mark.parametrize("decoder", ["pyav", "decord"])
def test_decoders_stay_quiet_on_damaged_files(damaged, tmp_path, capfd, decoder):
    """FFmpeg and decord print to stderr from C; neither the CLI nor the Python API lets it through."""
    pytest.importorskip(decoder if decoder == "decord" else "av")
    _, files, _, _ = damaged
    chosen = [files[case] for case in sorted(files) if case.endswith(("runs", "header", "cut50"))][::2]
    assert chosen
    capfd.readouterr()
    with VideoIndex.create(tmp_path / "api", IndexConfig(decoder=decoder), device="cpu") as index:
        results = index.add(chosen)
    assert any(r.status in ("partial", "failed") for r in results)
    assert capfd.readouterr().err == ""
    proc = run_cli("ingest", *map(str, chosen), "--index", str(tmp_path / "cli"), "--decoder", decoder)
    ours = [line for line in proc.stderr.splitlines() if line.startswith(("PARTIAL ", "FAILED "))]
    assert proc.stderr.splitlines() == ours, proc.stderr

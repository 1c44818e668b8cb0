"""Output formats, visual reports and feature export, as a user runs them."""

from __future__ import annotations

import csv
import io
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

from tools.ffmpeg_tools import ffmpeg_exe

from .conftest import LIBRARY_SEEDS, run_cli


def _decode_png(data: bytes) -> np.ndarray:
    """Decode with ffmpeg (an independent decoder), to RGB."""
    proc = subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "png_pipe", "-i", "-", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                          input=data, capture_output=True, check=True)
    header = data[16:24]
    width, height = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")
    return np.frombuffer(proc.stdout, np.uint8).reshape(height, width, 3)


def test_csv_output_has_one_row_per_hit(built_index, clips):
    proc = run_cli("query", str(clips["exact"][0]), str(clips["negative"][0]), "--index", str(built_index),
                   "--csv", "-k", "2", check=True)
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert rows and all(r["query"] == str(clips["exact"][0]) for r in rows)
    assert rows[0]["rank"] == "1" and rows[0]["video"] == str(clips["exact"][1])
    assert abs(float(rows[0]["start"]) - clips["exact"][2]) <= 0.15


def test_default_output_is_a_readable_table(built_index, clips):
    out = run_cli("query", str(clips["exact"][0]), "--index", str(built_index), check=True).stdout
    assert "1 hit" in out and "00:00:05." in out and "score 0.9" in out


def test_png_report_shows_matching_frames_side_by_side(built_index, clips, tmp_path):
    target = tmp_path / "report.png"
    run_cli("query", str(clips["exact"][0]), "--index", str(built_index), "--report", str(target), check=True)
    image = _decode_png(target.read_bytes()).astype(np.float32)
    assert image.shape[0] > 2 * 90 and image.shape[1] >= 5 * 90
    # Rows: query thumbnails, library thumbnails at aligned times, then a distance strip.
    query_row, library_row = image[2:92], image[96:186]
    other = np.roll(library_row, library_row.shape[1] // 5, axis=1)  # misaligned on purpose
    aligned = np.abs(query_row - library_row).mean()
    assert aligned < 12 and aligned < 0.5 * np.abs(query_row - other).mean()


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images, self.sections, self.polylines = [], 0, 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        self.sections += tag == "section"
        self.polylines += tag == "polyline"


def test_html_report_is_self_contained(built_index, clips, tmp_path):
    target = tmp_path / "report.html"
    run_cli("query", str(clips["exact"][0]), "--index", str(built_index), "--report", str(target), "-k", "1", check=True)
    page = _Collector()
    page.feed(target.read_text())
    assert page.sections == 1 and page.polylines == 1 and len(page.images) == 10
    import base64

    first = _decode_png(base64.b64decode(page.images[0].split(",", 1)[1]))
    assert first.shape[0] == 90 and first.std() > 5  # a real picture, not a blank


def test_report_of_a_turned_clip_draws_its_alignment(built_index, clips, tmp_path):
    from tools.ffmpeg_tools import cut_clip

    _, source, start = clips["exact"]
    turned = cut_clip(source, tmp_path / "turned.mp4", start=start, duration=5.0, crf=20, vf="transpose=1")
    target = tmp_path / "report.html"
    run_cli("query", str(turned), "--index", str(built_index), "--report", str(target), "-k", "1", check=True)
    page = _Collector()
    page.feed(target.read_text())
    # The distance curve is drawn from the turned reading: the hit's own alignment.
    assert page.sections == 1 and page.polylines == 1 and len(page.images) == 10


def test_report_for_a_clip_without_hits_says_so(built_index, clips, tmp_path):
    target = tmp_path / "none.html"
    run_cli("query", str(clips["negative"][0]), "--index", str(built_index), "--report", str(target), check=True)
    assert "No library segment matches" in target.read_text()


def test_feature_export_npz_and_npy(media, tmp_path):
    video = media[f"lib{LIBRARY_SEEDS[0]}"]
    run_cli("features", str(video), "-o", str(tmp_path / "f.npz"), check=True)
    with np.load(tmp_path / "f.npz") as data:
        assert data["features"].shape == (32, 112) and data["features"].dtype == np.float32
        np.testing.assert_allclose(data["timestamps"][:2], [[0.0, 0.5], [0.5, 1.0]])
        assert float(data["fps"]) == pytest.approx(25.0) and float(data["block"]) == 0.5
    run_cli("features", str(video), "-o", str(tmp_path / "seed.npy"), "--features", "seed", check=True)
    seed = np.load(tmp_path / "seed.npy")
    assert seed.shape == (32, 7)  # the original 7-D per-block output


def test_feature_export_folder_and_hdf5(media, tmp_path):
    videos = [str(media[f"lib{s}"]) for s in LIBRARY_SEEDS]
    out = run_cli("features", *videos, "-o", str(tmp_path / "feats"), check=True).stdout
    assert out.count("wrote") == 3 and len(list((tmp_path / "feats").glob("*.npz"))) == 3
    proc = run_cli("features", *videos, "-o", str(tmp_path / "x.npy"))
    assert proc.returncode != 0 and "one .npy file holds one video" in proc.stderr
    h5py = pytest.importorskip("h5py")
    run_cli("features", *videos, "-o", str(tmp_path / "all.h5"), check=True)
    with h5py.File(tmp_path / "all.h5") as handle:
        assert len(handle) == 3
        group = handle[next(iter(handle))]
        assert group["features"].shape == (32, 112) and group["timestamps"].shape == (32, 2)


def test_help_has_examples_and_completion():
    top = run_cli("--help", check=True).stdout
    assert "vsearch query clip.mp4" in top and "--install-completion" in top
    assert "Examples" in run_cli("query", "--help", check=True).stdout


def test_progress_stays_quiet_when_not_a_terminal(media, tmp_path):
    proc = run_cli("ingest", str(media["extra"]), "--index", str(tmp_path / "ix"), check=True)
    assert "video-s" not in proc.stderr and proc.stderr.strip() == ""

"""The visual report: one page for all clips, drawn from the search's window scores."""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

from tools.support import ffmpeg_exe

from tests.conftest import LIBRARY_SEEDS, run_cli


def _decode_png(data: bytes) -> np.ndarray:
    """Decode with ffmpeg (an independent decoder), to RGB."""
    proc = subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "png_pipe", "-i", "-", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                          input=data, capture_output=True, check=True)
    header = data[16:24]
    width, height = int.from_bytes(header[:4], "big"), int.from_bytes(header[4:], "big")
    return np.frombuffer(proc.stdout, np.uint8).reshape(height, width, 3)


def _hit_line(rank: int, hit) -> str:
    return (f"{rank}. {hit.video} {hit.start:.3f}-{hit.end:.3f} s, score {hit.score:.3f}"
            f" (clip {hit.query_start:.3f}-{hit.query_end:.3f} s)")


def _answered(index_path, clip, k: int = 5):
    """The clip's result as the command line computes it (the same numbers on the CPU)."""
    from vsearch import VideoIndex

    with VideoIndex.open(index_path, device="cpu") as index:
        return index.query(clip, k=k)


def test_png_report_shows_matching_frames_side_by_side(built_index, clips, tmp_path):
    from vsearch.bitmap_font import draw_text

    target = tmp_path / "report.png"
    run_cli("query", str(clips["exact"][0]), "--index", str(built_index), "--report", str(target), check=True)
    image = _decode_png(target.read_bytes()).astype(np.float32)
    assert image.shape[0] > 2 * 90 and image.shape[1] >= 5 * 90
    # Rows: three lines of text (the report, the clip, the hit), a rule between the first two, then
    # query thumbnails, library thumbnails at aligned times, then a score strip.
    result = _answered(built_index, clips["exact"][0])
    width = image.shape[1]
    top = 4 + sum(draw_text(text, width).shape[0] for text in (
        "vsearch report: 1 clip, threshold 0.85", f"Query {result.query} (5.000 s): {len(result.hits)} hit",
        _hit_line(1, result.hits[0])))
    query_row, library_row = image[top + 2:top + 92], image[top + 96:top + 186]
    other = np.roll(library_row, library_row.shape[1] // 5, axis=1)  # misaligned on purpose
    aligned = np.abs(query_row - library_row).mean()
    assert aligned < 12 and aligned < 0.5 * np.abs(query_row - other).mean()


def test_png_report_writes_names_times_scores_and_clips_not_answered(built_index, clips, tmp_path):
    """The picture says what the HTML page says: every clip counted and named, each hit's
    video, times and score above its pictures, the clips not answered with their reason."""
    from vsearch.bitmap_font import draw_text

    exact, negative, short = (clips[name][0] for name in ("exact", "negative", "too_short"))
    target = tmp_path / "report.png"
    proc = run_cli("query", str(exact), str(negative), str(short), "--index", str(built_index), "--report",
                   str(target), "-k", "1")
    assert proc.returncode == 2 and f"report: {target} (3 clips, 1 not answered)" in proc.stderr
    reason = proc.stderr.splitlines()[0].removeprefix("vsearch: error: ")
    image = _decode_png(target.read_bytes())
    width, found = image.shape[1], _answered(built_index, exact, k=1)
    rule = np.full((4, width, 3), 40, np.uint8)
    expected_top = [draw_text("vsearch report: 3 clips, threshold 0.85, 1 not answered", width), rule,
                    draw_text(f"Query {exact} (5.000 s): 1 hit", width), draw_text(_hit_line(1, found.hits[0]), width)]
    expected_end = [rule, draw_text(f"Query {negative} (5.000 s): no hits", width), rule,
                    draw_text(f"Query {short}: not answered: {reason}", width, ink=(170, 0, 0))]
    top, end = np.concatenate(expected_top), np.concatenate(expected_end)
    assert np.array_equal(image[:len(top)], top) and np.array_equal(image[-len(end):], end)
    assert (image[:len(top)] == 30).all(axis=2).sum() > 500  # and the text has ink
    # Between them: the hit's thumbnails (two rows of 94 pixels), its score strip (60) and a gap (10).
    assert image.shape[0] == len(top) + 2 * 94 + 60 + 10 + len(end)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images, self.sections, self.polylines, self.articles = [], 0, 0, 0
        self.links, self.captions, self.svgs, self.texts = [], [], [], []
        self._in = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "a":
            self.links.append(attrs["href"])
        if tag == "svg":
            self.svgs.append({"viewBox": attrs.get("viewbox"), "lines": [], "rects": []})
        if tag == "line" and self.svgs:
            self.svgs[-1]["lines"].append(attrs)
        if tag == "rect" and self.svgs:
            self.svgs[-1]["rects"].append(attrs)
        self._in = tag
        self.sections += tag == "section"
        self.articles += tag == "article"
        self.polylines += tag == "polyline"

    def handle_data(self, data):
        if self._in == "figcaption":
            self.captions.append(data)
        if self._in == "text":
            self.texts.append(data)


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
    from tools.support import cut_clip

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


def test_report_of_several_clips_is_one_page_and_leaves_nothing_stale(built_index, clips, tmp_path):
    target = tmp_path / "r.html"
    target.write_text("an old report")
    old_style = tmp_path / "r-1.html"  # what earlier versions wrote beside it
    proc = run_cli("query", str(clips["exact"][0]), str(clips["reencoded_small"][0]), str(clips["too_short"][0]),
                   "--index", str(built_index), "--report", str(target), "-k", "2")
    assert proc.returncode == 2  # the short clip is not answered
    assert f"report: {target}" in proc.stderr and not old_style.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html"]
    page = _Collector()
    text = target.read_text()
    page.feed(text)
    assert page.articles == 3 and str(clips["exact"][0]) in text and str(clips["reencoded_small"][0]) in text
    assert "not answered" in text and "short.mp4" in text
    # A failed run removes the old report instead of leaving it to look current.
    proc = run_cli("query", str(clips["exact"][0]), "--index", str(tmp_path / "missing"), "--report", str(target))
    assert proc.returncode == 3 and not target.exists()
    proc = run_cli("query", str(clips["exact"][0]), "--index", str(built_index), "--report", str(tmp_path / "r.pdf"))
    assert proc.returncode == 1 and ".html or .png" in proc.stderr


def test_report_plots_share_one_scale_with_axes_threshold_and_span(built_index, clips, tmp_path):
    # Two hits in one report, of clips from different videos at different places.
    target = tmp_path / "r.html"
    run_cli("query", str(clips["exact"][0]), str(clips["reencoded_small"][0]), "--index", str(built_index),
            "--report", str(target), "--min-score", "0.6", check=True)
    page = _Collector()
    page.feed(target.read_text())
    assert len(page.svgs) == 2 and page.polylines == 2
    assert len({svg["viewBox"] for svg in page.svgs}) == 1
    # Same axes everywhere: y from 0 to 1 (ticks 0.0 ... 1.0), x in clip seconds.
    assert page.texts.count("window score") == 2 and page.texts.count("clip time (s)") == 2
    assert page.texts.count("1.0") == 2 and page.texts.count("0.0") == 2
    assert page.texts.count("threshold 0.60") == 2
    for svg in page.svgs:
        threshold = [line for line in svg["lines"] if line.get("class") == "threshold"]
        span = [rect for rect in svg["rects"] if rect.get("class") == "span"]
        assert len(threshold) == 1 and len(span) == 1 and float(span[0]["width"]) > 100
    # Each hit links to its source at the matched seconds.
    assert len(page.links) == 2 and all("#t=" in link and link.startswith("file://") for link in page.links)
    start, end = page.links[0].split("#t=")[1].split(",")
    assert abs(float(start) - clips["exact"][2]) < 0.2 and float(end) > float(start) + 4


def test_report_never_labels_a_library_frame_past_the_end(built_index, media, tmp_path):
    from tools.support import cut_clip, probe_duration
    from vsearch.models import Hit
    from vsearch.report import _aligned_times

    source = media[f"lib{LIBRARY_SEEDS[2]}"]
    duration = probe_duration(source)
    # A hit that reaches past the end (windows are rounded up to whole blocks).
    hit = Hit(video=str(source), video_id=3, start=duration - 4.0, end=duration + 0.4, query_start=0.0,
              query_end=4.4, score=0.9, distance=0.1)
    _, library_times = _aligned_times(hit, duration, 25.0)
    assert library_times.max() <= duration - 0.02 and library_times.max() >= duration - 0.1
    # End to end: a clip cut up to the very end of a library video.
    clip = cut_clip(source, tmp_path / "tail.mp4", start=duration - 5.0, duration=5.0, crf=18)
    target = tmp_path / "tail.html"
    run_cli("query", str(clip), "--index", str(built_index), "--report", str(target), "-k", "1", check=True)
    page = _Collector()
    page.feed(target.read_text())
    library = [float(c.split()[1]) for c in page.captions if c.startswith("library")]
    assert len(library) == 5 and max(library) < duration and max(library) > duration - 1.5


def test_report_renders_in_a_real_browser(built_index, clips, tmp_path):
    from tools.render_report import find_browser, render

    if find_browser() is None:
        pytest.skip("no Chromium (apt-get install chromium)")
    target = tmp_path / "r.html"
    run_cli("query", str(clips["exact"][0]), str(clips["reencoded_small"][0]), "--index", str(built_index),
            "--report", str(target), check=True)
    for width in (1280, 640):
        shot = tmp_path / f"shot-{width}.png"
        result = render(target, width=width, screenshot=shot)
        assert result["images"] == 20 and result["broken_images"] == 0, result
        assert result["overflowing"] == [] and result["page_width"] <= width, result
        assert result["plots"] == 2 and result["complete_plots"] == 2, result
        assert shot.stat().st_size > 10_000


def test_report_draws_the_search_window_scores_and_decodes_each_clip_once(built_index, clips, tmp_path, monkeypatch):
    import vsearch.report
    from vsearch import VideoIndex
    from vsearch.decode import VideoSource

    clip = clips["exact"][0]
    with VideoIndex.open(built_index, device="cpu") as index:
        result = index.query(clip, k=3, min_score=0.0)
        decoded: list[str] = []

        class CountingSource(VideoSource):
            def frames_at(self, times, **options):
                decoded.append(self.path)
                return super().frames_at(times, **options)

        monkeypatch.setattr(vsearch.report, "VideoSource", CountingSource)
        target = vsearch.report.write_report(index, result, tmp_path / "r.html", threshold=0.0)
    assert len(result.hits) >= 2 and decoded.count(str(clip)) == 1  # the clip once, whatever its hits
    assert len(decoded) == 1 + len(result.hits)  # and each hit's library video once
    text = target.read_text()
    # Each hit's curve: a point per window score the search gave it, on the shared scale.
    assert text.count("<polyline") == len(result.hits)
    polylines = text.split("<polyline points=\"")[1:]
    assert [len(p.split('"')[0].split()) for p in polylines] == [len(s.scores) for s in result.window_scores]

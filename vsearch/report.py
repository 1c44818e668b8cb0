"""Visual match report: query frames beside the matched library frames, and the
window score along the clip, as a self-contained HTML page or a PNG (one page for
all the clips of a query).

A person confirms a match at a glance: aligned thumbnails should show the same
picture, and the window score should stay above the threshold over the matched
span. Every plot shares one scale (clip seconds, score 0 to 1), so hits compare.

The curves are the window scores the search gives with each hit
(``QueryResult.window_scores``); frames are decoded only for the thumbnails, once
per clip and once per hit's library video.
"""

from __future__ import annotations

import base64
import html
import os
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .bitmap_font import draw_text
from .decode import VideoSource
from .errors import VsearchError
from .models import Hit, QueryResult, WindowScores
from .search.tuning import DEFAULT_MIN_SCORE

if TYPE_CHECKING:
    from .library.base import BaseIndex

THUMB_HEIGHT = 90
FRAMES_PER_HIT = 5


def encode_png(rgb: np.ndarray) -> bytes:
    """Minimal PNG encoder (8-bit RGB, no filtering): no imaging library needed."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def _thumbs(path: str, times: np.ndarray, decoder: str) -> list[np.ndarray]:
    """Pictures at ``times``, at the thumbnail height and the video's display aspect."""
    return list(VideoSource(path, width=0, height=THUMB_HEIGHT, decoder=decoder).frames_at(times))


def check_report_path(out: str | os.PathLike) -> Path:
    """Refuse a report path vsearch cannot write, before any work is done."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm", ".png"):
        raise VsearchError(f"{out}: a report must be .html or .png")
    if not out.parent.is_dir():
        raise VsearchError(f"{out}: no such folder {out.parent}")
    if out.is_dir():
        raise VsearchError(f"{out}: is a folder")
    return out


def start_report(out: str | os.PathLike) -> Path:
    """Check ``out`` before any work is done, and remove an old report there: it must
    not pass for this run's, whatever happens next."""
    out = check_report_path(out)
    out.unlink(missing_ok=True)
    return out


def _aligned_times(hit: Hit, library_duration: float, library_fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Clip times across the matched span, and the library times aligned with them.

    A library time is clamped to the video's last frame: a hit may reach a little
    past the end (the last window is rounded up to whole blocks).
    """
    span = max(hit.query_end - hit.query_start, 1e-3)
    query_times = hit.query_start + (np.arange(FRAMES_PER_HIT) + 0.5) * span / FRAMES_PER_HIT
    last_frame = max(library_duration - 0.5 / max(library_fps, 1.0), 0.0)
    return query_times, np.clip((query_times - hit.query_start) * hit.speed + hit.start, 0.0, last_frame)


def _ticks(top: float, count: int = 6) -> list[float]:
    """Round tick values from 0 to ``top`` (1, 2 or 5 times a power of ten apart)."""
    raw = max(top, 1e-6) / count
    step = min((m * 10 ** np.floor(np.log10(raw)) for m in (1, 2, 5, 10) if m * 10 ** np.floor(np.log10(raw)) >= raw))
    return [float(v) for v in np.arange(0, top + step * 1e-6, step)]


#: Plot geometry (SVG user units; the plot scales to the page width).
_W, _H, _LEFT, _RIGHT, _TOP, _BOTTOM = 720, 170, 48, 12, 22, 36


def _svg_plot(times: np.ndarray, scores: np.ndarray, duration: float, hit: Hit, threshold: float,
              window_seconds: float) -> str:
    """Window score along the clip, on the scale every hit of the report shares:
    x = clip seconds (0 to the clip's length), y = score 0 to 1; the threshold is a
    dashed line and the matched span is shaded."""
    inner_w, inner_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    duration = max(duration, 1e-3)

    def x(t):
        return _LEFT + min(max(t, 0.0), duration) / duration * inner_w

    def y(v):
        return _TOP + (1.0 - min(max(v, 0.0), 1.0)) * inner_h

    parts = [f'<svg class="plot" viewBox="0 0 {_W} {_H}" role="img" '
             f'aria-label="window score along the clip">',
             f'<rect x="{_LEFT}" y="{_TOP}" width="{inner_w}" height="{inner_h}" fill="#f7f7f7" stroke="#999"/>',
             f'<rect class="span" x="{x(hit.query_start):.1f}" y="{_TOP}" '
             f'width="{max(x(hit.query_end) - x(hit.query_start), 1):.1f}" height="{inner_h}" fill="#cfe3f7"/>']
    for value in _ticks(1.0, 5):
        parts.append(f'<line x1="{_LEFT - 4}" x2="{_LEFT}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#333"/>'
                     f'<text x="{_LEFT - 6}" y="{y(value) + 4:.1f}" font-size="11" text-anchor="end">{value:.1f}</text>')
    for value in _ticks(duration):
        parts.append(f'<line x1="{x(value):.1f}" x2="{x(value):.1f}" y1="{_TOP + inner_h}" y2="{_TOP + inner_h + 4}" '
                     f'stroke="#333"/><text x="{x(value):.1f}" y="{_TOP + inner_h + 16}" font-size="11" '
                     f'text-anchor="middle">{value:g}</text>')
    parts.append(f'<line class="threshold" x1="{_LEFT}" x2="{_LEFT + inner_w}" y1="{y(threshold):.1f}" '
                 f'y2="{y(threshold):.1f}" stroke="#555" stroke-dasharray="6 4"/>'
                 f'<text x="{_LEFT + inner_w - 4}" y="{y(threshold) - 4:.1f}" font-size="11" text-anchor="end">'
                 f'threshold {threshold:.2f}</text>')
    if len(times):
        # A point per window, at its centre.
        pts = " ".join(f"{x(t + window_seconds / 2):.1f},{y(v):.1f}" for t, v in zip(times, scores))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="#c0392b" stroke-width="2"/>')
    else:
        parts.append(f'<text x="{_LEFT + 8}" y="{_TOP + 16}" font-size="12">no aligned windows</text>')
    parts.append(f'<text x="{_LEFT + inner_w / 2:.0f}" y="{_H - 4}" font-size="12" text-anchor="middle">'
                 f'clip time (s)</text>'
                 f'<text x="12" y="{_TOP + inner_h / 2:.0f}" font-size="12" text-anchor="middle" '
                 f'transform="rotate(-90 12 {_TOP + inner_h / 2:.0f})">window score</text></svg>')
    return "".join(parts)


_STYLE = (
    "body{font-family:sans-serif;margin:20px;max-width:1100px} h1{font-size:20px;overflow-wrap:anywhere}"
    " h2{font-size:16px;margin-top:24px;overflow-wrap:anywhere} article{border-top:2px solid #333;margin-top:28px}"
    " .row{display:flex;flex-wrap:wrap;gap:6px;margin:4px 0} figure{margin:0} img{max-width:100%;height:auto}"
    " figcaption{font-size:11px;color:#555} .plot{width:100%;max-width:720px;height:auto;display:block}"
    " .failed{color:#a00}"
)


def _video_link(path: str, start: float, end: float) -> str:
    """A link that opens the video at the matched seconds (media fragment ``#t=start,end``)."""
    try:
        uri = Path(path).resolve().as_uri()
    except ValueError:
        uri = path
    return f"{uri}#t={start:.3f},{end:.3f}"


def _html(clips: list[tuple[QueryResult, list[dict]]], failures: list[tuple[str, str]], threshold: float,
          window_seconds: float) -> str:
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>vsearch report</title>"
        f"<style>{_STYLE}</style></head><body>",
        f"<p>{len(clips)} clip{'' if len(clips) == 1 else 's'}, threshold {threshold:.2f}"
        + (f", {len(failures)} not answered" if failures else "") + "</p>",
    ]
    for result, sections in clips:
        parts.append(f"<article class='clip'><h1>Query {html.escape(result.query)}</h1>"
                     f"<p>{result.duration:.3f} s, {len(result.hits)} hit(s)</p>")
        if not result.hits:
            parts.append("<p class='nohit'>No library segment matches this clip.</p>")
        for rank, sec in enumerate(sections, 1):
            hit = sec["hit"]
            link = html.escape(_video_link(hit.video, hit.start, hit.end), quote=True)
            parts.append(
                f"<section class='hit'><h2>{rank}. <a href=\"{link}\">{html.escape(hit.video)}</a> "
                f"{hit.start:.3f}-{hit.end:.3f} s, score {hit.score:.3f}</h2>"
            )
            for label, frames, times in (("query", sec["query"], sec["qt"]), ("library", sec["library"], sec["lt"])):
                parts.append(f"<div class='row {label}'>")
                for frame, t in zip(frames, times):
                    data = base64.b64encode(encode_png(frame)).decode()
                    parts.append(f"<figure><img src='data:image/png;base64,{data}' width='{frame.shape[1]}' "
                                 f"height='{frame.shape[0]}' alt='{label} {t:.3f} s'>"
                                 f"<figcaption>{label} {t:.3f} s</figcaption></figure>")
                parts.append("</div>")
            parts.append(_svg_plot(sec["curve_t"], sec["curve_s"], result.duration, hit, threshold, window_seconds)
                         + "</section>")
        parts.append("</article>")
    for clip, reason in failures:
        parts.append(f"<article class='clip failed'><h1>Query {html.escape(str(clip))}</h1>"
                     f"<p>not answered: {html.escape(reason)}</p></article>")
    parts.append("</body></html>")
    return "".join(parts)


#: The PNG report's narrowest width: room for a line of text.
_PNG_MIN_WIDTH = 720


def _score_strip(sec: dict, width: int, threshold: float) -> np.ndarray:
    """Window score along the clip, 0 to 1: threshold in grey, matched span shaded."""
    strip = np.full((60, width, 3), 246, np.uint8)
    duration, hit = max(sec["duration"], 1e-3), sec["hit"]
    a, b = (int(np.clip(v / duration * (width - 1), 0, width - 1)) for v in (hit.query_start, hit.query_end))
    strip[:, a:b + 1] = (207, 227, 247)
    strip[int(55 - threshold * 50), :] = (150, 150, 150)
    t, s = sec["curve_t"], sec["curve_s"]
    if len(t):
        xs = np.clip(t / duration * (width - 1), 0, width - 1).astype(int)
        ys = np.clip(55 - s * 50, 0, 59).astype(int)
        for x0, y0, x1, y1 in zip(xs[:-1], ys[:-1], xs[1:], ys[1:]):
            n = max(abs(x1 - x0), abs(y1 - y0), 1)
            strip[np.linspace(y0, y1, n + 1).astype(int), np.linspace(x0, x1, n + 1).astype(int)] = (192, 57, 43)
    return strip


def _png(clips: list[tuple[QueryResult, list[dict]]], failures: list[tuple[str, str]], threshold: float) -> np.ndarray:
    """The page as one picture: a line saying what it holds; per clip its name, then per
    hit a line (video, times, score), query thumbnails, library thumbnails and a score
    strip; clips not answered last with their reason. A dark rule between clips."""
    def strip(frames: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([np.pad(f, ((2, 2), (2, 2), (0, 0)), constant_values=255) for f in frames], axis=1)

    thumbs = {id(sec): (strip(sec["query"]), strip(sec["library"])) for _, sections in clips for sec in sections}
    width = max([_PNG_MIN_WIDTH] + [row.shape[1] for pair in thumbs.values() for row in pair])
    rule, gap = np.full((4, width, 3), 40, np.uint8), np.full((10, width, 3), 255, np.uint8)
    count = len(clips) + len(failures)
    rows = [draw_text(f"vsearch report: {count} clip{'' if count == 1 else 's'}, threshold {threshold:.2f}"
                      + (f", {len(failures)} not answered" if failures else ""), width)]
    for result, sections in clips:
        hits = len(result.hits)
        rows += [rule, draw_text(f"Query {result.query} ({result.duration:.3f} s): {hits or 'no'} "
                                 f"hit{'' if hits == 1 else 's'}", width)]
        for rank, sec in enumerate(sections, 1):
            hit = sec["hit"]
            rows.append(draw_text(f"{rank}. {hit.video} {hit.start:.3f}-{hit.end:.3f} s, score {hit.score:.3f}"
                                  f" (clip {hit.query_start:.3f}-{hit.query_end:.3f} s)", width))
            rows += [*thumbs[id(sec)], _score_strip(sec, width, threshold), gap]
    for clip, reason in failures:
        rows += [rule, draw_text(f"Query {clip}: not answered: {reason}", width, ink=(170, 0, 0))]
    return np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])


def write_report(index: "BaseIndex", results: QueryResult | list[QueryResult], out: str | os.PathLike, *,
                 threshold: float = DEFAULT_MIN_SCORE, failures: list[tuple[str, str]] = ()) -> Path:
    """Write ``out`` (``.html`` or ``.png``): every query result on one page.

    ``failures`` lists (clip, reason) of clips that could not be answered; the page
    names them. The file is written whole or not at all (temporary file, rename).
    A result without window scores (made by hand) is drawn without curves.
    """
    out = check_report_path(out)
    results = [results] if isinstance(results, QueryResult) else list(results)
    records = {r.id: r for r in index.videos()}
    decoder = index.config.decoder
    clips = []
    for result in results:
        times = [_aligned_times(hit, records[hit.video_id].duration_s, records[hit.video_id].fps)
                 for hit in result.hits]
        # The clip's thumbnails of every hit, in one decode of the clip.
        clip_frames = _thumbs(result.query, np.concatenate([qt for qt, _ in times]), decoder) if times else []
        sections = []
        for number, (hit, (qt, lt)) in enumerate(zip(result.hits, times)):
            scores = result.window_scores[number] if number < len(result.window_scores) else WindowScores()
            sections.append(dict(hit=hit, qt=qt, lt=lt, query=clip_frames[number * FRAMES_PER_HIT:][:FRAMES_PER_HIT],
                                 library=_thumbs(hit.video, lt, decoder), curve_t=np.asarray(scores.times, np.float64),
                                 curve_s=np.asarray(scores.scores, np.float32), duration=result.duration))
        clips.append((result, sections))
    if out.suffix.lower() == ".png":
        data = encode_png(_png(clips, list(failures), threshold))
    else:
        window_seconds = index.config.block_seconds * index.config.window_blocks
        data = _html(clips, list(failures), threshold, window_seconds).encode("utf-8")
    partial = out.with_name(f".{out.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, out)
    return out

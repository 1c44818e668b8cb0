"""Visual match report: query frames beside the matched library frames, and the
window distance along the query timeline, as a self-contained HTML page or a PNG.

A person confirms a match at a glance: aligned thumbnails should show the same
picture, and the distance curve should stay low over the matched span.
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

from .decode import VideoSource
from .embedding import QueryClip, Reading
from .models import Hit, QueryResult

if TYPE_CHECKING:
    from .index import VideoIndex

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


def _distance_curve(index: "VideoIndex", clip: str, hit: Hit) -> tuple[np.ndarray, np.ndarray]:
    """Distance of each query window to the library window the hit aligns it with."""
    reader = QueryClip(clip, index.config, index.device, mirrored=hit.mirrored, speeds=(hit.speed,),
                       inset=hit.inset, rotations=bool(hit.rotation), extractor=index.extractor)
    reading = Reading(speed=hit.speed, mirrored=hit.mirrored, inset=hit.inset, rotation=hit.rotation // 90)
    windows = reader.windows([r for r in reader.readings if r == reading] or reader.readings[:1])
    library = index.window_vectors(hit.video_id)
    offset = hit.start - hit.query_start * hit.speed
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    for view in np.unique(windows.views):
        rows = np.flatnonzero(windows.views == view)
        idx = np.rint((windows.starts[rows] * hit.speed + offset) / index.config.block_seconds).astype(int)
        ok = (idx >= 0) & (idx < len(library))
        if not ok.any():
            continue
        dist = np.linalg.norm(windows.vectors[rows[ok]] - library[idx[ok]], axis=1)
        if best is None or dist.mean() < best[0]:
            best = (float(dist.mean()), windows.starts[rows[ok]], dist)
    if best is None:
        return np.zeros(0), np.zeros(0)
    return best[1], best[2]


def _aligned_times(hit: Hit) -> tuple[np.ndarray, np.ndarray]:
    span = max(hit.query_end - hit.query_start, 1e-3)
    query_times = hit.query_start + (np.arange(FRAMES_PER_HIT) + 0.5) * span / FRAMES_PER_HIT
    return query_times, (query_times - hit.query_start) * hit.speed + hit.start


def _svg_plot(times: np.ndarray, dist: np.ndarray, duration: float, width: int = 640, height: int = 120) -> str:
    if len(times) == 0:
        return "<p>no aligned windows</p>"
    top = max(float(dist.max()), 1e-6) * 1.1
    pts = " ".join(f"{10 + t / max(duration, 1e-6) * (width - 20):.1f},{height - 15 - d / top * (height - 30):.1f}"
                   for t, d in zip(times, dist))
    return (
        f'<svg width="{width}" height="{height}" class="plot"><rect width="100%" height="100%" fill="#f6f6f6"/>'
        f'<polyline points="{pts}" fill="none" stroke="#c0392b" stroke-width="2"/>'
        f'<text x="10" y="12" font-size="11">window distance (max {top / 1.1:.3f}) along the query, 0-{duration:.1f} s</text></svg>'
    )


def _html(result: QueryResult, sections: list[dict]) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>vsearch report</title><style>"
        "body{font-family:sans-serif;margin:20px} .row{display:flex;gap:6px;margin:4px 0} figure{margin:0}"
        " figcaption{font-size:11px;color:#555} h2{font-size:16px;margin-top:24px}</style></head><body>",
        f"<h1>Query {html.escape(result.query)}</h1><p>{result.duration:.2f} s, {len(result.hits)} hit(s)</p>",
    ]
    if not result.hits:
        parts.append("<p class='nohit'>No library segment matches this clip.</p>")
    for rank, sec in enumerate(sections, 1):
        hit = sec["hit"]
        parts.append(
            f"<section class='hit'><h2>{rank}. {html.escape(hit.video)} "
            f"{hit.start:.2f}-{hit.end:.2f} s, score {hit.score:.3f}</h2>"
        )
        for label, frames, times in (("query", sec["query"], sec["qt"]), ("library", sec["library"], sec["lt"])):
            parts.append(f"<div class='row {label}'>")
            for frame, t in zip(frames, times):
                data = base64.b64encode(encode_png(frame)).decode()
                parts.append(f"<figure><img src='data:image/png;base64,{data}'><figcaption>{label} {t:.2f} s</figcaption></figure>")
            parts.append("</div>")
        parts.append(_svg_plot(sec["curve_t"], sec["curve_d"], result.duration) + "</section>")
    parts.append("</body></html>")
    return "".join(parts)


def _png(sections: list[dict]) -> np.ndarray:
    """Rows per hit: query thumbnails, library thumbnails, a distance strip."""
    rows = []
    # One distance scale for every hit, so their curves compare.
    top = max([float(sec["curve_d"].max()) for sec in sections if len(sec["curve_d"])] + [1e-6])
    for sec in sections:
        for frames in (sec["query"], sec["library"]):
            rows.append(np.concatenate([np.pad(f, ((2, 2), (2, 2), (0, 0)), constant_values=255) for f in frames], axis=1))
        width = rows[-1].shape[1]
        strip = np.full((60, width, 3), 246, np.uint8)
        t, d = sec["curve_t"], sec["curve_d"]
        if len(t):
            xs = np.clip((t - t.min()) / max(np.ptp(t), 1e-6) * (width - 1), 0, width - 1).astype(int)
            ys = np.clip(55 - d / top * 50, 0, 59).astype(int)
            for x0, y0, x1, y1 in zip(xs[:-1], ys[:-1], xs[1:], ys[1:]):
                n = max(abs(x1 - x0), abs(y1 - y0), 1)
                strip[np.linspace(y0, y1, n + 1).astype(int), np.linspace(x0, x1, n + 1).astype(int)] = (192, 57, 43)
        rows.append(strip)
        rows.append(np.full((10, width, 3), 255, np.uint8))
    if not rows:
        return np.full((40, 200, 3), 255, np.uint8)
    width = max(r.shape[1] for r in rows)
    return np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows])


def write_report(index: "VideoIndex", result: QueryResult, out: str | os.PathLike) -> Path:
    """Write ``out`` (``.html`` or ``.png``) for one query result."""
    out = Path(out)
    sections = []
    for hit in result.hits:
        qt, lt = _aligned_times(hit)
        curve_t, curve_d = _distance_curve(index, result.query, hit)
        decoder = index.config.decoder
        sections.append(dict(hit=hit, qt=qt, lt=lt, query=_thumbs(result.query, qt, decoder),
                             library=_thumbs(hit.video, lt, decoder), curve_t=curve_t, curve_d=curve_d))
    if out.suffix.lower() == ".png":
        out.write_bytes(encode_png(_png(sections)))
    else:
        out.write_text(_html(result, sections), encoding="utf-8")
    return out

"""Stress footage: generated videos aimed at a video-copy matcher's weak spots.

    python -m tools.stress_footage OUT_DIR [--videos DIR] [--seed 1] [--per-kind 1]
                                   [--seconds 20] [--kind NAME ...]

Each file is made with ffmpeg filters from frames and stretches of real source
videos (by default ``../shared/videos``); the sources are only read. Every file is
H.264 yuv420p, 640x360 (square pixels), 25 fps, no audio. Kinds, and what they stress:

``still_shake``
    One still with slight hand-held shake (a 90 % crop whose offsets are sums of
    sines, a few pixels) and light temporal noise: *near-static* footage, every
    window of it looks like every other, and like the source frame.
``slow_zoom``
    One still zoomed in slowly and smoothly (1.0 to about 1.3) towards a random
    point: near-static, with a slow geometric drift instead of content change.
``fade_dark``
    A source stretch made dark and flat (``eq``) with fades in and out of several
    seconds: low contrast, little signal, long near-black ends.
``texture_scroll``
    A small patch of a frame tiled and slowly scrolled: *repetition*, windows a
    tile period apart are the same picture.
``slideshow``
    Stills of several sources, 2-3 s each with hard cuts (sometimes a crossfade) and
    only light noise: static shots, many cuts, content shared with the sources.
``screen_recording``
    A synthetic desktop: flat windows and toolbars, lines of text typed and scrolled,
    a moving mouse cursor. *Flat* content, mostly static, small local changes.
``cartoon``
    A source stretch smoothed and colour-quantised (posterised), sometimes with dark
    edges: *flat* colour areas, few gradients, coarse texture.

Every random choice (sources, times, shake, order, colours) comes from the seed, so
one seed gives the same files and another seed different footage. The files are
derived from the source videos: generate them into a scratch or ignored folder and
**never commit them**.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tools.support import ffmpeg_exe, probe_duration, run_ffmpeg

KINDS: tuple[str, ...] = (
    "still_shake", "slow_zoom", "fade_dark", "texture_scroll", "slideshow", "screen_recording", "cartoon",
)

FPS = 25
SIZE = (640, 360)
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEOS = ROOT.parent / "shared" / "videos"
VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".mpg", ".mpeg", ".m4v"}
#: Time kept clear of a source's end when picking a frame or a stretch (its last
#: frames may be missing or damaged).
END_MARGIN = 0.5
_ENCODE = ["-an", "-sn", "-dn", "-map_metadata", "-1", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
           "-pix_fmt", "yuv420p"]


# --------------------------------------------------------------------------- helpers


@functools.lru_cache(maxsize=None)
def _duration(path: str) -> float:
    return probe_duration(path)


def _fit(width: int, height: int) -> str:
    """Filter chain: square pixels, then scale to cover ``width`` x ``height`` and crop the middle."""
    return (f"scale='trunc(iw*sar/2)*2':ih,setsar=1,"
            f"scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height},setsar=1")


def _pick_time(rng: random.Random, src: str, length: float = 0.0) -> float:
    """A start time in ``src`` leaving ``length`` seconds and END_MARGIN before its end."""
    return rng.uniform(0.0, max(0.0, _duration(src) - END_MARGIN - length))


def _grab_still(src: str, at: float, dst: Path, size: tuple[int, int]) -> Path:
    """The first frame of ``src`` shown at or after ``at`` seconds, fitted to ``size``, as PNG.

    ``trim`` decodes from the start (exact, also on files with wrong keyframe flags,
    where input seeking decodes garbage) and drops frames before any scaling.
    """
    width, height = size
    run_ffmpeg(["-i", src, "-an", "-sn", "-vf", f"trim=start={at:.3f},{_fit(width, height)}",
                "-frames:v", "1", "-update", "1", str(dst)])
    return dst


def _stretch_input(rng: random.Random, sources: list[str], seconds: float) -> tuple[list[str], str]:
    """ffmpeg input arguments and the leading filters of a random ``seconds``-long stretch.

    Prefers sources long enough for the stretch; where none is, a source is looped.
    The filters give 25 fps frames with timestamps from 0.
    """
    long_enough = [s for s in sources if _duration(s) - END_MARGIN >= seconds]
    src = rng.choice(long_enough or sources)
    start = _pick_time(rng, src, seconds if long_enough else 0.0)
    loop = [] if long_enough else ["-stream_loop", "-1"]
    # One extra second so the fps filter never runs short; -frames:v cuts it.
    return [*loop, "-i", src], f"trim=start={start:.3f}:duration={seconds + 1:.3f},setpts=PTS-STARTPTS,fps={FPS}"


def _frames(seconds: float) -> int:
    return max(1, round(seconds * FPS))


def _encode_args(seconds: float, dst: Path) -> list[str]:
    # tpad clones the last frame should a filter chain end a frame or two short.
    return ["-frames:v", str(_frames(seconds)), *_ENCODE, "-f", "mp4", str(dst)]


def _tail(seconds: float) -> str:
    return f"tpad=stop_mode=clone:stop={_frames(seconds)},format=yuv420p"


def _sines(rng: random.Random, amplitude: float, freqs: tuple[float, float], terms: int = 3) -> str:
    """An ffmpeg expression of t: a smooth random wobble, |value| <= ``amplitude``."""
    weights = [rng.uniform(0.5, 1.0) for _ in range(terms)]
    scale = amplitude / sum(weights)
    parts = [f"{w * scale:.3f}*sin({2 * math.pi * rng.uniform(*freqs):.4f}*t+{rng.uniform(0, 2 * math.pi):.4f})"
             for w in weights]
    return "(" + "+".join(parts) + ")"


def _noise(rng: random.Random, strength: int) -> str:
    return f"noise=alls={strength}:allf=t:all_seed={rng.randrange(1, 2**31 - 1)}"


def _video_seed(seed: int, kind: str, number: int) -> int:
    """The seed of one library file, derived from the library seed, kind and number."""
    digest = hashlib.sha256(f"{seed}:{kind}:{number}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


# --------------------------------------------------------------------------- kinds


def _random_still(rng: random.Random, sources: list[str], tmp: Path, size: tuple[int, int], scale: int) -> Path:
    """A still of a random source at a random time, ``scale`` times ``size``."""
    src = rng.choice(sources)
    return _grab_still(src, _pick_time(rng, src), tmp / "still.png", (scale * size[0], scale * size[1]))


def _play_still(still: Path, vf: str, seconds: float, dst: Path) -> None:
    """``still`` shown for ``seconds`` at 25 fps through the filter ``vf``, encoded to ``dst``."""
    run_ffmpeg(["-loop", "1", "-framerate", str(FPS), "-i", str(still), "-vf", vf, *_encode_args(seconds, dst)])


def _play_moving_crop(still: Path, crop: tuple[str, str], at: tuple[str, str], size: tuple[int, int], noise: str,
                      seconds: float, dst: Path) -> None:
    """A ``crop`` (width, height expressions) of ``still`` whose corner follows ``at``
    (x, y expressions of t), scaled to ``size``, with ``noise``."""
    vf = (f"crop=w='{crop[0]}':h='{crop[1]}':x='{at[0]}':y='{at[1]}',scale={size[0]}:{size[1]},setsar=1,"
          f"{noise},{_tail(seconds)}")
    _play_still(still, vf, seconds, dst)


def _still_shake(rng, sources, dst, seconds, size, tmp):
    width, height = size
    # Work at twice the size so the shake moves in half pixels, not whole-pixel jumps.
    still = _random_still(rng, sources, tmp, size, 2)
    amp = 2 * rng.uniform(1.5, 4.0) * width / 640  # a few output pixels
    x = f"(iw-ow)/2+{_sines(rng, amp, (0.1, 1.2))}"
    y = f"(ih-oh)/2+{_sines(rng, amp * 0.8, (0.1, 1.2))}"
    _play_moving_crop(still, ("trunc(iw*0.9/2)*2", "trunc(ih*0.9/2)*2"), (x, y), size, _noise(rng, 3), seconds, dst)


def _slow_zoom(rng, sources, dst, seconds, size, tmp):
    width, height = size
    # zoompan crops at whole input pixels: a 4x input makes the zoom smooth.
    still = _random_still(rng, sources, tmp, size, 4)
    frames = _frames(seconds)
    end_zoom = rng.uniform(1.2, 1.35)
    fx, fy = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7)  # the point zoomed towards
    vf = (f"zoompan=z='1+{end_zoom - 1:.4f}*on/{max(1, frames - 1)}':d={frames}:"
          f"x='{fx:.4f}*(iw-iw/zoom)':y='{fy:.4f}*(ih-ih/zoom)':s={width}x{height}:fps={FPS},"
          f"setsar=1,{_tail(seconds)}")
    run_ffmpeg(["-i", str(still), "-vf", vf, *_encode_args(seconds, dst)])


def _fade_dark(rng, sources, dst, seconds, size, tmp):
    width, height = size
    inputs, head = _stretch_input(rng, sources, seconds)
    fade = min(rng.uniform(3.0, 5.0), seconds * 0.3)
    eq = f"eq=brightness={rng.uniform(-0.3, -0.2):.3f}:contrast={rng.uniform(0.6, 0.8):.3f}:" \
         f"saturation={rng.uniform(0.6, 0.9):.3f}"
    vf = (f"{head},{_fit(width, height)},{eq},fade=t=in:st=0:d={fade:.3f},"
          f"fade=t=out:st={seconds - fade:.3f}:d={fade:.3f},{_tail(seconds)}")
    run_ffmpeg([*inputs, "-an", "-sn", "-vf", vf, *_encode_args(seconds, dst)])


def _textured_patch(rng: random.Random, still: Path, patch: int, candidates: int = 12) -> tuple[int, int]:
    """Top-left corner of the most detailed of ``candidates`` random square patches of ``still``.

    Detail is the mean absolute gradient of the grey image: a flat patch (a wall, the
    sky) tiles into a nearly uniform picture, not a visible repetition.
    """
    import av  # a dependency of the engine; imported here as only this kind reads pixels

    with av.open(str(still)) as container:
        gray = next(container.decode(video=0)).to_ndarray(format="gray").astype(np.float32)
    height, width = gray.shape
    best, corner = -1.0, (0, 0)
    for _ in range(candidates):
        x, y = rng.randrange(0, width - patch + 1), rng.randrange(0, height - patch + 1)
        part = gray[y : y + patch, x : x + patch]
        detail = float(np.abs(np.diff(part, axis=0)).mean() + np.abs(np.diff(part, axis=1)).mean())
        if detail > best:
            best, corner = detail, (x, y)
    return corner


def _texture_scroll(rng, sources, dst, seconds, size, tmp):
    width, height = size
    # Twice the size again, for sub-pixel scrolling.
    still = _random_still(rng, sources, tmp, size, 2)
    patch = 2 * max(8, round(rng.uniform(40, 96) * width / 640 / 2) * 2)  # even, in 2x pixels
    px, py = _textured_patch(rng, still, patch)
    nx, ny = math.ceil(2 * width / patch) + 1, math.ceil(2 * height / patch) + 1
    tiled = tmp / "tiled.png"
    run_ffmpeg(["-loop", "1", "-i", str(still), "-vf", f"crop={patch}:{patch}:{px}:{py},tile={nx}x{ny}",
                "-frames:v", "1", "-update", "1", str(tiled)])
    speed = 2 * rng.uniform(6, 20) * width / 640  # 2x pixels per second
    angle = rng.uniform(0, 2 * math.pi)
    vx, vy = speed * math.cos(angle), speed * math.sin(angle)
    # An offset of whole tiles keeps mod()'s argument positive.
    offset = patch * (math.ceil(speed * seconds / patch) + 1)
    x = f"mod({offset + rng.uniform(0, patch):.3f}+{vx:.4f}*t,{patch})"
    y = f"mod({offset + rng.uniform(0, patch):.3f}+{vy:.4f}*t,{patch})"
    _play_moving_crop(tiled, (str(2 * width), str(2 * height)), (x, y), size, _noise(rng, 2), seconds, dst)


def _slideshow(rng, sources, dst, seconds, size, tmp):
    width, height = size
    total = _frames(seconds)
    lengths: list[int] = []  # frames per slide
    while sum(lengths) < total + 2 * FPS:  # spare seconds cover the crossfades' overlaps
        lengths.append(round(rng.uniform(2.0, 3.0) * FPS))
    order = list(sources)
    rng.shuffle(order)  # different sources as far as there are enough of them
    inputs, chains = [], []
    for i, frames in enumerate(lengths):
        src = order[i % len(order)]
        still = _grab_still(src, _pick_time(rng, src), tmp / f"slide{i}.png", size)
        inputs += ["-loop", "1", "-framerate", str(FPS), "-i", str(still)]
        chains.append(f"[{i}:v]trim=end_frame={frames},setpts=PTS-STARTPTS,format=yuv420p,setsar=1,"
                      f"settb=1/{FPS}[s{i}]")
    fades = set(rng.sample(range(1, len(lengths)), k=min(len(lengths) - 1, rng.choice((0, 1, 1, 2)))))
    current, length = "s0", lengths[0]
    for i in range(1, len(lengths)):
        if i in fades:
            overlap = round(rng.uniform(0.5, 1.0) * FPS)
            overlap = min(overlap, lengths[i] - 1, length - 1)
            chains.append(f"[{current}][s{i}]xfade=transition=fade:duration={overlap / FPS:.3f}:"
                          f"offset={(length - overlap) / FPS:.3f},settb=1/{FPS}[c{i}]")
            length += lengths[i] - overlap
        else:
            chains.append(f"[{current}][s{i}]concat=n=2:v=1:a=0,settb=1/{FPS}[c{i}]")
            length += lengths[i]
        current = f"c{i}"
    chains.append(f"[{current}]{_noise(rng, 3)},{_tail(seconds)}[out]")
    run_ffmpeg([*inputs, "-filter_complex", ";".join(chains), "-map", "[out]", *_encode_args(seconds, dst)])


# Words and fonts of the screen recording. Texts hold no character that ffmpeg's
# filter or drawtext syntax treats specially (quotes, colons, commas, %, backslash).
_WORDS = ("def return self value index for in range if else print data result count items import numpy "
          "np path open read write list dict None True False len x y i n total frame video query score window "
          "block = + == () [] 0 1 2 10 255 0.5 load save update config args name time start end while and not "
          "with as yield class init size width height offset step batch matrix vector").split()


def _find_font() -> str | None:
    """A TrueType font for drawtext: DejaVu Sans Mono or Sans if present, else any .ttf."""
    root = Path("/usr/share/fonts")
    if not root.is_dir():
        return None
    fonts = sorted(p for p in root.rglob("*.ttf") if p.is_file() and set(str(p)) <= _SAFE_PATH_CHARS)
    for name in ("DejaVuSansMono.ttf", "DejaVuSans.ttf"):
        for font in fonts:
            if font.name == name:
                return str(font)
    return str(fonts[0]) if fonts else None


_SAFE_PATH_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-+ ")


@functools.lru_cache(maxsize=None)
def _drawtext_align() -> str:
    """``:y_align=font`` (one baseline whatever the glyphs) where this ffmpeg has it (6.1+)."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-h", "filter=drawtext"], capture_output=True, text=True)
    return ":y_align=font" if "y_align" in proc.stdout else ""


def _colour(rng: random.Random, low: int, high: int, tint: float = 0.08) -> str:
    """A muted random colour with every channel within [low, high]."""
    base = rng.uniform(low, high)
    channels = [min(high, max(low, round(base * (1 + rng.uniform(-tint, tint))))) for _ in range(3)]
    return "0x" + "".join(f"{c:02x}" for c in channels)


def _box(x, y, w, h, colour, enable: str | None = None) -> str:
    box = f"drawbox=x={round(x)}:y={round(y)}:w={max(1, round(w))}:h={max(1, round(h))}:color={colour}:t=fill"
    return box + (f":enable='{enable}'" if enable else "")


def _screen_recording(rng, sources, dst, seconds, size, tmp, layout=None):
    """Uses no source. Without a font (:func:`_find_font`), text is drawn as rows of boxes.

    ``layout`` (a ``random.Random``; default ``rng``) draws everything but the typed
    text and the pointer's path: desktop, window, colours, sidebar, the dialog and its
    time, noise. Recordings sharing a layout seed differ only in what is typed and
    where the pointer goes (look-alikes); with ``layout`` left out the draws come in
    the same order from ``rng`` as they always did, so a seed gives the same file.
    """
    layout = layout or rng
    width, height = size
    font = _find_font()
    sx, sy = width / 640, height / 360
    fontsize = max(6, round(11 * sy))
    line_h = max(8, round(fontsize * 1.45))
    char_w = fontsize * 0.6  # DejaVu Sans Mono's advance; an estimate for other fonts

    desk = _colour(layout, 215, 240)
    bar = _colour(layout, 40, 90)
    win_x, win_y = round(layout.uniform(20, 60) * sx), round(layout.uniform(30, 45) * sy)
    win_w, win_h = round(width - win_x - layout.uniform(15, 50) * sx), round(height - win_y - 40 * sy)
    title_h = round(18 * sy)
    side_w = round(win_w * layout.uniform(0.18, 0.28))
    text_x, text_y = win_x + side_w, win_y + title_h
    text_w, text_h = win_w - side_w, win_h - title_h

    # The desktop: top bar with icons, a taskbar, the window frame, title bar and sidebar.
    desktop = [_box(0, 0, width, 22 * sy, bar)]
    desktop += [_box((8 + 20 * k) * sx, 5 * sy, 12 * sx, 12 * sy, _colour(layout, 120, 220, 0.3)) for k in range(4)]
    desktop += [_box(0, height - 24 * sy, width, 24 * sy, _colour(layout, 60, 110))]
    desktop += [_box(win_x - 1, win_y - 1, win_w + 2, win_h + 2, _colour(layout, 120, 160)),
                _box(win_x, win_y, win_w, title_h, _colour(layout, 70, 200, 0.25)),
                _box(win_x, win_y + title_h, side_w, win_h - title_h, _colour(layout, 225, 245))]
    for k in range(3):  # title-bar buttons
        desktop.append(_box(win_x + win_w - (16 + 14 * k) * sx, win_y + 5 * sy, 9 * sx, 9 * sy,
                            _colour(layout, 150, 250, 0.3)))
    side_items = [layout.choice(_WORDS[:40]) + layout.choice(("", ".py", ".txt", "_" + layout.choice(_WORDS[:40])))
                  for _ in range(max(1, (win_h - title_h) // line_h - 1))]
    # A dialog that pops up for a while.
    pop_at = layout.uniform(0.3, 0.7) * seconds
    pop = f"between(t,{pop_at:.2f},{pop_at + layout.uniform(1.5, 3.0):.2f})"
    dialog = (round(width * layout.uniform(0.35, 0.5)), round(height * layout.uniform(0.3, 0.4)))
    dx = round((width - dialog[0]) * layout.uniform(0.3, 0.7))
    dy = round((height - dialog[1]) * layout.uniform(0.3, 0.7))
    popup = [_box(dx - 1, dy - 1, dialog[0] + 2, dialog[1] + 2, "0x606060", pop),
             _box(dx, dy, dialog[0], dialog[1], _colour(layout, 235, 250), pop),
             _box(dx, dy, dialog[0], title_h, _colour(layout, 70, 200, 0.25), pop),
             _box(dx + dialog[0] - 60 * sx, dy + dialog[1] - 22 * sy, 50 * sx, 16 * sy,
                  _colour(layout, 90, 180, 0.3), pop)]

    # Text: lines typed word by word, or printed whole (program output, sometimes in
    # bursts); the text area scrolls a line at a time (over 0.15 s) once it is full.
    lines: list[tuple[int, list[tuple[str, float]]]] = []  # (indent, [(word, time shown)])
    t = rng.uniform(0.3, 1.0)
    indent = 0
    while t < seconds:
        indent = max(0, min(3, indent + rng.choice((-1, 0, 0, 1))))
        count = rng.randint(2, 7)
        if rng.random() < 0.5:  # typed
            words = []
            for _ in range(count):
                word = rng.choice(_WORDS)
                t += len(word) * rng.uniform(0.03, 0.06) + rng.uniform(0.03, 0.1)
                words.append((word, t))
        else:  # printed
            words = [(" ".join(rng.choice(_WORDS) for _ in range(count)), t)]
        lines.append((indent, words))
        t += rng.uniform(1.0, 2.5) if rng.random() < 0.1 else rng.uniform(0.05, 0.5)
    capacity = max(1, (text_h - 6) // line_h)
    scroll = "+".join(f"clip((t-{words[0][1]:.3f})/0.15,0,1)" for _, words in lines[capacity:]) or "0"
    canvas_h = max(text_h, 4 + line_h * (len(lines) + 1))
    text = []
    for row, (indent_level, words) in enumerate(lines):
        x0, y0 = 6 * sx + indent_level * 4 * char_w, 4 + row * line_h
        col = 0
        for j, (word, shown) in enumerate(words):
            if font:
                until = words[j + 1][1] if j + 1 < len(words) else None
                enable = f"gte(t,{shown:.3f})" + (f"*lt(t,{until:.3f})" if until else "")
                prefix = " ".join(w for w, _ in words[: j + 1])
                text.append(f"drawtext=fontfile='{font}':text='{prefix}':fontsize={fontsize}:fontcolor=0x202830:"
                            f"x={x0:.1f}:y={y0}{_drawtext_align()}:enable='{enable}'")
            else:
                for piece in word.split():  # a printed line is several words at once
                    text.append(_box(x0 + col * char_w, y0 + line_h * 0.2, len(piece) * char_w, line_h * 0.6,
                                     "0x303840", f"gte(t,{shown:.3f})"))
                    col += len(piece) + 1
    for row, item in enumerate(side_items):
        if font:
            desktop.append(f"drawtext=fontfile='{font}':text='{item}':fontsize={fontsize}:fontcolor=0x404040:"
                           f"x={win_x + 6 * sx:.1f}:y={text_y + 4 + row * line_h}{_drawtext_align()}")
        else:
            desktop.append(_box(win_x + 6 * sx, text_y + 4 + row * line_h + line_h * 0.2,
                                min(len(item) * char_w, side_w - 10 * sx), line_h * 0.6, "0x505050"))

    # The mouse: eased moves between random points, with pauses.
    cursor_x, cursor_y = [rng.uniform(0.2, 0.8) * width], [rng.uniform(0.2, 0.8) * height]
    moves_x, moves_y = [], []
    t = rng.uniform(0.2, 1.5)
    while t < seconds:
        duration = rng.uniform(0.3, 1.2)
        nx, ny = rng.uniform(0.05, 0.9) * width, rng.uniform(0.1, 0.85) * height
        u = f"clip((t-{t:.3f})/{duration:.3f},0,1)"
        ease = f"{u}*{u}*(3-2*{u})"
        moves_x.append(f"{nx - cursor_x[-1]:.2f}*{ease}")
        moves_y.append(f"{ny - cursor_y[-1]:.2f}*{ease}")
        cursor_x.append(nx)
        cursor_y.append(ny)
        t += duration + rng.uniform(0.2, 2.5)
    mouse_x = "+".join([f"{cursor_x[0]:.2f}", *moves_x])
    mouse_y = "+".join([f"{cursor_y[0]:.2f}", *moves_y])
    cw, ch = max(2, round(7 * sx)), max(3, round(11 * sy))

    graph = ";".join([
        f"color=c={desk}:s={width}x{height}:r={FPS}:d={seconds + 1:.3f},{','.join(desktop)}[desk]",
        f"color=c={_colour(layout, 245, 255, 0.02)}:s={text_w}x{canvas_h}:r={FPS}:d={seconds + 1:.3f},"
        f"{','.join(text)},crop={text_w}:{text_h}:0:'min({line_h}*({scroll}),ih-oh)'[text]",
        f"color=c=black:s={cw}x{ch}:r={FPS}:d={seconds + 1:.3f},"
        f"drawbox=x=1:y=1:w={max(1, cw - 2)}:h={max(1, ch - 2)}:color=white:t=fill[mouse]",
        f"[desk][text]overlay=x={text_x}:y={text_y}:shortest=1[shot]",
        f"[shot]{','.join(popup)}[shot2]",
        f"[shot2][mouse]overlay=x='{mouse_x}':y='{mouse_y}':shortest=1,setsar=1,{_noise(layout, 1)},"
        f"{_tail(seconds)}[out]",
    ])
    run_ffmpeg(["-filter_complex", graph, "-map", "[out]", *_encode_args(seconds, dst)])


def _cartoon(rng, sources, dst, seconds, size, tmp):
    width, height = size
    inputs, head = _stretch_input(rng, sources, seconds)
    levels = rng.choice((3, 4, 4, 5))
    step = 256 // levels
    lut = f"'min(255,floor(val/{step})*{step}+{step // 2})'"
    sigma = rng.uniform(1.5, 3.0) * width / 640
    smooth = f"hqdn3d=4:3:6:4,gblur=sigma={sigma:.3f},lutrgb=r={lut}:g={lut}:b={lut}"
    if rng.random() < 0.6:  # dark outlines from the smoothed picture's edges
        low = rng.uniform(0.08, 0.15)
        graph = (f"[0:v]{head},{_fit(width, height)},{smooth},split[c][e];"
                 f"[e]edgedetect=low={low:.3f}:high={low * 2.5:.3f},negate,format=gbrp[edges];"
                 f"[c]format=gbrp[flat];[flat][edges]blend=all_mode=multiply,{_tail(seconds)}[out]")
    else:
        graph = f"[0:v]{head},{_fit(width, height)},{smooth},{_tail(seconds)}[out]"
    run_ffmpeg([*inputs, "-an", "-sn", "-filter_complex", graph, "-map", "[out]", *_encode_args(seconds, dst)])


_MAKERS = {
    "still_shake": _still_shake, "slow_zoom": _slow_zoom, "fade_dark": _fade_dark,
    "texture_scroll": _texture_scroll, "slideshow": _slideshow, "screen_recording": _screen_recording,
    "cartoon": _cartoon,
}


# --------------------------------------------------------------------------- API


def make_stress_video(
    kind: str,
    sources: list[str],
    dst: str | Path,
    *,
    seed: int,
    seconds: float = 20.0,
    size: tuple[int, int] = SIZE,
    layout_seed: int | None = None,
) -> Path:
    """Generate one stress video of ``kind`` (one of :data:`KINDS`) at ``dst`` and return it.

    ``sources`` are real video paths to take stills and stretches from (unused by
    ``screen_recording``); every random choice comes from ``random.Random(seed)``,
    except, for a ``screen_recording`` given a ``layout_seed``, the desktop's layout
    and colours, drawn from that seed instead (see :func:`same_layout_screens`).
    The file is H.264 yuv420p mp4, ``size`` (width, height; even), 25 fps, no audio,
    ``round(seconds * 25)`` frames. It is written under a temporary name and renamed,
    so an interrupted run leaves no partial ``dst``. Raises RuntimeError on an ffmpeg
    failure, ValueError on a bad argument.
    """
    if kind not in _MAKERS:
        raise ValueError(f"unknown stress kind {kind!r} (known: {', '.join(KINDS)})")
    if not sources and kind != "screen_recording":
        raise ValueError(f"{kind} needs at least one source video")
    width, height = size
    if width < 32 or height < 32 or width % 2 or height % 2:
        raise ValueError(f"size {width}x{height}: need even sizes of at least 32")
    if seconds < 1.0:
        raise ValueError(f"seconds={seconds}: at least 1 s")
    if layout_seed is not None and kind != "screen_recording":
        raise ValueError(f"layout_seed: only a screen_recording has a layout, not {kind}")
    dst = Path(dst)
    part = dst.with_name(f".{dst.name}.part")
    rng = random.Random(seed)
    layout = {} if layout_seed is None else {"layout": random.Random(layout_seed)}
    try:
        with tempfile.TemporaryDirectory(prefix="stress-") as tmp:
            _MAKERS[kind](rng, [str(s) for s in sources], part, float(seconds), (width, height), Path(tmp), **layout)
        os.replace(part, dst)
    finally:
        part.unlink(missing_ok=True)
    return dst


def stress_path(out_dir: str | Path, kind: str, number: int, prefix: str = "stress") -> Path:
    """Where :func:`make_stress_library` puts file ``number`` of ``kind``."""
    return Path(out_dir) / f"{prefix}_{kind}_{number}.mp4"


def make_stress_library(
    sources: list[str],
    out_dir: str | Path,
    *,
    seed: int,
    per_kind: int = 1,
    seconds: float = 20.0,
    kinds=KINDS,
    prefix: str = "stress",
    size: tuple[int, int] = SIZE,
    one_source_each: bool = False,
) -> list[Path]:
    """``per_kind`` stress videos of each of ``kinds`` in ``out_dir``: ``{prefix}_{kind}_{i}.mp4``.

    File ``i`` of a kind has its own seed derived from ``seed``, the kind and ``i``,
    so files do not depend on which others are made. With ``one_source_each``, the
    j-th file (kind by kind) is made from ``sources[j % len(sources)]`` alone, so
    with enough sources no two files show the same footage (two files cut from one
    stretch would be true copies of each other). Existing files are kept as they
    are (a rerun is cheap). Returns every file's path, kind by kind.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in kinds:
        for number in range(per_kind):
            dst = stress_path(out_dir, kind, number, prefix)
            mine = [sources[len(paths) % len(sources)]] if one_source_each and sources else sources
            if not dst.exists():
                make_stress_video(kind, mine, dst, seed=_video_seed(seed, kind, number), seconds=seconds, size=size)
            paths.append(dst)
    return paths


def same_layout_screens(
    out_dir: str | Path,
    numbers,
    *,
    seed: int,
    seconds: float = 20.0,
    prefix: str = "lookalike",
    size: tuple[int, int] = SIZE,
) -> list[Path]:
    """Screen recordings of one desktop layout, ``{prefix}_screen_{n}.mp4`` for each of
    ``numbers``: look-alikes that share every pixel of the layout and its colours (drawn
    from ``seed``) and differ only in the typed text and the pointer's path (drawn from
    ``seed`` and ``n``). Existing files are kept (a rerun is cheap); returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in numbers:
        dst = out_dir / f"{prefix}_screen_{number}.mp4"
        if not dst.exists():
            make_stress_video("screen_recording", [], dst, seed=_video_seed(seed, "screen_recording", number),
                              seconds=seconds, size=size, layout_seed=_video_seed(seed, "layout", 0))
        paths.append(dst)
    return paths


def list_videos(folder: str | Path) -> list[str]:
    """The video files directly in ``folder``, sorted by name."""
    return sorted(str(p) for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path, help="folder the generated files go to (never commit them)")
    parser.add_argument("--videos", type=Path, default=DEFAULT_VIDEOS, help="source videos [%(default)s]")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--per-kind", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--kind", action="append", choices=KINDS, help="only these kinds (repeatable) [all]")
    parser.add_argument("--prefix", default="stress")
    args = parser.parse_args(argv)
    if not args.videos.is_dir():
        sys.exit(f"stress_footage: no videos folder at {args.videos}")
    sources = list_videos(args.videos)
    if not sources:
        sys.exit(f"stress_footage: no video files in {args.videos}")
    for kind in args.kind or KINDS:
        for number in range(args.per_kind):
            dst = stress_path(args.out_dir, kind, number, args.prefix)
            if dst.exists():
                print(f"kept   {dst} (exists)", flush=True)
                continue
            started = time.monotonic()
            args.out_dir.mkdir(parents=True, exist_ok=True)
            make_stress_video(kind, sources, dst, seed=_video_seed(args.seed, kind, number), seconds=args.seconds)
            print(f"wrote  {dst} ({time.monotonic() - started:.1f} s)", flush=True)


if __name__ == "__main__":
    main()

"""ffmpeg helpers for tests and tools (never used by the engine itself).

The ffmpeg binary comes from the ``imageio-ffmpeg`` wheel, so nothing needs to be
installed system-wide.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
from pathlib import Path
from typing import Any, Callable


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(args: list[str], *, stdin: bytes | None = None) -> None:
    """Run ffmpeg quietly; raise RuntimeError with its last error line on failure."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *([] if stdin is not None else ["-nostdin"]), *args],
        input=stdin,
        capture_output=True,
    )
    if proc.returncode != 0:
        # The last argument is the output file: the one a reader of the message knows.
        raise RuntimeError(f"ffmpeg {' '.join(args[-1:])}: {last_stderr_line(proc.stderr)}")


def last_stderr_line(stderr: bytes | str | None) -> str:
    """ffmpeg's last non-empty stderr line (its actual complaint), or a placeholder."""
    if isinstance(stderr, bytes):
        stderr = stderr.decode(errors="replace")
    lines = (stderr or "").strip().splitlines()
    return lines[-1].strip() if lines else "failed without a message"


def probe_duration(path: str | os.PathLike) -> float:
    """Container duration in seconds, parsed from ``ffmpeg -i`` (the wheel has no ffprobe)."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True, errors="replace")
    # Without an output file ffmpeg always exits 1, so only the parsed text tells success.
    match = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", proc.stderr)
    if not match:
        raise RuntimeError(f"{path}: no duration in ffmpeg output ({last_stderr_line(proc.stderr)})")
    h, m, s = match.groups()
    return int(h) * 3600 + int(m) * 60 + float(s)


def first_picture_time(path: str | os.PathLike) -> float:
    """Seconds from the container's start to the first video picture (the player's
    timeline, as vsearch counts); 0 for most files, more where audio starts first."""
    import av  # a dependency of vsearch itself

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            origin = (container.start_time or 0) / 1_000_000
            return max(float(frame.pts * stream.time_base) - origin, 0.0)
    return 0.0


def encoder_args(codec: str = "libx264", crf: int = 18) -> list[str]:
    """ffmpeg output arguments selecting ``codec`` at a quality given as an x264-style CRF.

    mpeg4 has no CRF: its fixed quantiser ``-q:v`` (2 best .. 31 worst) is mapped as
    crf/4, so CRF 28 gives q 7, a typical "medium" mpeg4 quality. libvpx only honours
    ``-crf`` in constant-quality mode, which ``-b:v 0`` selects.
    """
    if codec == "libx264":
        return ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf)]
    if codec == "mpeg4":
        return ["-c:v", "mpeg4", "-q:v", str(max(2, min(31, round(crf / 4))))]
    if codec in ("libvpx", "libvpx-vp9"):
        # realtime/cpu-used 8: VP8/9 is otherwise far too slow for 2-core test runs.
        return ["-c:v", codec, "-crf", str(crf), "-b:v", "0", "-deadline", "realtime", "-cpu-used", "8"]
    return ["-c:v", codec]


def scale_filter(factor: float) -> str:
    """A scale filter by ``factor`` that keeps dimensions even (as yuv420p needs)."""
    return f"scale=trunc(iw*{factor}/2)*2:trunc(ih*{factor}/2)*2"


def cut_clip(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    start: float,
    duration: float,
    vf: str | None = None,
    crf: int = 18,
    codec: str = "libx264",
    fps: float | None = None,
    extra: list[str] | None = None,
) -> Path:
    """Cut ``duration`` source seconds from ``start`` and re-encode, optionally edited.

    ``-ss`` is given after ``-i`` (decode from the start and drop frames): slower than
    input seeking but exact, also for files whose keyframe flags are wrong, where an
    input seek decodes garbage until the next real keyframe. (Measured on the shared
    footage: an input seek gives the same first frame on 39 of 40 files, but garbage on
    ``imageio_cockatoo.mp4``, a yuv444p High 4:4:4 file; the output seek is right there.)

    The clip's first frame is the first source frame shown at or after ``start``.
    ``extra`` goes last, just before the output path, so it can override earlier
    output options (e.g. a second ``-t`` giving the output length of a speed edit).
    Raises RuntimeError naming ``dst`` and ffmpeg's complaint on failure.
    """
    args = ["-i", str(src), "-ss", f"{start:.3f}", "-t", f"{duration:.3f}", "-an", "-sn"]
    if vf:
        args += ["-vf", vf]
    if fps:
        args += ["-r", f"{fps:g}"]
    args += [*encoder_args(codec, crf), "-pix_fmt", "yuv420p", *(extra or []), str(dst)]
    run_ffmpeg(args)
    return Path(dst)


_CROP10 = "crop=trunc(iw*0.9/2)*2:trunc(ih*0.9/2)*2"
_CROP20 = "crop=trunc(iw*0.8/2)*2:trunc(ih*0.8/2)*2"
_LETTERBOX = "scale=trunc(iw/2)*2:trunc(ih/2)*2,pad=iw:trunc(ih*1.33/2)*2:0:(oh-ih)/2"
_PILLARBOX = "scale=trunc(iw/2)*2:trunc(ih/2)*2,pad=trunc(iw*1.33/2)*2:ih:(ow-iw)/2:0"
_LOGO = "drawbox=x=iw*0.6:y=ih*0.05:w=iw*0.35:h=ih*0.3:color=white@1:t=fill"

_WORDS = ("the", "news", "tonight", "we", "look", "at", "how", "river", "city", "after", "storm", "people",
          "said", "that", "it", "was", "never", "going", "to", "happen", "here", "again", "and", "now")


def find_font() -> str | None:
    """A TrueType font file for burnt-in text (DejaVu Sans preferred), or None."""
    roots = [Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path("/Library/Fonts")]
    found = sorted(p for root in roots if root.is_dir() for p in root.rglob("*.ttf"))
    preferred = [p for p in found if p.name == "DejaVuSans.ttf"]
    return str((preferred or found)[0]) if found else None


def _subtitles(rng: random.Random) -> str:
    """Three subtitle lines, one after the other, at the bottom (text boxes without a font)."""
    font, parts, t = find_font(), [], 0.0
    for i in range(3):
        end = t + rng.uniform(1.2, 2.2) if i < 2 else 1e4
        when = f"enable='between(t,{t:.2f},{end:.2f})'"
        if font:
            text = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 6)))
            parts.append(f"drawtext=fontfile={font}:text='{text}':fontsize=h/13:fontcolor=white:borderw=2:"
                         f"bordercolor=black:x=(w-tw)/2:y=h*0.84:{when}")
        else:
            width = rng.uniform(0.4, 0.8)
            parts.append(f"drawbox=x=iw*{(1 - width) / 2:.3f}:y=ih*0.85:w=iw*{width:.3f}:h=ih*0.07:"
                         f"color=white@0.9:t=fill:{when}")
        t = end + 0.15
    return ",".join(parts)


def _moving_watermark(rng: random.Random) -> str:
    """A half-transparent label drifting over the picture on a smooth path."""
    phase_x, phase_y, speed = rng.uniform(0, 6.3), rng.uniform(0, 6.3), rng.uniform(0.4, 0.9)
    font = find_font()
    x = f"(W-w)*(0.5+0.45*sin(t*{speed:.2f}+{phase_x:.2f}))"
    y = f"(H-h)*(0.5+0.45*cos(t*{speed * 0.7:.2f}+{phase_y:.2f}))"
    if font:
        return (f"drawtext=fontfile={font}:text='CHANNEL {rng.randint(1, 99)}':fontsize=h/9:fontcolor=white@0.6:"
                f"borderw=1:bordercolor=black@0.4:x='{x.replace('W-w', 'w-tw').replace('H-h', 'h-th')}':"
                f"y='{y.replace('W-w', 'w-tw').replace('H-h', 'h-th')}'")
    return f"color=white@0.6:s=96x40,format=rgba[wm];[in][wm]overlay=x='{x}':y='{y}':shortest=1"


def _logo(rng: random.Random) -> str:
    w, h = rng.uniform(0.2, 0.35), rng.uniform(0.15, 0.3)
    x, y = rng.choice([0.03, 1 - w - 0.03]), rng.choice([0.04, 1 - h - 0.04])
    return f"drawbox=x=iw*{x:.3f}:y=ih*{y:.3f}:w=iw*{w:.3f}:h=ih*{h:.3f}:color=white@1:t=fill"


def _crop_off_centre(rng: random.Random) -> str:
    keep = 1 - rng.uniform(0.10, 0.25)
    return (f"crop=trunc(iw*{keep:.3f}/2)*2:trunc(ih*{keep:.3f}/2)*2:"
            f"(iw-ow)*{rng.uniform(0, 1):.3f}:(ih-oh)*{rng.uniform(0, 1):.3f}")


def _crop_heavy(rng: random.Random) -> str:
    """A crop keeping 70-75 % of each side, away from the centre on at least one axis."""
    keep_w, keep_h = 1 - rng.uniform(0.25, 0.30), 1 - rng.uniform(0.25, 0.30)
    while True:
        fx, fy = rng.uniform(0, 1), rng.uniform(0, 1)
        if max(abs(fx - 0.5), abs(fy - 0.5)) >= 0.25:
            break
    return f"crop=trunc(iw*{keep_w:.3f}/2)*2:trunc(ih*{keep_h:.3f}/2)*2:(iw-ow)*{fx:.3f}:(ih-oh)*{fy:.3f}"


#: Square pixels first (a player's picture), so shares of the width are shares of what is seen.
_SQUARE_PIXELS = "scale='trunc(iw*sar/2)*2':ih,setsar=1"


def _reframe_916(rng: random.Random) -> str:
    """A 9:16 portrait cut of the full height at a random horizontal place.

    A picture narrower than 9:16 (already tall) keeps its width and is cut to 9:16 in
    the vertical middle instead, so the clip is always a 9:16 portrait; the evaluation
    draws this edit from landscape sources only (``landscape_only``).
    """
    return (f"{_SQUARE_PIXELS},crop=w='trunc(min(iw,ih*9/16)/2)*2':h='trunc(min(ih,iw*16/9)/2)*2':"
            f"x='(iw-ow)*{rng.uniform(0, 1):.3f}':y='(ih-oh)/2'")


def _caption_band(rng: random.Random) -> str:
    """A half-transparent black band a fifth of the height tall, across the full width,
    its top 55-70 % down the frame, with a line of white text in it (where a font exists)."""
    top, opacity = rng.uniform(0.55, 0.70), rng.uniform(0.45, 0.6)
    band = f"drawbox=x=0:y=ih*{top:.3f}:w=iw:h=ih/5:color=black@{opacity:.2f}:t=fill"
    font = find_font()
    if not font:
        return band
    text = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 6))).upper()
    return (f"{band},drawtext=fontfile={font}:text='{text}':fontsize=h/14:fontcolor=white:"
            f"x=(w-tw)*{rng.uniform(0.05, 0.5):.3f}:y=h*{top + 0.1:.3f}-th/2")


def _camcorder(rng: random.Random) -> str:
    """A home camcorder's look: a mild vignette (corners at 65-85 % of their brightness), a
    warm or cold cast, a little more contrast, sharpening and grain."""
    cast = rng.choice([-1, 1]) * rng.uniform(0.02, 0.06)
    return (f"vignette=angle={rng.uniform(0.3, 0.5):.3f},"
            f"eq=contrast={rng.uniform(1.03, 1.15):.2f}:saturation={rng.uniform(0.85, 1.15):.2f}:"
            f"brightness={rng.uniform(-0.02, 0.02):.3f},"
            f"colorbalance=rm={cast:.3f}:bm={-cast:.3f},"
            f"unsharp=5:5:{rng.uniform(0.4, 0.9):.2f},noise=alls={rng.randint(5, 10)}:allf=t")


# Edits a stack of three is drawn from (each a -vf fragment).
_STACKABLE: dict[str, Callable[[random.Random], str]] = {
    "crop": lambda r: f"crop=trunc(iw*{r.uniform(0.85, 0.95):.3f}/2)*2:trunc(ih*{r.uniform(0.85, 0.95):.3f}/2)*2",
    "bright": lambda r: f"eq=brightness={r.choice([-1, 1]) * r.uniform(0.04, 0.1):.3f}",
    "contrast": lambda r: f"eq=contrast={r.uniform(0.8, 1.3):.2f}",
    "gamma": lambda r: f"eq=gamma={r.uniform(0.75, 1.4):.2f}",
    "gray": lambda r: "format=gray,format=yuv420p",
    "hflip": lambda r: "hflip",
    "blur": lambda r: f"gblur=sigma={r.uniform(1.0, 2.0):.2f}",
    "noise": lambda r: f"noise=alls={r.randint(8, 16)}:allf=t",
    "half": lambda r: scale_filter(0.5),
    "logo": _logo,
    "subtitles": _subtitles,
    "letterbox": lambda r: _LETTERBOX,
}


def _stack(rng: random.Random) -> str:
    return ",".join(_STACKABLE[name](rng) for name in rng.sample(sorted(_STACKABLE), 3))


#: Edits applied to query clips by the evaluation (name -> cut_clip arguments).
#: ``group`` says whether a user would call it a mild or a hard edit; ``speed`` is
#: the playback speed factor (the clip covers ``duration * speed`` source seconds);
#: ``pip`` puts the clip, scaled to ``pip`` of the frame's width (a range: drawn per
#: clip), at a random place over another, never indexed, video (``pip_over="video"``),
#: a flat colour or a slowly moving gradient; ``beside="video"`` puts it beside another
#: never-indexed video of the same size (:func:`side_by_side`). ``vary`` draws the
#: ``-vf`` of one clip (edit strengths, positions, words) from a seeded
#: ``random.Random``; without a seed the ``vf`` given is used. ``spatial`` marks the
#: edits that move, cut or cover the picture's geometry (crops of 20 % and more,
#: reframes, insets, stacks, bands): the spatial ladder. ``landscape_only`` edits are
#: cut from landscape sources only.
TRANSFORMS: dict[str, dict[str, Any]] = {
    "exact": dict(group="mild", crf=18),
    "crf28_half": dict(group="mild", crf=28, vf=scale_filter(0.5)),
    "crf23": dict(group="mild", crf=23),
    "crf32": dict(group="mild", crf=32),
    "mpeg4_crf28": dict(group="mild", crf=28, codec="mpeg4"),
    "half": dict(group="mild", crf=23, vf=scale_filter(0.5)),
    "fps25": dict(group="mild", crf=23, fps=25),
    "fps24": dict(group="mild", crf=23, fps=24),
    "fps30": dict(group="mild", crf=23, fps=30),
    "fps15": dict(group="mild", crf=23, fps=15),
    "bright": dict(group="mild", crf=23, vf="eq=brightness=0.08",
                   vary=lambda r: f"eq=brightness={r.choice([-1, 1]) * r.uniform(0.04, 0.12):.3f}"),
    "contrast": dict(group="mild", crf=23, vf="eq=contrast=1.2", vary=lambda r: f"eq=contrast={r.uniform(0.75, 1.35):.2f}"),
    "gamma": dict(group="mild", crf=23, vf="eq=gamma=1.3", vary=lambda r: f"eq=gamma={r.uniform(0.7, 1.5):.2f}"),
    "saturation": dict(group="mild", crf=23, vf="eq=saturation=1.5",
                       vary=lambda r: f"eq=saturation={r.uniform(0.4, 1.7):.2f}"),
    "gray": dict(group="mild", crf=23, vf="format=gray,format=yuv420p"),
    "crop10": dict(group="mild", crf=23, vf=_CROP10),
    "subtitles": dict(group="mild", crf=23, vf=_subtitles(random.Random(0)), vary=_subtitles),
    "crf40": dict(group="hard", crf=40),
    "crf40_quarter": dict(group="hard", crf=40, vf=scale_filter(0.25)),
    "quarter": dict(group="hard", crf=23, vf=scale_filter(0.25)),
    "heavy_240p": dict(group="hard", crf=38, vf="scale=-2:240"),
    "crop20": dict(group="hard", spatial=True, crf=23, vf=_CROP20),
    "crop_off_centre": dict(group="hard", spatial=True, crf=23, vf=_crop_off_centre(random.Random(0)),
                            vary=_crop_off_centre),
    "letterbox": dict(group="hard", crf=23, vf=_LETTERBOX),
    "letterbox_scale": dict(group="hard", crf=26, vf=f"{_LETTERBOX},{scale_filter(0.5)}"),
    "pillarbox": dict(group="hard", crf=23, vf=_PILLARBOX),
    "blur": dict(group="hard", crf=23, vf="gblur=sigma=2", vary=lambda r: f"gblur=sigma={r.uniform(1.5, 3.0):.2f}"),
    "noise": dict(group="hard", crf=23, vf="noise=alls=20:allf=t", vary=lambda r: f"noise=alls={r.randint(15, 28)}:allf=t"),
    "logo": dict(group="hard", crf=23, vf=_LOGO, vary=_logo),
    "moving_watermark": dict(group="hard", crf=23, vf=_moving_watermark(random.Random(0)), vary=_moving_watermark),
    "hflip": dict(group="hard", crf=23, vf="hflip"),
    "rot90": dict(group="hard", crf=23, vf="transpose=1", vary=lambda r: r.choice(["transpose=1", "transpose=2"])),
    "rot180": dict(group="hard", crf=23, vf="hflip,vflip"),
    "speed110": dict(group="hard", crf=23, vf="setpts=PTS/1.1", speed=1.1),
    "speed090": dict(group="hard", crf=23, vf="setpts=PTS/0.9", speed=0.9),
    "speed125": dict(group="hard", crf=23, vf="setpts=PTS/1.25", speed=1.25),
    "speed080": dict(group="hard", crf=23, vf="setpts=PTS/0.8", speed=0.8),
    "pip": dict(group="hard", spatial=True, crf=23, pip=(0.5, 0.5), pip_over="video"),
    "pip_video": dict(group="hard", spatial=True, crf=23, pip=(0.3, 0.6), pip_over="video"),
    "pip_flat": dict(group="hard", spatial=True, crf=23, pip=(0.3, 0.6), pip_over="flat"),
    "pip_gradient": dict(group="hard", spatial=True, crf=23, pip=(0.3, 0.6), pip_over="gradient"),
    "crop_heavy": dict(group="hard", spatial=True, crf=23, vf=_crop_heavy(random.Random(0)), vary=_crop_heavy),
    "reframe_916": dict(group="hard", spatial=True, landscape_only=True, crf=23, vf=_reframe_916(random.Random(0)),
                        vary=_reframe_916),
    "side_by_side": dict(group="hard", spatial=True, crf=23, beside="video"),
    "caption_band": dict(group="hard", spatial=True, crf=23, vf=_caption_band(random.Random(0)), vary=_caption_band),
    "camcorder": dict(group="hard", crf=23, vf=_camcorder(random.Random(0)), vary=_camcorder),
    "combo_crop_bright_crf32": dict(group="hard", crf=32, vf=f"{_CROP10},eq=brightness=0.08"),
    "combo_half_flip_noise": dict(group="hard", crf=28, vf=f"{scale_filter(0.5)},hflip,noise=alls=12:allf=t"),
    "combo_logo_gray_letterbox": dict(group="hard", crf=28, vf=f"{_LOGO},format=gray,format=yuv420p,{_LETTERBOX}"),
    "combo_flip_logo": dict(group="hard", crf=25, vf=f"hflip,{_LOGO}", vary=lambda r: f"hflip,{_logo(r)}"),
    "stack3": dict(group="hard", crf=26, vf=_stack(random.Random(0)), vary=_stack),
}

#: The mild edits the quality targets are stated for.
MILD = [name for name, spec in TRANSFORMS.items() if spec["group"] == "mild" and name != "exact"]
HARD = [name for name, spec in TRANSFORMS.items() if spec["group"] == "hard"]
#: The spatial ladder (see ``spatial`` above), a family within the hard edits.
SPATIAL = [name for name, spec in TRANSFORMS.items() if spec.get("spatial")]


def picture_in_picture(
    src, background, dst, *, start: float, duration: float, crf: int = 23, size: float = 0.5,
    x: float = 0.2, y: float = 0.2, over: str = "video", colour: str = "0x305070",
) -> Path:
    """The source clip scaled to ``size`` of the frame's width, placed at (``x``, ``y``)
    (shares of the free room), over ``background`` (a never-indexed video) or, with
    ``over="flat"`` / ``"gradient"``, over a flat ``colour`` or a slowly turning gradient."""
    if over == "video":
        if background is None:
            raise ValueError("picture-in-picture over a video needs a background video")
        bg_input = ["-stream_loop", "-1", "-i", str(background)]
    elif over == "flat":
        bg_input = ["-f", "lavfi", "-i", f"color=c={colour}:s=640x360:r=25"]
    elif over == "gradient":
        bg_input = ["-f", "lavfi", "-i", f"gradients=s=640x360:r=25:c0={colour}:c1=0xd0c0a0:speed=0.005"]
    else:
        raise ValueError(f"unknown picture-in-picture background {over!r}")
    # trim (decode from the start) rather than input seeking: exact on every file.
    args = [
        "-i", str(src), *bg_input,
        "-filter_complex",
        f"[0:v]trim=start={start:.3f}:duration={duration:.3f},setpts=PTS-STARTPTS[clip];"
        "[1:v][clip]scale2ref=w=iw:h=ih[bg][fg];"
        f"[fg]scale=trunc(iw*{size:.3f}/2)*2:trunc(ih*{size:.3f}/2)*2[small];"
        f"[bg][small]overlay=x=(W-w)*{x:.3f}:y=(H-h)*{y:.3f}:shortest=1,format=yuv420p[out]",
        "-map", "[out]", "-t", f"{duration:.3f}", "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf),
        str(dst),
    ]
    run_ffmpeg(args)
    return Path(dst)


def display_size(path: str | os.PathLike) -> tuple[int, int]:
    """A video's picture size as a player shows it (square pixels), rounded to even numbers."""
    import av  # a dependency of vsearch itself

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        sar = stream.sample_aspect_ratio or 1
        return 2 * max(1, round(stream.width * sar / 2)), 2 * max(1, stream.height // 2)


def side_by_side(src, other, dst, *, start: float, duration: float, crf: int = 23, clip_left: bool = True,
                 other_start: float = 0.0) -> Path:
    """The source clip and ``other`` (a never-indexed video, from ``other_start``, looped
    if short) side by side at the clip's size: twice as wide, the clip on the left or the
    right. ``other`` is scaled to cover that size and cut to it (its aspect kept)."""
    width, height = display_size(src)
    args = [
        "-i", str(src), "-stream_loop", "-1", "-i", str(other),
        "-filter_complex",
        # The clip drives the output's frames (overlay's main input): its timing is kept.
        f"[0:v]trim=start={start:.3f}:duration={duration:.3f},setpts=PTS-STARTPTS,scale={width}:{height},setsar=1,"
        f"pad={2 * width}:{height}:{0 if clip_left else width}:0[canvas];"
        f"[1:v]trim=start={other_start:.3f}:duration={duration:.3f},setpts=PTS-STARTPTS,"
        f"scale={width}:{height}:force_original_aspect_ratio=increase,crop={width}:{height},setsar=1[other];"
        f"[canvas][other]overlay=x={width if clip_left else 0}:y=0:eof_action=repeat,format=yuv420p[out]",
        "-map", "[out]", "-t", f"{duration:.3f}", "-an", *encoder_args("libx264", crf), str(dst),
    ]
    run_ffmpeg(args)
    return Path(dst)


def transform_args(name: str, seed: int | None = None) -> dict[str, Any]:
    """cut_clip keyword arguments of a named transform; ``seed`` draws its strengths."""
    spec = dict(TRANSFORMS[name])
    vary = spec.pop("vary", None)
    if vary is not None and seed is not None:
        spec["vf"] = vary(random.Random(seed))
    for key in ("group", "speed", "pip", "pip_over", "spatial", "landscape_only", "beside"):
        spec.pop(key, None)
    return spec


def apply_transform(name: str, src, dst, *, start: float, duration: float, background=None,
                    seed: int | None = None) -> Path:
    """Cut ``duration`` seconds of *output* clip from ``src`` at ``start``, edited by ``name``.

    ``seed`` draws the edit's strength and placement (see ``TRANSFORMS``); None uses
    the nominal one. ``background`` is the never-indexed video an inset goes over or a
    side-by-side clip goes beside.
    """
    spec = TRANSFORMS[name]
    if spec.get("beside"):
        if background is None:
            raise ValueError(f"{name} needs another video to go beside")
        rng = random.Random(seed)
        clip_left = True if seed is None else rng.random() < 0.5
        other_start = 0.0 if seed is None else rng.uniform(0.0, max(0.0, probe_duration(background) - duration - 0.1))
        return side_by_side(src, background, dst, start=start, duration=duration, crf=spec["crf"],
                            clip_left=clip_left, other_start=other_start)
    if spec.get("pip"):
        rng = random.Random(seed)
        lo, hi = spec["pip"]
        place = dict(size=0.5, x=0.2, y=0.2) if seed is None else dict(
            size=rng.uniform(lo, hi), x=rng.uniform(0, 1), y=rng.uniform(0, 1))
        colour = "0x305070" if seed is None else f"0x{rng.randrange(1 << 24):06x}"
        return picture_in_picture(src, background, dst, start=start, duration=duration, crf=spec["crf"],
                                  over=spec["pip_over"], colour=colour, **place)
    args = transform_args(name, seed)
    if "speed" in spec:
        # Output seeking (-ss after -i) compares *filtered* timestamps, which setpts has
        # already re-timed: the clip would start at start * speed. Trim before re-timing.
        source_seconds = duration * spec["speed"]
        args["vf"] = f"trim=start={start:.3f}:duration={source_seconds:.3f},setpts=PTS-STARTPTS,{args['vf']}"
        return cut_clip(src, dst, start=0.0, duration=duration, **args)
    return cut_clip(src, dst, start=start, duration=duration, **args)


def generated_clip(kind: str, dst, *, seconds: float, seed: int) -> Path:
    """A clip of no real footage: ``flat`` colour (with sensor-like noise), a slowly
    turning colour ``gradient``, or full-frame ``noise``: negatives that must match nothing."""
    rng = random.Random(seed)
    colour, other = f"0x{rng.randrange(1 << 24):06x}", f"0x{rng.randrange(1 << 24):06x}"
    source = {
        "flat": f"color=c={colour}:s=640x360:r=25,noise=alls=4:allf=t",
        "gradient": f"gradients=s=640x360:r=25:c0={colour}:c1={other}:speed=0.01:seed={rng.randrange(1 << 30)}",
        "noise": f"color=c=gray:s=640x360:r=25,noise=alls={rng.randint(30, 80)}:allf=t",
    }[kind]
    run_ffmpeg(["-f", "lavfi", "-i", source, "-t", f"{seconds:.3f}", *encoder_args("libx264", 23),
                "-pix_fmt", "yuv420p", str(dst)])
    return Path(dst)


def lavfi_video(source: str, dst) -> Path:
    """A video of an ffmpeg ``lavfi`` source (``color=c=black:s=16000x16000:r=2:d=3``), in
    H.264 encoded fast on one thread: frames of any size, in a small file."""
    run_ffmpeg(["-f", "lavfi", "-i", source, "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
                "-threads", "1", "-pix_fmt", "yuv420p", str(dst)])
    return Path(dst)


def joined_video(first, first_seconds: float, second, second_start: float, second_seconds: float, dst) -> Path:
    """``first_seconds`` of ``first`` from its start, then ``second_seconds`` of ``second``
    from ``second_start``, both scaled to 640x360: a video that shares an intro with another."""
    args = [
        "-i", str(first), "-i", str(second), "-filter_complex",
        f"[0:v]trim=duration={first_seconds:.3f},setpts=PTS-STARTPTS,scale=640:360,setsar=1,fps=25[a];"
        f"[1:v]trim=start={second_start:.3f}:duration={second_seconds:.3f},setpts=PTS-STARTPTS,"
        "scale=640:360,setsar=1,fps=25[b];[a][b]concat=n=2:v=1:a=0,format=yuv420p[out]",
        "-map", "[out]", "-an", *encoder_args("libx264", 18), str(dst),
    ]
    run_ffmpeg(args)
    return Path(dst)

"""ffmpeg helpers for tests and tools (never used by the engine itself).

The ffmpeg binary comes from the ``imageio-ffmpeg`` wheel, so nothing needs to be
installed system-wide.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any


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

#: Edits applied to query clips by the evaluation (name -> cut_clip arguments).
#: ``group`` says whether a user would call it a mild or a hard edit; ``speed`` is
#: the playback speed factor (the clip covers ``duration * speed`` source seconds);
#: ``pip`` puts the clip at half size over another (never indexed) video.
TRANSFORMS: dict[str, dict[str, Any]] = {
    "exact": dict(group="mild", crf=18),
    "crf28_half": dict(group="mild", crf=28, vf=scale_filter(0.5)),
    "crf23": dict(group="mild", crf=23),
    "crf32": dict(group="mild", crf=32),
    "mpeg4_crf28": dict(group="mild", crf=28, codec="mpeg4"),
    "half": dict(group="mild", crf=23, vf=scale_filter(0.5)),
    "fps25": dict(group="mild", crf=23, fps=25),
    "bright": dict(group="mild", crf=23, vf="eq=brightness=0.08"),
    "contrast": dict(group="mild", crf=23, vf="eq=contrast=1.2"),
    "gamma": dict(group="mild", crf=23, vf="eq=gamma=1.3"),
    "saturation": dict(group="mild", crf=23, vf="eq=saturation=1.5"),
    "gray": dict(group="mild", crf=23, vf="format=gray,format=yuv420p"),
    "crop10": dict(group="mild", crf=23, vf=_CROP10),
    "fps15": dict(group="mild", crf=23, fps=15),
    "crf40": dict(group="hard", crf=40),
    "crf40_quarter": dict(group="hard", crf=40, vf=scale_filter(0.25)),
    "quarter": dict(group="hard", crf=23, vf=scale_filter(0.25)),
    "crop20": dict(group="hard", crf=23, vf=_CROP20),
    "letterbox": dict(group="hard", crf=23, vf=_LETTERBOX),
    "pillarbox": dict(group="hard", crf=23, vf=_PILLARBOX),
    "blur": dict(group="hard", crf=23, vf="gblur=sigma=2"),
    "noise": dict(group="hard", crf=23, vf="noise=alls=20:allf=t"),
    "logo": dict(group="hard", crf=23, vf=_LOGO),
    "hflip": dict(group="hard", crf=23, vf="hflip"),
    "speed110": dict(group="hard", crf=23, vf="setpts=PTS/1.1", speed=1.1),
    "speed090": dict(group="hard", crf=23, vf="setpts=PTS/0.9", speed=0.9),
    "pip": dict(group="hard", crf=23, pip=True),
    "combo_crop_bright_crf32": dict(group="hard", crf=32, vf=f"{_CROP10},eq=brightness=0.08"),
    "combo_half_flip_noise": dict(group="hard", crf=28, vf=f"{scale_filter(0.5)},hflip,noise=alls=12:allf=t"),
    "combo_logo_gray_letterbox": dict(group="hard", crf=28, vf=f"{_LOGO},format=gray,format=yuv420p,{_LETTERBOX}"),
}

#: The mild edits the quality targets are stated for.
MILD = [name for name, spec in TRANSFORMS.items() if spec["group"] == "mild" and name != "exact"]
HARD = [name for name, spec in TRANSFORMS.items() if spec["group"] == "hard"]


def picture_in_picture(src, background, dst, *, start: float, duration: float, crf: int = 23) -> Path:
    """The source clip at half size over ``background`` (which should not be indexed)."""
    # trim (decode from the start) rather than input seeking: exact on every file.
    args = [
        "-i", str(src), "-stream_loop", "-1", "-i", str(background),
        "-filter_complex",
        f"[0:v]trim=start={start:.3f}:duration={duration:.3f},setpts=PTS-STARTPTS[clip];"
        "[1:v][clip]scale2ref=w=iw:h=ih[bg][fg];[fg]scale=trunc(iw/4)*2:trunc(ih/4)*2[small];"
        "[bg][small]overlay=x=W*0.1:y=H*0.1:shortest=1,format=yuv420p[out]",
        "-map", "[out]", "-t", f"{duration:.3f}", "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf),
        str(dst),
    ]
    run_ffmpeg(args)
    return Path(dst)


def transform_args(name: str) -> dict[str, Any]:
    """cut_clip keyword arguments of a named transform."""
    spec = dict(TRANSFORMS[name])
    for key in ("group", "speed", "pip"):
        spec.pop(key, None)
    return spec


def apply_transform(name: str, src, dst, *, start: float, duration: float, background=None) -> Path:
    """Cut ``duration`` seconds of *output* clip from ``src`` at ``start``, edited by ``name``."""
    spec = TRANSFORMS[name]
    if spec.get("pip"):
        if background is None:
            raise ValueError("picture-in-picture needs a background video")
        return picture_in_picture(src, background, dst, start=start, duration=duration, crf=spec["crf"])
    args = transform_args(name)
    if "speed" in spec:
        # Output seeking (-ss after -i) compares *filtered* timestamps, which setpts has
        # already re-timed: the clip would start at start * speed. Trim before re-timing.
        source_seconds = duration * spec["speed"]
        args["vf"] = f"trim=start={start:.3f}:duration={source_seconds:.3f},setpts=PTS-STARTPTS,{args['vf']}"
        return cut_clip(src, dst, start=0.0, duration=duration, **args)
    return cut_clip(src, dst, start=start, duration=duration, **args)

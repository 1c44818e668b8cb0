"""Frame accuracy of vsearch's decoders against ffmpeg, over a matrix of codecs and containers.

    python -m tools.decoder_matrix [--workdir DIR] [--decoders pyav decord] [--timeout 60]

A master video whose frames show their own number (``tools.support.synth.make_stamped_video``)
is transcoded into each case of :data:`CASES` with ffmpeg. For every case and decoder,
the frame numbers the decoder returns at the analysis instants are compared with the
frames ffmpeg itself shows at those instants (``ffmpeg -i FILE`` with its default
timeline, rotation applied), read from the same stamps. The tests use the same cases
(``tests/decode/test_accuracy.py``); this tool prints the table for the README.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tools.support import ffmpeg_exe, last_stderr_line, make_stamped_video, read_stamp, run_ffmpeg

#: The master: frame n at n / MASTER_FPS seconds, MASTER_SECONDS long.
MASTER_FPS = 25
MASTER_SECONDS = 12.0
MASTER_SIZE = (320, 240)

_X264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-pix_fmt", "yuv420p"]


@dataclass(frozen=True)
class Case:
    """One file of the matrix: how ffmpeg makes it from the master (or from another case)."""

    suffix: str
    args: list[str]
    source: str | None = None  # another case to start from, instead of the master
    input_args: list[str] = field(default_factory=list)
    rotation: int = 0  # display rotation (counter-clockwise degrees) the file carries
    with_audio: bool = False  # add 13 s of tone as the first stream (before the video)


CASES: dict[str, Case] = {
    "h264_bframes_mp4": Case(".mp4", [*_X264, "-bf", "3"]),
    "h264_rotated_mp4": Case(".mp4", ["-c", "copy"], source="h264_bframes_mp4", input_args=["-display_rotation", "90"],
                             rotation=90),
    "h264_editlist_mp4": Case(".mp4", ["-c", "copy"], source="h264_bframes_mp4", input_args=["-ss", "2.3"]),
    "xvid_bframes_avi": Case(".avi", ["-c:v", "mpeg4", "-vtag", "XVID", "-bf", "2", "-q:v", "3"]),
    "mpeg2_bframes_mpg": Case(".mpg", ["-c:v", "mpeg2video", "-bf", "2", "-q:v", "3", "-f", "mpeg"]),
    "mpeg2_vob": Case(".vob", ["-c:v", "mpeg2video", "-bf", "2", "-q:v", "3", "-f", "vob"]),
    "h264_ts_offset": Case(".ts", [*_X264, "-bf", "3", "-output_ts_offset", "10"]),
    "vfr_mkv": Case(".mkv", ["-vf", "select='not(eq(mod(n\\,7)\\,2))*not(eq(mod(n\\,5)\\,4))'", "-fps_mode", "vfr",
                             *_X264]),
    "vp9_altref_webm": Case(".webm", ["-c:v", "libvpx-vp9", "-auto-alt-ref", "1", "-lag-in-frames", "16",
                                      "-deadline", "good", "-cpu-used", "5", "-crf", "30", "-b:v", "0"]),
    "mjpeg_avi": Case(".avi", ["-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p"]),
    "audio_first_mp4": Case(".mp4", ["-map", "0:a", "-map", "1:v", *_X264, "-c:a", "aac"],
                            input_args=["-itsoffset", "0.84"], with_audio=True),
}


def build_case(name: str, master: Path, outdir: Path, built: dict[str, Path] | None = None) -> Path:
    """Make the file of case ``name`` in ``outdir`` (cached) and return its path."""
    case = CASES[name]
    out = outdir / f"{name}{case.suffix}"
    if out.exists():
        return out
    source = master if case.source is None else build_case(case.source, master, outdir, built)
    inputs = ["-f", "lavfi", "-i", "sine=frequency=440:duration=13"] if case.with_audio else []
    run_ffmpeg([*inputs, *case.input_args, "-i", str(source), *([] if case.with_audio else ["-an"]), *case.args,
                str(out)])
    return out


def ffmpeg_frames(path: Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Every frame ffmpeg outputs for ``path`` (times on its timeline, grey pictures),
    rotation applied as ffmpeg applies it, nothing dropped or duplicated."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "info", "-i", str(path), "-an",
         "-vf", f"showinfo,scale={width}:{height},format=gray", "-fps_mode", "passthrough", "-f", "rawvideo", "-"],
        capture_output=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{path}: ffmpeg failed ({last_stderr_line(proc.stderr)})")
    times = np.array([float(t) for t in re.findall(rb"pts_time:\s*(-?[\d.]+)", proc.stderr)])
    frames = np.frombuffer(proc.stdout, np.uint8).reshape(-1, height, width)
    if len(times) != len(frames):
        raise RuntimeError(f"{path}: {len(times)} timestamps for {len(frames)} frames")
    return times, frames


def stamps(frames: np.ndarray, rotation: int = 0) -> np.ndarray:
    """Frame numbers read from displayed pictures (-1 where unreadable)."""
    turns = -(rotation // 90)
    return np.array([-1 if (n := read_stamp(np.rot90(f, turns))) is None else n for f in frames])


def on_screen(times: np.ndarray, numbers: np.ndarray, instants: np.ndarray) -> np.ndarray:
    """The number shown at each instant: the last frame at or before it (the first before any)."""
    index = np.searchsorted(times, instants + 1e-6, side="right") - 1
    return numbers[np.clip(index, 0, len(numbers) - 1)]


@dataclass
class Comparison:
    """A decoder's frames against ffmpeg's at the analysis instants of one file."""

    case: str
    decoder: str
    instants: int = 0
    mismatched: int = 0
    first_mismatch: str = ""
    error: str = ""
    duration: float = 0.0
    ffmpeg_duration: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.error and self.instants > 0 and self.mismatched == 0


def compare(case: str, path: Path, decoder: str, *, rate: float = 10.0, timeout: float = 60.0,
            size: tuple[int, int] = (128, 96)) -> Comparison:
    """Decode ``path`` with vsearch's ``decoder`` at ``rate`` and compare with ffmpeg."""
    from vsearch.decode import VideoSource
    from vsearch.errors import VideoError

    width, height = size
    result = Comparison(case, decoder)
    ref_times, ref_frames = ffmpeg_frames(path, width, height)
    ref_numbers = stamps(ref_frames, CASES[case].rotation)
    result.ffmpeg_duration = float(ref_times[-1] + 1 / MASTER_FPS) if len(ref_times) else 0.0
    source = VideoSource(path, width=width, height=height, decoder=decoder, timeout=timeout)
    try:
        frames = np.concatenate(list(source.iter_frames(rate, chunk_frames=200)))
    except VideoError as exc:
        result.error = exc.reason
        return result
    result.duration = source.info.duration
    mine = stamps(frames, CASES[case].rotation)
    instants = np.arange(len(frames)) / rate
    expected = on_screen(ref_times, ref_numbers, instants)
    bad = np.flatnonzero(mine != expected)
    result.instants, result.mismatched = len(frames), len(bad)
    if len(bad):
        k = bad[0]
        result.first_mismatch = f"at {instants[k]:.2f} s: frame {mine[k]}, ffmpeg shows {expected[k]}"
    if abs(result.duration - result.ffmpeg_duration) > 1.5 / MASTER_FPS:
        result.error = f"duration {result.duration:.2f} s, ffmpeg's {result.ffmpeg_duration:.2f} s"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "vsearch-decoder-matrix")
    parser.add_argument("--decoders", nargs="+", default=["pyav", "decord"])
    parser.add_argument("--timeout", type=float, default=60.0, help="decode timeout per file (seconds)")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    master = args.workdir / "master.mkv"
    if not master.exists():
        make_stamped_video(master, seconds=MASTER_SECONDS, seed=5, fps=MASTER_FPS, size=MASTER_SIZE)
    print(f"{'case':<20}{'decoder':<9}{'instants':>9}{'wrong':>7}  notes")
    for name in CASES:
        path = build_case(name, master, args.workdir)
        for decoder in args.decoders:
            r = compare(name, path, decoder, timeout=args.timeout)
            note = r.error or r.first_mismatch or "ok"
            print(f"{name:<20}{decoder:<9}{r.instants:>9}{r.mismatched:>7}  {note}", flush=True)


if __name__ == "__main__":
    main()

"""Synthetic footage: seeded, textured, moving videos made with numpy + ffmpeg.

Each seed gives a clearly different video: a large smooth random texture panned by
a smoothly varying "camera", a few moving blobs, and a hard cut to a new texture
every few seconds. Used by the tests and by the demo when no real footage exists.

    python -m tools.support.synth OUTDIR --count 6 --seconds 20
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import numpy as np

from tools.support.ffmpeg import encoder_args, ffmpeg_exe, last_stderr_line


def _texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth random texture in [0, 255]: low-pass filtered noise at a few scales."""
    out = np.zeros((height, width), np.float32)
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    radius = np.sqrt(fy**2 + fx**2)
    for cutoff, weight in ((0.01, 1.0), (0.03, 0.6), (0.08, 0.35)):
        spectrum = np.fft.rfft2(rng.normal(size=(height, width)))
        layer = np.fft.irfft2(spectrum * np.exp(-((radius / cutoff) ** 2)), s=(height, width))
        out += weight * (layer / (layer.std() + 1e-9)).astype(np.float32)
    out = (out - out.min()) / (np.ptp(out) + 1e-9)
    return out * 215 + 20


def _frames(seconds: float, seed: int, fps: float, size: tuple[int, int], cut_every: float):
    """Yield the RGB frames of one seeded video (see the module docstring)."""
    width, height = size
    rng = np.random.default_rng(seed)
    n = int(round(seconds * fps))
    margin = 2
    big_w, big_h = width * 2 + margin, height * 2 + margin
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    shot_len = max(1, int(round(cut_every * fps)))
    texture = None
    for i in range(n):
        if i % shot_len == 0:
            texture = _texture(rng, big_h, big_w)
            colour = rng.uniform(0.6, 1.0, size=3).astype(np.float32)
            pos = rng.uniform([0, 0], [big_w - width - 1, big_h - height - 1])
            vel = rng.normal(0, 2.5, size=2)
            blobs = rng.uniform([0, 0, 8, -120], [width, height, 28, 120], size=(3, 4)).astype(np.float32)
            blob_vel = rng.normal(0, 3, size=(3, 2)).astype(np.float32)
        # Smooth random camera path, bouncing off the texture's borders.
        vel = 0.9 * vel + rng.normal(0, 0.6, size=2)
        pos = pos + vel
        for axis, limit in ((0, big_w - width - 1), (1, big_h - height - 1)):
            if not 0 <= pos[axis] <= limit:
                vel[axis] = -vel[axis]
                pos[axis] = min(max(pos[axis], 0), limit)
        x0, y0 = int(pos[0]), int(pos[1])
        gray = texture[y0 : y0 + height, x0 : x0 + width].copy()
        blobs[:, :2] += blob_vel
        for bx, by, radius, amp in blobs:
            gray += amp * np.exp(-((xx - bx % width) ** 2 + (yy - by % height) ** 2) / (2 * radius**2))
        rgb = np.clip(gray[..., None] * colour, 0, 255).astype(np.uint8)
        yield rgb


def _encode(frames, path: Path, *, fps: float, size: tuple[int, int], output_args: list[str]) -> Path:
    """Pipe raw RGB frames into ffmpeg and encode them to ``path`` with ``output_args``."""
    width, height = size
    if width % 2 or height % 2:
        # yuv420p needs even sizes; ffmpeg's own last line would only say "nothing written".
        raise ValueError(f"{path}: frame size {width}x{height} must have even width and height")
    cmd = [
        ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", f"{fps:g}", "-i", "-",
        *output_args, str(path),
    ]
    # stderr goes to a pipe read only at the end: at -loglevel error it stays far below
    # the pipe buffer, so ffmpeg cannot block on it while we write frames.
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for frame in frames:
            proc.stdin.write(frame.tobytes())
        proc.stdin.close()
    except BrokenPipeError:
        pass  # ffmpeg died early; its own message (read below) says why
    err = proc.stderr.read()
    if proc.wait() != 0:
        raise RuntimeError(f"{path}: ffmpeg failed ({last_stderr_line(err)})")
    return path


def make_video(
    path: str | Path,
    *,
    seconds: float,
    seed: int,
    fps: float = 25,
    size: tuple[int, int] = (320, 240),
    codec: str = "libx264",
    crf: int = 20,
    cut_every: float = 4.0,
) -> Path:
    """Render a seeded synthetic video to ``path`` and return it.

    ``round(seconds * fps)`` frames of ``size`` (width, height), a hard cut to a new
    texture every ``cut_every`` seconds. Any codec of ``tools.support.ffmpeg.encoder_args``.
    """
    frames = _frames(seconds, seed, fps, size, cut_every)
    return _encode(frames, Path(path), fps=fps, size=size,
                   output_args=[*encoder_args(codec, crf), "-pix_fmt", "yuv420p"])


# Frame-number stamp: the bottom quarter of the picture is two rows of eight cells,
# white for 1 and black for 0: a 12-bit frame number and a 4-bit check. Cells are a
# sixteenth of the width, so the stamp survives scaling down to 64x48, any codec and
# compression that keeps the picture recognisable.
_STAMP_BITS, _CHECK_BITS = 12, 4
_STAMP_ROWS, _STAMP_COLS = 2, 8
_ON, _OFF = 230, 25


def _check(number: int) -> int:
    return (number * 7 + 3) % (1 << _CHECK_BITS)


def stamp_frame(rgb: np.ndarray, number: int) -> np.ndarray:
    """Burn ``number`` (mod 4096) into the bottom quarter of an RGB frame, in place."""
    number %= 1 << _STAMP_BITS
    code = (number << _CHECK_BITS) | _check(number)
    height, width = rgb.shape[:2]
    top = height - height // 4
    for bit in range(_STAMP_ROWS * _STAMP_COLS):
        row, col = divmod(bit, _STAMP_COLS)
        y0 = top + (height - top) * row // _STAMP_ROWS
        y1 = top + (height - top) * (row + 1) // _STAMP_ROWS
        x0, x1 = width * col // _STAMP_COLS, width * (col + 1) // _STAMP_COLS
        on = (code >> (_STAMP_ROWS * _STAMP_COLS - 1 - bit)) & 1
        rgb[y0:y1, x0:x1] = _ON if on else _OFF
    return rgb


def read_stamp(gray: np.ndarray) -> int | None:
    """The frame number burnt in by :func:`stamp_frame`, or None if the stamp does not check."""
    height, width = gray.shape[:2]
    top = height - height // 4
    code = 0
    for bit in range(_STAMP_ROWS * _STAMP_COLS):
        row, col = divmod(bit, _STAMP_COLS)
        y0 = top + (height - top) * row // _STAMP_ROWS
        y1 = top + (height - top) * (row + 1) // _STAMP_ROWS
        x0, x1 = width * col // _STAMP_COLS, width * (col + 1) // _STAMP_COLS
        # The centre of the cell: edges blur with scaling and compression.
        cell = gray[y0 + (y1 - y0) // 4 : y1 - (y1 - y0) // 4, x0 + (x1 - x0) // 4 : x1 - (x1 - x0) // 4]
        code = (code << 1) | int(cell.mean() > (_ON + _OFF) / 2)
    number = code >> _CHECK_BITS
    return number if code & ((1 << _CHECK_BITS) - 1) == _check(number) else None


def make_stamped_video(
    path: str | Path, *, seconds: float, seed: int, fps: float = 25, size: tuple[int, int] = (320, 240)
) -> Path:
    """A synthetic video (see :func:`make_video`) whose frames show their own number.

    Encoded losslessly (H.264, qp 0) in Matroska: a master that other containers and
    codecs are transcoded from, frame ``n`` at ``n / fps`` seconds.
    """
    frames = (stamp_frame(rgb, n) for n, rgb in enumerate(_frames(seconds, seed, fps, size, 4.0)))
    return _encode(frames, Path(path), fps=fps, size=size,
                   output_args=["-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv444p"])


def make_library_index(index_path: Path, hours: float, real_video: Path, *, seed: int = 0) -> Path:
    """An index of ``real_video`` plus enough synthetic 10-minute "videos" to reach
    ``hours``: each is 1,200 of the real video's block descriptors, drawn at random and
    perturbed, committed like a real video. Its vector type is what ``auto`` picks for
    that size. Built in minutes where ingesting that much footage would take days."""
    from vsearch import VideoIndex
    from vsearch.store.metastore import now_iso

    with VideoIndex.create(index_path, device="cpu") as index:
        index.add([real_video])
        store = index.folder.store  # synthetic videos are committed like real ones
        with store.snapshot() as snap:
            real_blocks = snap.blocks(next(snap.videos()), index.config.block_dim).copy()
        rng = np.random.default_rng(seed)
        per_video = 1200  # 10 minutes of 0.5 s blocks
        for i in range(int(hours * 6)):
            picks = real_blocks[rng.integers(0, len(real_blocks), per_video)]
            fake = (picks + rng.normal(0, 0.05, picks.shape)).astype(np.float32)
            store.commit_video(dict(path=f"/synthetic/{i:05d}.mp4", hash=f"synthetic{i:023d}", duration_s=600.0,
                                    fps=30.0, width=1280, height=720, frames=18000, blocks=per_video,
                                    windows=per_video - index.config.window_blocks + 1, added=now_iso()), fake)
    with VideoIndex.open(index_path, device="cpu", repair=False) as index:
        index.rebuild()
    return index_path


def main() -> None:
    """``python -m tools.support.synth OUTDIR``: write synth_00.mp4, synth_01.mp4, ... and print their paths."""
    parser = argparse.ArgumentParser(description="Write seeded synthetic test videos.")
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--seed", type=int, default=100)
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    for i in range(args.count):
        print(make_video(args.outdir / f"synth_{i:02d}.mp4", seconds=args.seconds, seed=args.seed + i))


if __name__ == "__main__":
    main()

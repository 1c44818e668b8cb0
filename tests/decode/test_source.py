"""Reading through the decoder process: frame rate, VFR and pixel aspect do not change
the blocks; chunks are bounded; bad files give one-line errors naming the file."""

from __future__ import annotations

import numpy as np
import pytest

from vsearch.config import IndexConfig
from vsearch.decode import VideoSource, iter_video_files
from vsearch.device import resolve_device
from vsearch.describe import describe_video
from vsearch.errors import VideoError, VsearchError
from tools.support import run_ffmpeg

CPU = resolve_device("cpu")


def _block_similarity(a, b) -> np.ndarray:
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    return np.einsum("ij,ij->i", a, b) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-9)


@pytest.fixture(scope="module")
def variants(media, tmp_path_factory):
    """The same footage as 25 fps, 30 fps, variable frame rate and anamorphic files."""
    src = media["lib11"]
    root = tmp_path_factory.mktemp("variants")
    out = {"orig": src}
    out["fps30"] = root / "fps30.mp4"
    run_ffmpeg(["-i", str(src), "-r", "30", "-c:v", "libx264", "-crf", "16", "-pix_fmt", "yuv420p", str(out["fps30"])])
    # Drop an irregular pattern of frames but keep the survivors' timestamps: VFR.
    out["vfr"] = root / "vfr.mkv"
    run_ffmpeg(["-i", str(src), "-vf", "select='not(eq(mod(n,7),2))*not(eq(mod(n,5),4))'", "-fps_mode", "vfr",
                "-c:v", "libx264", "-crf", "16", "-pix_fmt", "yuv420p", str(out["vfr"])])
    # Store 70% of the width with a 10:7 sample aspect ratio: same picture on screen.
    out["anamorphic"] = root / "anamorphic.mp4"
    run_ffmpeg(["-i", str(src), "-vf", "scale=224:240,setsar=10/7", "-c:v", "libx264", "-crf", "16",
                "-pix_fmt", "yuv420p", str(out["anamorphic"])])
    return out


@pytest.mark.parametrize("variant", ["fps30", "vfr", "anamorphic"])
def test_variants_give_the_same_blocks(variants, variant):
    config = IndexConfig()
    ref = describe_video(variants["orig"], config, CPU)
    other = describe_video(variants[variant], config, CPU)
    assert abs(len(ref.blocks) - len(other.blocks)) <= 1
    sims = _block_similarity(ref.blocks, other.blocks)
    assert np.median(sims) > 0.9, sims


def test_vfr_file_is_sampled_by_time_over_its_full_duration(variants):
    source = VideoSource(variants["vfr"], width=64, height=48)
    frames = np.concatenate(list(source.iter_frames(10.0)))
    assert source.info.frame_count < 0.8 * 16 * 25  # really variable: a fifth of the frames dropped
    assert source.info.duration == pytest.approx(16.0, abs=0.1)
    # Sampling by time: 10 frames per second whatever the file's own rate.
    assert abs(len(frames) - 160) <= 1


def test_frames_are_streamed_in_bounded_chunks(media):
    source = VideoSource(media["lib11"], width=128, height=96)
    chunks = list(source.iter_frames(10.0, chunk_frames=40))
    assert [len(c) for c in chunks] == [40, 40, 40, 40]
    assert all(c.dtype == np.uint8 and c.shape[1:] == (96, 128) for c in chunks)
    assert source.info.frame_count == 16 * 25 and not source.info.partial


def test_rgb_pictures_at_times_keep_the_display_aspect(variants):
    source = VideoSource(variants["anamorphic"], width=0, height=60)
    pictures = source.frames_at(np.array([3.0, 0.5, 3.0]))
    # Stored 224x240 with 10:7 pixels: displayed 320x240, so 80x60 at this height.
    assert pictures.shape == (3, 60, 80, 3)
    np.testing.assert_array_equal(pictures[0], pictures[2])
    assert not np.array_equal(pictures[0], pictures[1])


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("empty.mp4", b"", "empty file"),
        ("random.mp4", bytes(np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8)), "not a video"),
        ("random.mkv", bytes(np.random.default_rng(2).integers(0, 256, 20000, dtype=np.uint8)), "not a video"),
        ("notes.txt", b"just some text\n" * 50, "not a video"),
    ],
)
def test_bad_files_raise_one_line_errors_naming_the_file(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(VideoError) as err:
        list(VideoSource(path, width=64, height=48).iter_frames(10.0))
    message = str(err.value)
    assert message.startswith(str(path)) and reason in message and "\n" not in message


def test_missing_file_and_folder_are_errors(tmp_path):
    with pytest.raises(VideoError, match="no such file"):
        VideoSource(tmp_path / "nope.mp4", width=64, height=48)
    with pytest.raises(VideoError, match="directory"):
        VideoSource(tmp_path, width=64, height=48)


def test_audio_only_file_is_rejected(tmp_path):
    path = tmp_path / "audio.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-c:a", "aac", str(path)])
    with pytest.raises(VideoError, match="no video stream"):
        VideoSource(path, width=64, height=48).frames_at_rates([10.0])


def test_unknown_decoder_is_refused(media):
    with pytest.raises(VsearchError, match="unknown decoder"):
        VideoSource(media["lib11"], width=64, height=48, decoder="opencv")


def test_folders_expand_recursively_to_video_files(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for rel in ("a/x.mp4", "a/b/y.MKV", "a/readme.txt", "z.webm"):
        (tmp_path / rel).write_bytes(b"")
    found = list(iter_video_files([tmp_path]))
    assert [p[len(str(tmp_path)) + 1 :] for p in found] == ["z.webm", "a/x.mp4", "a/b/y.MKV"]

"""Frame accuracy against ffmpeg, over a matrix of codecs and containers.

The master video stamps its own frame number on every frame; each case is made from
it with ffmpeg (``tools/decoder_matrix.CASES``: B-frames in MP4, AVI and MPEG-PS,
rotation, an edit list, a TS clock offset, variable frame rate, VP9 alternate
reference frames, MJPEG, audio before video). For every case and decoder, the frames
at the analysis instants must be the frames ffmpeg shows at those instants; and a
5 s cut made with ``ffmpeg -i FILE -ss T -t 5`` must be found at T within one frame.
"""

from __future__ import annotations

import pytest

from tools.decoder_matrix import (
    CASES,
    MASTER_FPS,
    MASTER_SECONDS,
    MASTER_SIZE,
    build_case,
    compare,
    ffmpeg_frames,
    stamps,
)
from tools.support import make_stamped_video, run_ffmpeg

#: Cases decord gets wrong (README, "Decoders"): it ignores MP4 edit lists (frames past
#: the edit's end are returned) and starts an MPEG-TS file with a clock offset 4 s late.
DECORD_FAILS = {"h264_editlist_mp4", "h264_ts_offset"}

#: A cut start that is no frame, block or analysis instant.
CUT_AT = 3.37


@pytest.fixture(scope="session")
def matrix(tmp_path_factory):
    root = tmp_path_factory.mktemp("matrix")
    master = make_stamped_video(root / "master.mkv", seconds=MASTER_SECONDS, seed=5, fps=MASTER_FPS,
                                size=MASTER_SIZE)
    return {name: build_case(name, master, root) for name in CASES}


def _decoders():
    params = [pytest.param("pyav", id="pyav")]
    try:
        import decord  # noqa: F401
    except ImportError:
        params.append(pytest.param("decord", id="decord", marks=pytest.mark.skip(reason="decord is not installed")))
    else:
        params.append(pytest.param("decord", id="decord"))
    return params


@pytest.mark.parametrize("decoder", _decoders())
@pytest.mark.parametrize("case", list(CASES))
def test_frames_at_each_instant_are_the_frames_ffmpeg_shows(matrix, case, decoder):
    result = compare(case, matrix[case], decoder, timeout=60)
    if decoder == "decord" and case in DECORD_FAILS:
        assert not result.ok, "decord now reads this case right: update DECORD_FAILS and the README"
        return
    assert not result.error, result.error
    assert result.instants >= MASTER_SECONDS * 10 * 0.75
    assert result.mismatched == 0, result.first_mismatch


@pytest.fixture(scope="session")
def matrix_index(matrix, tmp_path_factory):
    from vsearch import VideoIndex

    path = tmp_path_factory.mktemp("matrix_index") / "ix"
    with VideoIndex.create(path, device="cpu") as index:
        results = index.add(list(matrix.values()))
    assert [r.status for r in results] == ["added"] * len(matrix), results
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_an_exact_cut_is_found_at_its_start_within_one_frame(matrix, matrix_index, case, tmp_path):
    from vsearch import VideoIndex

    clip = tmp_path / "cut.mp4"
    run_ffmpeg(["-i", str(matrix[case]), "-ss", f"{CUT_AT}", "-t", "5", "-an", "-c:v", "libx264", "-crf", "18",
                "-pix_fmt", "yuv420p", str(clip)])
    with VideoIndex.open(matrix_index, device="cpu") as index:
        hits = index.query(clip, k=len(CASES)).hits
    mine = [h for h in hits if h.video == str(matrix[case])]
    assert mine, f"no hit in {case}: {hits}"
    # The true start is where ffmpeg shows the cut's first frame in the file: within
    # a frame of CUT_AT (the first frame at or after it, or on AVI's timestamps, where
    # ffmpeg's trim and its own timeline differ by a frame, the one just before).
    rotation = CASES[case].rotation
    first = stamps(ffmpeg_frames(clip, 128, 96)[1][:1], rotation)[0]
    times, pictures = ffmpeg_frames(matrix[case], 128, 96)
    true_start = float(times[list(stamps(pictures, rotation)).index(first)])
    assert abs(true_start - CUT_AT) < 1 / MASTER_FPS
    assert abs(mine[0].start - true_start) <= 1 / MASTER_FPS, (mine[0], true_start)

"""Frame size: a server refuses frames too large from the headers, so that any single
upload, the issue's 16000x16000 file or the largest allowed, keeps it under 1 GiB."""

from __future__ import annotations

import shutil

import pytest

from tools.support import lavfi_video

pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from tools.support import ServerProcess  # noqa: E402


def test_a_server_stays_under_1_gib_with_any_single_upload(built_index, huge_frames, tmp_path):
    index = tmp_path / "ix"
    shutil.copytree(built_index, index)
    # 8K UHD, the largest allowed; every other frame negated, so it moves at any size
    uhd = lavfi_video("testsrc2=s=7680x4320:r=5:d=2,negate=enable='mod(n,2)'", tmp_path / "uhd.mp4")
    server = ServerProcess(index, log=tmp_path / "server.log")
    try:
        with server.client() as client:
            replies = []
            for clip in (huge_frames, uhd):
                with open(clip, "rb") as handle:
                    replies.append(client.post("/query", files={"clip": (clip.name, handle, "video/mp4")}))
            peak = server.peak_rss()
    finally:
        server.stop()
    assert replies[0].status_code == 422 and replies[0].json()["detail"] == (
        "huge.mp4: frames too large: 16000x16000, over the 33,177,600 pixels allowed")
    assert replies[1].status_code == 200 and replies[1].json()["hits"] == [], replies[1].text
    assert peak < 1 << 30, f"peak RSS of the server and its decoders: {peak >> 20} MiB"

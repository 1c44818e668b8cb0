"""The endpoints of a real server: answers, authentication, path escapes, bad uploads."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli

# The server's extra: without it these tests are skipped (CI installs it with 'test').
pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from tools.support import ServerProcess, wait_job  # noqa: E402
from vsearch.server.guard import size_text  # noqa: E402

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def server(built_index, allowed, tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    shutil.copytree(built_index, root / "ix")
    (root / "uploads").mkdir()
    proc = ServerProcess(root / "ix", "--allow-dir", str(allowed), "--max-upload-mb", "2", "--max-clip-seconds", "12",
                         "--max-pixels", "320x240", "--upload-dir", str(root / "uploads"), "--workers", "2",
                         log=root / "server.log", token=TOKEN)
    proc.uploads = root / "uploads"
    yield proc
    proc.stop()
    log = (root / "server.log").read_text()
    assert "Traceback" not in log and "internal error" not in log, log
    # uvicorn ends by re-raising SIGTERM; the lifespan's shutdown ran before.
    assert not list((root / "uploads").iterdir()), "the server left its upload folder behind"


@pytest.fixture(scope="module")
def client(server):
    with server.client() as c:
        yield c


def _upload(client, path: Path, **fields):
    with open(path, "rb") as handle:
        return client.post("/query", files={"clip": (path.name, handle, "video/mp4")},
                           data={k: str(v) for k, v in fields.items()})


BOUNDARY = "vsearch-test-boundary"


def _multipart_chunks(name: str, data: bytes, chunk: int = 1 << 16):
    """A one-file multipart body as a generator: httpx sends it chunked, with no length."""
    yield (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"clip\"; filename=\"{name}\"\r\n"
           "Content-Type: video/mp4\r\n\r\n").encode()
    for start in range(0, len(data), chunk):
        yield data[start:start + chunk]
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def test_health_needs_no_token(server):
    with server.client(token="") as anonymous:
        assert anonymous.get("/health").json()["status"] == "ok"


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
def test_every_other_endpoint_needs_the_token(server, header):
    with server.client(token="") as anonymous:
        headers = {"Authorization": header} if header else {}
        for method, url in [("GET", "/stats"), ("GET", "/videos"), ("POST", "/query"), ("POST", "/videos"),
                            ("DELETE", "/videos/1"), ("GET", "/jobs/x")]:
            reply = anonymous.request(method, url, headers=headers)
            assert reply.status_code == 401, (method, url, reply.text)
            assert reply.headers["www-authenticate"] == "Bearer"


def test_query_upload_returns_the_cli_json(server, client, clips):
    clip = clips["exact"][0]
    reply = _upload(client, clip, k=3)
    assert reply.status_code == 200, reply.text
    served = reply.json()
    cli = run_cli("query", str(clip), "--index", str(server.index), "-k", "3", "--json", check=True)
    expected = json.loads(cli.stdout)
    assert served["query"] == clip.name
    assert served["hits"] == expected["hits"] and served["duration"] == expected["duration"]
    best = served["hits"][0]
    assert Path(best["video"]).name == "lib 12.mp4" and abs(best["start"] - clips["exact"][2]) < 0.5


def test_query_by_path_under_the_allowed_folder(client, allowed, clips):
    relative = client.post("/query", data={"path": "reencoded_small.mp4", "min_score": "0.5"})
    absolute = client.post("/query", data={"path": str(allowed / "reencoded_small.mp4"), "min_score": "0.5"})
    assert relative.status_code == absolute.status_code == 200, (relative.text, absolute.text)
    assert relative.json()["query"] == "reencoded_small.mp4"
    assert relative.json()["hits"] == absolute.json()["hits"]
    best = relative.json()["hits"][0]
    assert Path(best["video"]).name == "lib 13.mp4" and abs(best["start"] - clips["reencoded_small"][2]) < 0.5


@pytest.mark.parametrize("path", ["../exact.mp4", "linked/../../exact.mp4", "/etc/passwd", "escape.mp4",
                                  "linked/outside.mp4"])
def test_query_path_escapes_are_forbidden(client, path):
    reply = client.post("/query", data={"path": path})
    assert reply.status_code == 403, reply.text
    assert "\n" not in reply.json()["detail"]


@pytest.mark.parametrize("paths", [["linked"], [".."], ["/tmp"], ["extra.mp4", "escape.mp4"]])
def test_adding_outside_the_allowed_folder_is_forbidden(client, paths):
    before = client.get("/stats").json()
    reply = client.post("/videos", json={"paths": paths})
    assert reply.status_code == 403, reply.text
    assert client.get("/stats").json() == before


def test_bad_uploads_get_the_cli_reason_and_change_nothing(server, client, tmp_path, media):
    before = client.get("/stats").json()
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("hello, not a video\n")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(media["extra"].read_bytes()[:20000])
    for bad in (not_video, empty, truncated):
        reply = _upload(client, bad)
        assert reply.status_code == 422, reply.text
        cli = run_cli("query", str(bad), "--index", str(server.index))
        assert cli.returncode == 2
        reason = cli.stderr.strip().split(f"{bad}: ", 1)[1]
        assert reply.json()["detail"] == f"{bad.name}: {reason}"
    huge = tmp_path / "huge.mp4"
    huge.write_bytes(os.urandom(3 << 20))
    reply = _upload(client, huge)
    assert reply.status_code == 413
    assert reply.json()["detail"] == "upload larger than the 2 MiB allowed (--max-upload-mb)"
    # Sent without a length, it is cut off as it passes the limit, and named.
    chunked = client.post("/query", content=_multipart_chunks("huge.mp4", huge.read_bytes()),
                          headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert chunked.status_code == 413 and chunked.json()["detail"] == "huge.mp4: larger than the 2 MiB allowed"
    too_long = client.post("/query", data={"path": "long_clip.mp4"})
    assert too_long.status_code == 413 and "longer than the 12 s allowed" in too_long.json()["detail"], too_long.text
    for fields, files in [({"k": "0", "path": "exact.mp4"}, None), ({"min_score": "2", "path": "exact.mp4"}, None),
                          ({}, None), ({"path": "exact.mp4"}, {"clip": ("a.mp4", b"x")})]:
        reply = client.post("/query", data=fields, files=files)
        assert reply.status_code == 422 and "\n" not in reply.json()["detail"], reply.text
    assert client.post("/videos", json={"paths": []}).status_code == 422
    assert client.post("/videos", content=b"not json", headers={"Content-Type": "application/json"}).status_code == 422
    assert client.get("/stats").json() == before
    assert not list(server.uploads.glob("*/*")), "uploads must be removed after their request"


def test_add_query_and_remove_a_video(client):
    assert client.post("/query", data={"path": "extra_clip.mp4"}).json()["hits"] == []
    reply = client.post("/videos", json={"paths": ["extra.mp4"]})
    assert reply.status_code == 202, reply.text
    job = wait_job(client, reply.json()["id"])
    assert job["state"] == "done" and job["processed"] == job["total"] == 1
    assert job["files"][0]["status"] == "added", job
    video_id = job["files"][0]["video_id"]
    videos = {v["id"]: v for v in client.get("/videos").json()}
    assert Path(videos[video_id]["path"]).name == "extra.mp4" and len(videos) == 4
    hits = client.post("/query", data={"path": "extra_clip.mp4"}).json()["hits"]
    assert hits and hits[0]["video_id"] == video_id and abs(hits[0]["start"] - 2.3) < 0.5
    again = wait_job(client, client.post("/videos", json={"paths": ["extra.mp4"]}).json()["id"])
    assert again["files"][0]["status"] == "skipped"

    removal = client.delete(f"/videos/{video_id}")
    assert removal.status_code == 202
    assert wait_job(client, removal.json()["id"])["files"][0]["status"] == "removed"
    assert video_id not in {v["id"] for v in client.get("/videos").json()}
    assert client.post("/query", data={"path": "extra_clip.mp4"}).json()["hits"] == []
    assert client.delete(f"/videos/{video_id}").status_code == 404
    assert client.get("/jobs/no-such-job").status_code == 404
    stats = client.get("/stats").json()
    assert stats["videos"] == 3 and stats["vectors"] > 0


def test_openapi_lists_the_endpoints_and_foreign_hosts_are_refused(server, client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/query", "/videos", "/videos/{video_id}", "/jobs/{job_id}", "/stats", "/health"} <= set(paths)
    assert "multipart/form-data" in paths["/query"]["post"]["requestBody"]["content"]
    # DNS rebinding: a page served by another name must not reach the loopback server.
    assert client.get("/stats", headers={"Host": "attacker.example"}).status_code == 400


def test_docs_are_self_hosted_and_need_the_token(server, client):
    with server.client(token="") as anonymous:
        for url in ("/docs", "/openapi.json", "/docs/assets/swagger-ui.css", "/redoc"):
            assert anonymous.get(url).status_code == 401, url
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text
    # Every asset the page loads is this server's own: it works offline, nothing from a CDN.
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and "://" not in page.text.replace(f"{server.url}", "")
    for asset in assets + [client.get("/docs").text.split("url: '", 1)[1].split("'", 1)[0]]:
        assert asset.startswith("/"), asset
        assert client.get(asset).status_code == 200, asset
    assert client.get("/redoc").status_code == 404  # it could only come from a CDN


@pytest.mark.parametrize("path, why", [("", "empty"), ("a\0b", "a NUL byte"), ("x" * 5000, "longer than 4096 bytes")])
def test_what_is_not_a_path_is_422_in_one_line(client, path, why):
    asked = client.post("/query", files={"path": (None, path)})  # a form field, even empty
    added = client.post("/videos", json={"paths": [path]})
    for reply in (asked, added):
        assert reply.status_code == 422, reply.text
        assert "\n" not in reply.json()["detail"] and len(reply.json()["detail"]) < 400, reply.text
    assert why in added.json()["detail"] and (not path or why in asked.json()["detail"])  # a form's "" is no field


def test_a_lone_surrogate_or_a_name_too_long_is_a_client_error(client):
    body = b'{"paths": ["bad\\ud800.mp4"]}'  # JSON allows it; no file name does
    reply = client.post("/videos", content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 422, reply.text
    assert "not UTF-8 text" in reply.json()["detail"]
    for reply in (client.post("/query", data={"path": "a" * 300 + ".mp4"}),  # (a form's text is always UTF-8)
                  client.post("/videos", json={"paths": ["a" * 300 + ".mp4"]})):
        assert reply.status_code == 422 and reply.json()["detail"].endswith("(File name too long)"), reply.text


def test_a_fifo_is_refused_at_once(client, allowed):
    fifo = allowed / "pipe.mp4"
    os.mkfifo(fifo)
    try:
        started = time.monotonic()
        asked = client.post("/query", data={"path": "pipe.mp4"})
        added = client.post("/videos", json={"paths": ["pipe.mp4"]})
        assert time.monotonic() - started < 5
    finally:
        fifo.unlink()
    for reply in (asked, added):
        assert reply.status_code == 422 and reply.json()["detail"] == "pipe.mp4: not a regular file", reply.text


def test_an_addition_names_a_bounded_number_of_paths(client):
    started = time.monotonic()
    many = client.post("/videos", json={"paths": ["extra.mp4"] * 1001})
    assert many.status_code == 422 and "at most 1000" in many.json()["detail"], many.text
    flood = client.post("/videos", json={"paths": ["a"] * 500_001})  # 3 MB of JSON
    assert flood.status_code == 413 and flood.json()["detail"] == "request body larger than the 1 MiB allowed"
    assert time.monotonic() - started < 5


def test_a_huge_path_is_refused_and_never_logged(server, client):
    huge = "p" * (15 << 20)
    assert client.post("/videos", json={"paths": [huge]}).status_code == 413
    assert client.post("/query", files={"path": (None, huge)}).status_code == 413
    asked = client.post("/query", files={"path": (None, huge[: 100 << 10])})
    assert asked.status_code == 413 and asked.json()["detail"] == "form field 'path' larger than the 64 KiB allowed"
    assert server.log.stat().st_size < 64 << 10 and "ppppp" not in server.log.read_text()


def test_frames_larger_than_max_pixels_are_refused(client, allowed):
    with open(allowed / "large_frames.mp4", "rb") as handle:
        reply = client.post("/query", files={"clip": ("big.mp4", handle, "video/mp4")})
    reason = "frames too large: 640x480, over the 76,800 pixels allowed"
    assert reply.status_code == 422 and reply.json()["detail"] == f"big.mp4: {reason}", reply.text
    job = wait_job(client, client.post("/videos", json={"paths": ["large_frames.mp4"]}).json()["id"])
    assert job["state"] == "done" and job["files"][0]["status"] == "failed", job
    assert job["files"][0]["reason"] == reason
    assert "large_frames.mp4" not in {Path(v["path"]).name for v in client.get("/videos").json()}


def test_sizes_read_as_a_person_writes_them():
    assert [size_text(n) for n in (int(0.1 * (1 << 20)), 2 << 20, 200 << 20, 1 << 30, 512)] == [
        "102.4 KiB", "2 MiB", "200 MiB", "1 GiB", "512 bytes"]


def test_a_relative_path_starts_at_the_first_allowed_folder(built_index, allowed, clips, tmp_path):
    second = tmp_path / "second"
    second.mkdir()
    shutil.copy(clips["exact"][0], second / "only_here.mp4")
    shutil.copytree(built_index, tmp_path / "ix")
    other = ServerProcess(tmp_path / "ix", "--allow-dir", str(allowed), "--allow-dir", str(second),
                          "--max-upload-mb", "0.1", log=tmp_path / "server.log")
    try:
        with other.client() as anyone:
            schema = anyone.get("/openapi.json").json()
            relative = anyone.post("/query", data={"path": "only_here.mp4"})
            absolute = anyone.post("/query", data={"path": str(second / "only_here.mp4")})
            with open(clips["exact"][0], "rb") as handle:
                upload = anyone.post("/query", files={"clip": ("exact.mp4", handle, "video/mp4")})
    finally:
        other.stop()
    assert json.dumps(schema).count("(a relative one is taken from the first --allow-dir)") == 2  # path, paths
    assert relative.status_code == 422 and relative.json()["detail"] == "only_here.mp4: no such file"
    assert absolute.status_code == 200 and absolute.json()["hits"], absolute.text
    assert upload.status_code == 413, upload.text
    assert upload.json()["detail"] == "exact.mp4: larger than the 102.4 KiB allowed"  # (--max-upload-mb 0.1)

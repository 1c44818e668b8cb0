"""Binding rules, token checks and allowed-folder resolution; the extra's one-line error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vsearch.errors import PathNotAllowedError, VideoError, VsearchError
from vsearch.server.security import AllowedRoots, check_bind, is_loopback, loopback_host_names, token_matches

from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True),
                                            ("localhost", True), ("0.0.0.0", False), ("::", False),
                                            ("192.168.1.20", False)])
def test_only_loopback_binds_without_a_token(host, loopback):
    assert is_loopback(host) is loopback
    if loopback:
        check_bind(host, None)
    else:
        with pytest.raises(VsearchError, match="without a token"):
            check_bind(host, None)
        check_bind(host, "t")


def test_token_compare():
    assert token_matches("Bearer abc", "abc") and token_matches("bearer abc", "abc")
    assert not any(token_matches(h, "abc") for h in (None, "", "abc", "Bearer", "Bearer ab", "Bearer abcd", "Basic abc"))


def test_allowed_roots(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (root / "sub" / "a.mp4").write_bytes(b"x")
    (outside / "b.mp4").write_bytes(b"x")
    (root / "link.mp4").symlink_to(outside / "b.mp4")
    (root / "dirlink").symlink_to(outside)
    roots = AllowedRoots([root])
    assert roots.resolve_file("sub/a.mp4") == root / "sub" / "a.mp4"
    assert roots.resolve_file(str(root / "sub" / ".." / "sub" / "a.mp4")) == root / "sub" / "a.mp4"
    for escape in ("../outside/b.mp4", str(outside / "b.mp4"), "link.mp4", "dirlink/b.mp4", "sub/../../outside"):
        with pytest.raises(PathNotAllowedError):
            roots.resolve(escape)
    # Not paths at all: the client's bad field (422), named in one short line.
    for invalid, why in [("", "empty"), ("a\0b", "a NUL byte"), ("x" * 5000, "longer than 4096 bytes"),
                         ("a\ud800.mp4", "not UTF-8 text")]:
        with pytest.raises(VideoError, match=f"not a valid path \\({why}\\)") as caught:
            roots.resolve(invalid)
        assert len(str(caught.value)) < 300 and "\n" not in str(caught.value)
    with pytest.raises(VideoError, match="no such file"):
        roots.resolve_file("sub/missing.mp4")
    with pytest.raises(VideoError, match=r"cannot read file \(File name too long\)"):
        roots.resolve_file("sub/" + "y" * 300 + ".mp4")  # a name longer than the file system takes
    # A FIFO would hold a decoder until its timeout: refused at once, named or found in a folder.
    os.mkfifo(root / "sub" / "pipe.mp4")
    with pytest.raises(VideoError, match="not a regular file"):
        roots.resolve_file("sub/pipe.mp4")
    with pytest.raises(VideoError, match="not a regular file"):
        roots.expand(["sub"])
    os.unlink(root / "sub" / "pipe.mp4")
    with pytest.raises(PathNotAllowedError, match="links outside"):
        roots.expand(["."])  # the folder holds link.mp4
    os.unlink(root / "link.mp4")
    assert roots.expand(["."]) == [str(root / "sub" / "a.mp4")]
    with pytest.raises(PathNotAllowedError, match="disabled"):
        AllowedRoots([]).resolve("sub/a.mp4")


def test_serve_refuses_a_public_address_without_a_token(tmp_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    proc = run_cli("serve", "--index", str(tmp_path / "ix"), "--host", "0.0.0.0", env={"VSEARCH_TOKEN": ""})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "vsearch: error: refusing to listen on 0.0.0.0 (reachable from other machines) without a token: "
        "give --token or set VSEARCH_TOKEN"]
    assert not (tmp_path / "ix").exists()


def test_serve_bounds_its_query_workers(tmp_path):
    """Each query worker keeps a decoder process started: their number is bounded
    before anything starts."""
    proc = run_cli("serve", "--index", str(tmp_path / "ix"), "--workers", "65")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "vsearch: error: Invalid value for '--workers': Input should be less than or equal to 64 "
        "(see 'python -m vsearch serve --help')"]
    assert not (tmp_path / "ix").exists()


def test_without_the_extra_serve_names_it_and_the_core_does_not_import_it(tmp_path):
    script = ("import sys; sys.modules['fastapi'] = None; sys.argv = ['vsearch', 'serve', '--index', sys.argv[1]]; "
              "from vsearch.cli import run; run()")
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "ix")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip() == 'vsearch: error: vsearch serve needs the \'serve\' extra: pip install "vsearch[serve]"'
    core = "import sys, vsearch.cli, vsearch.library.index, vsearch.search.pipeline; assert 'fastapi' not in sys.modules, 'fastapi'"
    assert subprocess.run([sys.executable, "-c", core], cwd=ROOT).returncode == 0


def test_a_loopback_server_answers_to_its_own_names():
    assert loopback_host_names("127.0.0.2") == ["127.0.0.1", "127.0.0.2", "[::1]", "localhost"]
    assert loopback_host_names("::1") == ["127.0.0.1", "[::1]", "localhost"]
    assert "localhost" in loopback_host_names("LOCALHOST")

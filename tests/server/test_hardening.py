"""A server on an open network: requests without the token, slow and half-open
connections, a few file descriptors, uploads on disk, killed servers, a busy port,
other names of this machine. Each test runs a real server and talks to it over sockets."""

from __future__ import annotations

import os
import select
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import run_cli

pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from tools.support import ServerProcess  # noqa: E402

TOKEN = "s3cret-token"


@pytest.fixture
def index(built_index, tmp_path) -> Path:
    shutil.copytree(built_index, tmp_path / "ix")
    return tmp_path / "ix"


def _connect(server: ServerProcess, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=timeout)


def _head(server: ServerProcess, method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {server.host}:{server.port}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _files_held(pid: int, *folders: Path) -> int:
    """Bytes of the files under ``folders``, and of those the process holds open there
    (a deleted temporary file included)."""
    total = sum(f.stat().st_size for folder in folders for f in folder.rglob("*") if f.is_file())
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
            if target.endswith(" (deleted)") and any(target.startswith(str(folder)) for folder in folders):
                total += os.stat(fd).st_size
        except OSError:
            continue
    return total


def _closed_by_peer(sock: socket.socket) -> bool:
    """Whether the server has closed this connection (without blocking)."""
    if not select.select([sock], [], [], 0)[0]:
        return False
    try:
        return sock.recv(65536) == b""
    except OSError:
        return True


def test_a_request_without_the_token_costs_nothing(index, tmp_path):
    """The issue: 30 connections without a token each sent 19 MiB of a 20 MiB upload,
    and the server spooled 570 MiB to disk before answering."""
    spool, uploads = tmp_path / "spool", tmp_path / "uploads"
    spool.mkdir()
    uploads.mkdir()
    server = ServerProcess(index, "--max-upload-mb", "25", "--upload-dir", str(uploads), log=tmp_path / "server.log",
                           token=TOKEN, env={"TMPDIR": str(spool)})
    stop, peak = threading.Event(), [0]

    def watch() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _files_held(server.pid, spool, uploads))
            time.sleep(0.02)

    def upload(_: int) -> bytes:
        with _connect(server) as sock:
            sock.settimeout(2.0)
            sock.sendall(_head(server, "POST", "/query", "Content-Type: multipart/form-data; boundary=B",
                               f"Content-Length: {20 << 20}")
                         + b'--B\r\nContent-Disposition: form-data; name="clip"; filename="c.mp4"\r\n\r\n')
            try:
                for _ in range(19):
                    sock.sendall(os.urandom(1 << 20))
            except OSError:  # the server answered and stopped reading: the send fills up, or is reset
                pass
            try:
                return sock.recv(4096)
            except OSError:
                return b""

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(30) as pool:
            answers = list(pool.map(upload, range(30)))
        with server.client() as client:
            assert client.get("/stats").status_code == 200
    finally:
        stop.set()
        watcher.join()
        server.stop()
    assert peak[0] < 1 << 20, f"{peak[0] >> 20} MiB of uploads held on disk"
    assert any(a.startswith(b"HTTP/1.1 401") for a in answers), answers[:3]
    assert all(a.startswith(b"HTTP/1.1 401") or a == b"" for a in answers), answers[:3]


def test_slow_headers_and_idle_connections_are_closed(index, tmp_path):
    """The issue: 1,000 connections sending their headers a byte at a time stayed open for 60 s."""
    server = ServerProcess(index, "--header-timeout", "2", log=tmp_path / "server.log", token=TOKEN)
    request = _head(server, "GET", "/stats", f"Authorization: Bearer {TOKEN}")
    try:
        slow = [_connect(server) for _ in range(200)]
        kept = _connect(server)  # one good request, then the next one trickled
        kept.sendall(request)
        assert kept.recv(65536).startswith(b"HTTP/1.1 200")
        idle = _connect(server)
        idle.sendall(request)
        assert idle.recv(65536).startswith(b"HTTP/1.1 200")
        idle_since = time.monotonic()
        started, closed = time.monotonic(), {}
        trickled = slow + [kept]
        while len(closed) < len(trickled) and time.monotonic() - started < 8:
            offset = int((time.monotonic() - started) * 2)  # a byte every half second
            for number, sock in enumerate(trickled):
                if number in closed:
                    continue
                if _closed_by_peer(sock):
                    closed[number] = time.monotonic() - started
                    continue
                try:
                    sock.send(request[offset:offset + 1])
                except OSError:
                    closed[number] = time.monotonic() - started
            time.sleep(0.1)
        with server.client() as client:  # the server answered others all along
            assert client.get("/stats").status_code == 200
        open_before = not _closed_by_peer(idle)
        time.sleep(max(0.0, idle_since + 6 - time.monotonic()))
        idle_closed = _closed_by_peer(idle)  # keep-alive: 5 s
    finally:
        server.stop()
    assert len(closed) == len(trickled), f"{len(trickled) - len(closed)} slow connections still open after 8 s"
    assert max(closed.values()) < 4.5, f"closed after {max(closed.values()):.1f} s (header timeout 2 s)"
    assert open_before and idle_closed, "an idle keep-alive connection is kept 5 s, not less, not more"


def test_half_open_connections_and_few_file_descriptors(index, tmp_path):
    """The issue: with 256 open files, 300 half-open connections made an authorised
    GET /stats time out, and wrote 118 MB of tracebacks to the log in 20 s."""
    log = tmp_path / "server.log"
    server = ServerProcess(index, log=log, token=TOKEN, open_files=256)
    head = _head(server, "GET", "/stats", f"Authorization: Bearer {TOKEN}")[:-2]  # never finished
    attackers = []
    try:
        for _ in range(300):
            try:
                sock = _connect(server, timeout=2.0)
                sock.sendall(head)
                attackers.append(sock)
            except OSError:
                pass
        started = time.monotonic()
        with server.client(timeout=15) as client:
            reply = client.get("/stats")
        answered = time.monotonic() - started
        time.sleep(2)  # what a flood of accept errors would write meanwhile
    finally:
        for sock in attackers:
            sock.close()
        server.stop()
    assert reply.status_code == 200 and reply.json()["videos"] == 3
    assert answered < 5, f"GET /stats took {answered:.1f} s"
    text = log.read_text()
    assert len(text) < 4096 and "Traceback" not in text, text[-2000:]


def test_an_upload_is_written_once_into_the_upload_folder(index, clips, tmp_path):
    spool, uploads = tmp_path / "spool", tmp_path / "uploads"
    spool.mkdir()
    uploads.mkdir()
    server = ServerProcess(index, "--upload-dir", str(uploads), log=tmp_path / "server.log", token=TOKEN,
                           env={"TMPDIR": str(spool)})
    data = clips["exact"][0].read_bytes()
    part = b'--B\r\nContent-Disposition: form-data; name="clip"; filename="exact.mp4"\r\n\r\n'
    end = b"\r\n--B--\r\n"
    half = len(data) // 2
    try:
        with _connect(server, timeout=60) as sock:
            sock.sendall(_head(server, "POST", "/query", f"Authorization: Bearer {TOKEN}",
                               "Content-Type: multipart/form-data; boundary=B",
                               f"Content-Length: {len(part) + len(data) + len(end)}") + part + data[:half])
            deadline = time.monotonic() + 10
            while True:  # the half sent so far, in one named file of the server's folder
                files = {f: f.stat().st_size for f in uploads.rglob("*") if f.is_file()}
                if any(size >= half - 256 for size in files.values()) or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            held = _files_held(server.pid, spool, uploads)
            spooled = _files_held(server.pid, spool)
            sock.sendall(data[half:] + end)
            reply = b""
            while b'"hits"' not in reply and (chunk := sock.recv(65536)):
                reply += chunk
        deadline = time.monotonic() + 5
        while (left := [f for f in uploads.rglob("*") if f.is_file()]) and time.monotonic() < deadline:
            time.sleep(0.05)  # deleted as the request ends, just after its answer
    finally:
        server.stop()
    assert len(files) == 1 and all(f.suffix == ".mp4" and size >= half - 256 for f, size in files.items()), files
    assert spooled == 0 and held < half + 4096, (spooled, held)  # one copy, nothing in the temporary folder
    assert reply.startswith(b"HTTP/1.1 200") and b"lib 12.mp4" in reply, reply[:300]
    assert not left, "the upload outlived its request"


def test_upload_folders_of_killed_servers_are_removed(index, tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    legacy = uploads / "vsearch-serve-abc123"  # an older vsearch's name, unused for an hour
    legacy.mkdir()
    os.utime(legacy, (time.time() - 3600, time.time() - 3600))
    recent = uploads / "vsearch-serve-def456"  # an older vsearch's, maybe still running
    recent.mkdir()
    killed = ServerProcess(index, "--upload-dir", str(uploads), log=tmp_path / "server.log")
    killed.kill()
    left = {p.name for p in uploads.iterdir()}
    assert any(name.startswith(f"vsearch-serve-{killed.pid}-") for name in left), left
    running = ServerProcess(index, "--upload-dir", str(uploads), log=tmp_path / "server.log")
    try:
        after = {p.name for p in uploads.iterdir()}
        third = ServerProcess(index, "--upload-dir", str(uploads), log=tmp_path / "server.log")
        third.stop()
        with_both = {p.name for p in uploads.iterdir()}
    finally:
        running.stop()
    ours = {name for name in after if name.startswith(f"vsearch-serve-{running.pid}-")}
    assert after == ours | {"vsearch-serve-def456"}, after  # the killed one's and the legacy one are gone
    assert with_both == after, "a running server's folder was taken for a stale one"
    assert {p.name for p in uploads.iterdir()} == {"vsearch-serve-def456"}


def test_a_port_in_use_is_one_line_and_exit_1(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_cli("serve", "--index", str(tmp_path / "ix"), "--port", str(port))
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"vsearch: error: cannot listen on 127.0.0.1:{port} (Address already in use)"]
    assert not (tmp_path / "ix").exists()


def _loopback_name() -> str | None:
    """This machine's name, if it resolves to loopback only."""
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None)}
    except OSError:
        return None
    return name if addresses and all(a.startswith("127.") or a == "::1" for a in addresses) else None


@pytest.mark.parametrize("host", ["127.0.0.2", "name"])
def test_other_loopback_addresses_and_names_answer(index, tmp_path, host):
    if host == "name":
        host = _loopback_name() or pytest.skip("this machine's name does not resolve to loopback")
    server = ServerProcess(index, log=tmp_path / "server.log", host=host)
    try:
        with server.client() as client:
            assert client.get("/stats").status_code == 200  # Host: HOST:PORT
            assert client.get("/stats", headers={"Host": f"localhost:{server.port}"}).status_code == 200
            assert client.get("/stats", headers={"Host": "attacker.example"}).status_code == 400
    finally:
        server.stop()

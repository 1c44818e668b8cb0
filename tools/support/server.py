"""A ``vsearch serve`` child process on a free loopback port, for the tests and bench_serve."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .processes import children, cpu_seconds, decoder_children, peak_rss

ROOT = Path(__file__).resolve().parents[2]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``python -m vsearch serve`` in a child process, as a user starts it.

    ``host``: where it listens (and is reached); ``env``: more environment variables;
    ``open_files``: its limit of open files (soft and hard), as ``ulimit -n`` would set;
    ``engine``: the checkout whose vsearch runs (this one by default; a benchmark's
    baseline commit, see :mod:`.engines`).
    """

    def __init__(self, index: Path, *args: str, log: Path, token: str | None = None, host: str = "127.0.0.1",
                 env: dict[str, str] | None = None, open_files: int | None = None, engine: Path = ROOT) -> None:
        self.index, self.token, self.log, self.host = index, token, log, host
        environment = dict(os.environ)
        environment.pop("VSEARCH_TOKEN", None)
        if token:
            environment["VSEARCH_TOKEN"] = token
        environment.update(env or {})

        def limit_open_files() -> None:
            if open_files is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

        for _ in range(3):  # a free port may be taken between the probe and the bind
            self.port = free_port(host if host[0].isdigit() else "127.0.0.1")
            self.url = f"http://{host}:{self.port}"
            with open(log, "ab") as err:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "vsearch", "serve", "--index", str(index), "--host", host,
                     "--port", str(self.port), *args],
                    cwd=engine, env=environment, stdout=subprocess.DEVNULL, stderr=err, preexec_fn=limit_open_files,
                )
            if self._wait_ready():
                return
        raise AssertionError(f"the server did not start:\n{log.read_text()}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait_ready(self, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return True
            except httpx.TransportError:
                time.sleep(0.1)
        self.kill()
        return False

    def client(self, *, token: str | None = None, timeout: float = 120.0) -> "httpx.Client":
        token = self.token if token is None else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def peak_rss(self) -> int:
        """Bytes: the server's peak resident memory plus its decoder processes' peaks."""
        return sum(peak_rss(pid) for pid in [self.pid, *children(self.pid)])

    def cpu_seconds(self) -> float:
        """CPU seconds the server and its decoder processes have used so far."""
        return cpu_seconds(self.pid)

    def decoders(self) -> set[int]:
        """The server's live decoder processes."""
        return decoder_children(self.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def wait_job(client: "httpx.Client", job_id: str, timeout: float = 120.0) -> dict:
    """Poll a job until it ends; returns its last state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s")

"""A ``vsearch serve`` child process on a free loopback port, for the tests and bench_serve."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``python -m vsearch serve`` in a child process, as a user starts it."""

    def __init__(self, index: Path, *args: str, log: Path, token: str | None = None) -> None:
        self.index, self.token, self.log = index, token, log
        env = dict(os.environ)
        env.pop("VSEARCH_TOKEN", None)
        if token:
            env["VSEARCH_TOKEN"] = token
        for _ in range(3):  # a free port may be taken between the probe and the bind
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            with open(log, "ab") as err:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "vsearch", "serve", "--index", str(index), "--port", str(self.port), *args],
                    cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err,
                )
            if self._wait_ready():
                return
        raise AssertionError(f"the server did not start:\n{log.read_text()}")

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

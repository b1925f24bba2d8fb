"""Real ``restpredict serve`` processes on free loopback ports."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx


def free_port() -> int:
    """A loopback port nobody is listening on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """A real ``restpredict serve`` subprocess on a loopback port."""

    url: str
    process: subprocess.Popen[str]

    def output(self) -> str:
        self.stop()
        assert self.process.stdout is not None
        return self.process.stdout.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_ready(url: str, process: subprocess.Popen[str], timeout: float = 60.0) -> None:
    """Until ``/health/ready`` answers 200; fails with the server's output if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"server exited with {process.returncode}:\n{output}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"server at {url} not ready after {timeout} s")


def start_server(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
    """``python -m restpredict serve ARGS --port P``, once it is ready."""
    port = free_port()
    command = [sys.executable, "-m", "restpredict", "serve", *args, "--port", str(port)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )
    server = ServerProcess(url=f"http://127.0.0.1:{port}", process=process)
    try:
        wait_ready(server.url, process)
    except BaseException:
        close(server)
        raise
    return server


def close(server: ServerProcess) -> None:
    """Stop the server and close its output pipe."""
    server.stop()
    if server.process.stdout is not None:
        server.process.stdout.close()


@contextlib.contextmanager
def running_server(*args: str) -> Iterator[str]:
    """``restpredict serve ARGS`` for a whole module (``serve`` starts one per test); its URL."""
    port = free_port()
    command = [sys.executable, "-m", "restpredict", "serve", *args, "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    server = ServerProcess(url=f"http://127.0.0.1:{port}", process=process)
    try:
        wait_ready(server.url, process)
        yield server.url
    finally:
        close(server)

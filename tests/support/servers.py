"""Real ``restpredict serve`` processes on free loopback ports.

A server's stdout and stderr go to a log file, never to a pipe: a pipe that nobody reads while
the test runs fills at 64 KiB, and the server then blocks on its next log line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    """A loopback port nobody is listening on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """A real ``restpredict serve`` subprocess on a loopback port, logging to ``log``."""

    url: str
    process: subprocess.Popen[str]
    log: Path

    def logged(self) -> str:
        """What the server has written so far (stdout and stderr, interleaved)."""
        return self.log.read_text(errors="replace")

    def output(self) -> str:
        """Everything the server wrote, once it has stopped."""
        self.stop()
        return self.logged()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def spawn(
    command: Sequence[str],
    url: str,
    *,
    env: Mapping[str, str] | None = None,
    log: Path | None = None,
) -> ServerProcess:
    """Start ``command`` with its output in ``log`` (a new temporary file if not given)."""
    if log is None:
        handle, name = tempfile.mkstemp(prefix="restpredict-test-server-", suffix=".log")
        os.close(handle)
        log = Path(name)
    with log.open("w") as out:  # the child has its own copy of the descriptor
        process = subprocess.Popen(
            list(command), stdout=out, stderr=subprocess.STDOUT, text=True, env=env
        )
    return ServerProcess(url=url, process=process, log=log)


def wait_ready(
    server: ServerProcess, timeout: float = 60.0, verify: ssl.SSLContext | bool = True
) -> None:
    """Until ``/health/ready`` answers 200; fails with the server's output if it exits.

    ``verify``: the client's TLS context, for an ``https://`` server.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            code = server.process.returncode
            raise AssertionError(f"server exited with {code}:\n{server.logged()}")
        with contextlib.suppress(httpx.TransportError):
            answer = httpx.get(f"{server.url}/health/ready", timeout=2, verify=verify)
            if answer.status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"server at {server.url} not ready after {timeout} s:\n{server.logged()}")


def start_server(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
    """``python -m restpredict serve ARGS --port P``, once it is ready."""
    port = free_port()
    command = [sys.executable, "-m", "restpredict", "serve", *args, "--port", str(port)]
    environment = {**os.environ, "COLUMNS": "200", **(env or {})}
    server = spawn(command, f"http://127.0.0.1:{port}", env=environment)
    try:
        wait_ready(server)
    except BaseException:
        close(server)
        raise
    return server


def close(server: ServerProcess) -> None:
    """Stop the server and remove its log."""
    server.stop()
    server.log.unlink(missing_ok=True)


@contextlib.contextmanager
def running_server(*args: str) -> Iterator[str]:
    """``restpredict serve ARGS`` for a whole module (``serve`` starts one per test); its URL."""
    server = start_server(*args)
    try:
        yield server.url
    finally:
        close(server)

"""Real servers for source tests, on loopback: moto's S3 and a small HTTP server with ETags."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from tests.support.servers import free_port


@contextlib.contextmanager
def moto_server(*, auth: bool = False) -> Iterator[str]:
    """``moto_server`` in a subprocess; yields its endpoint URL. ``auth``: keys are checked."""
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    if auth:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    executable = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    assert executable is not None
    process = subprocess.Popen(
        [executable, "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/moto-api/", timeout=2).status_code < 500:
                    break
            assert process.poll() is None, "moto_server exited"
            assert time.monotonic() < deadline, "moto_server did not start"
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass
class Served:
    """What the HTTP server serves, and how often each path was downloaded."""

    files: dict[str, bytes] = field(default_factory=dict)
    truncated: set[str] = field(default_factory=set)
    denied: set[str] = field(default_factory=set)
    gets: dict[str, int] = field(default_factory=dict)
    requests: int = 0  # every request, HEAD and 304s included


class _Handler(BaseHTTPRequestHandler):
    served: Served

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, *, body: bool) -> None:
        path = self.path.split("?", 1)[0]
        self.served.requests += 1
        if path in self.served.denied:
            self.send_error(403)
            return
        data = self.served.files.get(path)
        if data is None:
            self.send_error(404)
            return
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", etag)
        self.end_headers()
        if not body:
            return
        self.served.gets[path] = self.served.gets.get(path, 0) + 1
        if path in self.served.truncated:
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(data)


@contextlib.contextmanager
def http_server(served: Served) -> Iterator[str]:
    """A threaded stdlib HTTP server with ETags, 403s and truncated answers on request."""
    handler = type("Handler", (_Handler,), {"served": served})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

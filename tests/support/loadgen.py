"""Steady client load for lifecycle tests: every request's outcome is classified."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Load:
    """``threads`` clients POSTing predictions back to back until stopped.

    A request the server never accepted (connection refused) is counted apart; any
    other outcome than a 200 with predictions is a failure, recorded with its reason.
    """

    url: str
    threads: int = 4
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = field(default_factory=lambda: {"features": [5.1, 3.5, 1.4, 0.2]})
    ok: int = 0
    refused: int = 0
    failures: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)  # X-Model-SHA256 of each success, in order
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        for _ in range(self.threads):
            worker = threading.Thread(target=self._run, daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=60)

    def wait_for(self, *, ok: int = 0, refused: int = 0, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.ok < ok or self.refused < refused:
            assert time.monotonic() < deadline, f"load stalled: {self.summary()}"
            assert not self.failures, self.summary()
            time.sleep(0.05)

    def wait_for_model(self, sha256: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not self.models or self.models[-1] != sha256:
            assert time.monotonic() < deadline, f"model {sha256} never served: {self.summary()}"
            time.sleep(0.05)

    def summary(self) -> str:
        return f"ok={self.ok} refused={self.refused} failures={self.failures[:5]}"

    def _run(self) -> None:
        with httpx.Client(timeout=60, headers=self.headers) as client:
            while not self._stop.is_set():
                self._one(client)

    def _one(self, client: httpx.Client) -> None:
        try:
            response = client.post(f"{self.url}/predict", json=self.body)
        except httpx.ConnectError:
            with self._lock:
                self.refused += 1
            time.sleep(0.02)
            return
        except httpx.HTTPError as exc:
            with self._lock:
                self.failures.append(f"{type(exc).__name__}: {exc}")
            return
        with self._lock:
            if response.status_code == 200 and "predictions" in response.json():
                self.ok += 1
                self.models.append(response.headers.get("x-model-sha256", ""))
            else:
                self.failures.append(f"{response.status_code}: {response.text[:200]}")

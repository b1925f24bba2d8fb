"""Overload is decided by how long requests wait, not by a count of clients."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import joblib
import pytest

from tests.support.servers import ServerProcess

from .hostile_models import Steady
from .servers import PYTHONPATH

pytestmark = pytest.mark.adversarial


def _clients(
    url: str, count: int, seconds: float, width: int = 2
) -> tuple[Counter[int], list[float]]:
    """``count`` keep-alive clients, each posting in a loop for ``seconds``; statuses and the
    latency of each 503."""
    statuses: Counter[int] = Counter()
    refusal_latency: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def one(i: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while time.monotonic() < stop:
                started = time.monotonic()
                answer = client.post("/predict", json={"features": [i] + [0] * (width - 1)})
                with lock:
                    statuses[answer.status_code] += 1
                    if answer.status_code == 503:
                        assert answer.headers["retry-after"]
                        refusal_latency.append(time.monotonic() - started)
                        time.sleep(0.05)  # well-behaved enough not to spin

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 60)
    return statuses, refusal_latency


def test_64_well_behaved_clients_get_no_503(serve: Callable[..., ServerProcess]) -> None:
    server = serve("--log-level", "warning")  # the demo: fast
    statuses, _ = _clients(server.url, 64, 4, width=4)
    assert set(statuses) == {200}, statuses


def test_10x_overload_is_refused_fast_while_admitted_requests_are_answered(
    serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """Two requests per 50 ms call: ~40 req/s of capacity; 24 clients keep ~12 calls queued."""
    path = tmp_path / "steady.joblib"
    joblib.dump(Steady(0.05).fit(), path)
    server = serve(str(path), "--max-batch-size", "2", "--log-level", "warning", env=PYTHONPATH)
    statuses, refusals = _clients(server.url, 24, 5)
    assert statuses[200] > 20 and statuses[503] > 0, statuses
    assert set(statuses) <= {200, 503}, statuses
    refusals.sort()
    assert refusals[len(refusals) // 2] < 1.0  # refused at once, not after queueing
    started = time.monotonic()
    assert httpx.get(f"{server.url}/health/live", timeout=10).status_code == 200
    assert time.monotonic() - started < 2.0

"""Overload is decided by how long requests wait, not by a count of clients."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import joblib
import pytest

from tests.routes.test_core import problem
from tests.support.servers import ServerProcess

from .hostile_models import SLOW_VALUE, SlowOnOne, Steady
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


def _logged_when(server: ServerProcess, done: Callable[[str], bool], timeout: float) -> str:
    """The server's log once ``done(log)`` holds, or when ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    log = server.logged()
    while not done(log) and time.monotonic() < deadline:
        time.sleep(0.05)
        log = server.logged()
    return log


def _requests_total(url: str, status: str) -> float:
    """``restpredict_requests_total`` of POST /predict answered with ``status``."""
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        labels = ('route="/predict"', 'method="POST"', f'status="{status}"')
        if line.startswith("restpredict_requests_total{") and all(x in line for x in labels):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_refusals_are_answered_by_the_server_counted_and_logged_in_aggregate(
    serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """A request that holds the one slot for seconds: every other prediction is refused before
    the app (no access line each), as problem+json with Retry-After, and counted in /metrics."""
    path = tmp_path / "slow.joblib"
    joblib.dump(SlowOnOne(delay=10.0).fit(), path)
    env = {**PYTHONPATH, "RESTPREDICT_RETRY_AFTER": "3"}
    server = serve(str(path), "--max-concurrency", "1", env=env)
    stuck = threading.Thread(
        target=httpx.post,
        args=(f"{server.url}/predict",),
        kwargs={"json": {"features": [SLOW_VALUE, 0]}, "timeout": 60},
        daemon=True,
    )
    stuck.start()
    deadline = time.monotonic() + 30
    while "restpredict_requests_in_flight 2.0" not in httpx.get(f"{server.url}/metrics").text:
        assert time.monotonic() < deadline, "the slow request never came in"  # (+ the scrape)
    with httpx.Client(base_url=server.url, timeout=30) as client:  # keep-alive, as under load
        for _ in range(20):
            refused = client.post("/predict", json={"features": [1, 0]})
            body = problem(refused, 503, "overloaded")
            assert refused.headers["retry-after"] == "3"
            assert "limit is 1" in body["detail"]
            assert refused.headers["x-request-id"]
        assert client.get("/health/live").status_code == 200  # exempt, on the same connection
    # Two refusals pipelined in one write: the first is the server's, the second (behind it)
    # the app's; both answered, in order, on the kept-alive connection.
    body = b'{"features": [1, 0]}'
    request = (
        b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"X-Request-ID: pipelined-%d\r\nContent-Length: %d\r\n\r\n%s"
    )
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request % (1, len(body), body) + request % (2, len(body), body))
        answers = b""
        while answers.count(b"HTTP/1.1 503") < 2 or not answers.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, answers
            answers += chunk
    assert answers.index(b"x-request-id: pipelined-1") < answers.index(b"pipelined-2")
    assert _requests_total(server.url, "503") == 22
    log = _logged_when(server, lambda log: _refusals_logged(log) >= 21, 30)
    assert _refusals_logged(log) == 21, log
    access = [line for line in log.splitlines() if '"status":503' in line]
    assert len(access) == 1 and "pipelined-2" in access[0]  # only the app's refusal has one


def _refusals_logged(log: str) -> int:
    """The refusals the server's summary warnings count."""
    summaries = [line for line in log.splitlines() if "requests refused with 503" in line]
    return sum(int(line.split("overloaded: ")[1].split()[0]) for line in summaries)

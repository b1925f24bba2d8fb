"""Overload is decided by how long requests wait, not by a count of clients."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import httpx
import joblib
import pytest

from tests.routes.test_core import problem
from tests.support.servers import ServerProcess

from .hostile_models import SLOW_VALUE, SlowOnOne, Steady
from .servers import PYTHONPATH

pytestmark = pytest.mark.adversarial


class _Answer(NamedTuple):
    """What one client saw: the row it sent, the status, the headers and the body."""

    feature: int
    status: int
    headers: httpx.Headers
    body: bytes


def _clients(
    url: str, count: int, seconds: float, width: int = 2, during: Callable[[], None] | None = None
) -> list[_Answer]:
    """``count`` keep-alive clients, each posting its own row in a loop for ``seconds`` (after
    a 503, they wait 50 ms: well-behaved enough not to spin); every answer. ``during`` runs
    once while they do, when all of them have had an answer."""
    answers: list[_Answer] = []
    lock = threading.Lock()
    stop = threading.Event()
    answered: set[int] = set()

    def one(i: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            while not stop.is_set():
                answer = client.post("/predict", json={"features": [i] + [0] * (width - 1)})
                with lock:
                    answers.append(_Answer(i, answer.status_code, answer.headers, answer.content))
                    answered.add(i)
                if answer.status_code == 503:
                    stop.wait(0.05)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    try:
        if during is not None:
            deadline = time.monotonic() + 60
            while len(answered) < count and time.monotonic() < deadline:
                stop.wait(0.05)
            during()
        stop.wait(seconds)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    return answers


def test_64_well_behaved_clients_get_no_503(serve: Callable[..., ServerProcess]) -> None:
    server = serve("--log-level", "warning")  # the demo: fast
    answers = _clients(server.url, 64, 4, width=4)
    assert Counter(answer.status for answer in answers).keys() == {200}


def test_10x_overload_is_refused_while_admitted_requests_get_the_models_answers(
    serve: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    """Two requests per 50 ms call: ~40 req/s of capacity, against 24 clients that come back
    50 ms after a refusal. Every answer is the model's own or a 503 that says when to come
    back; the server stays live; each answer is counted once in /metrics; and refusals are
    made before the app (the protocol's summary line counts them) rather than after queueing."""
    path = tmp_path / "steady.joblib"
    joblib.dump(Steady(0.05).fit(), path)
    server = serve(str(path), "--max-batch-size", "2", "--log-level", "warning", env=PYTHONPATH)
    live: list[int] = []

    def probe() -> None:  # while every client is busy
        live.append(httpx.get(f"{server.url}/health/live", timeout=60).status_code)

    answers = _clients(server.url, 24, 4, during=probe)
    assert live == [200]
    statuses = Counter(answer.status for answer in answers)
    assert statuses.keys() == {200, 503}, statuses
    for answer in answers:
        if answer.status == 200:  # Steady predicts a row's first feature: the client's own
            assert json.loads(answer.body) == {"predictions": [float(answer.feature)]}
            continue
        assert answer.headers["retry-after"] == "1"
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["x-request-id"]
        body = json.loads(answer.body)
        assert body["status"] == 503 and body["code"] == "overloaded", body
        assert body["type"] == "urn:restpredict:problem:overloaded"
        assert "queueing-delay target" in body["detail"]
    # Every answer counted once, by status (the server counts a request once it has answered).
    counted = _counted_when(server.url, {"200": statuses[200], "503": statuses[503]}, 30)
    assert counted == {"200": statuses[200], "503": statuses[503]}
    log = _logged_when(server, lambda log: _refusals_logged(log) > 0, 30)
    assert 0 < _refusals_logged(log) <= statuses[503], log


def _counted_when(url: str, expected: dict[str, int], timeout: float) -> dict[str, int]:
    """POST /predict's ``restpredict_requests_total`` by status, once equal to ``expected``
    or when ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    while True:
        counted = {status: int(_requests_total(url, status)) for status in expected}
        if counted == expected or time.monotonic() > deadline:
            return counted
        time.sleep(0.05)


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

"""A request whose client left while it waited for the model stops counting, and its rows
never reach the model."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import joblib
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.servers import ServerProcess

from .hostile_models import SLOW_VALUE, SlowOnOne
from .servers import PYTHONPATH

pytestmark = pytest.mark.adversarial

LEAVERS = 20
LEAVER_ROWS = 5  # each: a row count no other request of the test has


def _metrics(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{url}/metrics").text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _metric(url: str, name: str) -> float:
    """One unlabelled sample (0 until it appears)."""
    return _metrics(url).get((name, frozenset()), 0.0)


def _predict_statuses(
    metrics: dict[tuple[str, frozenset[tuple[str, str]]], float],
) -> dict[str, float]:
    return {
        dict(labels)["status"]: value
        for (name, labels), value in metrics.items()
        if name == "restpredict_requests_total" and dict(labels).get("route") == "/predict"
    }


def _send_and_stay(url: str, rows: int) -> socket.socket:
    """A POST /predict sent whole on a connection that is then left open, unread."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"features": [[1.0, 0.0]] * rows}).encode()
    head = (
        f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection((host, int(port)))
    sock.sendall(head + body)
    return sock


def _eventually(check: Callable[[], bool], seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


@pytest.mark.parametrize("http", ["httptools", "h11"])
def test_queued_requests_of_clients_that_left_are_dropped_before_the_model(
    serve: Callable[..., ServerProcess], tmp_path: Path, http: str
) -> None:
    path = tmp_path / "slow.joblib"
    joblib.dump(SlowOnOne(delay=3.0).fit(), path)
    server = serve(str(path), "--http", http, "--prediction-timeout", "30", env=PYTHONPATH)
    with ThreadPoolExecutor(1) as pool:
        # One request holds the model for 3 s; everything after it queues.
        held = pool.submit(
            httpx.post, f"{server.url}/predict", json={"features": [SLOW_VALUE, 0]}, timeout=30
        )
        # Conditions, not sleeps: the held call has started (its batch was counted) before the
        # leavers arrive, and every leaver's request has reached the app (in flight: the held
        # one, the leavers and the scrape asking) before they leave. A leaver closed before its
        # request was read would be an answered request followed by an end of stream, which
        # the server may answer (h11 does) rather than count as a client that left.
        assert _eventually(lambda: _metric(server.url, "restpredict_batch_size_count") == 1)
        leavers = [_send_and_stay(server.url, LEAVER_ROWS) for _ in range(LEAVERS)]
        assert _eventually(
            lambda: _metric(server.url, "restpredict_requests_in_flight") == LEAVERS + 2
        ), _metric(server.url, "restpredict_requests_in_flight")
        for sock in leavers:
            sock.close()
        # They end at once, as 499s, and no longer count as in flight: the held request
        # and this scrape are what is left.
        assert _eventually(lambda: _predict_statuses(_metrics(server.url)).get("499") == LEAVERS), (
            _predict_statuses(_metrics(server.url))
        )
        assert _metrics(server.url)[("restpredict_requests_in_flight", frozenset())] == 2
        assert held.result().json() == {"predictions": [SLOW_VALUE]}
    # Clients that stayed are served as before.
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for value in range(3):
            answer = client.post("/predict", json={"features": [[value, 0], [value, 1]]})
            assert answer.json() == {"predictions": [value, value]}
    metrics = _metrics(server.url)
    # Every row the model saw: the held one and the stayers' 2 x 3; none of the leavers' 100.
    assert metrics[("restpredict_batch_size_sum", frozenset())] == 1 + 2 * 3
    assert _predict_statuses(metrics) == {"200": 4, "499": LEAVERS}
    assert "Traceback" not in server.output()

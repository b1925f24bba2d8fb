"""Metrics and access logs of real server processes, one worker and several."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.observability.test_metrics import ROWS, Samples
from tests.support.servers import ServerProcess


def scrape(url: str) -> Samples:
    """Every sample of one scrape, keyed by sample name and labels."""
    response = httpx.get(f"{url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def labelled(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for sample, labels in samples if sample == name]


def access_lines(output: str) -> list[dict[str, Any]]:
    """The JSON access log lines among the server's output (the startup panel is not JSON)."""
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [line for line in lines if line["logger"] == "restpredict.access"]


def send_traffic(url: str, n: int, tag: str) -> list[str]:
    """``n`` predictions of 1..3 rows, each on a new connection; returns their request ids."""
    ids = []
    for i in range(n):
        request_id = f"{tag}-{i}"
        rows = ROWS[: i % 3 + 1]
        response = httpx.post(
            f"{url}/predict", json={"features": rows}, headers={"X-Request-ID": request_id}
        )
        assert response.status_code == 200, response.text
        assert response.headers["x-request-id"] == request_id
        ids.append(request_id)
    return ids


def rows_sent(n: int) -> int:
    return sum(i % 3 + 1 for i in range(n))


def test_one_worker_counts_traffic_and_logs_it(
    serve: Callable[..., ServerProcess], iris_path: Path
) -> None:
    server = serve(str(iris_path))
    ids = send_traffic(server.url, 7, "one")
    bad = httpx.post(f"{server.url}/predict", json={"features": [1, 2]})
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert httpx.get(f"{server.url}/no/such/path").status_code == 404
    samples = scrape(server.url)

    total = "restpredict_requests_total"
    assert value(samples, total, route="/predict", method="POST", status="200") == 7
    assert value(samples, total, route="/predict", method="POST", status="422") == 1
    assert value(samples, total, route="<unmatched>", method="GET", status="404") == 1
    assert not [s for s in labelled(samples, total) if "/no/such/path" in s.values()]
    duration = "restpredict_request_duration_seconds"
    assert value(samples, f"{duration}_count", route="/predict", method="POST") == 8
    assert value(samples, f"{duration}_sum", route="/predict", method="POST") > 0
    # The bad body was decoded (and refused) but never reached the model.
    assert value(samples, "restpredict_decode_duration_seconds_count", route="/predict") == 8
    assert value(samples, "restpredict_predict_duration_seconds_count", route="/predict") == 7
    assert value(samples, "restpredict_request_rows_count", route="/predict") == 7
    assert value(samples, "restpredict_request_rows_sum", route="/predict") == rows_sent(7)
    assert value(samples, "restpredict_request_rows_bucket", route="/predict", le="1.0") == 3
    assert value(samples, "restpredict_requests_in_flight") == 1  # this scrape
    assert value(samples, "restpredict_model_load_seconds") > 0
    (info,) = labelled(samples, "restpredict_model_info")
    assert info["sha256"] == hashlib.sha256(iris_path.read_bytes()).hexdigest()
    assert info["name"] == "iris"
    assert info["sklearn_version"] and info["sklearn_version_trained"]

    log = access_lines(server.output())
    predictions = [line for line in log if line["path"] == "/predict" and line["status"] == 200]
    assert [line["request_id"] for line in predictions] == ids
    assert [line["rows"] for line in predictions] == [i % 3 + 1 for i in range(7)]
    first = predictions[0]
    assert set(first) >= {"method", "path", "status", "latency_ms", "rows", "request_id", "client"}
    assert first["method"] == "POST" and first["latency_ms"] > 0
    assert first["client"].startswith("127.0.0.1:")
    refused = next(line for line in log if line["status"] == 422)
    assert refused["rows"] is None and len(refused["request_id"]) == 32


def test_two_workers_merge_their_metrics_and_forget_dead_ones(
    serve: Callable[..., ServerProcess], iris_path: Path
) -> None:
    server = serve(str(iris_path), "--workers", "2")
    pids = wait_for_workers(server.url, 2)
    # Pause one worker at a time, so each one certainly serves its share of the traffic.
    served: dict[str, list[str]] = {}
    for paused, working in (pids, pids[::-1]):
        os.kill(int(paused), signal.SIGSTOP)
        try:
            served[working] = send_traffic(server.url, 5, f"pid{working}")
        finally:
            os.kill(int(paused), signal.SIGCONT)

    # A worker counts a request just after its last byte is sent, so the other worker's scrape
    # may run a moment ahead of it: wait for the count once, then it must hold on every worker.
    samples = wait_for(server.url, lambda s: answered(s) >= 10)
    for _ in range(4):  # any worker answers a scrape; each must merge both workers' files
        assert answered(samples) == 10
        assert value(samples, "restpredict_request_rows_sum", route="/predict") == 2 * rows_sent(5)
        assert 1 <= value(samples, "restpredict_requests_in_flight") <= 2  # the scrape itself
        (info,) = labelled(samples, "restpredict_model_info")
        assert info["sha256"] == hashlib.sha256(iris_path.read_bytes()).hexdigest()
        samples = scrape(server.url)

    # The supervisor loads the model once; every worker, a replacement too, is started with it.
    loaded = load_seconds(samples)
    assert sorted(loaded) == pids and len(set(loaded.values())) == 1 and loaded[pids[0]] > 0
    help_line = next(
        line
        for line in httpx.get(f"{server.url}/metrics").text.splitlines()
        if line.startswith("# HELP restpredict_model_load_seconds ")
    )
    assert "one series per live worker (pid), each the supervisor's one load" in help_line

    os.kill(int(pids[0]), signal.SIGKILL)
    survivors = wait_for_workers(server.url, 2, without=pids[0])
    assert pids[0] not in survivors and pids[1] in survivors
    samples = scrape(server.url)
    assert answered(samples) == 10  # a dead worker's counts are kept
    assert set(load_seconds(samples).values()) == set(loaded.values())

    log = access_lines(server.output())
    for pid, ids in served.items():
        mine = [line["request_id"] for line in log if line["pid"] == int(pid)]
        assert set(ids) <= set(mine)


def load_seconds(samples: Samples) -> dict[str, float]:
    """Each live worker's model-load gauge, by pid."""
    return {
        dict(labels)["pid"]: v
        for (name, labels), v in samples.items()
        if name == "restpredict_model_load_seconds"
    }


def answered(samples: Samples) -> float:
    """Successful /predict requests, summed over workers."""
    total = "restpredict_requests_total"
    return value(samples, total, route="/predict", method="POST", status="200")


def wait_for(url: str, condition: Callable[[Samples], bool], timeout: float = 10) -> Samples:
    """The first scrape that satisfies ``condition``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        samples = scrape(url)
        if condition(samples):
            return samples
        time.sleep(0.05)
    raise AssertionError(f"no scrape satisfied the condition within {timeout} s:\n{samples}")


def wait_for_workers(
    url: str, n: int, without: str | None = None, timeout: float = 90
) -> list[str]:
    """The pids of ``n`` live workers, as their model-load gauges report them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            samples = scrape(url)
        except httpx.TransportError:
            samples = {}
        pids = sorted(s["pid"] for s in labelled(samples, "restpredict_model_load_seconds"))
        if len(pids) == n and without not in pids:
            return pids
        time.sleep(0.2)
    raise AssertionError(f"{n} workers (without {without}) not seen after {timeout} s")


@pytest.mark.parametrize(
    ("args", "expect_access"),
    [
        pytest.param(["--log-format", "text"], True, id="text"),
        pytest.param(["--log-level", "warning"], False, id="warning-level"),
        pytest.param(["--no-access-log"], False, id="no-access-log"),
    ],
)
def test_log_flags(
    serve: Callable[..., ServerProcess], iris_path: Path, args: list[str], expect_access: bool
) -> None:
    server = serve(str(iris_path), *args)
    response = httpx.post(
        f"{server.url}/predict?token=query-secret",
        json={"features": ROWS[0]},
        headers={"X-Request-ID": "flag-test", "Authorization": "Bearer header-secret"},
    )
    assert response.status_code == 200
    output = server.output()
    assert "secret" not in output
    assert ("flag-test" in output) is expect_access
    if args[-1] == "text":
        line = next(line for line in output.splitlines() if "flag-test" in line)
        assert '"POST /predict" 200' in line and "rows=1" in line
        assert not any(line.startswith("{") for line in output.splitlines())
    if args[-1] == "warning":
        assert "Application startup complete" not in output

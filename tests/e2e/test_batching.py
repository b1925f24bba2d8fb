"""Micro-batching in a real server process: concurrent clients, each answered its own."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from restpredict.model.loading import LoadedModel
from tests.asgi.test_batching import REPO
from tests.support.estimators import BatchEcho
from tests.support.servers import ServerProcess


@pytest.fixture(scope="module")
def echo_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("echo") / "echo.joblib"
    joblib.dump(BatchEcho(delay=0.2).fit(), path)
    return path


def serve_echo(serve: Callable[..., ServerProcess], path: Path, *args: str) -> ServerProcess:
    # PYTHONPATH: the server unpickles tests.support.estimators.
    return serve(str(path), *args, env={"PYTHONPATH": str(REPO)})


def post_all(url: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """POST every body at once, one thread and connection each."""
    with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda b: httpx.post(f"{url}/predict", json=b, timeout=60), bodies))


def test_server_batches_concurrent_requests_and_a_bad_row_fails_alone(
    serve: Callable[..., ServerProcess], echo_path: Path
) -> None:
    server = serve_echo(serve, echo_path)
    answers = [r.json()["predictions"][0] for r in post_all(server.url, _echo_bodies(16))]
    assert [a % 1000 for a in answers] == list(range(16))
    assert max(a // 1000 for a in answers) > 1, "no two concurrent requests shared a call"

    bodies = _echo_bodies(16)
    bodies[5] = {"features": [-5, 0]}
    responses = post_all(server.url, bodies)
    assert responses[5].status_code == 422
    assert responses[5].json()["code"] == "model_rejected_input"
    good = [r for i, r in enumerate(responses) if i != 5]
    assert all(r.status_code == 200 for r in good)
    assert [r.json()["predictions"][0] % 1000 for r in good] == [i for i in range(16) if i != 5]

    # Every model call the batcher made is in the batch size histogram, with its rows.
    metrics = {
        s.name: s.value
        for family in text_string_to_metric_families(httpx.get(f"{server.url}/metrics").text)
        for s in family.samples
        if s.name.startswith("restpredict_batch_size")
    }
    assert metrics["restpredict_batch_size_sum"] == 32
    assert 2 <= metrics["restpredict_batch_size_count"] < 32


def test_server_without_batching_predicts_each_request_alone(
    serve: Callable[..., ServerProcess], echo_path: Path
) -> None:
    server = serve_echo(serve, echo_path, "--no-batching")
    answers = [r.json()["predictions"][0] for r in post_all(server.url, _echo_bodies(8))]
    assert answers == [1000 + i for i in range(8)]


def _echo_bodies(n: int) -> list[dict[str, Any]]:
    return [{"features": [i, 0]} for i in range(n)]


def test_concurrent_mixed_requests_each_get_their_own_answer(
    serve: Callable[..., ServerProcess], iris_path: Path, iris: LoadedModel
) -> None:
    # 48 clients at once: above the default 32 in flight, which would answer some 503.
    server = serve(str(iris_path), "--max-batch-wait-ms", "20", "--max-concurrency", "64")
    rng = np.random.default_rng(4)
    requests = [rng.uniform(0.1, 7.5, size=(int(rng.integers(1, 4)), 4)) for _ in range(48)]
    outputs = [["label"], ["proba"], ["label", "proba"]]
    bodies = [
        {"features": rows.tolist(), "return": outputs[i % 3]} for i, rows in enumerate(requests)
    ]
    for body, rows, response in zip(bodies, requests, post_all(server.url, bodies)):
        assert response.status_code == 200, response.text
        got = response.json()
        if "label" in body["return"]:
            assert got["predictions"] == iris.estimator.predict(rows).tolist()
        else:
            assert "predictions" not in got
        if "proba" in body["return"]:
            expected = iris.estimator.predict_proba(rows)
            got_proba = np.array([list(p.values()) for p in got["probabilities"]])
            np.testing.assert_allclose(got_proba, expected, rtol=0, atol=1e-12)
        else:
            assert "probabilities" not in got


def test_a_lone_request_is_not_held_for_a_huge_deadline(
    serve: Callable[..., ServerProcess], iris_path: Path
) -> None:
    # A minute-long wait: a lone request that waited for it would hit the 20 s client timeout.
    server = serve(str(iris_path), "--max-batch-wait-ms", "60000")
    with httpx.Client(base_url=server.url, timeout=20) as client:
        for _ in range(3):
            response = client.post("/predict", json={"features": [5.1, 3.5, 1.4, 0.2]})
            assert response.json() == {"predictions": ["setosa"]}

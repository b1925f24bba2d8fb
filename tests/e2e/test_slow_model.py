"""A model that is usually fast but stalls on one input never holds the event loop."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import joblib
import pytest

from tests.support.servers import ServerProcess

from .hostile_models import SLOW_VALUE, SlowOnOne
from .servers import PYTHONPATH

pytestmark = pytest.mark.adversarial


@pytest.fixture
def slow_model(tmp_path: Path) -> Path:
    path = tmp_path / "slow.joblib"
    joblib.dump(SlowOnOne(delay=6.0).fit(), path)
    return path


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param((), id="default"),
        pytest.param(("--no-batching",), id="no-batching"),
        pytest.param(("--max-batch-wait-ms", "0"), id="no-wait"),
    ],
)
def test_a_stall_on_one_input_leaves_health_fast_and_answers_504_once(
    serve: Callable[..., ServerProcess], slow_model: Path, extra: tuple[str, ...]
) -> None:
    server = serve(str(slow_model), "--prediction-timeout", "1", *extra, env=PYTHONPATH)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for value in range(50):  # the model's measured calls are fast: it earns the loop
            answer = client.post("/predict", json={"features": [value, 0]})
            assert answer.json() == {"predictions": [value]}
        with ThreadPoolExecutor(1) as pool:
            stalled = pool.submit(
                httpx.post, f"{server.url}/predict", json={"features": [SLOW_VALUE, 0]}, timeout=30
            )
            time.sleep(0.3)  # the stalling call has started
            started = time.monotonic()
            assert client.get("/health/live").status_code == 200
            # Generous: the loop answers in milliseconds unless the 6 s call holds it.
            assert time.monotonic() - started < 2.0
            # Queued behind the stalled call, another request is answered too (on time: 504).
            assert client.post("/predict", json={"features": [7, 0]}).status_code in (200, 504)
            late = stalled.result()
        assert late.status_code == 504
        assert late.headers["content-type"] == "application/problem+json"
        assert late.json()["code"] == "prediction_timeout"
    log = server.output()
    assert "Unexpected ASGI message" not in log
    assert "without starting response" not in log
    assert "Traceback" not in log

"""The fused ``POST /predict`` path answers, logs and counts as the layers it stands for do."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from starlette.testclient import TestClient

from restpredict.app import create_app
from restpredict.middleware.access import AccessMiddleware
from restpredict.middleware.hot_route import HotRoute
from restpredict.model.loading import LoadedModel
from restpredict.settings import Settings

ROW = [5.1, 3.5, 1.4, 0.2]
KEY = "s3cret-key"
#: The requests each app answers: (JSON body, Authorization, X-Request-ID).
REQUESTS = [
    ({"features": ROW}, f"Bearer {KEY}", "ok-1"),
    ({"features": [ROW, ROW], "return": ["label", "proba"]}, f"Bearer {KEY}", "ok-2"),
    ({"features": [1.0, 2.0]}, f"Bearer {KEY}", "bad-1"),  # 422
    ({"features": ROW}, "Bearer wrong", "stranger-1"),  # 401, answered by the layers
    ({"features": ROW}, None, "stranger-2"),
]
#: Response headers that differ by design: the date, and the CORS layer's ``Vary: Origin``.
VARYING = {"date", "vary"}


def _exchanges(
    settings: Settings, model: LoadedModel, caplog: pytest.LogCaptureFixture
) -> tuple[type[Any], list[tuple[int, dict[str, str], Any]], list[dict[str, Any]], set[Any]]:
    """Send ``REQUESTS`` to an app; its top layer, its answers, access fields and samples."""
    answers = []
    caplog.clear()
    with (
        caplog.at_level(logging.INFO, logger="restpredict.access"),
        TestClient(create_app(settings, model)) as client,
    ):
        for body, authorization, request_id in REQUESTS:
            headers = {"X-Request-ID": request_id}
            if authorization is not None:
                headers["Authorization"] = authorization
            response = client.post("/predict", json=body, headers=headers)
            kept = {k: v for k, v in response.headers.items() if k not in VARYING}
            answers.append((response.status_code, kept, response.json()))
        text = client.get("/metrics", headers={"Authorization": f"Bearer {KEY}"}).text
        top = type(client.app.middleware_stack)  # type: ignore[attr-defined]
    lines = [
        {k: v for k, v in r.access.items() if k != "latency_ms"}  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "restpredict.access" and r.access["path"] == "/predict"  # type: ignore[attr-defined]
    ]
    samples = {
        (s.name, frozenset(s.labels.items()), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.labels.get("route") == "/predict" and not s.name.endswith(("_sum", "_bucket"))
    }
    return top, answers, lines, samples


@pytest.mark.parametrize(
    "batching", [pytest.param(True, id="batching"), pytest.param(False, id="no-batching")]
)
def test_the_fused_path_answers_logs_and_counts_as_the_layers_do(
    iris: LoadedModel, caplog: pytest.LogCaptureFixture, batching: bool
) -> None:
    """With CORS configured the fusion stands aside (its layer is not one it knows), so the
    same requests go through every layer: answers, log lines and samples must not differ."""
    settings = Settings(api_key=SecretStr(KEY), batching=batching)
    fused = _exchanges(settings, iris, caplog)
    layered = _exchanges(
        settings.model_copy(update={"cors_origins": ["https://x.example"]}), iris, caplog
    )
    assert fused[0] is HotRoute
    assert layered[0] is AccessMiddleware
    assert [status for status, _, _ in fused[1]] == [200, 200, 422, 401, 401]
    assert fused[1][0][1]["x-model-sha256"] == iris.sha256
    assert fused[1][0][1]["x-request-id"] == "ok-1"
    # Every answer alike, headers included.
    assert fused[1] == layered[1]
    assert fused[2] == layered[2] and len(fused[2]) == len(REQUESTS)
    assert fused[3] == layered[3] and fused[3]

"""What the protocols share: one validation and prediction path, names, and error rendering."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from restpredict.app import create_app
from restpredict.model.demo import DEMO_NAME
from restpredict.model.loading import LoadedModel
from restpredict.model.prepare import load_configured_model
from restpredict.routes import kserve_v1, mlflow, open_inference
from restpredict.routes.protocol import endpoint
from restpredict.settings import Settings

ROWS = np.random.default_rng(9).uniform(0.1, 7.0, size=(30, 4))


@pytest.fixture(scope="module")
def client(iris: LoadedModel) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(), iris), raise_server_exceptions=False) as c:
        yield c


def test_every_protocol_gives_the_same_predictions(client: TestClient, iris: LoadedModel) -> None:
    rows = ROWS.tolist()
    expected = iris.estimator.predict(ROWS).tolist()
    answers = {
        "/predict": client.post("/predict", json={"features": rows}).json()["predictions"],
        "v1": client.post("/v1/models/iris:predict", json={"instances": rows}).json()[
            "predictions"
        ],
        "v2": client.post(
            "/v2/models/iris/infer",
            json={"inputs": [{"name": "x", "shape": [30, 4], "datatype": "FP64", "data": rows}]},
        ).json()["outputs"][0]["data"],
        "mlflow": client.post("/invocations", json={"inputs": rows}).json()["predictions"],
    }
    assert answers == dict.fromkeys(answers, expected)


def test_every_protocol_gives_the_same_message_for_the_same_mistake(client: TestClient) -> None:
    rows = [[1.0, 2.0, 3.0]]
    messages = [
        client.post("/predict", json={"features": rows}).json()["detail"],
        client.post("/v1/models/iris:predict", json={"instances": rows}).json()["error"],
        client.post(
            "/v2/models/iris/infer",
            json={"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": rows}]},
        ).json()["error"],
        client.post("/invocations", json={"inputs": rows}).json()["message"],
    ]
    assert set(messages) == {"expected 4 features per row, got 3"}


def test_the_demo_is_named_iris_demo_unless_model_name_says_otherwise() -> None:
    assert load_configured_model(Settings()).name == DEMO_NAME == "iris-demo"
    renamed = load_configured_model(Settings(model_name="flowers"))
    assert renamed.name == "flowers"
    with TestClient(create_app(Settings(model_name="flowers"))) as c:
        assert c.get("/v1/models").json() == {"models": ["flowers"]}
        assert c.get("/v2/models/flowers/ready").json() == {"name": "flowers", "ready": True}


def broken_app(render_module: object) -> TestClient:
    """A tiny app whose one route fails in a way nobody planned for."""

    @endpoint(render_module._render)  # type: ignore[attr-defined]
    async def fails(request: Request) -> Response:
        raise ZeroDivisionError("secret internals")

    return TestClient(Starlette(routes=[Route("/", fails)]), raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("module", "body"),
    [
        pytest.param(kserve_v1, {"error": "unexpected server error; see the server log"}, id="v1"),
        pytest.param(
            open_inference, {"error": "unexpected server error; see the server log"}, id="v2"
        ),
        pytest.param(
            mlflow,
            {
                "error_code": "INTERNAL_ERROR",
                "message": "unexpected server error; see the server log",
            },
            id="mlflow",
        ),
    ],
)
def test_unexpected_errors_are_a_generic_500_in_the_protocols_shape(
    module: object, body: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    response: httpx.Response = broken_app(module).get("/")
    assert response.status_code == 500
    assert response.json() == body
    assert "secret internals" not in response.text
    assert "ZeroDivisionError: secret internals" in caplog.text  # the operator still sees it


def test_protocol_traffic_shows_in_metrics_by_route_template(iris: LoadedModel) -> None:
    with TestClient(create_app(Settings(), iris)) as c:
        c.post("/v1/models/iris:predict", json={"instances": ROWS[:3].tolist()})
        c.post("/invocations", json={"inputs": ROWS[:2].tolist()})
        c.post(
            "/v2/models/iris/infer",
            json={
                "inputs": [
                    {"name": "x", "shape": [5, 4], "datatype": "FP64", "data": ROWS[:5].tolist()}
                ]
            },
        )
        c.post("/v2/models/iris/infer", json={"inputs": []})  # a 400: decoded, not predicted
        metrics = c.get("/metrics").text
    samples = {
        (s.name, s.labels.get("route")): s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
    }
    for route, rows in [
        ("/v1/models/{name}:predict", 3),
        ("/invocations", 2),
        ("/v2/models/{name}/infer", 5),
    ]:
        assert samples[("restpredict_request_rows_sum", route)] == rows
        assert samples[("restpredict_predict_duration_seconds_count", route)] == 1
    assert samples[("restpredict_decode_duration_seconds_count", "/v2/models/{name}/infer")] == 2

"""KServe V1 / TF Serving REST: plain HTTP against a real server, and the HTTP contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from starlette.testclient import TestClient

from restpredict.app import create_app
from restpredict.model.loading import LoadedModel
from restpredict.settings import Settings
from tests.support.models import frame_data

ROWS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6], [5.1, 3.5, 1.4, 0.2]]  # KServe's iris sample


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"], body
    message: str = body["error"]
    assert "Traceback" not in message
    return message


@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_rows_under_instances_or_inputs(client: TestClient, iris: LoadedModel, key: str) -> None:
    response = client.post("/v1/models/iris:predict", json={key: ROWS})
    assert response.status_code == 200
    assert response.json() == {"predictions": iris.estimator.predict(np.array(ROWS)).tolist()}


def test_named_records_and_columns_for_a_dataframe_model(
    frame_client: TestClient, frame_model: LoadedModel
) -> None:
    frame, _ = frame_data(6)
    expected = {"predictions": frame_model.estimator.predict(frame).tolist()}
    records = frame[["weight", "color", "size"]].to_dict(orient="records")  # any key order
    assert frame_client.post("/v1/models/frame:predict", json={"instances": records}).json() == (
        expected
    )
    columns = frame.to_dict(orient="list")  # TF Serving's columnar "inputs"
    assert frame_client.post("/v1/models/frame:predict", json={"inputs": columns}).json() == (
        expected
    )
    rows = frame.to_numpy().tolist()  # positional, in feature_names_in_ order
    assert frame_client.post("/v1/models/frame:predict", json={"instances": rows}).json() == (
        expected
    )


BAD_CATEGORY = {"instances": [{"size": 1, "color": "purple", "weight": 2}]}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        pytest.param({"instances": [{"size": 1, "color": "red"}]}, 400, "missing 1", id="missing"),
        pytest.param(
            {"instances": [{"size": 1, "color": "red", "weight": 2, "x": 3}]},
            400,
            "instances[0] has unknown feature(s): x",
            id="unknown-column",
        ),
        pytest.param(
            {"inputs": {"size": [1, 2], "color": ["red"], "weight": [1, 2]}},
            400,
            'the columns of "inputs" have different lengths (1, 2)',
            id="ragged-columns",
        ),
        pytest.param(BAD_CATEGORY, 400, "the model rejected the input", id="unseen-category"),
    ],
)
def test_dataframe_model_errors(
    frame_client: TestClient, body: dict[str, Any], status: int, message: str
) -> None:
    assert message in error(frame_client.post("/v1/models/frame:predict", json=body), status)


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        pytest.param(b'{"instances": [[1, 2, 3]]}', 400, "expected 4 features", id="3-features"),
        pytest.param(b'{"instances": [1, 2, 3, 4]}', 400, "must be a list of rows", id="flat"),
        pytest.param(b'{"instances": []}', 400, '"instances" is empty', id="empty"),
        pytest.param(
            b'{"instances": [[1, 2, "3", 4]]}', 400, "Expected `float | null`", id="string"
        ),
        pytest.param(
            b'{"instances": [[1, 2, true, 4]]}', 400, "Expected `float | null`", id="bool"
        ),
        pytest.param(b'{"instances": [[1, 2], [1, 2, 3]]}', 400, "different lengths", id="ragged"),
        pytest.param(b'{"instances": [{"a": 1}]}', 400, "not fitted with feature", id="names"),
        pytest.param(b'{"instances": [[1,2,3,4]], "inputs": [[1,2,3,4]]}', 400, "exactly one"),
        pytest.param(b'{"signature_name": "x"}', 400, "exactly one", id="neither"),
        pytest.param(b'{"instances": [[1, 2, 3, 4]', 400, "invalid JSON", id="bad-json"),
        pytest.param(b"[]", 400, "Expected `object`", id="not-an-object"),
        pytest.param(b'{"instances": [[1e999, 2, 3, 4]]}', 400, "out of float range", id="1e999"),
        pytest.param(b'{"instances": ' + b"[1,2,3,4]," * 51 + b"}", 400, "invalid JSON"),
        pytest.param(
            b'{"instances": [' + b"[1,2,3,4]," * 50 + b"[1,2,3,4]]}",
            400,
            "51 rows in one request; the limit is 50",
            id="too-many-rows",
        ),
        pytest.param(b"[" * 70_000, 413, "the limit is 65536 bytes", id="too-large"),
    ],
)
def test_client_mistakes_are_4xx_with_a_message(
    client: TestClient, content: bytes, status: int, message: str
) -> None:
    response = client.post("/v1/models/iris:predict", content=content)
    assert message in error(response, status)


def test_unknown_model(client: TestClient) -> None:
    response = client.post("/v1/models/flowers:predict", json={"instances": ROWS})
    assert error(response, 404) == "model 'flowers' is not served here; this server serves 'iris'"
    assert "not served here" in error(client.get("/v1/models/flowers"), 404)


def test_not_ready_is_503(iris_path: Path) -> None:
    c = TestClient(create_app(Settings(model=iris_path)), raise_server_exceptions=False)
    assert "not loaded yet" in error(c.get("/v1/models"), 503)
    assert "not loaded yet" in error(c.get("/v1/models/iris"), 503)
    assert "not loaded yet" in error(c.post("/v1/models/iris:predict", json={}), 503)

"""MLflow scoring protocol (/invocations, /ping): plain HTTP, a real server and TestClient."""

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

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]
COLUMNS = ["sepal length", "sepal width", "petal length", "petal width"]


def error(response: httpx.Response, status: int, code: str = "BAD_REQUEST") -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error_code", "message"}, body  # no stack_trace, unlike MLflow
    assert body["error_code"] == code
    message: str = body["message"]
    return message


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"dataframe_split": {"columns": COLUMNS, "data": ROWS}}, id="split"),
        pytest.param({"dataframe_split": {"data": ROWS, "index": [7, 8]}}, id="split-no-columns"),
        pytest.param({"instances": ROWS}, id="instances"),
        pytest.param({"inputs": ROWS, "params": {"anything": 1}}, id="inputs-with-params"),
    ],
)
def test_json_formats_for_a_positional_model(
    client: TestClient, iris: LoadedModel, body: dict[str, Any]
) -> None:
    response = client.post("/invocations", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": iris.estimator.predict(np.array(ROWS)).tolist()}


def test_json_and_csv_formats_for_a_dataframe_model(
    frame_client: TestClient, frame_model: LoadedModel
) -> None:
    frame, _ = frame_data(8)
    expected = {"predictions": frame_model.estimator.predict(frame).tolist()}
    shuffled = frame[["color", "weight", "size"]]  # columns are matched by name
    bodies = [
        {"dataframe_split": shuffled.to_dict(orient="split")},
        {"dataframe_records": shuffled.to_dict(orient="records")},
        {"instances": shuffled.to_dict(orient="records")},
        {"inputs": shuffled.to_dict(orient="list")},
    ]
    for body in bodies:
        assert frame_client.post("/invocations", json=body).json() == expected, body
    csv = shuffled.to_csv(index=False)
    response = frame_client.post(
        "/invocations", content=csv, headers={"Content-Type": "text/csv; charset=utf-8"}
    )
    assert response.json() == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            {"dataframe_records": [{"size": 1, "color": "red"}]},
            "dataframe_records[0] is missing 1 feature(s): weight",
            id="missing-column",
        ),
        pytest.param(
            {"dataframe_split": {"columns": ["size", "color"], "data": [[1, "red", 3]]}},
            "dataframe_split.data[0] has 3 values but there are 2 columns",
            id="split-width",
        ),
        pytest.param(
            {"dataframe_records": [{"size": "big", "color": "red", "weight": 1}]},
            "expected a number, got 'big'",
            id="text-for-number",
        ),
    ],
)
def test_dataframe_errors_name_the_field(
    frame_client: TestClient, body: dict[str, Any], message: str
) -> None:
    assert message in error(frame_client.post("/invocations", json=body), 400)


JSON = {"Content-Type": "application/json"}
CSV = {"Content-Type": "text/csv"}


@pytest.mark.parametrize(
    ("content", "headers", "status", "message"),
    [
        pytest.param(
            b'{"columns": ["a"], "data": [[1]]}',
            JSON,
            400,
            'since MLflow 2.0 a split-oriented DataFrame goes inside "dataframe_split"',
            id="mlflow-1-format",
        ),
        pytest.param(
            b'{"instances": [[1,2,3,4]], "inputs": [[1,2,3,4]]}',
            JSON,
            400,
            "exactly one of",
            id="two-formats",
        ),
        pytest.param(b'{"params": {}}', JSON, 400, "got none", id="no-format"),
        pytest.param(b'{"instance": []}', JSON, 400, "unknown field(s) instance", id="typo"),
        pytest.param(b'{"inputs": [[1,2,3,4]], "params": 3}', JSON, 400, "`params`", id="params"),
        pytest.param(b'{"dataframe_split": {"columns": []}}', JSON, 400, "`data`", id="no-data"),
        pytest.param(b"{", JSON, 400, "invalid JSON", id="bad-json"),
        pytest.param(b'{"inputs": [[1, 2]]}', JSON, 400, "expected 4 features", id="width"),
        pytest.param(b"a,b,c,d\n1,2,,4\n", CSV, 400, "feature 2 is missing (null)", id="csv-empty"),
        pytest.param(b"a,b,c,d\n1,2,3\n", CSV, 400, "expected 4 features", id="csv-short"),
        pytest.param(b"a,b,c,d\n", CSV, 400, "the CSV body has no rows", id="csv-header-only"),
        pytest.param(b"\xff,1,2,3\n", CSV, 400, "not valid UTF-8", id="csv-utf8"),
        pytest.param(b"1,2,3,4", {"Content-Type": "text/plain"}, 415, "text/csv", id="text"),
        pytest.param(
            b"{}", {"Content-Type": "application/json; charset=latin-1"}, 415, "UTF-8", id="latin1"
        ),
        pytest.param(
            b'{"inputs": [' + b"[1,2,3,4]," * 50 + b"[1,2,3,4]]}",
            JSON,
            400,
            "51 rows in one request",
            id="too-many-rows",
        ),
        pytest.param(b"[" * 70_000, JSON, 413, "the limit is 65536 bytes", id="too-large"),
    ],
)
def test_bad_requests_get_mlflow_errors(
    client: TestClient, content: bytes, headers: dict[str, str], status: int, message: str
) -> None:
    response = client.post("/invocations", content=content, headers=headers)
    assert message in error(response, status)


def test_missing_content_type_is_read_as_json(client: TestClient) -> None:
    response = client.post("/invocations", content=b'{"inputs": [[5.1, 3.5, 1.4, 0.2]]}')
    assert response.json() == {"predictions": ["setosa"]}


def test_not_ready_is_503(iris_path: Path) -> None:
    c = TestClient(create_app(Settings(model=iris_path)), raise_server_exceptions=False)
    response = c.post("/invocations", json={"inputs": ROWS})
    assert "not loaded yet" in error(response, 503, "TEMPORARILY_UNAVAILABLE")
    assert "not loaded yet" in error(c.get("/ping"), 503, "TEMPORARILY_UNAVAILABLE")

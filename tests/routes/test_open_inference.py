"""Open Inference Protocol (V2): tritonclient against real servers, and the HTTP contract."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from starlette.testclient import TestClient
from tritonclient.utils import deserialize_bytes_tensor

from restpredict.app import create_app
from restpredict.model.loading import LoadedModel, load_model
from restpredict.settings import Settings
from tests.support.models import frame_data

ROWS = np.random.default_rng(5).uniform(0.1, 7.0, size=(20, 4))


# --- the HTTP contract, through Starlette's TestClient --------------------------------------


def infer(client: TestClient, body: dict[str, Any], model: str = "iris") -> httpx.Response:
    return client.post(f"/v2/models/{model}/infer", json=body)


def tensor(data: Any, shape: list[int], datatype: str = "FP64", name: str = "x") -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"], body  # what tritonclient and KServe clients read
    assert "Traceback" not in body["error"]
    message: str = body["error"]
    return message


def test_flat_and_nested_json_data_agree(client: TestClient, iris: LoadedModel) -> None:
    rows = ROWS[:3].tolist()
    flat = infer(client, {"inputs": [tensor([v for row in rows for v in row], [3, 4])]}).json()
    nested = infer(client, {"inputs": [tensor(rows, [3, 4])]}).json()
    assert flat == nested
    assert flat["outputs"][0] == {
        "name": "predict",
        "datatype": "BYTES",
        "shape": [3],
        "data": iris.estimator.predict(np.array(rows)).tolist(),
    }


@pytest.mark.parametrize(
    ("datatype", "data"),
    [
        pytest.param("INT32", [[5, 3, 1, 0], [7, 3, 5, 2]], id="int32"),
        pytest.param("UINT8", [[5, 3, 1, 0], [7, 3, 5, 2]], id="uint8"),
        pytest.param("FP16", [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], id="fp16"),
        pytest.param("BOOL", [[True, False, True, True], [False] * 4], id="bool-as-0-1"),
    ],
)
def test_every_numeric_datatype_is_coerced_for_the_model(
    client: TestClient, iris: LoadedModel, datatype: str, data: list[list[Any]]
) -> None:
    body = {"inputs": [tensor(data, [2, 4], datatype)], "outputs": [{"name": "predict_proba"}]}
    response = infer(client, body)
    assert response.status_code == 200, response.text
    sent = np.array(data).astype(np.dtype(datatype.replace("FP", "float").lower()))
    if datatype == "BOOL":
        sent = np.array(data, dtype=bool)
    expected = iris.estimator.predict_proba(sent.astype(np.float64))
    assert response.json()["outputs"][0]["data"] == expected.ravel().tolist()


def test_integer_labels_are_int64(iris_int_path: Path) -> None:
    model = load_model(iris_int_path)
    with TestClient(create_app(Settings(), model)) as c:
        metadata = c.get("/v2/models/iris_int").json()
        assert metadata["outputs"][0] == {"name": "predict", "datatype": "INT64", "shape": [-1]}
        response = infer(c, {"inputs": [tensor(ROWS[:2].tolist(), [2, 4])]}, model="iris_int")
    output = response.json()["outputs"][0]
    assert output["datatype"] == "INT64"
    assert output["data"] == model.estimator.predict(ROWS[:2]).tolist()


def test_regressor_has_no_probabilities(regressor_path: Path) -> None:
    with TestClient(create_app(Settings(), load_model(regressor_path))) as c:
        metadata = c.get("/v2/models/regressor").json()
        assert [o["name"] for o in metadata["outputs"]] == ["predict"]
        assert metadata["outputs"][0]["datatype"] == "FP64"
        body: dict[str, Any] = {"inputs": [tensor([[1, 2, 3]], [1, 3])]}
        assert [o["name"] for o in infer(c, body, "regressor").json()["outputs"]] == ["predict"]
        body["outputs"] = [{"name": "predict_proba"}]
        message = error(infer(c, body, "regressor"), 400)
    assert (
        message == "output 'predict_proba' is not available: LinearRegression has no predict_proba"
    )


def test_binary_response_layout(client: TestClient, iris: LoadedModel) -> None:
    rows = ROWS[:2]
    body = {
        "id": "7",
        "inputs": [tensor(rows.tolist(), [2, 4])],
        "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
    }
    response = infer(client, body)
    assert response.headers["content-type"] == "application/octet-stream"
    size = int(response.headers["inference-header-content-length"])
    header = httpx.Response(200, content=response.content[:size]).json()
    assert header == {
        "model_name": "iris",
        "id": "7",
        "outputs": [
            {
                "name": "predict",
                "datatype": "BYTES",
                "shape": [2],
                "parameters": {"binary_data_size": len(response.content) - size},
            }
        ],
    }
    labels = deserialize_bytes_tensor(response.content[size:])
    assert [b.decode() for b in labels] == iris.estimator.predict(rows).tolist()


def test_dataframe_model_takes_json_columns(frame_model: LoadedModel) -> None:
    frame, _ = frame_data(5)
    columns = [
        tensor(frame["size"].tolist(), [5], name="size"),
        tensor(frame["color"].tolist(), [5, 1], "BYTES", name="color"),
        tensor(frame["weight"].astype(int).tolist(), [5], "INT64", name="weight"),
    ]
    body = {"parameters": {"content_type": "pd"}, "inputs": columns}
    with TestClient(create_app(Settings(), frame_model)) as c:
        response = infer(c, body, "frame")
        missing = error(infer(c, {**body, "inputs": columns[:2]}, "frame"), 400)
        plain = error(infer(c, {"inputs": columns}, "frame"), 400)
    sent = frame.assign(weight=frame["weight"].astype(int).astype(float))
    assert response.json()["outputs"][0]["data"] == frame_model.estimator.predict(sent).tolist()
    assert missing == "inputs[0] is missing 1 feature(s): weight"
    assert "set parameters.content_type to 'pd'" in plain


def binary_request(header: dict[str, Any], *blobs: bytes) -> tuple[bytes, dict[str, str]]:
    head = httpx.Request("POST", "/", json=header).content
    return head + b"".join(blobs), {"Inference-Header-Content-Length": str(len(head))}


def test_raw_binary_request(client: TestClient, iris: LoadedModel) -> None:
    rows = ROWS[:2].astype("<f4")
    header = {
        "inputs": [
            {"name": "x", "shape": [2, 4], "datatype": "FP32"},
        ],
        "outputs": [{"name": "predict"}],
    }
    header["inputs"][0]["parameters"] = {"binary_data_size": rows.nbytes}
    content, headers = binary_request(header, rows.tobytes())
    response = client.post("/v2/models/iris/infer", content=content, headers=headers)
    assert (
        response.json()["outputs"][0]["data"]
        == iris.estimator.predict(rows.astype(np.float64)).tolist()
    )


NAN_ROW = struct.pack("<4d", 1.0, float("nan"), 1.0, 1.0)
ONE_ROW = {"name": "x", "shape": [1, 4], "datatype": "FP64"}


@pytest.mark.parametrize(
    ("content", "headers", "status", "message"),
    [
        pytest.param(b"{", {}, 400, "invalid JSON", id="bad-json"),
        pytest.param(b"", {}, 400, "invalid JSON", id="empty"),
        pytest.param(b'{"outputs": []}', {}, 400, "missing required field `inputs`", id="no-in"),
        pytest.param(b'{"inputs": [{"name": "x"}]}', {}, 400, "missing required", id="no-shape"),
        pytest.param(
            b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64"}]}',
            {},
            400,
            "input 'x' has no data",
            id="no-data",
        ),
        pytest.param(
            b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, NaN]}]}',
            {},
            400,
            "invalid JSON",
            id="nan-token",
        ),
        pytest.param(
            *binary_request({"inputs": [{**ONE_ROW, "parameters": {"binary_data_size": 32}}]}),
            400,
            "bytes follow the JSON header",
            id="binary-missing",
        ),
        pytest.param(
            *binary_request(
                {"inputs": [{**ONE_ROW, "parameters": {"binary_data_size": 32}}]}, NAN_ROW
            ),
            400,
            "feature 1 is missing (null), but Pipeline(StandardScaler, LogisticRegression) "
            "does not accept missing values there",
            id="binary-nan",
        ),
        pytest.param(
            *binary_request(
                {"inputs": [{**ONE_ROW, "parameters": {"binary_data_size": "32"}}]}, NAN_ROW
            ),
            400,
            "binary_data_size must be a byte count",
            id="size-type",
        ),
        pytest.param(
            b'{"inputs": []}',
            {"Inference-Header-Content-Length": "999"},
            400,
            "Inference-Header-Content-Length",
            id="header-length",
        ),
        pytest.param(
            b'{"inputs": [{"name": "x", "shape": [1, 1, 4], "datatype": "FP64", '
            b'"data": [1,2,3,4]}]}',
            {},
            400,
            "expected [rows, 4]",
            id="3d",
        ),
        pytest.param(
            b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "BYTES", '
            b'"data": ["a","b","c","d"]}]}',
            {},
            400,
            "expected a number, got 'a'",
            id="text-for-numbers",
        ),
        pytest.param(
            b'{"parameters": {"content_type": "pd_json"}, "inputs": []}',
            {},
            400,
            "content_type 'pd_json' is not supported",
            id="content-type",
        ),
        pytest.param(
            b'{"parameters": {"binary_data_output": "yes"}, "inputs": []}',
            {},
            400,
            "parameters.binary_data_output must be true or false",
            id="flag-type",
        ),
        pytest.param(
            b'{"inputs": [], '
            b'"outputs": [{"name": "predict", "parameters": {"classification": 2}}]}',
            {},
            400,
            "classification extension is not supported",
            id="classification",
        ),
        pytest.param(
            b'{"inputs": [], "outputs": [{"name": "predict"}, {"name": "predict"}]}',
            {},
            400,
            "asked for twice",
            id="output-twice",
        ),
        pytest.param(
            gzip.compress(b'{"inputs": []}'),
            {"Content-Encoding": "gzip"},
            415,
            "Content-Encoding 'gzip' is not supported",
            id="gzip",
        ),
        pytest.param(b"[" * 70_000, {}, 413, "the limit is 65536 bytes", id="too-large"),
    ],
)
def test_bad_requests_get_the_specs_status(
    client: TestClient, content: bytes, headers: dict[str, str], status: int, message: str
) -> None:
    response = client.post("/v2/models/iris/infer", content=content, headers=headers)
    assert message in error(response, status)


def test_too_many_rows(client: TestClient) -> None:
    body = {"inputs": [tensor([[1, 2, 3, 4]] * 51, [51, 4])]}
    assert error(infer(client, body), 400) == "51 rows in one request; the limit is 50 (max_rows)"


def test_content_type_is_not_checked(client: TestClient) -> None:
    body = httpx.Request("POST", "/", json={"inputs": [tensor([[1, 2, 3, 4]], [1, 4])]}).content
    response = client.post(
        "/v2/models/iris/infer", content=body, headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 200


def test_unknown_model_is_404_on_every_model_route(client: TestClient) -> None:
    for path in ("/v2/models/nope", "/v2/models/nope/ready"):
        assert (
            error(client.get(path), 404)
            == "model 'nope' is not served here; this server serves 'iris'"
        )
    assert "not served here" in error(infer(client, {"inputs": []}, model="nope"), 404)
    assert "has no version '3'" in error(client.get("/v2/models/iris/versions/3/ready"), 404)


def test_versioned_paths_exist_but_the_model_is_unversioned(client: TestClient) -> None:
    response = client.post("/v2/models/iris/versions/1/infer", json={"inputs": []})
    assert "use /v2/models/iris" in error(response, 404)


def test_not_ready_is_503_until_the_model_is_loaded(iris_path: Path) -> None:
    app = create_app(Settings(model=iris_path))
    c = TestClient(app, raise_server_exceptions=False)  # no lifespan yet: nothing loaded
    assert c.get("/v2/health/live").json() == {"live": True}
    assert c.get("/v2").status_code == 200
    for path in ("/v2/health/ready", "/v2/models/iris/ready", "/v2/models/iris"):
        assert "not loaded yet" in error(c.get(path), 503)
    assert "not loaded yet" in error(infer(c, {"inputs": []}), 503)
    with c:
        assert c.get("/v2/health/ready").json() == {"ready": True}
        assert c.get("/v2/models/iris/ready").json() == {"name": "iris", "ready": True}

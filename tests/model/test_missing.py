"""Missing values: JSON null (empty CSV cells, NaN in binary tensors) where the model takes it.

Two real models: a HistGradientBoostingRegressor (NaN-native, positional) and a DataFrame
pipeline whose imputers take missing values in two columns (one of them text) while its
third column goes straight to a StandardScaler + LogisticRegression, which cannot. Every
protocol's answer is compared with the model's own predict on the same rows with NaN/None.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from starlette.testclient import TestClient

from restpredict.app import create_app
from restpredict.model.loading import LoadedModel, load_model
from restpredict.model.missing import missing_support
from restpredict.openapi.document import openapi_document
from restpredict.settings import Settings

NAN = float("nan")
# Rows with gaps: None in JSON, NaN for the model.
HGB_ROWS = [[0.5, None, 1.0], [None, None, None], [1.5, -2.0, 0.25]]
FRAME_ROWS = [
    {"a": None, "color": "red", "b": 1.0},
    {"a": 0.3, "color": None, "b": -1.0},
    {"a": None, "color": None, "b": 0.5},
]


def _hgb_matrix(rows: list[list[float | None]]) -> np.ndarray:
    return np.array([[NAN if v is None else v for v in row] for row in rows], dtype=float)


def _frame(rows: list[dict[str, object]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["a", "color", "b"])
    frame["a"] = frame["a"].astype(float)
    frame["b"] = frame["b"].astype(float)
    frame["color"] = frame["color"].astype(object).where(frame["color"].notna(), NAN)
    return frame


@pytest.fixture(scope="module")
def hgb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    x[::5, 1] = np.nan
    y = 2 * x[:, 0] + np.nan_to_num(x[:, 1]) + rng.normal(scale=0.1, size=200)
    path = tmp_path_factory.mktemp("missing") / "hgb.joblib"
    joblib.dump(HistGradientBoostingRegressor(max_iter=30).fit(x, y), path)
    return path


@pytest.fixture(scope="module")
def imputed_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(1)
    n = 120
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "color": rng.choice(["red", "green", "blue"], n).astype(object),
            "b": rng.normal(size=n),
        }
    )
    frame.loc[::6, "a"] = np.nan
    frame.loc[::7, "color"] = np.nan
    labels = np.where((frame["color"] == "red") | (frame["b"] > 0.5), "yes", "no")
    pre = make_column_transformer(
        (SimpleImputer(strategy="median"), ["a"]),
        (
            make_pipeline(
                SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
            ),
            ["color"],
        ),
        (StandardScaler(), ["b"]),
    )
    model = make_pipeline(pre, LogisticRegression(max_iter=500)).fit(frame, labels)
    path = tmp_path_factory.mktemp("missing") / "imputed.joblib"
    joblib.dump(model, path)
    return path


@pytest.fixture(scope="module")
def hgb(hgb_path: Path) -> LoadedModel:
    return load_model(hgb_path)


@pytest.fixture(scope="module")
def imputed(imputed_path: Path) -> LoadedModel:
    return load_model(imputed_path)


@pytest.fixture(scope="module")
def hgb_client(hgb: LoadedModel) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(), hgb), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def imputed_client(imputed: LoadedModel) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(), imputed), raise_server_exceptions=False) as client:
        yield client


def test_the_schema_says_which_features_take_a_null(
    hgb: LoadedModel, imputed: LoadedModel, iris: LoadedModel
) -> None:
    assert hgb.schema.missing == ("nan", "nan", "nan")
    assert imputed.schema.missing == ("nan", "nan", "refused")  # b: a scaler, then LR
    assert iris.schema.missing == ("refused",) * 4  # scaler passes NaN on to LR: confirmed no
    assert imputed.metadata()["feature_nullable"] == [True, True, False]


def _hgb_requests(rows: list[list[float | None]]) -> list[tuple[str, dict[str, object]]]:
    flat = [v for row in rows for v in row]
    return [
        ("/predict", {"features": rows}),
        ("/v1/models/hgb:predict", {"instances": rows}),
        ("/invocations", {"dataframe_split": {"data": rows}}),
        ("/invocations", {"instances": rows}),
        (
            "/v2/models/hgb/infer",
            {"inputs": [{"name": "x", "shape": [3, 3], "datatype": "FP64", "data": flat}]},
        ),
        (
            "/v2/models/hgb/infer",
            {"inputs": [{"name": "x", "shape": [3, 3], "datatype": "FP32", "data": flat}]},
        ),
    ]


def _predictions(path: str, response: httpx.Response) -> list[object]:
    assert response.status_code == 200, response.text
    body = response.json()
    if path.startswith("/v2"):
        return list(body["outputs"][0]["data"])
    return list(body["predictions"])


@pytest.mark.parametrize("index", range(6))
def test_nan_native_model_every_protocol(
    hgb_client: TestClient, hgb: LoadedModel, index: int
) -> None:
    path, body = _hgb_requests(HGB_ROWS)[index]
    got = _predictions(path, hgb_client.post(path, json=body))
    matrix = _hgb_matrix(HGB_ROWS)
    if '"FP32"' in json.dumps(body):
        matrix = matrix.astype(np.float32)
    expected = hgb.estimator.predict(matrix).tolist()
    assert got == pytest.approx(expected, rel=1e-12)


def test_nan_native_model_binary_nan_and_csv(hgb_client: TestClient, hgb: LoadedModel) -> None:
    expected = hgb.estimator.predict(_hgb_matrix(HGB_ROWS)).tolist()
    data = struct.pack("<9d", *_hgb_matrix(HGB_ROWS).ravel())
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [3, 3],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": len(data)},
                }
            ],
            "outputs": [{"name": "predict", "parameters": {"binary_data": False}}],
        }
    ).encode()
    response = hgb_client.post(
        "/v2/models/hgb/infer",
        content=header + data,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert _predictions("/v2", response) == expected
    csv = "0.5,,1.0\n,,\n1.5,-2.0,0.25\n"
    response = hgb_client.post("/invocations", content=csv, headers={"Content-Type": "text/csv"})
    assert _predictions("/invocations", response) == expected


def test_imputer_pipeline_with_a_string_column_every_protocol(
    imputed_client: TestClient, imputed: LoadedModel
) -> None:
    expected = imputed.estimator.predict(_frame(FRAME_ROWS)).tolist()
    columns = ["a", "color", "b"]
    split = {"columns": columns, "data": [[r[c] for c in columns] for r in FRAME_ROWS]}
    v2 = {
        "parameters": {"content_type": "pd"},
        "inputs": [
            {
                "name": c,
                "shape": [3],
                "datatype": "BYTES" if c == "color" else "FP64",
                "data": [r[c] for r in FRAME_ROWS],
            }
            for c in columns
        ],
    }
    requests = [
        ("/predict", {"instances": FRAME_ROWS}),
        ("/predict", {"features": split["data"]}),
        ("/v1/models/imputed:predict", {"instances": FRAME_ROWS}),
        (
            "/v1/models/imputed:predict",
            {"inputs": {c: [r[c] for r in FRAME_ROWS] for c in columns}},
        ),
        ("/invocations", {"dataframe_split": split}),
        ("/invocations", {"dataframe_records": FRAME_ROWS}),
        ("/v2/models/imputed/infer", v2),
    ]
    for path, body in requests:
        assert _predictions(path, imputed_client.post(path, json=body)) == expected, path
    csv = "a,color,b\n,red,1.0\n0.3,,-1.0\n,,0.5\n"
    response = imputed_client.post(
        "/invocations", content=csv, headers={"Content-Type": "text/csv"}
    )
    assert _predictions("/invocations", response) == expected


@pytest.mark.parametrize(
    ("path", "body", "detail"),
    [
        pytest.param(
            "/predict",
            {
                "instances": [
                    {"a": 1.0, "color": "red", "b": 1.0},
                    {"a": 1, "color": "red", "b": None},
                ]
            },
            "row 1, feature 'b' is missing (null)",
            id="predict",
        ),
        pytest.param(
            "/invocations",
            {"dataframe_split": {"columns": ["a", "color", "b"], "data": [[1.0, "red", None]]}},
            "row 0, feature 'b' is missing (null)",
            id="mlflow",
        ),
    ],
)
def test_a_null_where_the_model_cannot_take_one_is_a_422_naming_it(
    imputed_client: TestClient, path: str, body: dict[str, object], detail: str
) -> None:
    response = imputed_client.post(path, json=body)
    assert response.status_code in (400, 422), response.text
    text = response.text
    assert detail in text and "does not accept missing values" in text
    if path == "/predict":
        assert response.status_code == 422
        assert response.json()["code"] == "missing_value"


def test_iris_refuses_null_with_missing_value_and_nan_tokens_stay_400(
    client: TestClient,
) -> None:
    response = client.post("/predict", json={"features": [5.1, None, 1.4, 0.2]})
    assert response.status_code == 422
    assert response.json()["code"] == "missing_value"
    assert "row 0, feature 1 is missing" in response.json()["detail"]
    v1 = client.post("/v1/models/iris:predict", json={"instances": [[5.1, None, 1.4, 0.2]]})
    assert v1.status_code == 400 and "feature 1 is missing" in v1.json()["error"]
    nan = client.post(
        "/predict", content=b'{"features": [5.1, NaN, 1.4, 0.2]}', headers=_JSON_HEADERS
    )
    assert nan.status_code == 400
    v2 = client.post(
        "/v2/models/iris/infer",
        content=b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", '
        b'"data": [5.1, Infinity, 1.4, 0.2]}]}',
    )
    assert v2.status_code == 400 and "invalid JSON" in v2.json()["error"]


_JSON_HEADERS = {"Content-Type": "application/json"}


def test_openapi_marks_nullable_features(imputed: LoadedModel) -> None:
    document = openapi_document(imputed, Settings())
    record = document["components"]["schemas"]["Record"]["properties"]
    assert record["a"]["type"] == ["number", "null"]
    assert record["color"]["type"] == ["string", "null"]
    assert record["b"]["type"] == "number"
    assert "`a` (number, nullable)" in document["info"]["description"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "restpredict", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_predict_and_info_with_missing_values(
    imputed_path: Path, imputed: LoadedModel, hgb_path: Path, hgb: LoadedModel, tmp_path: Path
) -> None:
    csv = tmp_path / "rows.csv"
    csv.write_text("a,color,b\n,red,1.0\n0.3,,-1.0\n,,0.5\n")
    done = _cli("predict", "--model", str(imputed_path), "-i", str(csv), "-o", "json")
    assert done.returncode == 0, done.stderr
    got = [json.loads(line)["prediction"] for line in done.stdout.splitlines()]
    assert got == imputed.estimator.predict(_frame(FRAME_ROWS)).tolist()

    rows = tmp_path / "rows.jsonl"
    rows.write_text("\n".join(json.dumps(row) for row in HGB_ROWS))
    done = _cli("predict", "--model", str(hgb_path), "-i", str(rows), "-o", "json")
    assert done.returncode == 0, done.stderr
    got = [json.loads(line)["prediction"] for line in done.stdout.splitlines()]
    assert got == hgb.estimator.predict(_hgb_matrix(HGB_ROWS)).tolist()

    refused = tmp_path / "refused.csv"
    refused.write_text("a,color,b\n1.0,red,\n")
    done = _cli("predict", "--model", str(imputed_path), "-i", str(refused))
    assert done.returncode == 4
    assert "feature 'b' is missing" in done.stderr and "Traceback" not in done.stderr

    nan_token = tmp_path / "nan.jsonl"
    nan_token.write_text("[1.0, NaN, 2.0]\n")
    done = _cli("predict", "--model", str(hgb_path), "-i", str(nan_token))
    assert done.returncode == 4 and "NaN is not a JSON value" in done.stderr

    info = _cli("info", str(imputed_path), "--json")
    assert json.loads(info.stdout)["feature_nullable"] == [True, True, False]


@pytest.mark.parametrize(
    ("front", "calls"),
    [
        pytest.param(StandardScaler(), 0, id="scaler-then-logistic: known from the tags"),
        pytest.param(SimpleImputer(), 1, id="imputer-then-logistic: confirmed by one probe"),
    ],
)
def test_scaled_model_that_refuses_nan_is_known_without_probing(front: Any, calls: int) -> None:
    """NaN passes a scaler unchanged, and a LogisticRegression refuses it: no probe needed."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 4))
    model = make_pipeline(front, LogisticRegression()).fit(X, X[:, 0] > 0)
    probes: list[np.ndarray] = []

    def probe(rows: np.ndarray) -> Any:
        probes.append(rows)
        return model.predict(rows.astype(float))

    found = missing_support(model, 4, None, None, (0.0,) * 4, probe)
    expected = "refused" if calls == 0 else "nan"
    assert found == (expected,) * 4 and len(probes) == calls

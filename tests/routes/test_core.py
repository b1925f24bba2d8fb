"""The HTTP contract of /predict, health, metadata and errors, through Starlette's TestClient."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from sklearn.base import BaseEstimator, ClassifierMixin
from starlette.testclient import TestClient

from restpredict.app import YOUNG_COLLECTION_THRESHOLD, create_app
from restpredict.model.loading import LoadedModel, from_estimator
from restpredict.settings import Settings
from tests.support.models import frame_data
from tests.support.servers import free_port

ROW = [5.1, 3.5, 1.4, 0.2]


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"urn:restpredict:problem:{code}"
    assert body["title"] and body["detail"]
    assert "Traceback" not in response.text
    return body


def test_one_row_gives_one_prediction(client: TestClient, iris: LoadedModel) -> None:
    response = client.post("/predict", json={"features": ROW})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    expected = iris.estimator.predict(np.array([ROW])).tolist()
    assert response.json() == {"predictions": expected} == {"predictions": ["setosa"]}


def test_many_rows_keep_their_order(client: TestClient, iris: LoadedModel) -> None:
    rows = [ROW, [6.7, 3.0, 5.2, 2.3], [5.9, 2.8, 4.3, 1.3]]
    response = client.post("/predict", json={"features": rows})
    assert response.json()["predictions"] == iris.estimator.predict(np.array(rows)).tolist()


def test_probabilities_are_keyed_by_class(client: TestClient, iris: LoadedModel) -> None:
    response = client.post("/predict", json={"features": [ROW], "return": ["label", "proba"]})
    body = response.json()
    expected = iris.estimator.predict_proba(np.array([ROW]))[0]
    assert body["predictions"] == ["setosa"]
    assert list(body["probabilities"][0]) == ["setosa", "versicolor", "virginica"]
    assert body["probabilities"][0]["setosa"] == pytest.approx(expected[0])


def test_probabilities_alone(client: TestClient) -> None:
    body = client.post("/predict", json={"features": ROW, "return": ["proba"]}).json()
    assert set(body) == {"probabilities"}


def test_integer_labels_stay_ints(iris_int_path: Any) -> None:
    from restpredict.model.loading import load_model

    with TestClient(create_app(Settings(), load_model(iris_int_path))) as c:
        body = c.post("/predict", json={"features": [ROW, [6.7, 3.0, 5.2, 2.3]]}).json()
    assert body == {"predictions": [0, 2]}
    assert all(type(p) is int for p in body["predictions"])


def test_regressor_gives_floats_and_refuses_proba(regressor_path: Any) -> None:
    from restpredict.model.loading import load_model

    with TestClient(create_app(Settings(), load_model(regressor_path))) as c:
        body = c.post("/predict", json={"features": [5.1, 3.5, 1.4]}).json()
        assert isinstance(body["predictions"][0], float)
        response = c.post("/predict", json={"features": [5.1, 3.5, 1.4], "return": ["proba"]})
    assert "no predict_proba" in problem(response, 422, "proba_unavailable")["detail"]


BAD = "application/json"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        pytest.param(b"{bad", BAD, 400, "malformed_json", id="malformed-json"),
        pytest.param(b"", BAD, 400, "malformed_json", id="empty-body"),
        pytest.param(b'{"features": [NaN, 1, 2, 3]}', BAD, 400, "malformed_json", id="nan-token"),
        pytest.param(
            b'{"features": [Infinity, 1, 2, 3]}', BAD, 400, "malformed_json", id="infinity-token"
        ),
        pytest.param(b'{"features": [1e400, 1, 2, 3]}', BAD, 400, "malformed_json", id="1e400"),
        pytest.param(
            b'{"features": [1' + b"0" * 400 + b", 1, 2, 3]}",
            BAD,
            400,
            "malformed_json",
            id="huge-integer",
        ),
        pytest.param(b'{"features": "\xff\xfe"}', BAD, 400, "malformed_json", id="invalid-utf8"),
        pytest.param(
            b'{"features": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
            BAD,
            400,
            "malformed_json",
            id="deeply-nested",
        ),
        pytest.param(b"[1, 2, 3, 4]", BAD, 422, "invalid_type", id="top-level-array"),
        pytest.param(b'"features"', BAD, 422, "invalid_type", id="top-level-string"),
        pytest.param(b"{}", BAD, 422, "missing_features", id="missing-features"),
        pytest.param(b'{"rows": [1]}', BAD, 422, "invalid_type", id="unknown-key"),
        pytest.param(b'{"features": []}', BAD, 422, "empty_input", id="empty-batch"),
        pytest.param(b'{"features": [[]]}', BAD, 422, "wrong_feature_count", id="empty-row"),
        pytest.param(
            b'{"features": [[1,2,3,4],[1,2,3]]}', BAD, 422, "ragged_rows", id="ragged-batch"
        ),
        pytest.param(b'{"features": [1, 2, 3]}', BAD, 422, "wrong_feature_count", id="3-features"),
        pytest.param(b'{"features": ["a", 2, 3, 4]}', BAD, 422, "invalid_type", id="string"),
        pytest.param(b'{"features": [true, 2, 3, 4]}', BAD, 422, "invalid_type", id="boolean"),
        pytest.param(b'{"features": [null, 2, 3, 4]}', BAD, 422, "missing_value", id="null"),
        pytest.param(b'{"features": [[[1, 2, 3, 4]]]}', BAD, 422, "invalid_shape", id="3-d"),
        pytest.param(b'{"features": 5}', BAD, 422, "invalid_type", id="scalar-features"),
        pytest.param(
            b'{"features": [1,2,3,4], "instances": []}', BAD, 422, "ambiguous_input", id="both"
        ),
        pytest.param(
            b'{"features": [1,2,3,4], "return": ["labels"]}',
            BAD,
            422,
            "invalid_type",
            id="bad-return",
        ),
        pytest.param(
            b'{"features": [1,2,3,4], "return": []}', BAD, 422, "invalid_input", id="empty-return"
        ),
        pytest.param(
            b'{"instances": [{"a": 1}]}', BAD, 422, "names_unsupported", id="names-on-numpy-model"
        ),
        pytest.param(
            b'{"features": [' + b"[1,2,3,4]," * 50 + b"[1,2,3,4]]}",
            BAD,
            422,
            "too_many_rows",
            id="too-many-rows",
        ),
        pytest.param(
            b'{"features": [1,2,3,4]}', "text/plain", 415, "unsupported_media_type", id="text-plain"
        ),
        pytest.param(
            b'{"features": [1,2,3,4]}',
            "application/x-www-form-urlencoded",
            415,
            "unsupported_media_type",
            id="form",
        ),
        pytest.param(
            b'{"features": [1,2,3,4]}',
            "application/json; charset=latin-1",
            415,
            "unsupported_media_type",
            id="latin1",
        ),
        pytest.param(
            b'{"features": [' + b"1.0," * 20_000 + b"1]}",
            BAD,
            413,
            "payload_too_large",
            id="oversized",
        ),
    ],
)
def test_bad_input_gets_precise_status(
    client: TestClient, body: bytes, content_type: str, status: int, code: str
) -> None:
    response = client.post("/predict", content=body, headers={"content-type": content_type})
    problem(response, status, code)
    # ...and the server is unharmed for the next request.
    assert client.post("/predict", json={"features": ROW}).status_code == 200


def test_wrong_feature_count_names_both_counts(client: TestClient) -> None:
    body = problem(client.post("/predict", json={"features": [1, 2]}), 422, "wrong_feature_count")
    assert body["detail"] == "expected 4 features per row, got 2"


def test_streamed_body_over_limit_is_413_without_content_length(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"features": ['
        for _ in range(20_000):
            yield b"1.0,"
        yield b"1]}"

    response = client.post("/predict", content=chunks(), headers={"content-type": BAD})
    assert "content-length" not in response.request.headers
    problem(response, 413, "payload_too_large")


def test_named_instances_reach_a_dataframe_model(
    frame_client: TestClient, frame_model: LoadedModel
) -> None:
    frame, _ = frame_data()
    records = frame.head(5).to_dict(orient="records")
    shuffled = [dict(reversed(list(r.items()))) for r in records]  # order must not matter
    response = frame_client.post("/predict", json={"instances": shuffled})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == frame_model.estimator.predict(frame.head(5)).tolist()


def test_positional_rows_with_strings_reach_a_dataframe_model(
    frame_client: TestClient, frame_model: LoadedModel
) -> None:
    frame, _ = frame_data()
    rows = frame.head(3).values.tolist()
    response = frame_client.post("/predict", json={"features": rows})
    assert response.json()["predictions"] == frame_model.estimator.predict(frame.head(3)).tolist()


@pytest.mark.parametrize(
    ("instance", "code", "needle"),
    [
        pytest.param({"size": 1.0, "weight": 2.0}, "missing_columns", "color", id="missing"),
        pytest.param(
            {"size": 1.0, "weight": 2.0, "color": "red", "extra": 1},
            "unknown_columns",
            "extra",
            id="unknown",
        ),
        pytest.param(
            {"size": "big", "weight": 2.0, "color": "red"},
            "invalid_type",
            "size",
            id="string-for-number",
        ),
        pytest.param(
            {"size": 1.0, "weight": 2.0, "color": 3},
            "invalid_type",
            "color",
            id="number-for-string",
        ),
        pytest.param(
            {"size": 1.0, "weight": 2.0, "color": "purple"},
            "model_rejected_input",
            "purple",
            id="unknown-category",
        ),
    ],
)
def test_bad_instances(frame_client: TestClient, instance: dict, code: str, needle: str) -> None:
    body = problem(frame_client.post("/predict", json={"instances": [instance]}), 422, code)
    assert needle in body["detail"]


def test_unknown_columns_can_be_ignored(frame_model: LoadedModel) -> None:
    app = create_app(Settings(unknown_columns="ignore"), frame_model)
    with TestClient(app) as c:
        row = {"size": 1.0, "weight": 2.0, "color": "red", "extra": 1}
        assert c.post("/predict", json={"instances": [row]}).status_code == 200


def test_health_and_metadata(client: TestClient, iris: LoadedModel) -> None:
    assert client.get("/health/live").json() == {"status": "live"}
    assert client.get("/health/ready").status_code == 200
    meta = client.get("/metadata").json()
    assert meta["sha256"] == iris.sha256
    assert meta["n_features"] == 4
    assert meta["classes"] == ["setosa", "versicolor", "virginica"]
    assert meta["task"] == "classification"
    assert meta["estimator"] == "Pipeline(StandardScaler, LogisticRegression)"
    assert meta["sklearn_version_trained"] == meta["sklearn_version_running"]
    assert meta["restpredict_version"]


def test_unknown_route_and_method_are_problem_json(client: TestClient) -> None:
    problem(client.get("/nope"), 404, "not_found")
    response = client.get("/predict")
    problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


def test_predict_answers_alike_past_the_router_and_through_it(iris: LoadedModel) -> None:
    """POST /predict skips the router (DirectRoute); under a root path it goes through it."""
    bad = {"features": [1.0, 2.0]}
    answers = []
    for root_path in ("", "/api"):
        with TestClient(create_app(Settings(), iris), root_path=root_path) as client:
            ok = client.post(f"{root_path}/predict", json={"features": ROW})
            error = client.post(f"{root_path}/predict", json=bad)
        assert ok.status_code == 200 and ok.headers["x-model-sha256"] == iris.sha256
        answers.append((ok.json(), problem(error, 422, "wrong_feature_count")))
    assert answers[0] == answers[1]


def test_not_ready_until_model_loaded(iris_path: Any) -> None:
    app = create_app(Settings(model=iris_path))
    client = TestClient(app, raise_server_exceptions=False)
    problem(client.get("/health/ready"), 503, "not_ready")  # lifespan not run yet
    with client:
        assert client.get("/health/ready").status_code == 200


def test_serving_collects_young_objects_less_often(iris: LoadedModel) -> None:
    """While the app serves, a young collection waits for 10,000 objects; after, as before."""
    before = gc.get_threshold()
    gc.set_threshold(123, 4, 5)
    try:
        with TestClient(create_app(Settings(), iris)) as client:
            assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, 4, 5)
            assert client.post("/predict", json={"features": ROW}).status_code == 200
        assert gc.get_threshold() == (123, 4, 5)
    finally:
        gc.set_threshold(*before)


class NaNModel(ClassifierMixin, BaseEstimator):
    """Fitted, but predicts NaN: the server must still answer valid JSON."""

    def fit(self, X: Any, y: Any) -> NaNModel:
        self.n_features_in_ = 2
        self.classes_ = np.array([0, 1])
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.full(len(X), np.nan)


class SlowModel(NaNModel):
    """Takes a second per call."""

    def predict(self, X: Any) -> np.ndarray:
        time.sleep(1.0)
        return np.zeros(len(X))


class BrokenModel(NaNModel):
    def predict(self, X: Any) -> np.ndarray:
        raise RuntimeError("secret internal detail")


def wrap(estimator: Any) -> LoadedModel:
    return from_estimator(
        estimator.fit(None, None), name="t", sha256="0" * 64, source="test", sklearn_trained=None
    )


def test_nan_output_is_a_json_500() -> None:
    with TestClient(create_app(Settings(), wrap(NaNModel())), raise_server_exceptions=False) as c:
        body = problem(c.post("/predict", json={"features": [1, 2]}), 500, "non_finite_output")
    assert "NaN" in body["detail"]


def test_model_exception_leaks_nothing() -> None:
    app = create_app(Settings(), wrap(BrokenModel()))
    with TestClient(app, raise_server_exceptions=False) as c:
        response = c.post("/predict", json={"features": [1, 2]})
    body = problem(response, 500, "prediction_failed")
    assert "secret" not in response.text
    assert body["detail"] == "the model raised RuntimeError"


def test_live_answers_while_a_slow_model_computes() -> None:
    port = free_port()
    config = uvicorn.Config(
        create_app(Settings(), wrap(SlowModel())), port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        while not server.started:
            time.sleep(0.02)
        slow = threading.Thread(
            target=httpx.post, args=(f"{url}/predict",), kwargs={"json": {"features": [1, 2]}}
        )
        slow.start()
        time.sleep(0.2)
        started = time.monotonic()
        assert httpx.get(f"{url}/health/live").status_code == 200
        # Not a timing assertion on speed: only that live did not queue behind the 1 s predict.
        assert slow.is_alive(), "the slow prediction finished before /health/live answered"
        assert time.monotonic() - started < 1.0
        slow.join()
    finally:
        server.should_exit = True
        thread.join()

"""Property tests: any body gets a documented status, valid rows get the model's answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from restpredict.app import create_app
from restpredict.model.loading import LoadedModel, load_model
from restpredict.settings import Settings

# Every status docs/api.md documents for POST /predict on a healthy, idle server.
DOCUMENTED = {200, 400, 413, 415, 422}
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=10), children, max_size=6)
    ),
    max_leaves=40,
)
# Bodies that look like requests, so the fuzzing reaches past the first checks.
request_like = st.fixed_dictionaries(
    {},
    optional={
        "features": json_values,
        "instances": json_values,
        "return": st.lists(st.sampled_from(["label", "proba", "x"]), max_size=3) | json_values,
    },
)
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False) | st.integers(-1000, 1000)
rows = st.lists(st.lists(finite, min_size=4, max_size=4), min_size=1, max_size=30)


@pytest.fixture(scope="module")
def client(iris: LoadedModel) -> Iterator[TestClient]:
    app = create_app(Settings(max_body_bytes=64 * 1024, max_rows=20), iris)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def check_documented(response: Any) -> None:
    assert response.status_code in DOCUMENTED, response.text
    if response.status_code != 200:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == response.status_code


@FAST
@given(body=json_values | request_like)
def test_any_json_body_gets_a_documented_status(client: TestClient, body: Any) -> None:
    check_documented(client.post("/predict", content=json.dumps(body)))


@FAST
@given(
    body=st.binary(max_size=200), content_type=st.sampled_from(["application/json", "text/plain"])
)
def test_any_bytes_get_a_documented_status(
    client: TestClient, body: bytes, content_type: str
) -> None:
    check_documented(client.post("/predict", content=body, headers={"Content-Type": content_type}))


@FAST
@given(features=rows, proba=st.booleans())
def test_valid_rows_get_the_local_prediction(
    client: TestClient, iris: LoadedModel, features: list[list[float]], proba: bool
) -> None:
    wanted = ["label", "proba"] if proba else ["label"]
    response = client.post("/predict", json={"features": features, "return": wanted})
    if len(features) > 20:
        check_documented(response)
        return
    assert response.status_code == 200, response.text
    body = response.json()
    X = np.array(features, dtype=np.float64)
    assert body["predictions"] == iris.estimator.predict(X).tolist()
    if proba:
        expected = iris.estimator.predict_proba(X)
        got = [
            [row[c] for c in ("setosa", "versicolor", "virginica")] for row in body["probabilities"]
        ]
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300)


@pytest.fixture(scope="module")
def served(iris_path: Path) -> Iterator[TestClient]:
    """The iris model as ``serve`` runs it: loaded from its file and warmed up."""
    model = load_model(iris_path)
    model.warm_up()
    with TestClient(create_app(Settings(), model), raise_server_exceptions=False) as client:
        yield client


@FAST
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy overflow warnings, as in production
@given(
    features=st.lists(
        st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=4, max_size=4),
        min_size=1,
        max_size=5,
    )
)
def test_extreme_finite_values_are_never_a_server_error(
    served: TestClient, features: list[list[float]]
) -> None:
    response = served.post("/predict", json={"features": features, "return": ["label", "proba"]})
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert response.json()["code"] in ("non_finite_output", "model_rejected_input")


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_input_that_overflows_a_warmed_up_model_is_a_422(served: TestClient) -> None:
    rows = [[0.0, 0.0, -1.7976931348623155e308, 0.0]]
    response = served.post("/predict", json={"features": rows, "return": ["proba"]})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "non_finite_output"

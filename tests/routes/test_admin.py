"""POST /admin/reload and the Reloader: verified swaps, refusals that keep the old model."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from starlette.testclient import TestClient

from restpredict.app import create_app
from restpredict.model.loading import LoadedModel
from restpredict.settings import Settings
from tests.routes.test_core import ROW, problem
from tests.support.models import replace, sha256

KEY = "admin-key-for-tests"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def model_file(tmp_path: Path, iris_path: Path) -> Path:
    path = tmp_path / "model.joblib"
    shutil.copyfile(iris_path, path)
    return path


@pytest.fixture
def admin(model_file: Path) -> Iterator[TestClient]:
    settings = Settings(model=model_file, api_key=SecretStr(KEY))
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def served_sha(client: TestClient) -> str:
    response = client.post("/predict", json={"features": ROW}, headers=AUTH)
    assert response.status_code == 200
    return response.headers["x-model-sha256"]


def test_reload_needs_the_token(admin: TestClient) -> None:
    problem(admin.post("/admin/reload"), 401, "unauthorized")


def test_reload_swaps_in_the_new_file(
    admin: TestClient, model_file: Path, iris_path: Path, iris_int_path: Path
) -> None:
    assert served_sha(admin) == sha256(iris_path)
    replace(model_file, iris_int_path)  # string labels -> integer labels: clients would break
    refused = problem(admin.post("/admin/reload", headers=AUTH), 409, "reload_failed")
    assert "classes ('setosa', 'versicolor', 'virginica') -> (0, 1, 2)" in refused["detail"]
    assert "allow_schema_change" in refused["detail"]
    assert served_sha(admin) == sha256(iris_path)
    allowed = {"allow_schema_change": True}
    response = admin.post("/admin/reload", json=allowed, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["sha256"] == sha256(iris_int_path)
    assert served_sha(admin) == sha256(iris_int_path)
    assert admin.get("/metadata", headers=AUTH).json()["sha256"] == sha256(iris_int_path)
    assert admin.post("/predict", json={"features": ROW}, headers=AUTH).json() == {
        "predictions": [0]
    }


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        pytest.param(b"not a pickle", "not a loadable joblib/pickle file", id="corrupt"),
        pytest.param(None, "warm-up prediction failed", id="warm-up-fails"),
    ],
)
def test_a_bad_file_is_refused_and_the_old_model_serves_on(
    admin: TestClient, model_file: Path, iris_path: Path, content: bytes | None, needle: str
) -> None:
    if content is None:
        import joblib

        from tests.support.inprocess import FailingModel

        joblib.dump(FailingModel().fit(None, None), model_file)
    else:
        replace(model_file, content)
    body = problem(admin.post("/admin/reload", headers=AUTH), 409, "reload_failed")
    assert needle in body["detail"]
    assert body["serving_sha256"] == sha256(iris_path)
    assert served_sha(admin) == sha256(iris_path)
    assert admin.get("/health/ready").status_code == 200


def test_a_pin_in_the_request_is_checked_and_kept(
    admin: TestClient, model_file: Path, iris_int_path: Path, iris_path: Path
) -> None:
    replace(model_file, iris_int_path)
    body = problem(
        admin.post("/admin/reload", json={"sha256": "a" * 64}, headers=AUTH), 409, "reload_failed"
    )
    assert "SHA-256" in body["detail"] and served_sha(admin) == sha256(iris_path)
    good = {"sha256": sha256(iris_int_path).upper(), "allow_schema_change": True}
    assert admin.post("/admin/reload", json=good, headers=AUTH).status_code == 200
    assert served_sha(admin) == sha256(iris_int_path)
    replace(model_file, iris_path)  # the new pin holds for later reloads too
    allowed = {"allow_schema_change": True}
    problem(admin.post("/admin/reload", json=allowed, headers=AUTH), 409, "reload_failed")
    assert served_sha(admin) == sha256(iris_int_path)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param(b"{", 400, "malformed_json", id="not-json"),
        pytest.param(b'{"sha256": "xyz"}', 422, "invalid_reload_request", id="bad-sha"),
        pytest.param(b'{"path": "/etc/passwd"}', 422, "invalid_reload_request", id="unknown"),
        pytest.param(b"[]", 422, "invalid_reload_request", id="not-an-object"),
    ],
)
def test_bad_reload_requests(admin: TestClient, body: bytes, status: int, code: str) -> None:
    problem(admin.post("/admin/reload", content=body, headers=AUTH), status, code)


def test_no_admin_route_without_a_key(iris: LoadedModel) -> None:
    with TestClient(create_app(Settings(), iris)) as client:
        problem(client.post("/admin/reload"), 404, "not_found")


def test_metrics_name_the_model_a_reload_swapped_in(
    admin: TestClient, model_file: Path, iris_path: Path, iris_int_path: Path
) -> None:
    """One ``restpredict_model_info`` series, the served file's; its load time with it."""
    replace(model_file, iris_int_path)
    allowed = {"allow_schema_change": True}
    assert admin.post("/admin/reload", json=allowed, headers=AUTH).status_code == 200
    families = {
        f.name: f.samples
        for f in text_string_to_metric_families(admin.get("/metrics", headers=AUTH).text)
    }
    (info,) = families["restpredict_model_info"]
    assert info.labels["sha256"] == sha256(iris_int_path)
    (load,) = families["restpredict_model_load_seconds"]
    assert load.value == admin.app.state.model.load_seconds  # type: ignore[attr-defined]

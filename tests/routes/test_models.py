"""Several models in one app: each by name through every protocol, versions, the default."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from restpredict.app import create_app
from restpredict.errors import ConfigError
from restpredict.model.catalog import catalog
from restpredict.model.loading import LoadedModel, load_model
from restpredict.settings import ModelEntry, Settings
from tests.support.models import frame_data, sha256

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@pytest.fixture(scope="module")
def folder(
    tmp_path_factory: pytest.TempPathFactory,
    iris_path: Path,
    regressor_path: Path,
    frame_path: Path,
) -> Path:
    """A model folder: a classifier, a regressor and a DataFrame pipeline."""
    folder = tmp_path_factory.mktemp("served")
    for path in (iris_path, regressor_path, frame_path):
        shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture(scope="module")
def several(folder: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(model_dir=folder)), raise_server_exceptions=False) as c:
        yield c


def own(path: Path) -> LoadedModel:
    return load_model(path)


def test_each_model_answers_as_its_own_predict(
    several: TestClient, folder: Path, frame_model: LoadedModel
) -> None:
    iris = own(folder / "iris.joblib")
    regressor = own(folder / "regressor.pkl")
    answer = several.post("/models/iris/predict", json={"features": ROWS})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == iris.estimator.predict(np.array(ROWS)).tolist()
    assert answer.headers["x-model-sha256"] == iris.sha256
    rows = [r[:3] for r in ROWS]
    answer = several.post("/models/regressor/predict", json={"features": rows})
    assert answer.json()["predictions"] == regressor.estimator.predict(np.array(rows)).tolist()
    frame, _ = frame_data(5)
    records = frame.to_dict(orient="records")
    answer = several.post("/models/frame/predict", json={"instances": records})
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == frame_model.estimator.predict(frame).tolist()


def test_each_model_keeps_its_own_validation_and_metadata(several: TestClient) -> None:
    refused = several.post("/models/regressor/predict", json={"features": ROWS})
    assert refused.status_code == 422
    assert "3" in refused.json()["detail"]
    assert several.get("/models/regressor/metadata").json()["n_features"] == 3
    assert several.get("/models/iris/metadata").json()["n_features"] == 4


def test_nameless_routes_need_a_default(several: TestClient) -> None:
    answer = several.post("/predict", json={"features": ROWS})
    assert answer.status_code == 404
    detail = answer.json()["detail"]
    assert all(name in detail for name in ("'frame'", "'iris'", "'regressor'"))
    assert several.get("/metadata").status_code == 404
    mlflow = several.post("/invocations", json={"instances": ROWS})
    assert mlflow.status_code == 404
    assert mlflow.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert several.get("/health/ready").json() == {
        "status": "ready",
        "models": ["frame", "iris", "regressor"],
    }


@pytest.mark.parametrize(
    ("method", "path", "body", "shape"),
    [
        pytest.param("POST", "/models/nope/predict", {"features": ROWS}, "detail", id="core"),
        pytest.param("POST", "/v1/models/nope:predict", {"instances": ROWS}, "error", id="v1"),
        pytest.param("POST", "/v2/models/nope/infer", {"inputs": []}, "error", id="v2"),
        pytest.param("GET", "/v2/models/iris/versions/7/ready", None, "error", id="v2-version"),
    ],
)
def test_unknown_models_are_404_in_the_protocols_shape(
    several: TestClient, method: str, path: str, body: Any, shape: str
) -> None:
    answer = several.request(method, path, json=body)
    assert answer.status_code == 404
    assert "'iris'" in answer.json()[shape] or "iris" in answer.json()[shape]


def test_kserve_and_v2_by_name(several: TestClient, folder: Path) -> None:
    iris = own(folder / "iris.joblib")
    assert several.get("/v1/models").json() == {"models": ["frame", "iris", "regressor"]}
    v1 = several.post("/v1/models/iris:predict", json={"instances": ROWS})
    assert v1.json()["predictions"] == iris.estimator.predict(np.array(ROWS)).tolist()
    tensor = {"name": "input-0", "shape": [2, 3], "datatype": "FP64", "data": [r[:3] for r in ROWS]}
    v2 = several.post("/v2/models/regressor/infer", json={"inputs": [tensor]})
    assert v2.status_code == 200, v2.text
    regressor = own(folder / "regressor.pkl")
    expected = regressor.estimator.predict(np.array([r[:3] for r in ROWS])).tolist()
    assert v2.json()["outputs"][0]["data"] == expected
    assert several.get("/v2/models/frame").json()["parameters"] == {"content_type": "pd"}
    assert several.get("/v2/health/ready").json() == {"ready": True}


@pytest.fixture(scope="module")
def versioned(iris_path: Path, iris_int_path: Path, regressor_path: Path) -> Iterator[TestClient]:
    models = (
        ModelEntry(source=str(iris_path), name="flowers", version="1"),
        ModelEntry(source=str(iris_int_path), name="flowers", version="2"),
        ModelEntry(source=str(regressor_path), name="petal"),
    )
    settings = Settings(models=models, default_model="flowers")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def test_an_unversioned_request_gets_the_highest_version(versioned: TestClient) -> None:
    latest = versioned.post("/models/flowers/predict", json={"features": ROWS}).json()
    assert latest["predictions"] == [0, 2]  # version 2 has integer labels
    assert versioned.post("/predict", json={"features": ROWS}).json() == latest  # the default
    v1 = versioned.post(
        "/v2/models/flowers/versions/1/infer",
        json={"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP64", "data": ROWS}]},
    ).json()
    assert v1["model_version"] == "1"
    assert v1["outputs"][0]["data"] == ["setosa", "virginica"]
    assert versioned.get("/v2/models/flowers/versions/2/ready").json()["ready"] is True
    missing = versioned.get("/v2/models/flowers/versions/3")
    assert missing.status_code == 404
    assert "versions 1, 2" in missing.json()["error"]


def test_a_version_marked_default_wins(iris_path: Path, iris_int_path: Path) -> None:
    models = (
        ModelEntry(source=str(iris_path), name="flowers", version="1", default=True),
        ModelEntry(source=str(iris_int_path), name="flowers", version="2"),
    )
    with TestClient(create_app(Settings(models=models))) as client:
        answer = client.post("/predict", json={"features": ROWS}).json()
    assert answer["predictions"] == ["setosa", "virginica"]


def test_the_repository_index_lists_every_version(versioned: TestClient) -> None:
    assert versioned.post("/v2/repository/index").status_code == 404  # off unless asked


def test_repository_load_and_unload(folder: Path) -> None:
    with TestClient(create_app(Settings(model_dir=folder)), raise_server_exceptions=False) as c:
        index = c.post("/v2/repository/index", json={}).json()
        assert {(e["name"], e["state"]) for e in index} == {
            ("frame", "READY"),
            ("iris", "READY"),
            ("regressor", "READY"),
        }
        assert c.post("/v2/repository/models/iris/unload").json() == {}
        assert c.post("/models/iris/predict", json={"features": ROWS}).status_code == 404
        assert c.get("/v2/models/iris/ready").status_code == 404
        ready = c.post("/v2/repository/index", json={"ready": True}).json()
        assert {e["name"] for e in ready} == {"frame", "regressor"}
        listed = {e["name"]: e for e in c.post("/v2/repository/index").json()}
        assert listed["iris"]["state"] == "UNAVAILABLE"
        assert listed["iris"]["reason"] == "unloaded"
        assert c.post("/v2/repository/models/iris/load").json() == {}
        assert c.post("/models/iris/predict", json={"features": ROWS}).status_code == 200
        unknown = c.post("/v2/repository/models/ghost/load")
        assert unknown.status_code == 404
        assert "configured: frame, iris, regressor" in unknown.json()["error"]
        given = c.post("/v2/repository/models/iris/load", json={"parameters": {"config": "{}"}})
        assert given.status_code == 400
        assert c.post("/v2/repository/models/ghost/unload").status_code == 404


def test_metrics_name_the_models_served_after_unload_and_load(
    tmp_path: Path, iris_path: Path, iris_int_path: Path, regressor_path: Path
) -> None:
    """``restpredict_model_info`` has one series per model served, none for an unloaded one."""
    shutil.copy(iris_path, tmp_path / "iris.joblib")
    shutil.copy(regressor_path, tmp_path / "regressor.pkl")

    def served(c: TestClient) -> dict[str, str]:
        (info,) = [
            f for f in text_string_to_metric_families(c.get("/metrics").text)
            if f.name == "restpredict_model_info"
        ]  # fmt: skip
        names = [s.labels["name"] for s in info.samples]
        assert len(names) == len(set(names)), names
        return {s.labels["name"]: s.labels["sha256"] for s in info.samples}

    with TestClient(create_app(Settings(model_dir=tmp_path)), raise_server_exceptions=False) as c:
        assert served(c) == {"iris": sha256(iris_path), "regressor": sha256(regressor_path)}
        assert c.post("/v2/repository/models/iris/unload").json() == {}
        assert served(c) == {"regressor": sha256(regressor_path)}
        assert c.post("/v2/repository/models/iris/load").json() == {}
        shutil.copy(iris_int_path, tmp_path / "iris.joblib")
        assert c.post("/v2/repository/models/iris/load").json() == {}  # a reload in place
        assert served(c) == {"iris": sha256(iris_int_path), "regressor": sha256(regressor_path)}


def test_the_openapi_document_has_a_section_per_model(several: TestClient) -> None:
    doc = several.get("/openapi.json").json()
    validate(doc)
    for name in ("frame", "iris", "regressor"):
        assert f"/models/{name}/predict" in doc["paths"]
        assert f"/models/{name}/metadata" in doc["paths"]
    schemas = doc["components"]["schemas"]
    assert "frame.Record" in schemas and "iris.Record" not in schemas
    assert schemas["regressor.Row"]["minItems"] == 3
    assert schemas["iris.Row"]["minItems"] == 4
    assert several.get("/docs").status_code == 200
    assert "restpredict: frame, iris, regressor" in several.get("/docs").text


def test_metrics_count_requests_per_model_and_version(versioned: TestClient) -> None:
    def count(model: str, version: str, status: str) -> float:
        text = versioned.get("/metrics").text
        prefix = (
            f'restpredict_model_requests_total{{model="{model}",status="{status}",'
            f'version="{version}"}} '
        )
        lines = [line for line in text.splitlines() if line.startswith(prefix)]
        return float(lines[0].removeprefix(prefix)) if lines else 0.0

    before = count("flowers", "2", "200"), count("petal", "", "422")
    for _ in range(3):
        versioned.post("/models/flowers/predict", json={"features": ROWS})
    versioned.post("/models/petal/predict", json={"features": ROWS})  # 4 features, not 3
    assert count("flowers", "2", "200") == before[0] + 3
    assert count("petal", "", "422") == before[1] + 1


@pytest.fixture(scope="module")
def canary(iris_path: Path, iris_int_path: Path) -> Iterator[TestClient]:
    models = (
        ModelEntry(source=str(iris_path), name="flowers", version="1"),
        ModelEntry(source=str(iris_int_path), name="flowers", version="2"),
    )
    settings = Settings(models=models, traffic={"flowers": {"1": 90, "2": 10}})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def test_a_canary_gets_its_share_within_tolerance(canary: TestClient) -> None:
    versions = [
        canary.post("/models/flowers/predict", json={"features": ROWS[0]}).headers[
            "x-model-version"
        ]
        for _ in range(2000)
    ]
    # binomial(2000, 0.1): mean 200, sd 13.4; 5 sd either side
    assert 133 <= versions.count("2") <= 267
    assert versions.count("1") + versions.count("2") == 2000


def test_a_routing_key_sticks_to_one_version(canary: TestClient) -> None:
    seen: dict[str, set[str]] = {}
    for key in (f"user-{i}" for i in range(100)):
        for _ in range(4):
            answer = canary.post(
                "/predict", json={"features": ROWS[0]}, headers={"X-Routing-Key": key}
            )
            labels = answer.json()["predictions"]
            version = answer.headers["x-model-version"]
            assert labels == (["setosa"] if version == "1" else [0])  # answered by that version
            seen.setdefault(key, set()).add(version)
    assert all(len(versions) == 1 for versions in seen.values())
    on_canary = sum(versions == {"2"} for versions in seen.values())
    assert 1 <= on_canary <= 30  # ~10 of 100 keys


def test_an_explicit_version_bypasses_the_split(canary: TestClient) -> None:
    tensor = {"name": "input-0", "shape": [1, 4], "datatype": "FP64", "data": [ROWS[0]]}
    for _ in range(20):
        answer = canary.post("/v2/models/flowers/versions/2/infer", json={"inputs": [tensor]})
        assert answer.json()["model_version"] == "2"


def test_traffic_must_name_configured_versions(iris_path: Path) -> None:
    models = (ModelEntry(source=str(iris_path), name="flowers", version="1"),)
    settings = Settings(models=models, traffic={"flowers": {"1": 50, "3": 50}})
    with pytest.raises(ConfigError, match=r"flowers has no version 3 \(versions: 1\)"):
        catalog(settings)


def shadow_counts(client: TestClient) -> dict[str, float]:
    counts: dict[str, float] = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("restpredict_shadow_comparisons_total{"):
            outcome = line.split('outcome="')[1].split('"')[0]
            counts[outcome] = float(line.rsplit(" ", 1)[1])
    return counts


def settled(client: TestClient, sent: int) -> dict[str, float]:
    """The shadow counts once all ``sent`` comparisons have been recorded."""
    deadline = time.monotonic() + 30
    while sum((counts := shadow_counts(client)).values()) < sent:
        assert time.monotonic() < deadline, counts
        time.sleep(0.01)
    return counts


@pytest.mark.parametrize(
    ("shadow_source", "outcome"),
    [
        pytest.param("iris_int", "disagree", id="different-labels"),
        pytest.param("iris", "agree", id="same-model"),
    ],
)
def test_a_shadow_is_compared_and_never_answers(
    iris_path: Path, iris_int_path: Path, shadow_source: str, outcome: str
) -> None:
    sources = {"iris": iris_path, "iris_int": iris_int_path}
    models = (
        ModelEntry(source=str(iris_path), name="flowers", version="1", default=True),
        ModelEntry(source=str(sources[shadow_source]), name="flowers", version="2"),
    )
    settings = Settings(models=models, shadow={"flowers": "2"})
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        for sent in range(1, 21):
            answer = client.post("/models/flowers/predict", json={"features": ROWS})
            assert answer.json()["predictions"] == ["setosa", "virginica"]  # the primary's
            assert answer.headers["x-model-version"] == "1"
            counts = settled(client, sent)
            assert counts == {outcome: sent}  # one at a time: none dropped, each counted once

"""The OpenAPI document: valid 3.1, every route, typed by the model, examples that work."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate
from pydantic import SecretStr
from starlette.routing import Route
from starlette.testclient import TestClient

from restpredict.app import create_app
from restpredict.model.demo import demo_model
from restpredict.model.loading import LoadedModel, load_model
from restpredict.openapi.context import OpenAPIContext
from restpredict.openapi.document import openapi_document
from restpredict.settings import Settings

METHODS = ("get", "post", "put", "patch", "delete")
UNDOCUMENTED = {"/docs", "/docs/assets/{name}"}  # the page itself, not the API
KEY = SecretStr("openapi-key-for-tests")


@pytest.fixture(scope="module")
def models(
    iris: LoadedModel, frame_model: LoadedModel, iris_int_path: Path, regressor_path: Path
) -> dict[str, LoadedModel]:
    return {
        "demo": demo_model(),
        "iris": iris,
        "frame": frame_model,
        "int-labels": load_model(iris_int_path),
        "regressor": load_model(regressor_path),
    }


@pytest.fixture(scope="module")
def frame_doc(frame_model: LoadedModel) -> dict[str, Any]:
    return openapi_document(frame_model, Settings(max_rows=50))


def schema_at(doc: dict[str, Any], path: str, method: str, *where: str) -> jsonschema.Validator:
    """A 2020-12 validator for a schema inside ``doc``, its $refs resolved against it."""
    pointer = "/".join(p.replace("~", "~0").replace("/", "~1") for p in ("paths", path, method))
    root = {**doc, "$ref": "#/" + "/".join([pointer, *where])}
    return jsonschema.Draft202012Validator(root)


def request_schema(doc: dict[str, Any], path: str, media: str = "application/json") -> Any:
    media_key = media.replace("/", "~1")
    return schema_at(doc, path, "post", "requestBody", "content", media_key, "schema")


def response_schema(doc: dict[str, Any], path: str, method: str, status: int, media: str) -> Any:
    media_key = media.replace("/", "~1")
    return schema_at(doc, path, method, "responses", str(status), "content", media_key, "schema")


@pytest.mark.parametrize("name", ["demo", "iris", "frame", "int-labels", "regressor"])
@pytest.mark.parametrize("unknown_columns", ["reject", "ignore"])
@pytest.mark.parametrize("key", [None, KEY], ids=["no-key", "api-key"])
def test_the_document_is_valid_openapi_3_1(
    models: dict[str, LoadedModel], name: str, unknown_columns: str, key: SecretStr | None
) -> None:
    doc = openapi_document(models[name], Settings(unknown_columns=unknown_columns, api_key=key))
    assert doc["openapi"] == "3.1.0"
    validate(doc)  # raises on any violation of the OpenAPI 3.1 schema


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(Settings(), id="no-key"),
        pytest.param(Settings(api_key=KEY), id="api-key"),  # adds POST /admin/reload
        pytest.param(Settings(api_key=KEY, workers=2), id="api-key-several-workers"),
        pytest.param(Settings(repository_api=True), id="repository-api"),
    ],
)
def test_every_route_the_app_serves_is_documented(iris: LoadedModel, settings: Settings) -> None:
    app = create_app(settings, iris)
    served = {
        (route.path, method.lower())
        for route in app.routes
        if isinstance(route, Route) and route.path not in UNDOCUMENTED
        for method in route.methods or ()
        if method != "HEAD"
    }
    doc = openapi_document(iris, settings)
    documented = {(path, m) for path, item in doc["paths"].items() for m in item if m in METHODS}
    assert documented == served
    assert ("/admin/reload", "post") in served if settings.api_key else True
    ids = [item[m]["operationId"] for item in doc["paths"].values() for m in item]
    assert len(ids) == len(set(ids)) == len(served)


def test_features_categories_and_classes_come_from_the_model(frame_doc: dict[str, Any]) -> None:
    schemas = frame_doc["components"]["schemas"]
    record = schemas["Record"]
    assert list(record["properties"]) == record["required"] == ["size", "color", "weight"]
    assert record["additionalProperties"] is False
    assert record["properties"]["color"] == {"type": "string", "enum": ["blue", "green", "red"]}
    assert record["properties"]["size"]["type"] == "number"
    row = schemas["Row"]
    assert (row["minItems"], row["maxItems"], row["items"]) == (3, 3, False)
    assert [item["type"] for item in row["prefixItems"]] == ["number", "string", "number"]
    assert schemas["Label"]["enum"] == ["no", "yes"]
    assert schemas["Probabilities"]["required"] == ["no", "yes"]
    assert (
        "`size` (number), `color` (string), `weight` (number)" in frame_doc["info"]["description"]
    )
    predict = frame_doc["paths"]["/predict"]["post"]
    body = predict["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["instances"]["maxItems"] == 50
    assert body["properties"]["return"]["items"]["enum"] == ["label", "proba"]


def test_labels_are_typed_by_the_model(models: dict[str, LoadedModel]) -> None:
    def label(name: str) -> dict[str, Any]:
        schemas = openapi_document(models[name], Settings())["components"]["schemas"]
        return schemas["Label"]

    assert label("int-labels")["enum"] == [0, 1, 2]
    assert label("demo")["enum"] == ["setosa", "versicolor", "virginica"]
    assert label("regressor")["type"] == "number"


def test_a_regressor_offers_no_probabilities(models: dict[str, LoadedModel]) -> None:
    doc = openapi_document(models["regressor"], Settings())
    body = doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["properties"]["return"]["items"]["enum"] == ["label"]
    assert "proba" not in body["examples"]
    row = doc["components"]["schemas"]["Row"]
    assert (row["minItems"], row["maxItems"]) == (3, 3)
    v2 = request_schema(doc, "/v2/models/{name}/infer")
    infer = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}
    assert v2.is_valid(infer)
    assert not v2.is_valid({**infer, "outputs": [{"name": "predict_proba"}]})


def test_every_status_each_route_answers_is_documented(frame_doc: dict[str, Any]) -> None:
    def statuses(path: str, method: str) -> list[str]:
        return sorted(frame_doc["paths"][path][method]["responses"])

    # 408 (slow body) and 504 (prediction timeout) come from the limits, on every such route.
    assert statuses("/predict", "post") == [
        "200", "400", "408", "413", "415", "422", "500", "503", "504"
    ]  # fmt: skip
    assert statuses("/v1/models/{name}:predict", "post") == [
        "200", "400", "404", "408", "413", "500", "503", "504"
    ]  # fmt: skip
    assert statuses("/v2/models/{name}/infer", "post") == [
        "200", "400", "404", "408", "413", "415", "500", "503", "504"
    ]  # fmt: skip
    assert statuses("/invocations", "post") == [
        "200", "400", "408", "413", "415", "500", "503", "504"
    ]  # fmt: skip
    assert statuses("/health/live", "get") == ["200"]
    assert statuses("/v2/models/{name}/versions/{version}", "get") == ["404", "503", "504"]
    responses = frame_doc["paths"]["/predict"]["post"]["responses"]
    assert list(responses["422"]["content"]) == ["application/problem+json"]
    infer = frame_doc["paths"]["/v2/models/{name}/infer"]["post"]["responses"]
    assert set(infer["200"]["content"]) == {"application/json", "application/octet-stream"}
    assert (
        "binary_data_size" in frame_doc["paths"]["/v2/models/{name}/infer"]["post"]["description"]
    )


def examples(doc: dict[str, Any]) -> Iterator[tuple[str, str, Any]]:
    """(path, media type, body) of every request example in the document."""
    for path, item in doc["paths"].items():
        body = item.get("post", {}).get("requestBody")
        for media, content in (body or {}).get("content", {}).items():
            if "example" in content:
                yield path, media, content["example"]
            for example in content.get("examples", {}).values():
                yield path, media, example["value"]


@pytest.mark.parametrize("name", ["demo", "frame", "regressor"])
def test_every_request_example_fits_its_schema_and_is_answered_200(
    models: dict[str, LoadedModel], name: str
) -> None:
    model = models[name]
    doc = openapi_document(model, Settings())
    found = list(examples(doc))
    assert {path for path, _, _ in found} == {
        "/predict",
        "/v1/models/{name}:predict",
        "/v2/models/{name}/infer",
        "/invocations",
    }
    with TestClient(create_app(Settings(), model)) as client:
        for path, media, body in found:
            request_schema(doc, path, media).validate(body)
            url = path.replace("{name}", model.name)
            if media == "text/csv":
                response = client.post(url, content=body, headers={"Content-Type": media})
            else:
                response = client.post(url, json=body)
            assert response.status_code == 200, (path, body, response.text)
            response_schema(doc, path, "post", 200, "application/json").validate(response.json())


def test_csv_pattern_matches_the_example_and_bounds_rows(frame_model: LoadedModel) -> None:
    api = OpenAPIContext.of(frame_model, Settings(max_rows=3))
    schema = jsonschema.Draft202012Validator({"type": "string", "pattern": api.csv_pattern()})
    assert api.csv_example() == "size,color,weight\n0.0,blue,0.0\n"
    assert schema.is_valid(api.csv_example())
    assert schema.is_valid("1.5,red,-2\n3,green,0\n0,blue,7")
    assert not schema.is_valid("1.5,purple,2\n")  # a category the encoder never saw
    assert not schema.is_valid("1,red,2\n" * 4)  # over max_rows


def test_openapi_json_is_built_once_per_model(iris: LoadedModel, frame_model: LoadedModel) -> None:
    app = create_app(Settings(), iris)
    with TestClient(app) as client:
        first = client.get("/openapi.json")
        assert first.status_code == 200
        assert first.headers["content-type"] == "application/json"
        assert first.json()["info"]["title"] == f"restpredict: {iris.name}"
        cached = app.state.openapi
        assert client.get("/openapi.json").content == first.content
        assert app.state.openapi is cached  # not rebuilt
        swapped_in = replace(frame_model, name="swapped")
        app.state.registry.swap(iris, swapped_in)  # as a hot reload does
        swapped = client.get("/openapi.json").json()
        assert swapped["info"]["title"] == "restpredict: swapped"
        assert "Record" in swapped["components"]["schemas"]


def test_openapi_json_is_503_before_the_model_is_ready(iris: LoadedModel) -> None:
    client = TestClient(create_app(Settings(), iris))  # no lifespan: nothing loaded
    response = client.get("/openapi.json")
    assert response.status_code == 503
    assert response.json()["code"] == "not_ready"

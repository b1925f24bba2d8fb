"""The protective middleware in /openapi.json: what it says matches what the server answers."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import jsonschema
import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from restpredict.app import create_app
from restpredict.asgi.responses import PROBLEM_JSON
from restpredict.model.loading import LoadedModel
from restpredict.openapi.document import openapi_document
from restpredict.settings import Settings
from tests.middleware.test_limits import BODY, _exchange
from tests.support.inprocess import GateModel, running, wrap

KEY = SecretStr("middleware-openapi-key")
AUTH = {"Authorization": f"Bearer {KEY.get_secret_value()}"}


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, m, op) for path, item in doc["paths"].items() for m, op in item.items()]


def body_schema(
    doc: dict[str, Any], path: str, method: str, status: int, media: str
) -> jsonschema.Validator:
    """A validator for one documented response body, its $refs resolved against ``doc``."""
    parts = ["paths", path, method, "responses", str(status), "content", media, "schema"]
    pointer = "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)
    return jsonschema.Draft202012Validator({**doc, "$ref": "#/" + pointer})


def check(doc: dict[str, Any], path: str, method: str, response: httpx.Response) -> None:
    """``response`` is documented for this operation: status, media type, body and headers."""
    documented = doc["paths"][path][method]["responses"][str(response.status_code)]
    media = response.headers["content-type"].split(";")[0]
    body_schema(doc, path, method, response.status_code, media).validate(response.json())
    for name, header in documented["headers"].items():
        resolved = doc["components"]["headers"][header["$ref"].rsplit("/", 1)[-1]]
        if resolved.get("required") or name.lower() in response.headers:
            jsonschema.Draft202012Validator(resolved["schema"]).validate(response.headers[name])


def test_without_a_key_nothing_asks_for_one(iris: LoadedModel) -> None:
    doc = openapi_document(iris, Settings())
    assert "securitySchemes" not in doc["components"]
    assert "/admin/reload" not in doc["paths"]
    for _, _, op in operations(doc):
        assert "security" not in op
        assert "401" not in op["responses"]


def test_with_a_key_every_path_but_the_open_ones_needs_the_bearer_token(
    iris: LoadedModel,
) -> None:
    settings = Settings(api_key=KEY)
    doc = openapi_document(iris, settings)
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    opened = set()
    for path, _, op in operations(doc):
        if path in settings.open_paths:
            opened.add(path)
            assert op["security"] == []
            assert "401" not in op["responses"]
        else:
            assert op["security"] == [{"bearerAuth": []}]
            assert "WWW-Authenticate" in op["responses"]["401"]["headers"]
    assert opened == set(settings.open_paths)
    with TestClient(create_app(settings, iris)) as client:
        check(doc, "/predict", "post", client.post("/predict", json={"features": [1, 2, 3, 4]}))
        check(doc, "/admin/reload", "post", client.post("/admin/reload", content=b"[1]"))


def test_the_settings_decide_which_paths_are_open_and_limited(iris: LoadedModel) -> None:
    settings = Settings(api_key=KEY, open_paths=("/metadata",), limit_exempt_paths=("/predict",))
    paths = openapi_document(iris, settings)["paths"]
    assert paths["/metadata"]["get"]["security"] == []
    assert paths["/health/live"]["get"]["security"] == [{"bearerAuth": []}]
    predict = paths["/predict"]["post"]["responses"]
    assert "504" not in predict and "408" in predict  # exempt from limits; the body still times
    assert "overloaded" not in predict["503"]["description"]  # only its own "not ready"
    live = paths["/health/live"]["get"]["responses"]
    assert {"503", "504"} <= set(live) and "408" not in live  # no body is read


def test_a_protocol_503_is_its_own_shape_or_the_overloaded_problem(iris: LoadedModel) -> None:
    paths = openapi_document(iris, Settings())["paths"]
    v1 = paths["/v1/models/{name}:predict"]["post"]["responses"]
    assert set(v1["503"]["content"]) == {"application/json", PROBLEM_JSON}
    assert "Retry-After" in v1["503"]["headers"]
    assert set(v1["408"]["content"]) == {"application/json"}  # caught like its other errors
    assert set(v1["504"]["content"]) == {PROBLEM_JSON}  # answered by the middleware


def test_real_503_504_and_408_answers_match_the_document() -> None:
    model = GateModel()
    served = wrap(model)
    settings = Settings(max_concurrency=1, prediction_timeout=0.3, body_timeout=0.5, retry_after=3)
    doc = openapi_document(served, settings)
    with running(create_app(settings, served)) as url, ThreadPoolExecutor(1) as pool:
        late = pool.submit(httpx.post, f"{url}/predict", json=BODY, timeout=60)
        model.wait_inside(1)
        overloaded = httpx.post(f"{url}/v2/models/{served.name}/infer", json={"inputs": []})
        assert overloaded.status_code == 503
        assert overloaded.json()["code"] == "overloaded"
        assert overloaded.headers["retry-after"] == "3"
        check(doc, "/v2/models/{name}/infer", "post", overloaded)
        assert late.result().status_code == 504
        check(doc, "/predict", "post", late.result())
        model.gate.set()
    with running(create_app(settings, wrap(GateModel()))) as url:
        head = b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Length: 40\r\n\r\n{"
        answer = _exchange(url, head, trickle=b" " * 30)
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 408 Request Timeout"
    assert b"content-type: application/problem+json" in rest.lower()
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    body_schema(doc, "/predict", "post", 408, PROBLEM_JSON).validate(body)


def test_several_workers_document_the_202_of_a_rolling_reload(iris: LoadedModel) -> None:
    one = openapi_document(iris, Settings(api_key=KEY))["paths"]["/admin/reload"]["post"]
    several = openapi_document(iris, Settings(api_key=KEY, workers=2))
    reload = several["paths"]["/admin/reload"]["post"]
    assert sorted(one["responses"]) == ["200", "400", "401", "408", "409", "422", "503", "504"]
    assert "202" in reload["responses"] and "200" not in reload["responses"]
    answered = {"status": "rolling", "sha256": "a" * 64, "model": "iris"}  # routes/admin.py's
    body_schema(several, "/admin/reload", "post", 202, "application/json").validate(answered)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param(b"", 200, id="empty: keep the pin"),
        pytest.param(b'{"sha256": "' + b"0" * 64 + b'"}', 409, id="a pin the file fails"),
        pytest.param(b'{"sha256": 1}', 422, id="not a hash"),
        pytest.param(b"{", 400, id="not JSON"),
    ],
)
def test_reload_answers_match_the_document(
    iris: LoadedModel, iris_path: Any, body: bytes, status: int
) -> None:
    settings = Settings(model=iris_path, api_key=KEY)
    doc = openapi_document(iris, settings)
    with TestClient(create_app(settings)) as client:
        response = client.post("/admin/reload", content=body, headers=AUTH)
        assert response.status_code == status, response.text
        check(doc, "/admin/reload", "post", response)

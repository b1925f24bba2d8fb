"""Request ids, access log records and in-process metrics, through Starlette's TestClient."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import os
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from restpredict.app import create_app
from restpredict.middleware.access import UNMATCHED, AccessMiddleware, route_template
from restpredict.middleware.hot_route import HotRoute
from restpredict.model.loading import LoadedModel
from restpredict.observability.logs import ACCESS_LOGGER, direct_json_handler, logging_config
from restpredict.settings import Settings

ROW = [5.1, 3.5, 1.4, 0.2]


@pytest.fixture
def client(iris: LoadedModel) -> Iterator[TestClient]:
    """A fresh app each test, so its metrics start from zero."""
    with TestClient(create_app(Settings(), iris), raise_server_exceptions=False) as test_client:
        yield test_client


def settle(client: TestClient) -> None:
    """Make sure the requests answered so far are logged and counted.

    That happens at the end of the event-loop turn each finished in, which the test's thread
    does not wait for; a request answered after it on the same loop does.
    """
    assert client.get("/health/live").status_code == 200


def access_records(caplog: pytest.LogCaptureFixture, path: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "restpredict.access" and getattr(r, "access", {}).get("path") == path
    ]


def samples(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = client.get("/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.mark.parametrize(
    "request_id",
    [
        pytest.param("abc-123", id="short"),
        pytest.param("0f8fad5b-d9cb-469f-a165-70867728950e", id="uuid"),
        pytest.param("Root=1-67891233-abcdef012345678912345678", id="trace-id"),
        pytest.param("x" * 128, id="128-characters"),
    ],
)
def test_a_valid_request_id_is_echoed(client: TestClient, request_id: str) -> None:
    response = client.post("/predict", json={"features": ROW}, headers={"X-Request-ID": request_id})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == request_id


@pytest.mark.parametrize(
    "request_id",
    [
        pytest.param("", id="empty"),
        pytest.param("x" * 129, id="too-long"),
        pytest.param('a" b', id="quote-and-space"),
        pytest.param("<script>", id="markup"),
        pytest.param("caf\u00e9", id="non-ascii"),
    ],
)
def test_an_unsafe_request_id_is_replaced(client: TestClient, request_id: str) -> None:
    headers = {"X-Request-ID": request_id.encode("utf-8")}  # raw bytes: httpx would refuse é
    response = client.get("/health/live", headers=headers)
    echoed = response.headers["x-request-id"]
    assert echoed != request_id
    assert len(echoed) == 32 and int(echoed, 16) >= 0  # 32 hex digits, like a uuid4's


def test_a_request_id_is_generated_for_every_kind_of_response(client: TestClient) -> None:
    responses = [
        client.get("/health/live"),
        client.post("/predict", json={"features": [1, 2]}),  # 422
        client.get("/nowhere"),  # 404
        client.delete("/predict"),  # 405
        client.get("/metrics"),
    ]
    ids = {r.headers["x-request-id"] for r in responses}
    assert len(ids) == len(responses)
    for response in responses[1:4]:
        assert response.headers["content-type"] == "application/problem+json"
        assert set(response.json()) == {"type", "title", "status", "detail", "code"}


def test_generated_ids_differ_across_requests_and_processes(iris: LoadedModel) -> None:
    """Each app (a worker) draws its own random prefix; within it a counter follows."""
    ids = []
    for _ in range(2):
        with TestClient(create_app(Settings(), iris)) as test_client:
            ids += [test_client.get("/health/live").headers["x-request-id"] for _ in range(50)]
    assert len(set(ids)) == 100
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert len({i[:16] for i in ids}) == 2


def test_an_unexpected_error_still_echoes_the_id_and_leaks_nothing(iris: LoadedModel) -> None:
    async def boom(request: Request) -> Response:
        raise RuntimeError("secret internals")

    app = create_app(Settings(), iris)
    app.router.routes.append(Route("/boom", boom))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.get("/boom", headers={"X-Request-ID": "boom-1"})
        metrics = samples(test_client)
    # Answered by the access layer, outermost now (under the fused hot route, which passes
    # other routes on): Starlette's own error layer is left out.
    assert isinstance(app.middleware_stack, HotRoute)
    assert isinstance(app.middleware_stack.app, AccessMiddleware)
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "boom-1"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "internal_error"
    assert "secret" not in response.text
    key = (
        "restpredict_requests_total",
        frozenset({"route": "/boom", "method": "GET", "status": "500"}.items()),
    )
    assert metrics[key] == 1


@pytest.mark.usefixtures("restored_logging")
def test_access_lines_written_directly_equal_those_logged_through_records(
    iris: LoadedModel,
) -> None:
    """With the server's own JSON logging the access lines skip the LogRecord; same lines."""
    stream = io.StringIO()
    config = logging_config(Settings(log_format="json"), stream)
    config["handlers"]["stderr"]["stream"] = stream
    logging.config.dictConfig(config)
    (handler,) = logging.getLogger().handlers
    access = logging.getLogger(ACCESS_LOGGER)

    def lines() -> list[dict[str, object]]:
        with TestClient(create_app(Settings(), iris)) as client:
            client.post("/predict", json={"features": ROW}, headers={"X-Request-ID": "id-1"})
            client.get("/nowhere", headers={"X-Request-ID": "id-2"})
        handler.flush()
        written = stream.getvalue().splitlines()
        stream.seek(0)
        stream.truncate()
        return [json.loads(line) for line in written if ACCESS_LOGGER in line]

    assert direct_json_handler(access) is handler
    direct = lines()

    def keep(record: logging.LogRecord) -> bool:
        return True

    access.addFilter(keep)  # a filter could drop or change records: they are made again
    try:
        assert direct_json_handler(access) is None
        through_records = lines()
    finally:
        access.removeFilter(keep)
    assert [line["status"] for line in direct] == [200, 404]
    for one, other in zip(direct, through_records, strict=True):
        assert list(one) == list(other)  # the same fields, in the same order
        for varies in ("time", "latency_ms"):
            del one[varies], other[varies]
        assert one == other


def test_access_record_has_the_fields_and_no_secrets(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="restpredict.access"):
        client.post(
            "/predict?api_key=query-secret",
            json={"features": [ROW, ROW], "note": "body-secret"},
            headers={"Authorization": "Bearer header-secret", "X-Request-ID": "rid-1"},
        )
        client.post(
            "/predict",
            json={"features": [ROW, ROW]},
            headers={"Cookie": "session=cookie-secret", "X-Request-ID": "rid-2"},
        )
        settle(client)
    records = access_records(caplog, "/predict")
    assert len(records) == 2
    fields = [r.access for r in records]  # type: ignore[attr-defined]
    assert fields[0]["status"] == 422  # "note" is not part of the /predict envelope
    assert fields[0]["path"] == "/predict"
    assert fields[1] | {"latency_ms": 0, "client": ""} == {
        "method": "POST",
        "path": "/predict",
        "route": "/predict",
        "status": 200,
        "latency_ms": 0,
        "rows": 2,
        "request_id": "rid-2",
        "client": "",
    }
    assert fields[1]["latency_ms"] > 0
    assert "secret" not in caplog.text
    assert all("secret" not in str(f) for f in fields)


def test_access_records_are_complete_log_records(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The lean access record holds what ``LogRecord`` would, for any handler's formatter."""
    with caplog.at_level(logging.INFO, logger="restpredict.access"):
        client.post("/predict", json={"features": ROW}, headers={"X-Request-ID": "rid-3"})
        settle(client)
        logging.getLogger("restpredict.access").info("%s %s %d", "POST", "/predict", 200)
    (lean,) = access_records(caplog, "/predict")
    (plain,) = [r for r in caplog.records if not hasattr(r, "access")]
    every = "%(" + ")s %(".join(vars(plain)) + ")s"  # each attribute a plain record has
    assert "POST /predict 200" in logging.Formatter(every).format(lean)
    same = ("name", "msg", "levelname", "levelno", "exc_info", "exc_text", "stack_info")
    assert [getattr(lean, a) for a in same] == [getattr(plain, a) for a in same]
    assert lean.getMessage() == plain.getMessage()
    assert lean.process == os.getpid() and lean.processName == plain.processName
    assert lean.thread is not None and lean.threadName
    assert lean.module == "access" and lean.filename == "access.py"
    assert abs(lean.created - plain.created) < 60 and lean.relativeCreated > 0
    assert lean.access["request_id"] == "rid-3"  # type: ignore[attr-defined]


def test_access_log_can_be_turned_off(iris: LoadedModel, caplog: pytest.LogCaptureFixture) -> None:
    with (
        TestClient(create_app(Settings(access_log=False), iris)) as test_client,
        caplog.at_level(logging.INFO, logger="restpredict.access"),
    ):
        assert test_client.get("/health/live").status_code == 200
        assert "x-request-id" in test_client.get("/health/live").headers
        settle(test_client)
    assert not [r for r in caplog.records if r.name == "restpredict.access"]


def test_metrics_move_with_traffic_in_process(client: TestClient) -> None:
    before = samples(client)
    for rows in ([ROW], [ROW, ROW, ROW]):
        assert client.post("/predict", json={"features": rows}).status_code == 200
    client.request("FROB", "/predict")  # any token is a method; it must not become a label
    after = samples(client)

    def delta(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("restpredict_requests_total", route="/predict", method="POST", status="200") == 2
    assert delta("restpredict_requests_total", route="/predict", method="OTHER", status="405") == 1
    assert delta("restpredict_requests_total", route="/metrics", method="GET", status="200") == 1
    assert delta("restpredict_request_rows_sum", route="/predict") == 4
    assert delta("restpredict_request_rows_bucket", route="/predict", le="2.0") == 1
    assert delta("restpredict_predict_duration_seconds_count", route="/predict") == 2
    assert delta("restpredict_decode_duration_seconds_count", route="/predict") == 2


def test_each_app_has_its_own_registry(iris: LoadedModel) -> None:
    """No global registry: a second app neither clashes with the first nor shares its counts."""
    with (
        TestClient(create_app(Settings(), iris)) as first,
        TestClient(create_app(Settings(), iris)) as second,
    ):
        first.post("/predict", json={"features": ROW})
        key = (
            "restpredict_requests_total",
            frozenset({"route": "/predict", "method": "POST", "status": "200"}.items()),
        )
        assert samples(first)[key] == 1
        assert key not in samples(second)


def test_every_model_call_feeds_the_batch_size_histogram(client: TestClient) -> None:
    for rows in (3, 40):  # one at a time: each is a call of its own
        assert client.post("/predict", json={"features": [ROW] * rows}).status_code == 200
    after = samples(client)
    assert after[("restpredict_batch_size_count", frozenset())] == 2
    assert after[("restpredict_batch_size_sum", frozenset())] == 43
    assert after[("restpredict_batch_size_bucket", frozenset({"le": "5.0"}.items()))] == 1


def test_model_info_names_the_model(client: TestClient, iris: LoadedModel) -> None:
    info = [labels for (name, labels) in samples(client) if name == "restpredict_model_info"]
    assert len(info) == 1
    labels = dict(info[0])
    assert labels["sha256"] == iris.sha256
    assert labels["name"] == iris.name
    assert labels["estimator"] == iris.schema.estimator
    assert labels["sklearn_version"] == iris.sklearn_running


def test_openmetrics_when_the_scraper_asks(client: TestClient) -> None:
    response = client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")
    plain = client.get("/metrics")
    assert plain.headers["content-type"].startswith("text/plain")


async def _ok(request: Request) -> Response:
    return PlainTextResponse("ok")


@pytest.mark.parametrize(
    ("method", "path", "template"),
    [
        pytest.param("GET", "/v1/models/iris", "/v1/models/{name}", id="path-parameter"),
        pytest.param(
            "POST", "/v1/models/iris:predict", "/v1/models/{name}:predict", id="verb-suffix"
        ),
        pytest.param("DELETE", "/v1/models/iris", "/v1/models/{name}", id="405-keeps-template"),
        pytest.param("GET", "/api/items/7", "/api/items/{id:int}", id="mounted-router"),
        pytest.param("GET", "/static/css/site.css", "/static/{path}", id="mounted-app"),
        pytest.param("GET", "/anything/else", UNMATCHED, id="unmatched"),
    ],
)
def test_route_template_labels_by_template(method: str, path: str, template: str) -> None:
    app = Starlette(
        routes=[
            Route("/v1/models/{name}", _ok, methods=["GET"]),
            Route("/v1/models/{name}:predict", _ok, methods=["POST"]),
            Mount("/api", routes=[Route("/items/{id:int}", _ok)]),
            Mount("/static", app=PlainTextResponse("static")),
        ]
    )
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "app": app,
        "headers": [],
    }
    assert route_template(scope) == template

"""End to end: real ``restpredict serve`` processes on loopback, driven over HTTP and the CLI."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

from restpredict.errors import ExitCode
from restpredict.model.loading import LoadedModel
from tests.e2e.servers import exchange, status_of
from tests.support.models import frame_data
from tests.support.servers import ServerProcess, free_port, spawn, wait_ready


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "restpredict", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_server_answers_the_readme_curl(serve: Callable[..., ServerProcess]) -> None:
    server = serve("--log-format", "text")  # the startup panel comes with text logs only
    response = httpx.post(f"{server.url}/predict", json={"features": [5.1, 3.5, 1.4, 0.2]})
    assert response.json() == {"predictions": ["setosa"]}
    output = server.output()
    assert "curl -s" in output and "iris-demo" in output  # the startup panel


def test_log_is_json_from_the_first_line_when_not_on_a_terminal(
    serve: Callable[..., ServerProcess],
) -> None:
    server = serve()  # stdout and stderr are a file, not a terminal, as in a container
    httpx.post(f"{server.url}/predict", json={"features": [5.1, 3.5, 1.4, 0.2]})
    lines = [line for line in server.output().splitlines() if line.strip()]
    assert lines and all(json.loads(line)["logger"] for line in lines)


def test_a_chatty_server_never_blocks_on_its_output(
    serve: Callable[..., ServerProcess],
) -> None:
    """Far more log than a pipe holds (64 KiB) while the test reads none of it: all answered."""
    server = serve()
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for _ in range(5000):
            answer = http.post("/predict", json={"features": [5.1, 3.5, 1.4, 0.2]})
            assert answer.json() == {"predictions": ["setosa"]}
            if server.log.stat().st_size > 256 * 1024:
                break
    assert server.log.stat().st_size > 256 * 1024, "the access log stayed small"
    assert server.process.poll() is None


def test_a_request_h11_refuses_is_logged_once(serve: Callable[..., ServerProcess]) -> None:
    """Its access line says it all: uvicorn's own "Invalid HTTP request received." is not added."""
    server = serve("--http", "h11")
    for bad in (
        b"GET /health/live HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    ):
        assert status_of(exchange(server.url, bad)) == 400  # no Host; two Hosts
    lines = [line for line in server.output().splitlines() if line.strip()]
    refused = [json.loads(line) for line in lines if '"status":400' in line.replace(" ", "")]
    assert [(line["logger"], line["status"]) for line in refused] == [
        ("restpredict.access", 400)
    ] * 2
    assert not [line for line in lines if "Invalid HTTP request" in line], lines


def test_predict_cli_against_a_server(
    serve: Callable[..., ServerProcess], iris_path: Path, iris: LoadedModel, tmp_path: Path
) -> None:
    server = serve(str(iris_path))
    one = cli("predict", "--url", server.url, "-f", "6.7,3.0,5.2,2.3", "--proba", "-o", "json")
    assert one.returncode == 0, one.stderr
    record = json.loads(one.stdout)
    assert record["prediction"] == "virginica"
    assert set(record["probabilities"]) == {"setosa", "versicolor", "virginica"}

    rows = np.random.default_rng(2).uniform(0, 7, size=(250, 4))
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r.tolist()) for r in rows))
    many = cli("predict", "--url", server.url, "-i", str(path), "--chunk-size", "100", "-o", "json")
    assert many.returncode == 0, many.stderr
    got = [json.loads(line)["prediction"] for line in many.stdout.splitlines()]
    assert got == iris.estimator.predict(rows).tolist()


def test_dataframe_pipeline_with_strings(
    serve: Callable[..., ServerProcess], frame_path: Path, frame_model: LoadedModel
) -> None:
    server = serve(str(frame_path))
    frame, _ = frame_data()
    records = frame.head(10).to_dict(orient="records")
    response = httpx.post(f"{server.url}/predict", json={"instances": records})
    assert response.json()["predictions"] == frame_model.estimator.predict(frame.head(10)).tolist()
    bad = httpx.post(f"{server.url}/predict", json={"instances": [{"size": 1.0}]})
    assert bad.status_code == 422
    assert "color" in bad.json()["detail"]


def test_remote_error_is_one_line_with_the_server_detail(
    serve: Callable[..., ServerProcess], iris_path: Path
) -> None:
    server = serve(str(iris_path))
    result = cli("predict", "--url", server.url, "-f", "1,2")
    assert result.returncode == ExitCode.REMOTE
    assert result.stderr.strip() == (
        "error: server answered 422: expected 4 features per row, got 2"
    )


def test_two_workers_serve(serve: Callable[..., ServerProcess], iris_path: Path) -> None:
    server = serve(str(iris_path), "--workers", "2")
    with httpx.Client(base_url=server.url) as client:
        body = {"features": [6.7, 3.0, 5.2, 2.3]}
        answers = {client.post("/predict", json=body).json()["predictions"][0] for _ in range(20)}
    assert answers == {"virginica"}


def test_port_in_use_exits_3_with_one_line(iris_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", str(iris_path), "--port", str(port))
    assert result.returncode == ExitCode.STARTUP
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_sha256_pin_from_config_file(
    serve: Callable[..., ServerProcess], iris_path: Path, iris: LoadedModel, tmp_path: Path
) -> None:
    config = tmp_path / "restpredict.yaml"
    config.write_text(f"model: {iris_path}\nsha256: {iris.sha256}\nmodel_name: flowers\n")
    server = serve("--config", str(config))
    assert httpx.get(f"{server.url}/metadata").json()["name"] == "flowers"
    config.write_text(f"model: {iris_path}\nsha256: {'ab' * 32}\n")
    result = cli("serve", "--config", str(config), "--port", "1")
    assert result.returncode == ExitCode.STARTUP
    assert "refusing to unpickle" in result.stderr


# Imported lazily, where they are used, so `serve` does not pay for them before its first
# prediction: the client and other commands' code, Jinja2 and Swagger UI (first GET /docs), the
# OpenAPI builders (first GET /openapi.json), PyYAML (a config file), h11 (no httptools), skops
# (.skops files), ONNX (--backend onnx) and any WebSocket library (restpredict has no WebSocket
# routes, so uvicorn runs with ws="none"). Rich's progress bar is not listed: scikit-learn
# imports it itself. Each name also covers its submodules.
NOT_NEEDED_TO_SERVE = (
    "httpx",
    "jinja2",
    "swagger_ui_bundle",
    "yaml",
    "h11",
    "uvicorn.protocols.http.h11_impl",
    "skops",
    "onnxruntime",
    "skl2onnx",
    "websockets",
    "wsproto",
    "uvicorn.protocols.websockets",
    "restpredict.cli.client",
    "restpredict.ship.dockerize",
    "restpredict.ship.deploy_settings",
    "restpredict.ship.starter",
    # The OpenAPI document is built on the first /openapi.json (openapi.docs alone is needed).
    "restpredict.openapi.document",
    "restpredict.openapi.context",
    "restpredict.openapi.core",
    "restpredict.openapi.kserve_v1",
    "restpredict.openapi.open_inference",
    "restpredict.openapi.mlflow",
    "restpredict.openapi.admin",
    "restpredict.openapi.protection",
)


def test_serve_imports_nothing_it_does_not_need(iris_path: Path, tmp_path: Path) -> None:
    """Launch, first prediction and shutdown, with every import logged by -X importtime.

    The log is kept in the test's folder: the import log is read after the server stopped.
    """
    port = free_port()
    log = tmp_path / "serve.log"
    command = [sys.executable, "-X", "importtime", "-m", "restpredict", "serve"]
    command += [str(iris_path), "--port", str(port)]
    server = spawn(command, f"http://127.0.0.1:{port}", log=log)
    try:
        wait_ready(server)
        response = httpx.post(f"{server.url}/predict", json={"features": [5.1, 3.5, 1.4, 0.2]})
        assert response.json() == {"predictions": ["setosa"]}
    finally:
        server.stop()
    imported = {
        line.rpartition("|")[2].strip()
        for line in log.read_text().splitlines()
        if line.startswith("import time:")
    }
    assert {"sklearn", "restpredict.app", "restpredict.server.run"} <= imported  # the log is whole
    needless = [
        lazy
        for lazy in NOT_NEEDED_TO_SERVE
        if any(name == lazy or name.startswith(lazy + ".") for name in imported)
    ]
    assert not needless, f"serve imported {needless}"


def test_an_upgrade_request_is_answered_as_plain_http_without_log_noise(
    serve: Callable[..., ServerProcess], iris_path: Path
) -> None:
    """No WebSocket routes, so no WebSocket protocol: the Upgrade header is ignored."""
    server = serve(str(iris_path))
    headers = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    for _ in range(3):
        response = httpx.get(f"{server.url}/health/live", headers=headers)
        assert response.status_code == 200, response.text
    output = server.output()
    assert "upgrade" not in output.lower() and "websocket" not in output.lower(), output

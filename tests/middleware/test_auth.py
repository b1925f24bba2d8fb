"""Bearer auth, CORS, secrets handling and the exposure warning."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient
from typer.testing import CliRunner

from restpredict.app import create_app
from restpredict.cli import app as cli
from restpredict.errors import ConfigError
from restpredict.model.loading import LoadedModel
from restpredict.server.exposure import exposure_warning
from restpredict.settings import Settings, load_settings
from tests.routes.test_core import ROW, problem

KEY = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def secured(iris: LoadedModel) -> Iterator[TestClient]:
    settings = Settings(api_key=SecretStr(KEY))
    with TestClient(create_app(settings, iris), raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"Authorization": "Bearer wrong"}, id="wrong"),
        pytest.param({"Authorization": f"Bearer {KEY}x"}, id="longer"),
        pytest.param({"Authorization": f"Basic {KEY}"}, id="wrong-scheme"),
        pytest.param({"Authorization": KEY}, id="no-scheme"),
        pytest.param({"X-API-Key": KEY}, id="other-header"),
    ],
)
def test_every_refusal_is_the_same_401(secured: TestClient, headers: dict[str, str]) -> None:
    response = secured.post("/predict", json={"features": ROW}, headers=headers)
    body = problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")
    reference = secured.post("/predict", json={"features": ROW})
    assert body == reference.json()
    assert KEY not in response.text


def test_the_right_token_is_served(secured: TestClient) -> None:
    for scheme in ("Bearer", "bearer"):
        response = secured.post(
            "/predict", json={"features": ROW}, headers={"Authorization": f"{scheme} {KEY}"}
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": ["setosa"]}


def test_probes_are_open_and_everything_else_is_not(secured: TestClient) -> None:
    assert secured.get("/health/live").status_code == 200
    assert secured.get("/health/ready").status_code == 200
    assert secured.get("/metadata").status_code == 401
    assert secured.get("/no/such/route").status_code == 401  # no route probing either


def test_open_paths_are_configurable(iris: LoadedModel) -> None:
    settings = Settings(api_key=SecretStr(KEY), open_paths=("/metadata",))
    with TestClient(create_app(settings, iris)) as client:
        assert client.get("/metadata").status_code == 200
        assert client.get("/health/ready").status_code == 401


def test_the_key_comes_from_a_file_or_the_environment_and_never_prints(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    from_file = load_settings(api_key_file=key_file)
    from_env = load_settings(environ={"RESTPREDICT_API_KEY": KEY})
    for settings in (from_file, from_env):
        assert settings.api_key is not None
        assert settings.api_key.get_secret_value() == KEY
        assert KEY not in repr(settings) and KEY not in str(settings)
    with pytest.raises(ConfigError) as both:
        load_settings(environ={"RESTPREDICT_API_KEY": KEY}, api_key_file=key_file)
    assert "not both" in str(both.value) and KEY not in str(both.value)
    with pytest.raises(ConfigError) as bad:
        load_settings(environ={"RESTPREDICT_API_KEY": KEY + " x"})
    assert "RESTPREDICT_API_KEY" in str(bad.value) and KEY not in str(bad.value)
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(api_key_file=tmp_path / "missing")


def test_a_key_file_in_yaml_is_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "key").write_text(KEY)
    (tmp_path / "restpredict.yaml").write_text("api_key_file: key\n")
    settings = load_settings(tmp_path / "restpredict.yaml")
    assert settings.api_key is not None and settings.api_key.get_secret_value() == KEY


def test_the_key_is_never_a_command_line_argument() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"], env={"COLUMNS": "200"})
    assert "--api-key-file" in result.output
    assert "--api-key " not in result.output
    refused = CliRunner().invoke(cli, ["serve", "--api-key", KEY])
    assert refused.exit_code == 2


def test_exposure_warning() -> None:
    assert exposure_warning(Settings()) is None
    assert exposure_warning(Settings(host="::1")) is None
    assert exposure_warning(Settings(host="127.0.0.2")) is None
    assert exposure_warning(Settings(host="0.0.0.0", api_key=SecretStr(KEY))) is None
    for host in ("0.0.0.0", "::", "10.1.2.3", "example.org"):
        warning = exposure_warning(Settings(host=host))
        assert warning is not None and host in warning and "API key" in warning


@pytest.mark.usefixtures("restored_logging")
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_serve_warns_when_exposed_without_a_key(log_format: str) -> None:
    # 192.0.2.1 (TEST-NET-1) is not ours, so the bind fails and nothing is exposed.
    args = ["serve", "--host", "192.0.2.1", "--port", "8000", "--log-format", log_format]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 3, result.output
    assert "without an API key" in result.output
    first = result.output.splitlines()[0]
    if log_format == "text":
        assert first.startswith("warning:")
    else:  # in a container: a JSON log line like every other, from the first line
        assert json.loads(first)["level"] == "warning"


def test_cors_is_off_by_default(iris: LoadedModel) -> None:
    with TestClient(create_app(Settings(), iris)) as client:
        response = client.options(
            "/predict",
            headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in response.headers
        simple = client.post(
            "/predict", json={"features": ROW}, headers={"Origin": "https://app.example"}
        )
        assert "access-control-allow-origin" not in simple.headers


def test_cors_allows_only_named_origins(iris: LoadedModel) -> None:
    settings = Settings(cors_origins=("https://app.example",), api_key=SecretStr(KEY))
    with TestClient(create_app(settings, iris)) as client:
        preflight = client.options(
            "/predict",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200  # answered before auth: browsers send no token
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        other = client.options(
            "/predict",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers
        actual = client.post(
            "/predict",
            json={"features": ROW},
            headers={"Origin": "https://app.example", "Authorization": f"Bearer {KEY}"},
        )
        assert actual.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-model-sha256" in actual.headers["access-control-expose-headers"].lower()


def test_websockets_need_the_key_too(secured: TestClient) -> None:
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as refused, secured.websocket_connect("/predict"):
        pass
    assert refused.value.code == 1008

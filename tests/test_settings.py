"""Settings: precedence, validation, and errors that name the key, source and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from restpredict.errors import ConfigError
from restpredict.settings import Settings, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "restpredict.yaml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    settings = load_settings()
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.model is None


def test_precedence_file_then_env_then_flags(tmp_path: Path) -> None:
    config = write(tmp_path, "port: 9000\nworkers: 2\nmax_rows: 10\n")
    env = {"RESTPREDICT_PORT": "9100", "RESTPREDICT_WORKERS": "3", "OTHER": "x"}
    settings = load_settings(config, environ=env, port=9200, workers=None)
    assert settings.port == 9200  # flag beats env
    assert settings.workers == 3  # env beats file
    assert settings.max_rows == 10  # file beats default


def test_model_path_is_relative_to_the_config_file(tmp_path: Path) -> None:
    config = write(tmp_path, "model: sub/model.pkl\n")
    assert load_settings(config).model == str(tmp_path / "sub" / "model.pkl")


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError):
        Settings().port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("port: 8000\nprot: 1\n", "line 2: unknown key 'prot'", id="unknown-key"),
        pytest.param("host: x\nport: 70000\n", "line 2: port: Input should be less", id="range"),
        pytest.param(
            "workers: many\n", "line 1: workers: Input should be a valid integer", id="type"
        ),
        pytest.param("sha256: abc\n", "sha256: must be 64 hexadecimal characters", id="sha"),
        pytest.param(
            'host: "a\\nb"\n', "host: must be non-empty and contain no control", id="newline"
        ),
        pytest.param("port: [1\n", "invalid YAML", id="bad-yaml"),
        pytest.param("- 1\n- 2\n", "expected a mapping", id="not-a-mapping"),
        pytest.param("!!python/object:os.system {}\n", "invalid YAML", id="unsafe-tag"),
    ],
)
def test_bad_config_names_file_key_and_line(tmp_path: Path, text: str, message: str) -> None:
    config = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    assert str(config) in info.value.detail
    assert message in info.value.detail


def test_bad_env_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="environment: RESTPREDICT_PORT"):
        load_settings(environ={"RESTPREDICT_PORT": "eighty"})


def test_bad_flag_names_the_command_line() -> None:
    with pytest.raises(ConfigError, match="command line: workers"):
        load_settings(workers=0)


def test_trusted_types_from_env_are_comma_separated() -> None:
    env = {"RESTPREDICT_TRUSTED_TYPES": "a.B, c.D"}
    assert load_settings(environ=env).trusted_types == ("a.B", "c.D")


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "absent.yaml")


def test_empty_config_file_is_defaults(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "")) == Settings()


def test_serve_leaves_the_deploy_sections_to_dockerize(tmp_path: Path) -> None:
    """One file for both: ``serve`` reads its keys, ``dockerize`` also checks docker/kubernetes."""
    from restpredict.ship.deploy_settings import DeploySettings, load_deploy_settings

    config = write(tmp_path, "max_rows: 7\ndocker:\n  port: not-a-port\nkubernetes: {}\n")
    settings = load_settings(config)
    assert type(settings) is Settings and settings.max_rows == 7
    assert "docker" not in settings.model_dump()
    with pytest.raises(ConfigError, match=r"line 3: docker\.port: Input should be a valid integer"):
        load_deploy_settings(config)
    config.write_text("max_rows: 7\ndocker:\n  port: 9000\n")
    deploy = load_deploy_settings(config, max_rows=9)
    assert isinstance(deploy, DeploySettings)
    assert (deploy.max_rows, deploy.docker.port, deploy.kubernetes.replicas) == (9, 9000, 2)
    # A misspelt section is still an unknown key, for both.
    config.write_text("dokcer:\n  port: 9000\n")
    with pytest.raises(ConfigError, match="unknown key 'dokcer'") as error:
        load_settings(config)
    assert "docker" in str(error.value).split("known keys:")[1]
    with pytest.raises(ConfigError, match="unknown key 'dokcer'"):
        load_deploy_settings(config)

"""``restpredict init``: the starter restpredict.yaml, through the real CLI."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from restpredict.cli import app
from restpredict.errors import ExitCode
from restpredict.model.loading import LoadedModel
from restpredict.settings import load_settings
from restpredict.ship.deploy_settings import (
    DockerSettings,
    KubernetesSettings,
    load_deploy_settings,
)
from restpredict.ship.dockerize import ModelFacts, plan_build, render_build_context

runner = CliRunner()


def init(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["init", *args])
    return result.exit_code, result.stdout, result.stderr


def test_init_fills_the_config_from_the_model(
    tmp_path: Path, iris_path: Path, iris: LoadedModel
) -> None:
    config = tmp_path / "conf" / "restpredict.yaml"
    config.parent.mkdir()
    code, out, err = init(str(iris_path), "-o", str(config))
    assert code == 0, err
    assert "restpredict dockerize --config" in out
    text = config.read_text()
    assert f"Pickled with scikit-learn {iris.sklearn_trained}" in text
    assert "Classes: setosa, versicolor, virginica" in text
    settings = load_deploy_settings(config)  # the file dockerize reads
    assert settings.model is not None and Path(settings.model).resolve() == iris_path.resolve()
    assert settings.sha256 == iris.sha256
    assert settings.docker.image == "iris"
    assert settings.kubernetes.name == "iris"
    assert load_settings(config).sha256 == iris.sha256  # and serve: its sections left alone


def test_every_setting_is_documented(tmp_path: Path, iris_path: Path) -> None:
    config = tmp_path / "restpredict.yaml"
    assert init(str(iris_path), "-o", str(config))[0] == 0
    text = config.read_text()
    for section in (DockerSettings, KubernetesSettings):
        for key, field in section.model_fields.items():
            assert re.search(rf"^  (# )?{key}: ", text, re.M), key
            assert field.description and field.description.split()[0] in text


def test_uncommenting_every_default_changes_nothing(tmp_path: Path, iris_path: Path) -> None:
    """The commented values are the real defaults (or what they resolve to for this model)."""
    shutil.copy(iris_path, tmp_path / "iris.joblib")
    config = tmp_path / "restpredict.yaml"
    assert init(str(tmp_path / "iris.joblib"), "-o", str(config))[0] == 0
    explicit = tmp_path / "explicit.yaml"
    keys = "|".join({*DockerSettings.model_fields, *KubernetesSettings.model_fields})
    explicit.write_text(re.sub(rf"^  # (({keys}): )", r"  \1", config.read_text(), flags=re.M))
    assert explicit.read_text() != config.read_text()
    sha256 = load_settings(config).sha256
    assert sha256 is not None
    facts = ModelFacts("iris.joblib", sha256, "1.9.1")
    plain = render_build_context(plan_build(load_deploy_settings(config), facts), {})
    spelled = render_build_context(plan_build(load_deploy_settings(explicit), facts), {})
    assert spelled == plain


def test_init_refuses_to_overwrite(tmp_path: Path, iris_path: Path) -> None:
    config = tmp_path / "restpredict.yaml"
    config.write_text("port: 9000\n")
    code, _, err = init(str(iris_path), "-o", str(config))
    assert code == ExitCode.CONFIG
    assert "exists; pass --force" in err
    assert config.read_text() == "port: 9000\n"
    assert init(str(iris_path), "-o", str(config), "--force")[0] == 0
    assert "sha256:" in config.read_text()


@pytest.mark.parametrize(
    ("name", "message"),
    [("absent.joblib", "cannot read model file"), ("model.csv", "unknown model format")],
)
def test_init_needs_a_loadable_model(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / "model.csv").write_text("x")
    code, _, err = init(str(tmp_path / name), "-o", str(tmp_path / "c.yaml"))
    assert code == ExitCode.STARTUP
    assert message in err
    assert not (tmp_path / "c.yaml").exists()

"""The configured set of models: names from files, versions from folders, duplicates refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from restpredict.errors import ConfigError, NotFoundError
from restpredict.model.catalog import catalog, catalogued, version_order, with_routing
from restpredict.model.prepare import prepare_models
from restpredict.settings import ModelEntry, Settings, load_settings


def test_a_folder_serves_every_model_file_and_triton_version_folders(
    tmp_path: Path, iris_path: Path, regressor_path: Path, iris_int_path: Path
) -> None:
    shutil.copy(iris_path, tmp_path / "iris.joblib")
    shutil.copy(regressor_path, tmp_path / "petal width.pkl")
    (tmp_path / "notes.txt").write_text("not a model")
    for version, source in (("1", iris_path), ("2", iris_int_path)):
        (tmp_path / "flowers" / version).mkdir(parents=True)
        shutil.copy(source, tmp_path / "flowers" / version / "model.joblib")
    found = [(c.name, c.version) for c in catalog(Settings(model_dir=tmp_path))]
    assert found == [("flowers", "1"), ("flowers", "2"), ("iris", None), ("petal-width", None)]


def test_duplicate_names_are_refused_naming_both_sources(tmp_path: Path, iris_path: Path) -> None:
    other = tmp_path / "elsewhere"
    other.mkdir()
    copy = shutil.copy(iris_path, other / "iris.joblib")
    settings = Settings(models=(ModelEntry(source=str(iris_path)), ModelEntry(source=str(copy))))
    with pytest.raises(ConfigError) as raised:
        catalog(settings)
    assert str(iris_path) in raised.value.detail
    assert str(copy) in raised.value.detail


def test_each_model_gets_its_own_options(iris_path: Path, regressor_path: Path) -> None:
    settings = Settings(
        backend="auto",
        models=(
            ModelEntry(source=str(iris_path), name="a", backend="sklearn", max_batch_size=4),
            ModelEntry(source=str(regressor_path), version="3"),
        ),
    )
    first, second = catalog(settings)
    assert (first.settings.model, first.settings.model_name) == (str(iris_path), "a")
    assert (first.settings.backend, first.settings.max_batch_size) == ("sklearn", 4)
    assert (second.name, second.version, second.settings.backend) == ("regressor", "3", "auto")
    prepared = prepare_models(settings)
    assert [(m.name, m.version) for _, m in prepared] == [("a", None), ("regressor", "3")]
    assert prepared[0][1].metadata()["backend"] == "sklearn"


def test_an_unknown_default_model_is_refused(iris_path: Path) -> None:
    settings = Settings(models=(ModelEntry(source=str(iris_path)),), default_model="nope")
    with pytest.raises(ConfigError, match="no model is named 'nope'; served: iris"):
        catalog(settings)


def test_only_configured_models_can_be_looked_up(iris_path: Path) -> None:
    settings = Settings(models=(ModelEntry(source=str(iris_path)),))
    assert [c.name for c in catalogued(settings, "iris", None)] == ["iris"]
    with pytest.raises(NotFoundError, match="configured: iris"):
        catalogued(settings, "../../etc/passwd", None)


def test_versions_sort_numbers_above_text() -> None:
    ordered = sorted(["10", "2", "beta", None, "1"], key=version_order)
    assert ordered == [None, "beta", "1", "2", "10"]


def test_yaml_models_are_relative_to_the_file(tmp_path: Path, iris_path: Path) -> None:
    shutil.copy(iris_path, tmp_path / "iris.joblib")
    config = tmp_path / "restpredict.yaml"
    config.write_text(
        "models:\n"
        "  - source: iris.joblib\n"
        "    name: flowers\n"
        "    version: '2'\n"
        "default_model: flowers\n"
    )
    settings = load_settings(config)
    assert settings.models[0].source == str(tmp_path / "iris.joblib")
    assert settings.several_models


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        pytest.param({"source": "a.joblib", "name": "a/b"}, "URL path segment", id="slash"),
        pytest.param({"source": "a.joblib", "nam": "a"}, "nam", id="unknown-key"),
    ],
)
def test_bad_entries_name_the_key(tmp_path: Path, entry: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(None, models=[entry])


def test_one_model_and_several_do_not_mix(iris_path: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not both"):
        load_settings(None, model=str(iris_path), model_dir=str(tmp_path))


def test_a_reload_takes_only_traffic_and_shadows_and_checks_their_versions(
    iris_path: Path, iris_int_path: Path
) -> None:
    entries = (
        ModelEntry(source=str(iris_path), name="flowers", version="1"),
        ModelEntry(source=str(iris_int_path), name="flowers", version="2"),
    )
    current = Settings(models=entries, traffic={"flowers": {"1": 100}})
    fresh = Settings(
        models=entries[:1], port=9, traffic={"flowers": {"2": 1}}, shadow={"flowers": "1"}
    )
    rerouted = with_routing(current, fresh)
    assert (rerouted.traffic, rerouted.shadow) == ({"flowers": {"2": 1}}, {"flowers": "1"})
    assert (rerouted.models, rerouted.port) == (entries, current.port)  # the rest: a restart's
    with pytest.raises(ConfigError, match="flowers has no version 3"):
        with_routing(current, Settings(models=entries, traffic={"flowers": {"3": 1}}))

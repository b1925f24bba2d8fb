"""The supervisor's models with several workers: what a load or unload changes, and the index
every worker answers with."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from restpredict.model.prepare import prepare_models
from restpredict.server.repository import FleetModels, Refusal
from restpredict.settings import Settings


@pytest.fixture
def folder(tmp_path: Path, iris_path: Path, regressor_path: Path) -> Path:
    for path in (iris_path, regressor_path):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def states(models: FleetModels) -> list[tuple[str, str, str]]:
    return [(e.name, e.state, e.reason) for e in models.index()]


def test_an_unload_leaves_the_name_out_and_is_unloaded_once_drained(folder: Path) -> None:
    settings = Settings(model_dir=folder)
    models = FleetModels(settings, prepare_models(settings))
    before = models.generation
    models.unload("iris")
    assert [item.name for item, _ in models.prepared] == ["regressor"]
    assert models.generation != before and models.draining
    assert states(models)[0] == ("iris", "UNLOADING", "draining requests in flight")
    models.drained()
    assert states(models) == [("iris", "UNAVAILABLE", "unloaded"), ("regressor", "READY", "")]
    with pytest.raises(Refusal, match="'iris' is not loaded") as refused:
        models.unload("iris")
    assert refused.value.status == 404
    models.begin_load("iris")
    assert states(models)[0] == ("iris", "LOADING", "loading")
    models.load("iris")
    assert states(models)[0] == ("iris", "READY", "")
    assert models.generation == before  # the same files: the same set


def test_loading_the_same_file_again_keeps_the_shared_copy(folder: Path) -> None:
    settings = Settings(model_dir=folder)
    models = FleetModels(settings, prepare_models(settings))
    kept = models.prepared[0][1]
    models.load("iris")
    assert models.prepared[0][1] is kept


def test_a_load_that_fails_keeps_what_served_and_says_why(folder: Path) -> None:
    settings = Settings(model_dir=folder)
    models = FleetModels(settings, prepare_models(settings))
    before = models.generation
    (folder / "iris.joblib").write_bytes(b"not a model")
    with pytest.raises(Refusal, match="iris") as refused:
        models.load("iris")
    assert refused.value.status == 409
    assert models.generation == before
    assert states(models)[0] == ("iris", "READY", "")
    with pytest.raises(Refusal, match="configured: iris, regressor") as unknown:
        models.load("ghost")
    assert unknown.value.status == 404


def test_new_traffic_is_a_new_set_for_the_workers(
    tmp_path: Path, iris_path: Path, iris_int_path: Path
) -> None:
    for version, source in (("1", iris_path), ("2", iris_int_path)):
        (tmp_path / "flowers" / version).mkdir(parents=True)
        shutil.copy(source, tmp_path / "flowers" / version / "model.joblib")
    settings = Settings(model_dir=tmp_path)
    models = FleetModels(settings, prepare_models(settings))
    before = models.generation
    models.settings = settings.model_copy(update={"traffic": {"flowers": {"1": 1.0}}})
    assert models.generation != before

"""MLflow model folders (read without MLflow) and registries (through mlflow-skinny)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from restpredict.errors import (
    IntegrityError,
    SourceNotFoundError,
    SourceUnavailableError,
    UnsupportedModelError,
)
from restpredict.model.loading import load_model
from restpredict.sources import resolve
from tests.sources.helpers import same_answers

# MLflow's SQLAlchemy store uses a loader strategy SQLAlchemy 2.1 deprecates: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")


@pytest.mark.parametrize("fixture", ["mlflow_dir", "mlflow_pickle_dir"])
def test_local_folder(
    fixture: str, request: pytest.FixtureRequest, iris_path: Path, tmp_path: Path
) -> None:
    folder: Path = request.getfixturevalue(fixture)
    resolved = resolve(str(folder), cache_dir=tmp_path)
    info = resolved.mlflow
    assert info is not None
    assert info.serialization_format == ("skops" if fixture == "mlflow_dir" else "cloudpickle")
    assert info.input_types == ("double",) * 4
    assert info.input_names is not None and info.input_names[0] == "sepal length (cm)"
    assert any(r.startswith("scikit-learn==") for r in info.requirements)
    assert info.python_version is not None
    assert resolved.local_path == folder
    assert list(tmp_path.iterdir()) == []  # a local folder is used where it is
    same_answers(resolved, iris_path)


def test_folder_without_sklearn_flavor(mlflow_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "xgb"
    shutil.copytree(mlflow_dir, folder)
    document = yaml.safe_load((folder / "MLmodel").read_text())
    document["flavors"] = {"python_function": document["flavors"]["python_function"], "xgboost": {}}
    (folder / "MLmodel").write_text(yaml.safe_dump(document))
    with pytest.raises(
        UnsupportedModelError, match=r"no sklearn flavor \(flavors: python_function"
    ):
        resolve(str(folder), cache_dir=tmp_path)


def test_pickled_model_outside_the_folder_is_refused(mlflow_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(mlflow_dir, folder)
    text = (folder / "MLmodel").read_text()
    text = text.replace("pickled_model: model.skops", "pickled_model: ../x.pkl")
    (folder / "MLmodel").write_text(text)
    (tmp_path / "x.pkl").write_bytes(b"x")
    with pytest.raises(UnsupportedModelError, match="outside the folder"):
        resolve(str(folder), cache_dir=tmp_path)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch, store: str) -> Iterator[object]:
    """The store as ``MLFLOW_TRACKING_URI``, with ``champion`` on version 1."""
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    client.set_registered_model_alias("iris", "champion", "1")
    yield client


def test_registry_version_and_alias(registry: object, iris_path: Path, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    assert isinstance(registry, MlflowClient)
    by_version = resolve("models:/iris/1", cache_dir=tmp_path)
    assert by_version.model_file.name == "model.skops"
    assert by_version.revision == "models:/iris/1"
    same_answers(by_version, iris_path)

    champion = resolve("models:/iris@champion", cache_dir=tmp_path)
    assert champion.revision == "models:/iris/1"
    assert champion.model_file.read_bytes() == by_version.model_file.read_bytes()

    registry.set_registered_model_alias("iris", "champion", "2")
    moved = resolve("models:/iris@champion", cache_dir=tmp_path)
    assert moved.revision == "models:/iris/2"
    assert moved.model_file.name == "model.pkl"
    same_answers(moved, iris_path)

    offline = resolve("models:/iris@champion", cache_dir=tmp_path, offline=True)
    assert offline.model_file == moved.model_file


def test_registry_errors(registry: object, tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match=r"^models:/iris/9: not found"):
        resolve("models:/iris/9", cache_dir=tmp_path)
    with pytest.raises(SourceNotFoundError, match=r"^models:/iris@nobody: not found"):
        resolve("models:/iris@nobody", cache_dir=tmp_path)
    with pytest.raises(SourceUnavailableError, match="offline"):
        resolve("models:/iris/2", cache_dir=tmp_path, offline=True)


def test_pin_applies_to_the_registry_model_file(registry: object, tmp_path: Path) -> None:
    resolved = resolve("models:/iris/2", cache_dir=tmp_path)
    with pytest.raises(IntegrityError):
        load_model(resolved.model_file, sha256="f" * 64)

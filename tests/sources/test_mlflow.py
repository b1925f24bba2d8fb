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


CODE = """
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class Doubled(BaseEstimator, TransformerMixin):
    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X):
        return np.asarray(X, dtype=float) * 2.0
"""


def test_folder_code_is_importable_as_mlflow_makes_it(tmp_path: Path) -> None:
    """A pickle needing a module from the folder's code/ loads, as mlflow.sklearn would."""
    import sys

    import joblib
    import sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from restpredict.model.prepare import load_source
    from restpredict.settings import Settings

    folder = tmp_path / "custom"
    (folder / "code").mkdir(parents=True)
    (folder / "code" / "rp_mlflow_doubled.py").write_text(CODE)
    sys.path.insert(0, str(folder / "code"))
    try:
        import rp_mlflow_doubled  # type: ignore[import-not-found]

        iris = load_iris()
        model = make_pipeline(rp_mlflow_doubled.Doubled(), LogisticRegression(max_iter=1000))
        model.fit(iris.data, iris.target)
        joblib.dump(model, folder / "model.pkl")
    finally:
        sys.path.remove(str(folder / "code"))
        sys.modules.pop("rp_mlflow_doubled", None)
    flavor = {
        "pickled_model": "model.pkl",
        "serialization_format": "cloudpickle",
        "sklearn_version": sklearn.__version__,
        "code": "code",
    }
    (folder / "MLmodel").write_text(yaml.safe_dump({"flavors": {"sklearn": flavor}}))
    try:
        loaded = load_source(str(folder), Settings(), allow_version_mismatch=False)
        got = loaded.predict(iris.data[::10]).labels
        assert got is not None and got.tolist() == model.predict(iris.data[::10]).tolist()
        assert loaded.origin["mlflow"]["serialization_format"] == "cloudpickle"
    finally:
        sys.path[:] = [p for p in sys.path if p != str((folder / "code").resolve())]
        sys.modules.pop("rp_mlflow_doubled", None)


def test_recorded_sklearn_version_is_checked_before_unpickling(
    mlflow_pickle_dir: Path, tmp_path: Path
) -> None:
    from restpredict.errors import VersionMismatchError
    from restpredict.model.prepare import load_source
    from restpredict.settings import Settings

    folder = tmp_path / "old"
    shutil.copytree(mlflow_pickle_dir, folder)
    (folder / "model.pkl").write_bytes(b"not a pickle: never read")
    text = (folder / "MLmodel").read_text()
    (folder / "MLmodel").write_text(text.replace("sklearn_version: ", "sklearn_version: 0.24.2 #"))
    with pytest.raises(VersionMismatchError, match=r"saved with scikit-learn 0\.24\.2"):
        load_source(str(folder), Settings(), allow_version_mismatch=False)


def test_signature_names_a_model_fitted_on_arrays(
    mlflow_pickle_dir: Path, iris_path: Path, tmp_path: Path
) -> None:
    """The iris pipeline was fitted on a NumPy array: its MLflow signature supplies the
    names, which requests may then use, while the model still gets arrays (no warning)."""
    from sklearn.datasets import load_iris
    from starlette.testclient import TestClient

    from restpredict.app import create_app
    from restpredict.model.prepare import prepare_model
    from restpredict.settings import Settings

    assert load_model(iris_path).schema.feature_names is None  # the model itself has none
    settings = Settings(model=str(mlflow_pickle_dir), cache_dir=tmp_path)
    model = prepare_model(settings)
    names = tuple(load_iris().feature_names)
    assert model.schema.feature_names == names
    assert model.schema.feature_kinds == ("number",) * 4
    assert model.schema.signature_names and not model.schema.wants_frame
    rows = load_iris().data[::30].tolist()
    expected = load_model(iris_path).predict(rows).labels.tolist()  # type: ignore[union-attr]
    with TestClient(create_app(settings, model)) as client:
        named = [dict(zip(names, row)) for row in rows]
        by_name = client.post("/predict", json={"instances": named})
        assert by_name.status_code == 200, by_name.text
        assert by_name.json()["predictions"] == expected
        by_position = client.post("/predict", json={"features": rows[0]})
        assert by_position.json()["predictions"] == expected[:1]
        missing = client.post("/predict", json={"instances": [dict(list(named[0].items())[:3])]})
        assert missing.status_code == 422
        assert "petal width (cm)" in missing.json()["detail"]
        meta = client.get("/metadata").json()
        assert meta["feature_names"] == list(names)

"""Loading, verifying and inspecting model files."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest
import sklearn
import sklearn.base
from sklearn.cluster import KMeans
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from restpredict.errors import (
    IntegrityError,
    ModelLoadError,
    UnsupportedModelError,
    VersionMismatchError,
)
from restpredict.model.loading import load_model
from restpredict.model.prepare import load_configured_model
from restpredict.settings import Settings


def test_loads_joblib_and_derives_schema(iris_path: Path) -> None:
    model = load_model(iris_path)
    assert model.name == "iris"
    assert model.sha256 == hashlib.sha256(iris_path.read_bytes()).hexdigest()
    assert model.schema.n_features == 4
    assert model.schema.feature_names is None
    assert model.schema.classes == ("setosa", "versicolor", "virginica")
    assert model.schema.has_proba
    assert model.schema.task == "classification"
    assert model.sklearn_trained == sklearn.__version__


def test_dataframe_pipeline_schema(frame_path: Path) -> None:
    schema = load_model(frame_path).schema
    assert schema.feature_names == ("size", "color", "weight")
    assert schema.feature_kinds == ("number", "string", "number")
    assert schema.example is not None
    assert schema.example[1] in ("blue", "green", "red")


def test_regressor_schema(regressor_path: Path) -> None:
    schema = load_model(regressor_path).schema
    assert schema.task == "regression"
    assert schema.classes is None
    assert not schema.has_proba


def test_plain_pickle_suffix(tmp_path: Path, iris_int_path: Path) -> None:
    path = tmp_path / "m.pickle"
    path.write_bytes(pickle.dumps(joblib.load(iris_int_path)))
    assert load_model(path).schema.classes == (0, 1, 2)


def test_clusterer_task(tmp_path: Path) -> None:
    path = tmp_path / "kmeans.joblib"
    joblib.dump(KMeans(n_clusters=2, n_init=1, random_state=0).fit(load_iris().data), path)
    assert load_model(path).schema.task == "clustering"


def test_sha256_pin_accepts_the_right_hash(iris_path: Path) -> None:
    digest = hashlib.sha256(iris_path.read_bytes()).hexdigest()
    assert load_model(iris_path, sha256=digest).sha256 == digest


def test_sha256_mismatch_refuses_before_unpickling(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple:
            return (Path.touch, (marker,))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(IntegrityError, match=r"expected 0{64}"):
        load_model(path, sha256="0" * 64)
    assert not marker.exists()


def test_unknown_suffix(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"x")
    with pytest.raises(UnsupportedModelError, match=r"unknown model format '.onnx'"):
        load_model(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="cannot read model file"):
        load_model(tmp_path / "absent.pkl")


def test_garbage_file(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pkl"
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(ModelLoadError, match="not a loadable joblib/pickle file"):
        load_model(path)


def test_object_without_predict(tmp_path: Path) -> None:
    path = tmp_path / "dict.pkl"
    joblib.dump({"weights": [1, 2]}, path)
    with pytest.raises(
        UnsupportedModelError, match=r"found a builtins\.dict, which has no predict"
    ):
        load_model(path)


def test_unfitted_estimator(tmp_path: Path) -> None:
    path = tmp_path / "unfitted.pkl"
    joblib.dump(LogisticRegression(), path)
    with pytest.raises(UnsupportedModelError, match="LogisticRegression is not fitted"):
        load_model(path)


@pytest.fixture
def old_version_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A model pickled by a (pretend) older scikit-learn: the version is stored in the state."""
    model = DecisionTreeClassifier().fit([[0.0], [1.0]], [0, 1])
    path = tmp_path / "old.joblib"
    with monkeypatch.context() as patch:
        patch.setattr(sklearn.base, "__version__", "1.0.2")
        joblib.dump(model, path)
    return path


def test_version_mismatch_is_refused_with_both_versions(old_version_path: Path) -> None:
    with pytest.raises(VersionMismatchError) as info:
        load_model(old_version_path)
    message = info.value.detail
    assert "1.0.2" in message
    assert sklearn.__version__ in message
    assert "--allow-version-mismatch" in message


def test_version_mismatch_can_be_allowed(old_version_path: Path) -> None:
    model = load_model(old_version_path, allow_version_mismatch=True)
    assert model.sklearn_trained == "1.0.2"
    assert model.metadata()["sklearn_version_trained"] == "1.0.2"
    assert model.predict(np.array([[1.0]])).labels.tolist() == [1]  # type: ignore[union-attr]


def test_skops_with_default_trusted_types(tmp_path: Path) -> None:
    sio = pytest.importorskip("skops.io")
    path = tmp_path / "logistic.skops"
    sio.dump(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), path)
    model = load_model(path)
    assert model.predict(np.array([[0.0]])).labels.tolist() == [0]  # type: ignore[union-attr]


def test_skops_untrusted_types_are_named_and_refused(tmp_path: Path) -> None:
    sio = pytest.importorskip("skops.io")
    path = tmp_path / "tree.skops"
    sio.dump(DecisionTreeClassifier().fit([[0.0], [1.0]], [0, 1]), path)
    with pytest.raises(ModelLoadError) as info:
        load_model(path)
    assert info.value.code == "untrusted_types"
    assert "sklearn.tree._tree.Tree" in info.value.detail


def test_skops_types_trusted_by_the_operator_load(tmp_path: Path) -> None:
    sio = pytest.importorskip("skops.io")
    path = tmp_path / "tree.skops"
    sio.dump(DecisionTreeClassifier().fit([[0.0], [1.0]], [0, 1]), path)
    model = load_model(path, trusted_types=("sklearn.tree._tree.Tree",))
    assert model.predict(np.array([[1.0]])).labels.tolist() == [1]  # type: ignore[union-attr]


def test_configured_model_falls_back_to_the_demo() -> None:
    model = load_configured_model(Settings())
    assert model.name == "iris-demo"
    assert model.schema.classes == ("setosa", "versicolor", "virginica")


def test_warm_up_uses_a_known_category(frame_path: Path) -> None:
    load_model(frame_path).warm_up()  # OneHotEncoder(handle_unknown="error") would raise on ""

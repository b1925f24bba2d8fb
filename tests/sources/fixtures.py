"""Fixtures of the source tests (a pytest plugin, see tests/conftest.py): model folders, a local S3
with a bucket, AWS settings, an MLflow registry."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import sklearn

from tests.sources.servers import moto_server

BUCKET = "models"


@pytest.fixture(scope="session")
def mlflow_dir(iris_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The iris pipeline saved by mlflow.sklearn (MLflow 3: skops) with a signature."""
    return _save_mlflow(iris_path, tmp_path_factory.mktemp("mlflow") / "model", "skops")


@pytest.fixture(scope="session")
def mlflow_pickle_dir(iris_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same, pickled with cloudpickle as older MLflow versions did."""
    return _save_mlflow(iris_path, tmp_path_factory.mktemp("mlflow") / "model", "cloudpickle")


def _save_mlflow(iris_path: Path, path: Path, fmt: str) -> Path:
    import joblib
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris

    model = joblib.load(iris_path)
    rows = pd.DataFrame([[5.1, 3.5, 1.4, 0.2]], columns=load_iris().feature_names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow's own notes about signatures and pickles
        mlflow.sklearn.save_model(
            model,
            str(path),
            serialization_format=fmt,
            signature=infer_signature(rows, model.predict(rows.to_numpy())),
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],  # no slow inference
        )
    return path


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory, mlflow_dir: Path, mlflow_pickle_dir: Path
) -> str:
    """A SQLite tracking store with ``iris`` versions 1 (skops) and 2 (cloudpickle).

    One per module: tests move its alias.
    """
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # SQLAlchemy 2.1 on MLflow's store
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.create_registered_model("iris")
        for version, folder in enumerate((mlflow_dir, mlflow_pickle_dir), start=1):
            shutil.copytree(folder, root / f"v{version}")
            client.create_model_version("iris", source=str(root / f"v{version}"))
    return uri


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str, tmp_path: Path) -> str:
    """Dummy credentials and the local endpoint, in the standard AWS variables only."""
    for name, value in {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return s3_endpoint


@pytest.fixture(scope="session")
def bucket(s3_endpoint: str, iris_path: Path, mlflow_dir: Path) -> str:
    """A bucket with the iris joblib file and the MLflow model folder under ``mlflow/``."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=BUCKET)
    s3.upload_file(str(iris_path), BUCKET, "iris.joblib")
    for item in sorted(mlflow_dir.rglob("*")):
        if item.is_file():
            s3.upload_file(str(item), BUCKET, f"mlflow/{item.relative_to(mlflow_dir).as_posix()}")
    return BUCKET

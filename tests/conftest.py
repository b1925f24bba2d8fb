"""Fixtures every test folder shares: small fitted models saved to disk, apps in-process.

Helpers live in ``tests/support/``; the end-to-end fixtures (server processes) in
``tests/e2e/conftest.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from starlette.testclient import TestClient

from restpredict.app import create_app
from restpredict.model.loading import LoadedModel, load_model
from restpredict.settings import Settings
from tests.support.models import save_frame, save_iris, save_iris_int, save_regressor

# The model-source fixtures (moto S3, MLflow registry, model folders) serve tests/sources and
# tests/e2e alike.
pytest_plugins = ["tests.sources.fixtures"]

# A shared 2-core CI machine makes wall-clock deadlines flaky; correctness is what is checked.
hypothesis_settings.register_profile("restpredict", deadline=None)
hypothesis_settings.load_profile("restpredict")


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def iris_path(models_dir: Path) -> Path:
    """StandardScaler + LogisticRegression on iris, numpy input, string labels."""
    return save_iris(models_dir / "iris.joblib")


@pytest.fixture(scope="session")
def iris_int_path(models_dir: Path) -> Path:
    """Same data, integer labels: predictions must come back as JSON ints."""
    return save_iris_int(models_dir / "iris_int.pkl")


@pytest.fixture(scope="session")
def frame_path(models_dir: Path) -> Path:
    """A ColumnTransformer pipeline fitted on a DataFrame with a string column."""
    return save_frame(models_dir / "frame.joblib")


@pytest.fixture(scope="session")
def regressor_path(models_dir: Path) -> Path:
    """A regressor with no predict_proba."""
    return save_regressor(models_dir / "regressor.pkl")


@pytest.fixture(scope="session")
def iris(iris_path: Path) -> LoadedModel:
    return load_model(iris_path)


@pytest.fixture(scope="session")
def frame_model(frame_path: Path) -> LoadedModel:
    return load_model(frame_path)


@pytest.fixture(scope="module")
def client(iris: LoadedModel) -> Iterator[TestClient]:
    """The iris model in-process, with small limits so 413/422 cases stay small."""
    app = create_app(Settings(max_body_bytes=64 * 1024, max_rows=50), iris)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def frame_client(frame_model: LoadedModel) -> Iterator[TestClient]:
    """The DataFrame model (with a string column) in-process."""
    with TestClient(create_app(Settings(), frame_model), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """dictConfig changes process-wide state; put the loggers it touches back afterwards."""
    names = ["", "uvicorn", "uvicorn.access", "restpredict"]
    saved = {
        n: (lg.handlers[:], lg.level, lg.propagate) for n in names for lg in [logging.getLogger(n)]
    }
    yield
    for n, (handlers, level, propagate) in saved.items():
        lg = logging.getLogger(n)
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate

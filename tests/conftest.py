"""Shared fixtures: small fitted models saved to disk, and real server processes."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import joblib
import numpy as np
import pandas as pd
import pytest
from hypothesis import settings as hypothesis_settings
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from starlette.testclient import TestClient

from restpredict.app import create_app
from restpredict.model.loading import LoadedModel, load_model
from restpredict.settings import Settings

# The model-source fixtures (moto S3, MLflow registry, model folders) serve tests/sources and
# tests/e2e alike.
pytest_plugins = ["tests.sources.fixtures"]

# A shared 2-core CI machine makes wall-clock deadlines flaky; correctness is what is checked.
hypothesis_settings.register_profile("restpredict", deadline=None)
hypothesis_settings.load_profile("restpredict")


def free_port() -> int:
    """A loopback port nobody is listening on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def iris_path(models_dir: Path) -> Path:
    """StandardScaler + LogisticRegression on iris, numpy input, string labels."""
    iris = load_iris()
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(iris.data, iris.target_names[iris.target])
    path = models_dir / "iris.joblib"
    joblib.dump(model, path)
    return path


@pytest.fixture(scope="session")
def iris_int_path(models_dir: Path) -> Path:
    """Same data, integer labels: predictions must come back as JSON ints."""
    iris = load_iris()
    model = LogisticRegression(max_iter=1000).fit(iris.data, iris.target)
    path = models_dir / "iris_int.pkl"
    joblib.dump(model, path)
    return path


def frame_data(n: int = 60) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "size": rng.normal(10, 3, n),
            "color": rng.choice(["red", "green", "blue"], n),
            "weight": rng.normal(5, 1, n),
        }
    )
    labels = np.where((frame["color"] == "red") | (frame["size"] > 11), "yes", "no")
    return frame, labels


@pytest.fixture(scope="session")
def frame_path(models_dir: Path) -> Path:
    """A ColumnTransformer pipeline fitted on a DataFrame with a string column."""
    frame, labels = frame_data()
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), ["size", "weight"]),
            ("cat", OneHotEncoder(handle_unknown="error"), ["color"]),
        ]
    )
    model = make_pipeline(pre, LogisticRegression(max_iter=1000)).fit(frame, labels)
    path = models_dir / "frame.joblib"
    joblib.dump(model, path)
    return path


@pytest.fixture(scope="session")
def regressor_path(models_dir: Path) -> Path:
    """A regressor with no predict_proba."""
    iris = load_iris()
    model = LinearRegression().fit(iris.data[:, :3], iris.data[:, 3])
    path = models_dir / "regressor.pkl"
    joblib.dump(model, path)
    return path


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


@dataclass
class ServerProcess:
    """A real ``restpredict serve`` subprocess on a loopback port."""

    url: str
    process: subprocess.Popen[str]

    def output(self) -> str:
        self.stop()
        assert self.process.stdout is not None
        return self.process.stdout.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def wait_ready(url: str, process: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"server exited with {process.returncode}:\n{output}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/health/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"server at {url} not ready after {timeout} s")


@pytest.fixture
def serve() -> Iterator[Callable[..., ServerProcess]]:
    """Start ``python -m restpredict serve ARGS --port P``; stopped at teardown."""
    started: list[ServerProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
        port = free_port()
        command = [sys.executable, "-m", "restpredict", "serve", *args, "--port", str(port)]
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "200", **(env or {})},
        )
        server = ServerProcess(url=f"http://127.0.0.1:{port}", process=process)
        started.append(server)
        wait_ready(server.url, process)
        return server

    yield start
    for server in started:
        server.stop()
        if server.process.stdout is not None:
            server.process.stdout.close()


@contextlib.contextmanager
def running_server(*args: str) -> Iterator[str]:
    """``restpredict serve ARGS`` for a whole module (``serve`` starts one per test); its URL."""
    port = free_port()
    command = [sys.executable, "-m", "restpredict", "serve", *args, "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    server = ServerProcess(url=f"http://127.0.0.1:{port}", process=process)
    try:
        wait_ready(server.url, process)
        yield server.url
    finally:
        server.stop()
        if process.stdout is not None:
            process.stdout.close()


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

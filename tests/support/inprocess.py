"""A real uvicorn server in a thread, for tests that need sockets but not a subprocess."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import uvicorn
from sklearn.base import BaseEstimator, ClassifierMixin
from starlette.applications import Starlette

from restpredict.model.loading import LoadedModel, from_estimator
from restpredict.server.protocols.auto import header_deadline_protocol
from tests.support.servers import free_port


@contextlib.contextmanager
def running(
    app: Starlette, *, header_timeout: float = 10.0, keep_alive: int = 5, parser: str = "auto"
) -> Iterator[str]:
    """Serve ``app`` on a free loopback port with restpredict's protocol; yield its URL."""
    port = free_port()
    config = uvicorn.Config(
        app,
        port=port,
        log_level="warning",
        timeout_keep_alive=keep_alive,
        http=header_deadline_protocol(header_timeout, parser),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class GateModel(ClassifierMixin, BaseEstimator):
    """Each predict() waits until the test opens the gate: concurrency without timing."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.inside = threading.Semaphore(0)

    def fit(self, X: Any, y: Any) -> GateModel:
        self.n_features_in_ = 2
        self.classes_ = np.array([0, 1])
        return self

    def predict(self, X: Any) -> np.ndarray:
        self.inside.release()
        self.gate.wait(timeout=60)
        return np.zeros(len(X), dtype=int)

    def wait_inside(self, count: int) -> None:
        """Block until ``count`` predict() calls have started."""
        for _ in range(count):
            assert self.inside.acquire(timeout=30), "predict() was not called"


def wrap(estimator: Any) -> LoadedModel:
    return from_estimator(
        estimator.fit(None, None), name="t", sha256="0" * 64, source="test", sklearn_trained=None
    )


class FailingModel(ClassifierMixin, BaseEstimator):
    """Fitted, picklable, but every prediction raises: its warm-up fails."""

    def fit(self, X: Any, y: Any) -> FailingModel:
        self.n_features_in_ = 2
        self.classes_ = np.array([0, 1])
        return self

    def predict(self, X: Any) -> np.ndarray:
        raise RuntimeError("cannot predict")

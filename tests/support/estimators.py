"""Fitted test estimators that a server subprocess can unpickle (it imports this module).

They make batching observable from outside: each answer says which row it is for and how big
the ``predict`` call that produced it was.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class BatchEcho(ClassifierMixin, BaseEstimator):
    """Predicts ``1000 * (rows in this call) + row[0]``; refuses negative values.

    Row ids below 1000 keep the two parts apart. ``delay`` seconds per call give concurrent
    requests time to queue behind a running batch; ``calls_`` records (method, rows) per call.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def fit(self, X: Any = None, y: Any = None) -> BatchEcho:
        self.n_features_in_ = 2
        self.classes_ = np.array([0, 1])
        self.calls_: list[tuple[str, int]] = []
        self.lock_ = threading.Lock()
        return self

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("lock_", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.lock_ = threading.Lock()

    def predict(self, X: Any) -> np.ndarray:
        X = self._check(X, "predict")
        return 1000.0 * len(X) + X[:, 0]

    def predict_proba(self, X: Any) -> np.ndarray:
        X = self._check(X, "predict_proba")
        return np.tile([0.25, 0.75], (len(X), 1))

    def _check(self, X: Any, method: str) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        with self.lock_:
            self.calls_.append((method, len(X)))
        time.sleep(self.delay)
        if (X < 0).any():
            raise ValueError("negative values are not allowed")
        return X

"""Fitted estimators that misbehave on purpose; a server subprocess unpickles them from here."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

#: The first feature value that makes ``SlowOnOne`` slow.
SLOW_VALUE = 666.0


class SlowOnOne(RegressorMixin, BaseEstimator):
    """Predicts the first feature in microseconds, but takes ``delay`` s on a row of 666.

    A model that is usually fast looks safe to run anywhere; this one then stalls on one
    input, as a real model can on a pathological row.
    """

    def __init__(self, delay: float = 6.0) -> None:
        self.delay = delay

    def fit(self, X: Any = None, y: Any = None) -> SlowOnOne:
        self.n_features_in_ = 2
        return self

    def predict(self, X: Any) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if (X[:, 0] == SLOW_VALUE).any():
            time.sleep(self.delay)
        return X[:, 0].copy()


#: What ``Picky`` puts in its own exception message: a secret no client may see.
SECRET = "token=hunter2"


class Picky(RegressorMixin, BaseEstimator):
    """Refuses negative values through scikit-learn's own validation, and 13 with a message
    of its own that holds a secret (as a model's code may, with a path or a connection string)."""

    def fit(self, X: Any = None, y: Any = None) -> Picky:
        self.n_features_in_ = 2
        return self

    def predict(self, X: Any) -> np.ndarray:
        from sklearn.utils.validation import check_non_negative

        X = np.asarray(X, dtype=np.float64)
        if (X[:, 0] == 13).any():
            raise ValueError(f"cannot open /srv/model/features.db?{SECRET}")
        check_non_negative(X, "Picky")
        return X[:, 0].copy()


class ManyClasses(BaseEstimator):
    """A 200-class classifier whose probabilities make long answers (~7 MB for 2,000 rows)."""

    _estimator_type = "classifier"

    def fit(self, X: Any = None, y: Any = None) -> ManyClasses:
        self.n_features_in_ = 2
        self.classes_ = np.arange(200)
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.zeros(len(np.asarray(X)), dtype=np.int64)

    def predict_proba(self, X: Any) -> np.ndarray:
        return np.full((len(np.asarray(X)), 200), 1 / 200 + 1e-17 * np.pi)


class Steady(RegressorMixin, BaseEstimator):
    """Every call takes ``delay`` seconds, whatever its size: a model with a known capacity."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay

    def fit(self, X: Any = None, y: Any = None) -> Steady:
        self.n_features_in_ = 2
        return self

    def predict(self, X: Any) -> np.ndarray:
        time.sleep(self.delay)
        return np.asarray(X, dtype=np.float64)[:, 0].copy()


class SlowToLoad(RegressorMixin, BaseEstimator):
    """Predicts the first feature at once, but unpickling it takes ``load_delay`` s: a large
    model's load, longer than a prediction should take."""

    def __init__(self, load_delay: float = 0.0) -> None:
        self.load_delay = load_delay

    def fit(self, X: Any = None, y: Any = None) -> SlowToLoad:
        self.n_features_in_ = 2
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(X, dtype=np.float64)[:, 0].copy()

    def __setstate__(self, state: dict[str, Any]) -> None:
        time.sleep(state.get("load_delay", 0.0))
        super().__setstate__(state)

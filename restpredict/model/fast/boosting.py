"""Histogram gradient boosting: the fitted predictors' compiled routines, on one thread.

``HistGradientBoosting*.predict`` starts from the baseline, adds every iteration's predictor
output (``TreePredictor.predict``, Cython) in order, then applies the loss's inverse link. Each
row's sum is the same whatever the thread count, so calling the predictors with one OpenMP
thread (a worker process is meant to use one core) gives bit-identical answers, without
scikit-learn's validation and OpenMP start-up around each of a hundred small calls. Models with
categorical features (an internal ordinal encoder) stay on scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from restpredict.model.fast.base import FastEstimator

__all__ = ["FastHistGradientBoosting", "fast_boosting"]


def fast_boosting(estimator: Any) -> FastEstimator | None:
    """The fast path for a fitted histogram gradient boosting model without categories."""
    kind = type(estimator)
    if kind not in (HistGradientBoostingClassifier, HistGradientBoostingRegressor):
        return None
    if getattr(estimator, "_preprocessor", None) is not None:
        return None
    return FastHistGradientBoosting(estimator)


class FastHistGradientBoosting(FastEstimator):
    """``_raw_predict`` with ``n_threads=1``, then scikit-learn's own link and label steps."""

    family = "histogram gradient boosting"

    def __init__(self, original: Any) -> None:
        super().__init__(original)
        self._known, self._index = original._bin_mapper.make_known_categories_bitsets()
        self._baseline = original._baseline_prediction
        self._predictors = original._predictors
        self._classifier = type(original) is HistGradientBoostingClassifier

    def predict(self, X: np.ndarray) -> Any:
        """Classes (score > 0 when binary, else argmax) or the inverse-linked values."""
        raw = self._raw(X)
        if not self._classifier:
            return self.original._loss.link.inverse(raw.ravel())
        binary = raw.shape[1] == 1
        encoded = (raw.ravel() > 0).astype(int) if binary else np.argmax(raw, axis=1)
        return self.original.classes_[encoded]

    def predict_proba(self, X: np.ndarray) -> Any:
        """The loss's probabilities of the raw scores."""
        return self.original._loss.predict_proba(self._raw(X))

    def _raw(self, X: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(self.as_scikit_learn_sees(X), dtype=np.float64)
        raw = np.zeros((rows.shape[0], len(self._predictors[0])), self._baseline.dtype, order="F")
        raw += self._baseline
        for iteration in self._predictors:
            for k, predictor in enumerate(iteration):
                raw[:, k] += predictor.predict(rows, self._known, self._index, 1)
        return raw

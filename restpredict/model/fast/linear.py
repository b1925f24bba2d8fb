"""Linear models: scikit-learn's own formulas on the fitted ``coef_`` and ``intercept_``.

``decision_function`` is ``X @ coef_.T + intercept_`` (the same matmul on the same float64
arrays, so the same BLAS call), probabilities go through the same ``scipy.special.expit`` or
the same softmax steps, labels through ``classes_.take``: bit-identical to scikit-learn's
``predict``/``predict_proba`` for a batch of the same rows. What is skipped is the per-call
overhead: ``validate_data``, array-API namespace look-ups, configuration contexts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    Ridge,
    RidgeClassifier,
)
from sklearn.svm import LinearSVC, LinearSVR

from restpredict.model.fast.base import FastEstimator, check_finite

__all__ = ["FastLinearClassifier", "FastLinearRegressor", "fast_linear"]

_REGRESSORS = (LinearRegression, Ridge, Lasso, ElasticNet, LinearSVR)
_CLASSIFIERS = (LogisticRegression, LinearSVC, RidgeClassifier)


def fast_linear(estimator: Any) -> FastEstimator | None:
    """The fast path for a fitted linear model of exactly these classes with dense weights."""
    kind = type(estimator)
    if not isinstance(getattr(estimator, "coef_", None), np.ndarray):
        return None  # sparsified coefficients: scikit-learn's sparse product
    if kind in _REGRESSORS:
        return FastLinearRegressor(estimator)
    binarizer = getattr(estimator, "_label_binarizer", None)
    if binarizer is not None and str(binarizer.y_type_).startswith("multilabel"):
        return None  # RidgeClassifier's multilabel predict thresholds each label instead
    if kind in _CLASSIFIERS:
        return FastLinearClassifier(estimator)
    return None


class FastLinearRegressor(FastEstimator):
    """``LinearModel.predict``: ``X @ coef_ (.T) + intercept_``."""

    family = "linear"
    memory_bound = True

    def __init__(self, original: Any) -> None:
        super().__init__(original)
        coef = original.coef_
        self._coef = coef if coef.ndim == 1 else coef.T
        self._intercept = original.intercept_

    def predict(self, X: np.ndarray) -> Any:
        """The linear prediction, one column per target for multi-output models."""
        return _float64(self.as_scikit_learn_sees(X)) @ self._coef + self._intercept


class FastLinearClassifier(FastEstimator):
    """``LinearClassifierMixin`` plus LogisticRegression's ``predict_proba``."""

    family = "linear"
    memory_bound = True

    def __init__(self, original: Any) -> None:
        super().__init__(original)
        coef = original.coef_
        self._coef = coef.T if coef.ndim == 2 else coef
        self._intercept = original.intercept_
        self._classes = original.classes_

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Scores: one column per class, or one score for the second class when binary."""
        rows = _float64(self.as_scikit_learn_sees(X))
        scores: np.ndarray = rows @ self._coef + self._intercept
        return scores.reshape(-1) if scores.ndim > 1 and scores.shape[1] == 1 else scores

    def predict(self, X: np.ndarray) -> Any:
        """The class with the highest score (binary: the second class when the score > 0)."""
        scores = self.decision_function(X)
        binary = scores.ndim == 1
        indices = (scores > 0).astype(np.intp) if binary else np.argmax(scores, axis=1)
        return self._classes.take(indices, axis=0)

    def predict_proba(self, X: np.ndarray) -> Any:
        """LogisticRegression: expit of the score when binary, else softmax of the scores."""
        if type(self.original) is not LogisticRegression:
            return self.original.predict_proba(X)  # LinearSVC/RidgeClassifier have none
        scores = self.decision_function(X)
        if self._classes.size <= 2:
            prob = special.expit(scores, out=scores)
            if prob.ndim == 1:
                return np.stack([1 - prob, prob], axis=1)
            return _ovr_normalise(prob)
        scores -= scores.max(axis=1).reshape(-1, 1)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1).reshape(-1, 1)
        return scores


def _ovr_normalise(prob: np.ndarray) -> np.ndarray:
    """``_predict_proba_lr``'s multi-column branch (unreachable for binary coefficients)."""
    total = prob.sum(axis=1)
    empty = total == 0
    if empty.any():
        prob[empty, :] = 1
        total[empty] = prob.shape[1]
    prob /= total.reshape(prob.shape[0], -1)
    return prob


def _float64(X: np.ndarray) -> np.ndarray:
    """float64 rows, as ``validate_data`` leaves them (a float64 array is used as it is).

    Linear models take no missing values: NaN (or an infinity a scaler made) is refused with
    scikit-learn's error.
    """
    rows = np.asarray(X, dtype=np.float64)
    check_finite(rows, allow_nan=False)
    return rows

"""Rows known finite (batch scoring validated them) are scanned once; computed rows always."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from restpredict.model.fast.base import FastEstimator, received_finite
from restpredict.model.fast.select import find_fast_path

IRIS = load_iris()


def fast(estimator: object) -> FastEstimator:
    found = find_fast_path(estimator.fit(IRIS.data, IRIS.target))  # type: ignore[attr-defined]
    assert found is not None
    return found


def test_rows_known_finite_are_not_scanned_again() -> None:
    """The hint is believed: a fast path told its rows are finite does not look at them.

    (Batch scoring gives it only after its own scan; an infinity here stands for "not looked
    at", and the model's arithmetic on it is what scikit-learn's under ``assume_finite`` is.)
    """
    model = LogisticRegression(max_iter=1000)
    path = fast(model)
    rows = np.array([[np.inf, 1.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="Input X contains infinity"):
        path.predict(rows)  # not known finite: scanned, refused as scikit-learn refuses
    with received_finite(), sklearn.config_context(assume_finite=True):
        np.testing.assert_array_equal(path.predict(rows), model.predict(rows))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the scaler's
def test_rows_a_scaler_computed_are_still_checked() -> None:
    """Finite rows the scaler overflows to infinity: refused with scikit-learn's error."""
    path = fast(make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)))
    with received_finite(), pytest.raises(ValueError, match="Input X contains infinity"):
        path.predict(np.full((1, 4), 1.7e308))


def test_a_tree_still_refuses_what_overflows_float32() -> None:
    """Finite float64 values can overflow float32: the tree's own check stays."""
    path = fast(RandomForestClassifier(n_estimators=3, random_state=0))
    with received_finite(), pytest.raises(ValueError, match="float32"):
        path.predict(np.array([[1e39, 1.0, 1.0, 1.0]]))

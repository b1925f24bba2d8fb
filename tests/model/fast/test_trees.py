"""Forests: the stacked leaf-value sum serves single-output classifiers and regressors, bit for
bit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)

from restpredict.model.fast.probe import sample_rows
from restpredict.model.fast.trees import FastForest

X, Y = load_iris(return_X_y=True)


@pytest.mark.parametrize(
    ("forest", "target"),
    [
        pytest.param(RandomForestClassifier(n_estimators=40, random_state=0), Y, id="forest"),
        pytest.param(ExtraTreesClassifier(n_estimators=40, random_state=0), Y % 2, id="extra"),
    ],
)
def test_stacked_sum_is_scikit_learns_sum(forest: Any, target: np.ndarray) -> None:
    fitted = forest.fit(X, target)
    fast = FastForest(fitted)
    assert fast._leaf_values is not None  # the stacked path is the one answering here
    rows = np.vstack([X, sample_rows(fitted, X.shape[1], seed=5)])
    for batch in (rows, rows[:1], rows[200:201], rows[:37]):
        expected, got = fitted.predict_proba(batch), fast.predict_proba(batch)
        assert expected.tobytes() == got.tobytes()  # every bit, the sign of zero included
        assert np.array_equal(fitted.predict(batch), fast.predict(batch))


#: Many leaves of exactly zero (sums of zeros keep their sign), and negative values.
ZEROS = np.where(X[:, 0] > 5.8, 0.0, X[:, 1] - 3.0)


@pytest.mark.parametrize(
    ("forest", "target"),
    [
        pytest.param(RandomForestRegressor(n_estimators=40, random_state=0), ZEROS, id="forest"),
        pytest.param(ExtraTreesRegressor(n_estimators=40, random_state=0), ZEROS, id="extra"),
        pytest.param(
            RandomForestRegressor(n_estimators=30, random_state=0),
            np.c_[ZEROS, X[:, 2]],
            id="multi-output",
        ),
    ],
)
def test_stacked_regressor_sum_is_scikit_learns_sum(forest: Any, target: np.ndarray) -> None:
    fitted = forest.fit(X, target)
    fast = FastForest(fitted)
    assert fast._leaf_values is not None
    rows = np.vstack([X, sample_rows(fitted, X.shape[1], seed=5)])
    for batch in (rows, rows[:1], rows[3:4], rows[200:201], rows[:37]):
        assert fitted.predict(batch).tobytes() == fast.predict(batch).tobytes()


def test_multi_output_classifier_keeps_the_tree_by_tree_loop() -> None:
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(X, np.c_[Y, Y % 2])
    fast = FastForest(forest)
    assert fast._leaf_values is None
    for expected, got in zip(forest.predict_proba(X), fast.predict_proba(X)):
        assert expected.tobytes() == got.tobytes()

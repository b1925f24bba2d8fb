"""predict_rows: cache-sized slices for memory-bound models, the same answers as one call."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from restpredict.batch.predict import predict_rows, rows_per_call
from restpredict.model.backend import fast_model
from restpredict.model.loading import LoadedModel, load_model


def _fast(tmp_path: Path, estimator: object) -> LoadedModel:
    train = np.random.default_rng(0).normal(scale=0.5, size=(500, 30))  # scale_ < 1
    estimator.fit(train, train[:, 0] + train[:, 1] > 0)  # type: ignore[attr-defined]
    joblib.dump(estimator, tmp_path / "model.joblib")
    model = load_model(tmp_path / "model.joblib")
    model.warm_up()
    fast = fast_model(model)
    assert getattr(fast.estimator, "restpredict_backend", None) == "fast"
    return fast


@pytest.fixture
def linear(tmp_path: Path) -> LoadedModel:
    return _fast(tmp_path, make_pipeline(StandardScaler(), LogisticRegression()))


def test_a_scaled_linear_model_is_called_on_1_mib_slices(linear: LoadedModel) -> None:
    rows = np.zeros((65_536, 30))
    assert rows_per_call(linear, rows) == (1 << 20) // (30 * 8)


def test_a_forest_gets_the_whole_batch(tmp_path: Path) -> None:
    forest = _fast(tmp_path, RandomForestClassifier(n_estimators=5, random_state=0))
    assert rows_per_call(forest, np.zeros((65_536, 30))) == 65_536


def test_slices_answer_as_one_scikit_learn_call(linear: LoadedModel) -> None:
    rows = np.random.default_rng(1).normal(size=(20_000, 30))
    scored = predict_rows(linear, rows, np.arange(20_000), proba=True, finite=True)
    original = linear.estimator.original
    assert scored.accepted is None and scored.rejects == []
    np.testing.assert_array_equal(scored.prediction.labels, original.predict(rows))
    np.testing.assert_allclose(scored.prediction.proba, original.predict_proba(rows), rtol=1e-15)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the scaler's
def test_a_row_the_model_refuses_in_a_later_slice_keeps_its_number(
    linear: LoadedModel,
) -> None:
    """1.7e308 passes validation, but the scaler overflows it to infinity: refused alone."""
    rows = np.random.default_rng(2).normal(size=(10_000, 30))
    rows[9_000] = 1.7e308
    scored = predict_rows(linear, rows, np.arange(10_000) + 500, proba=False, finite=True)
    assert [r.row for r in scored.rejects] == [9_500]
    assert "infinity" in scored.rejects[0].reason
    assert scored.accepted is not None
    assert np.flatnonzero(~scored.accepted).tolist() == [9_000]
    good = np.delete(rows, 9_000, axis=0)
    np.testing.assert_array_equal(scored.prediction.labels, linear.estimator.original.predict(good))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the scaler's
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # unchecked, NaN
def test_on_scikit_learn_a_row_the_scaler_overflows_is_refused_as_predict_refuses_it(
    tmp_path: Path,
) -> None:
    """Validated finite rows are not scanned again, but what the pipeline computes is: a row
    the scaler overflows to infinity is refused (labels only: no proba to come out NaN)."""
    train = np.random.default_rng(0).normal(scale=0.5, size=(500, 30))
    pipeline = make_pipeline(StandardScaler(), LogisticRegression())
    joblib.dump(pipeline.fit(train, train[:, 0] > 0), tmp_path / "model.joblib")
    model = load_model(tmp_path / "model.joblib")  # scikit-learn itself: no fast path
    rows = np.random.default_rng(2).normal(size=(100, 30))
    rows[40] = 1.7e308
    scored = predict_rows(model, rows, np.arange(100), proba=False, finite=True)
    assert [(r.row, "infinity" in r.reason) for r in scored.rejects] == [(40, True)]
    good = np.delete(rows, 40, axis=0)
    np.testing.assert_array_equal(scored.prediction.labels, pipeline.predict(good))


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # its astype
def test_on_scikit_learn_a_value_over_float32_is_refused_by_a_tree(tmp_path: Path) -> None:
    """Finite as float64, infinite as the float32 a tree compares: refused, as /predict does."""
    train = np.random.default_rng(0).normal(size=(200, 4))
    forest = RandomForestClassifier(n_estimators=3, random_state=0)
    joblib.dump(forest.fit(train, train[:, 0] > 0), tmp_path / "forest.joblib")
    model = load_model(tmp_path / "forest.joblib")
    rows = np.random.default_rng(1).normal(size=(10, 4))
    rows[3, 2] = 1e39
    scored = predict_rows(model, rows, np.arange(10), proba=True, finite=True)
    assert [r.row for r in scored.rejects] == [3]
    assert "float32" in scored.rejects[0].reason

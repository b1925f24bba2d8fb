"""The compiled (ONNX Runtime) backend: used only when verified, else a logged fallback."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from restpredict.model.backend import backend_name
from restpredict.model.compiled import (
    CompiledEstimator,
    _convert,
    compile_model,
    sample_rows,
    verify,
)
from restpredict.model.loading import LoadedModel, from_estimator
from restpredict.settings import Settings
from tests.support.estimators import BatchEcho

pytest.importorskip("onnxruntime", reason="the [onnx] extra (onnxruntime) is not installed")
pytest.importorskip("skl2onnx", reason="the [onnx] extra (skl2onnx) is not installed")

ONNX = Settings(backend="onnx")


def wrap(estimator: object, name: str = "m") -> LoadedModel:
    return from_estimator(estimator, name=name, sha256="0" * 64, source="t", sklearn_trained=None)


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    data = load_breast_cancer()
    return data.data, data.target


@pytest.fixture(scope="module")
def forest(cancer: tuple[np.ndarray, np.ndarray]) -> RandomForestClassifier:
    X, y = cancer
    # Fully grown trees (pure leaves) and an odd count: no row's votes tie at exactly 0.5, where
    # float32 accumulation in ONNX Runtime may pick the other class (the verification would
    # then refuse the model, rightly).
    return RandomForestClassifier(n_estimators=21, random_state=0).fit(X, y)


def test_forest_runs_on_onnx_and_answers_like_scikit_learn(
    forest: RandomForestClassifier, cancer: tuple[np.ndarray, np.ndarray]
) -> None:
    model = compile_model(wrap(forest), ONNX)
    assert isinstance(model.estimator, CompiledEstimator)
    assert backend_name(model) == "onnx"
    X, _ = cancer
    got = model.predict(X, proba=True)
    assert got.labels is not None and got.proba is not None
    assert got.labels.tolist() == forest.predict(X).tolist()
    assert got.proba.dtype == np.float64
    np.testing.assert_allclose(got.proba, forest.predict_proba(X), rtol=0, atol=1e-5)
    assert model.estimator.classes_.tolist() == [0, 1]  # other attributes: the original's


def test_verification_refuses_a_forest_fed_raw_float64(forest: RandomForestClassifier) -> None:
    # scikit-learn's trees compare float32 inputs with float64 thresholds; a float64 graph
    # disagrees right at a threshold, where the sample rows are made to land.
    rows = sample_rows(wrap(forest))
    mismatch = verify(forest, _convert(forest, rows, np.float64), rows, 1e-5)
    assert mismatch is not None and "differ" in mismatch
    assert verify(forest, _convert(forest, rows, np.float32), rows, 1e-5) is None


def test_a_regressor_is_compiled_and_verified(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = cancer
    regressor = RandomForestRegressor(n_estimators=10, max_depth=6, random_state=0).fit(X, y)
    model = compile_model(wrap(regressor), ONNX)
    assert backend_name(model) == "onnx"
    got = model.predict(X[:50]).labels
    assert got is not None and got.shape == (50,)
    np.testing.assert_allclose(got, regressor.predict(X[:50]), rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        pytest.param(lambda: wrap(BatchEcho().fit()), "cannot convert", id="unconvertible"),
        pytest.param(None, "only models with numeric columns", id="string-columns"),
    ],
)
def test_unfit_models_stay_on_scikit_learn_with_a_warning(
    make: Callable[[], LoadedModel] | None,
    reason: str,
    frame_model: LoadedModel,
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = make() if make is not None else frame_model
    with caplog.at_level(logging.WARNING, logger="restpredict.compiled"):
        assert compile_model(model, ONNX) is model
    assert backend_name(model) == "sklearn"
    assert "compiled backend not used" in caplog.text and reason in caplog.text


def test_off_by_default(forest: RandomForestClassifier) -> None:
    model = wrap(forest)
    assert compile_model(model, Settings()) is model


def test_missing_extra_falls_back(
    forest: RandomForestClassifier,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)  # import fails
    model = wrap(forest)
    with caplog.at_level(logging.WARNING, logger="restpredict.compiled"):
        assert compile_model(model, ONNX) is model
    assert "pip install 'restpredict[onnx]'" in caplog.text


def test_a_forest_whose_votes_can_tie_is_refused(
    cancer: tuple[np.ndarray, np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    X, y = cancer
    even = RandomForestClassifier(n_estimators=20, max_depth=8, random_state=0).fit(X, y)
    model = wrap(even)
    with caplog.at_level(logging.WARNING, logger="restpredict.compiled"):
        assert compile_model(model, ONNX) is model
    assert "labels differ" in caplog.text

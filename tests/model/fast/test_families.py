"""Exact fast paths: each family answers bit for bit like scikit-learn, or is not used."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, RidgeClassifier
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.svm import SVC, LinearSVC, LinearSVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from typer.testing import CliRunner

from restpredict.cli import app
from restpredict.errors import RestPredictError
from restpredict.model.backend import backend_name, fast_model, select_backend
from restpredict.model.fast import select as fast_select
from restpredict.model.fast.base import FastEstimator
from restpredict.model.fast.probe import sample_rows
from restpredict.model.fast.select import differences, find_fast_path
from restpredict.model.loading import LoadedModel, from_estimator
from restpredict.settings import Settings

CANCER = load_breast_cancer()
IRIS = load_iris()
X, Y = CANCER.data, CANCER.target
XI, YI = IRIS.data, IRIS.target
NAMES = np.array(["setosa", "versicolor", "virginica"])[YI]


def wrap(estimator: object) -> LoadedModel:
    return from_estimator(estimator, name="m", sha256="0" * 64, source="t", sklearn_trained=None)


def frame(data: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(data, columns=[f"f{i}" for i in range(data.shape[1])])


# (estimator factory, training features, training target)
CASES = [
    pytest.param(
        lambda: RandomForestClassifier(n_estimators=30, max_depth=8, random_state=0),
        X,
        Y,
        id="forest-binary",
    ),
    pytest.param(
        lambda: RandomForestClassifier(n_estimators=15, random_state=0),
        XI,
        NAMES,
        id="forest-multiclass-strings",
    ),
    pytest.param(
        lambda: ExtraTreesClassifier(n_estimators=15, random_state=0),
        XI,
        YI,
        id="extra-trees-multiclass",
    ),
    pytest.param(
        lambda: RandomForestRegressor(n_estimators=15, random_state=0),
        X,
        X[:, 0],
        id="forest-regressor",
    ),
    pytest.param(
        lambda: ExtraTreesRegressor(n_estimators=10, random_state=0),
        X,
        np.c_[Y, X[:, 1]],
        id="extra-trees-multi-output-regressor",
    ),
    pytest.param(lambda: DecisionTreeClassifier(random_state=0), XI, NAMES, id="tree-strings"),
    pytest.param(
        lambda: DecisionTreeRegressor(max_depth=6, random_state=0),
        X,
        X[:, 2],
        id="tree-regressor",
    ),
    pytest.param(
        lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        X,
        Y,
        id="scaled-logistic-binary",
    ),
    pytest.param(
        lambda: make_pipeline(MinMaxScaler(clip=True), LogisticRegression(max_iter=1000)),
        XI,
        NAMES,
        id="minmax-logistic-multiclass-strings",
    ),
    pytest.param(
        lambda: make_pipeline(SimpleImputer(), StandardScaler(), LinearSVC()),
        X,
        Y,
        id="imputed-linear-svc",
    ),
    pytest.param(lambda: LinearRegression(), X, X[:, 0], id="linear-regression"),
    pytest.param(lambda: RidgeClassifier(), XI, NAMES, id="ridge-classifier-strings"),
    pytest.param(
        lambda: HistGradientBoostingClassifier(max_iter=30, random_state=0),
        X,
        Y,
        id="hist-boosting-binary",
    ),
    pytest.param(
        lambda: HistGradientBoostingClassifier(max_iter=20, random_state=0),
        XI,
        NAMES,
        id="hist-boosting-multiclass-strings",
    ),
    pytest.param(
        lambda: HistGradientBoostingRegressor(max_iter=30, random_state=0),
        X,
        X[:, 0],
        id="hist-boosting-regressor",
    ),
    pytest.param(lambda: Ridge(), X, np.c_[X[:, 0], X[:, 1]], id="ridge-multi-output"),
    pytest.param(lambda: make_pipeline(StandardScaler(), LinearSVR()), XI, XI[:, 0], id="svr"),
    pytest.param(
        lambda: make_pipeline(StandardScaler(), KNeighborsClassifier()),
        XI,
        YI,
        id="scaler-then-scikit-learn-knn",
    ),
]


def _outcome(model: LoadedModel, rows: np.ndarray, proba: bool) -> Any:
    try:
        return model.predict(rows, proba=proba)
    except RestPredictError as exc:
        return type(exc), exc.detail


def _check(model: LoadedModel, fast: LoadedModel, rows: np.ndarray) -> None:
    proba = model.schema.has_proba and model.schema.task == "classification"
    for batch in (rows, rows[:1], rows[7:8]):
        expected, got = _outcome(model, batch, proba), _outcome(fast, batch, proba)
        if isinstance(expected, tuple):
            assert got == expected  # the same refusal, with scikit-learn's message
            continue
        assert np.array_equal(np.asarray(expected.labels), np.asarray(got.labels))
        if proba:
            assert np.array_equal(np.asarray(expected.proba), np.asarray(got.proba))


@pytest.mark.parametrize(("factory", "features", "target"), CASES)
@pytest.mark.parametrize("as_frame", [False, True], ids=["array", "frame"])
def test_fast_path_answers_bit_for_bit(
    factory: Callable[[], Any], features: np.ndarray, target: np.ndarray, as_frame: bool
) -> None:
    fitted = factory().fit(frame(features) if as_frame else features, target)
    model = wrap(fitted)
    fast = fast_model(model)
    assert isinstance(fast.estimator, FastEstimator)
    assert fast.metadata()["backend"] == "fast" and backend_name(fast) == "fast"
    assert fast.estimator.exactness == "bit-identical"
    rng = np.random.default_rng(1)
    random_rows = rng.normal(
        features.mean(axis=0), features.std(axis=0) * 2, (300, features.shape[1])
    )
    _check(model, fast, random_rows)
    _check(model, fast, sample_rows(fitted, features.shape[1], seed=3))
    _check(model, fast, features)
    holes = rng.random(random_rows.shape) < 0.2
    _check(model, fast, np.where(holes, np.nan, random_rows))  # NaN: same answers or refusal


@pytest.mark.parametrize(
    "estimator",
    [
        pytest.param(RandomForestClassifier(n_estimators=10, random_state=0), id="forest"),
        pytest.param(DecisionTreeClassifier(random_state=0), id="tree"),
    ],
)
def test_multi_output_classifiers_answer_bit_for_bit(estimator: Any) -> None:
    """restpredict's schema does not serve them yet; the fast path already answers exactly."""
    fitted = estimator.fit(XI, np.c_[NAMES, YI % 2])
    fast = find_fast_path(fitted)
    assert fast is not None
    rows = np.vstack([XI, sample_rows(fitted, 4)])
    assert np.array_equal(fitted.predict(rows), fast.predict(rows))
    for expected, got in zip(fitted.predict_proba(rows), fast.predict_proba(rows), strict=True):
        assert np.array_equal(expected, got)


def test_float32_overflow_is_refused_like_scikit_learn() -> None:
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(XI, YI)
    fast = fast_model(wrap(forest))
    rows = np.array([[1e300, 1.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="too large"), np.errstate(over="ignore"):
        forest.predict(rows)
    with pytest.raises(ValueError, match="too large"):
        fast.estimator.predict(rows)


@pytest.mark.parametrize(
    "estimator",
    [
        pytest.param(KNeighborsClassifier().fit(XI, YI), id="no-family"),
        pytest.param(make_pipeline(SVC().fit(XI, YI)), id="pipeline-with-no-fast-step"),
        pytest.param(
            RidgeClassifier().fit(XI, np.c_[YI == 0, YI == 1]), id="multilabel-ridge-classifier"
        ),
        pytest.param(
            HistGradientBoostingClassifier(max_iter=5, categorical_features=[0]).fit(
                np.c_[YI % 3, XI], YI
            ),
            id="boosting-with-categories",
        ),
    ],
)
def test_estimator_without_fast_path_stays_on_scikit_learn(
    estimator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    model = wrap(estimator)
    with caplog.at_level(logging.INFO, logger="restpredict.model.backend"):
        assert fast_model(model) is model
    assert backend_name(model) == "sklearn" and model.metadata()["fast_path"] is None
    assert caplog.text.count("fast path not used") == 1


def test_unverified_scikit_learn_version_falls_back_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(fast_select, "VERIFIED_SKLEARN", "0.1")
    model = wrap(RandomForestClassifier(n_estimators=3, random_state=0).fit(XI, YI))
    with caplog.at_level(logging.WARNING, logger="restpredict.model.backend"):
        assert fast_model(model) is model
    assert "is not the verified 0.1.x series" in caplog.text


def test_backend_setting_chooses() -> None:
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(XI, YI)
    model = wrap(forest)
    assert Settings().backend == "auto"
    assert backend_name(select_backend(model, Settings())) == "fast"
    assert select_backend(model, Settings(backend="sklearn")) is model


def test_differences_names_what_differs() -> None:
    a = np.array([[0.25, 0.75]])
    assert differences(a, a.copy(), "bit-identical") is None
    nudged = np.nextafter(a, 1)
    assert differences(a, nudged, "bit-identical") == "2 of 2 values differ"
    assert differences(a, nudged, "1e-12") is None
    assert "differ by up to" in str(differences(a, a + 1e-9, "1e-12"))
    assert "shape/dtype" in str(differences(a, a[0], "bit-identical"))
    labels = np.array(["a", "b"])
    assert differences(labels, np.array(["a", "c"]), "1e-12") == "1 of 2 values differ"


def test_info_says_which_backend_would_serve(tmp_path: Path) -> None:
    path = tmp_path / "forest.joblib"
    joblib.dump(RandomForestClassifier(n_estimators=5, random_state=0).fit(XI, YI), path)
    shown = CliRunner().invoke(app, ["info", str(path), "--sha256", _sha256(path), "--json"])
    assert shown.exit_code == 0, shown.output
    meta = json.loads(shown.output)
    assert meta["backend"] == "fast" and meta["fast_path"] == "forest (bit-identical)"
    plain = CliRunner().invoke(
        app,
        ["info", str(path), "--sha256", _sha256(path), "--json"],
        env={"RESTPREDICT_BACKEND": "sklearn"},
    )
    assert plain.exit_code == 0, plain.output
    assert json.loads(plain.output)["backend"] == "sklearn"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
